// Shared by the engine tests: where the model and fixtures are, and a Boost.Test precondition
// that skips (with the reason) tests needing the real model when it is absent.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// property_tree still includes the deprecated boost/bind.hpp; this keeps it quiet.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/test/unit_test.hpp>

namespace engine_test {

inline std::optional<std::filesystem::path> env_path(char const* name) {
  char const* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::filesystem::path(value);
}

//! Precondition: SKIPLLM_MODEL names an existing file and SKIPLLM_FIXTURES is set.
inline boost::test_tools::assertion_result model_available(boost::unit_test::test_unit_id) {
  auto const model = env_path("SKIPLLM_MODEL");
  auto const fixtures = env_path("SKIPLLM_FIXTURES");
  boost::test_tools::assertion_result ok(model && fixtures && std::filesystem::exists(*model));
  if (!model) {
    ok.message() << "SKIPLLM_MODEL is not set: SKIPPED (configure with -DSKIPLLM_TEST_MODEL=... or run tests/run.sh)";
  } else if (!std::filesystem::exists(*model)) {
    ok.message() << "model file " << model->string() << " not found: SKIPPED (tests/run.sh fetches it)";
  } else if (!fixtures) {
    ok.message() << "SKIPLLM_FIXTURES is not set: SKIPPED";
  }
  return ok;
}

inline std::filesystem::path model_path() { return *env_path("SKIPLLM_MODEL"); }

inline boost::property_tree::ptree read_fixture(std::string const& name) {
  boost::property_tree::ptree doc;
  boost::property_tree::read_json((*env_path("SKIPLLM_FIXTURES") / name).string(), doc);
  return doc;
}

//! A JSON document (a program's output) as a property tree.
inline boost::property_tree::ptree parse_json(std::string const& text) {
  std::istringstream in(text);
  boost::property_tree::ptree doc;
  boost::property_tree::read_json(in, doc);
  return doc;
}

template <class T>
std::vector<T> values_of(boost::property_tree::ptree const& array) {
  std::vector<T> out;
  for (auto const& item : array) out.push_back(item.second.get_value<T>());
  return out;
}

}  // namespace engine_test
