// The C++ reader and writer of policy config files (format/policy_config) on the shared fixtures
// of tests/fixtures/policy_config, which the CMake baker (tests/baked) and the Python reader
// (tests/python/test_policy_config.py) are tested on too: every valid file reads as its .values
// file says, every invalid one is refused with the message invalid/errors.txt gives.
#define BOOST_TEST_MODULE engine_policy_config
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "format/policy_config.hpp"

namespace fs = std::filesystem;
using namespace skipllm::engine;

namespace {

fs::path const kSource = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
fs::path const kFixtures = kSource / "tests/fixtures/policy_config";

std::string read_file(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_TEST_REQUIRE(static_cast<bool>(in), "cannot read " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> valid_fixtures() {
  std::vector<fs::path> files;
  for (auto const& e : fs::directory_iterator(kFixtures / "valid")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

template <class T, class Format>
std::string joined(std::vector<T> const& xs, Format format) {
  std::string s;
  for (T const& x : xs) {
    if (!s.empty()) s += ' ';
    s += format(x);
  }
  return s;
}

// The values a config sets, defaults applied, in the .values fixture format (README.md there).
std::string values_of(PolicyConfig const& c) {
  using Kind = PolicyConfig::Kind;
  std::ostringstream os;
  auto const line = [&](char const* key, std::string const& value) {
    os << key << ':' << (value.empty() ? "" : " ") << value << '\n';
  };
  auto const integer = [](int v) { return std::to_string(v); };
  line("model.layers", integer(c.model_layers));
  line("kind", std::string(kind_name(c.kind)));
  line("threshold", number(c.threshold));
  if (c.kind == Kind::layer_greedy) {
    line("layer_thresholds", joined(c.layer_thresholds, [](auto const& t) { return t ? number(*t) : "null"; }));
  }
  line("span", c.span == skipllm::policy::kToColdRegion ? "all" : integer(c.span));
  line("spans_per_token", integer(c.spans_per_token));
  line("warmup.tokens", integer(c.warmup_tokens));
  line("warmup.every", integer(c.warmup_every));
  line("cold.first", integer(c.cold_first));
  line("cold.last", integer(c.cold_last));
  line("cold.layers", joined(c.cold_layers, integer));
  if (c.kind == Kind::random_window) {
    line("random_window.length", number(c.window_length));
    line("random_window.first", integer(c.window_first));
    line("random_window.last", integer(c.window_last));
    line("random_window.seed", std::to_string(c.window_seed));
  }
  if (c.kind == Kind::static_layers) line("static_layers", joined(c.static_layers, integer));
  line("skip_attention", c.skip_attention ? "true" : "false");
  return os.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(valid_fixtures_read_as_their_values_files) {
  std::vector<fs::path> const files = valid_fixtures();
  BOOST_TEST(files.size() >= 6u);
  for (fs::path const& file : files) {
    BOOST_TEST_CONTEXT(file.filename()) {
      fs::path values = file;
      values.replace_extension(".values");
      BOOST_TEST(values_of(load_policy_config(file)) == read_file(values));
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_fixtures_are_refused_naming_file_and_field) {
  std::istringstream manifest(read_file(kFixtures / "invalid/errors.txt"));
  int cases = 0;
  for (std::string line; std::getline(manifest, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::size_t const gap = line.find(' ');
    fs::path const file = kFixtures / "invalid" / line.substr(0, gap);
    std::string const expected = line.substr(line.find_first_not_of(' ', gap));
    BOOST_TEST_CONTEXT(file.filename()) {
      ++cases;
      try {
        load_policy_config(file);
        BOOST_ERROR("accepted");
      } catch (PolicyConfigError const& e) {
        std::string const what = e.what();
        BOOST_TEST(what.find(file.string()) != std::string::npos, what);
        BOOST_TEST(what.find(expected) != std::string::npos, what << "\n  expected: " << expected);
      }
    }
  }
  BOOST_TEST(cases >= 20);
}

// What the writer writes, the reader reads back unchanged; files in the writer's layout (the
// shipped config among them) come back byte for byte.
BOOST_AUTO_TEST_CASE(writer_and_reader_round_trip) {
  for (fs::path const& file : valid_fixtures()) {
    BOOST_TEST_CONTEXT(file.filename()) {
      std::string const written = policy_config_json(load_policy_config(file));
      BOOST_TEST(policy_config_json(parse_policy_config(written)) == written);
    }
  }
  for (fs::path const& file :
       {kSource / "examples/engine/configs/smollm2-135m-instruct.json", kFixtures / "valid/greedy.json"}) {
    BOOST_TEST(policy_config_json(load_policy_config(file)) == read_file(file), file);
  }
}

BOOST_AUTO_TEST_CASE(json_errors_give_the_position_and_repeated_keys_the_path) {
  auto const error_of = [](std::string const& text) {
    try {
      parse_policy_config(text, "t.json");
    } catch (PolicyConfigError const& e) { return std::string(e.what()); }
    return std::string("accepted");
  };
  std::string e = error_of("{\"schema\": \"skipllm.policy\",\n \"version\": 1,, }");
  BOOST_TEST(e.find("t.json:2:15: invalid JSON: ") == 0u, e);
  e = error_of(
      R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "greedy", "threshold": 0.9, "threshold": 0.8}})");
  BOOST_TEST(e == "t.json: invalid JSON: duplicate key policy.threshold");
}
