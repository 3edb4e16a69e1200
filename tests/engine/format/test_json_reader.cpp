// The engine's JSON reader (format/json_reader): what it accepts, and how it reports malformed
// text and repeated keys.
#define BOOST_TEST_MODULE engine_json_reader
#include <boost/test/unit_test.hpp>

#include <string>

#include "format/json_reader.hpp"

using skipllm::engine::DuplicateKeys;
using skipllm::engine::JsonSyntaxError;
using skipllm::engine::parse_json;

BOOST_AUTO_TEST_CASE(values_and_escapes) {
  nlohmann::json const v =
      parse_json(R"( {"a": [1, -2.5e1, true, false, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "o": {}} )");
  BOOST_TEST(v["a"].size() == 5u);
  BOOST_TEST(v["a"][1].get<double>() == -25.0);
  BOOST_TEST(v["a"][2].get<bool>());
  BOOST_TEST(v["a"][4].is_null());
  BOOST_TEST(v["s"].get<std::string>() == "x\"\\/\n\xC3\xA9\xF0\x9F\x98\x80");
  BOOST_TEST(v["o"].is_object());
  BOOST_TEST(!v.contains("missing"));
}

BOOST_AUTO_TEST_CASE(malformed_text_is_refused_with_its_position) {
  for (char const* bad : {"{", "{\"a\" 1}", "[1,]", "{\"a\": tru}", "\"\\ud83d\"", "01", "{} x", "\"a\tb\"", "NaN",
                          "[1] // comment", "\"\xff\"", "1e400"}) {
    BOOST_CHECK_THROW(parse_json(bad), JsonSyntaxError);
  }
  try {
    parse_json("{\"a\": 1,\n  \"b\": 2,, }");
    BOOST_ERROR("accepted");
  } catch (JsonSyntaxError const& e) {
    BOOST_TEST(e.line == 2u);
    BOOST_TEST(e.column == 10u);
    BOOST_TEST(std::string(e.what()).find("at line 2, column 10") != std::string::npos, e.what());
    BOOST_TEST(e.reason.find("unexpected ','") != std::string::npos, e.reason);
  }
}

BOOST_AUTO_TEST_CASE(repeated_keys) {
  BOOST_TEST(parse_json(R"({"a": 1, "a": 2})")["a"].get<int>() == 2);  // last_wins, the default
  BOOST_TEST(parse_json(R"({"a": {"b": 1}, "c": [{"b": 2}]})", DuplicateKeys::reject)["c"][0]["b"].get<int>() == 2);
  try {
    parse_json(R"({"a": [{"b": 1}, {"c": {"d": 1, "d": 2}}]})", DuplicateKeys::reject);
    BOOST_ERROR("accepted");
  } catch (JsonSyntaxError const& e) {
    BOOST_TEST(e.reason == "duplicate key a[].c.d");
    BOOST_TEST(e.line == 0u);
  }
}

// Untrusted files may nest arbitrarily deep: parsing and destroying must not recurse per level
// (nlohmann/json's parser and destructor are iterative), so a deep text is read, not a crash.
BOOST_AUTO_TEST_CASE(deep_nesting_is_bounded_by_the_text_not_the_stack) {
  constexpr std::size_t depth = 200'000;
  std::string const text = std::string(depth, '[') + std::string(depth, ']');
  BOOST_TEST(parse_json(text).is_array());
  std::string const objects = [] {
    std::string s;
    for (std::size_t i = 0; i < depth; ++i) s += "{\"a\":";
    return s + "1" + std::string(depth, '}');
  }();
  BOOST_TEST(parse_json(objects, DuplicateKeys::reject).is_object());
}
