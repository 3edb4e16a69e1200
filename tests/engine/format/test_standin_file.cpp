// The stand-in file reader and writer (format/standin_file): a written file reads back as
// written; every malformed or mismatched file is refused with a message that says what is wrong.
#define BOOST_TEST_MODULE engine_standin_file
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "format/policy_config.hpp"
#include "format/quant.hpp"
#include "format/standin_file.hpp"

namespace fs = std::filesystem;
using namespace skipllm::engine;

namespace {

constexpr int kHidden = 4;
constexpr std::size_t kHeader = 8 + 5 * 4;  // magic, version, hidden, layers, maps, dtype

std::vector<std::uint16_t> halves(std::size_t n, float start) {
  std::vector<std::uint16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = float_to_half(start + 0.125f * static_cast<float>(i));
  return v;
}

// Two maps on a 3-layer model of hidden size 4: layer 0 full, layer 2 of rank 2.
StandInMaps sample_maps() {
  StandInMaps m;
  m.hidden = kHidden;
  m.layers = 3;
  StandInMap full;
  full.layer = 0;
  full.a = halves(kHidden * kHidden, -1.0f);
  full.bias = halves(kHidden, 0.5f);
  StandInMap low;
  low.layer = 2;
  low.rank = 2;
  low.v = halves(2 * kHidden, 0.25f);
  low.u = halves(kHidden * 2, -0.5f);
  low.bias = halves(kHidden, 1.0f);
  m.maps = {full, low};
  return m;
}

void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The message parse_standin_maps refuses `bytes` with ("" when it accepts them).
std::string refusal(std::vector<std::uint8_t> const& bytes) {
  try {
    parse_standin_maps(bytes, "f.standin");
  } catch (StandInFileError const& e) { return e.what(); }
  return "";
}

bool mentions(std::string const& message, std::string const& part) {
  bool const found = message.find(part) != std::string::npos;
  if (!found) BOOST_TEST_MESSAGE("message: " << message);
  return found;
}

// The file offset of the first value of map 0 (layer 0's A).
constexpr std::size_t kFirstValue = kHeader + 8;

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip) {
  StandInMaps const m = sample_maps();
  std::vector<std::uint8_t> const bytes = standin_bytes(m);
  BOOST_TEST(bytes.size() == kHeader + 8 + 2 * (16 + 4) + 8 + 2 * (8 + 8 + 4));
  StandInMaps const back = parse_standin_maps(bytes);
  BOOST_TEST(back.hidden == kHidden);
  BOOST_TEST(back.layers == 3);
  BOOST_REQUIRE(back.maps.size() == 2u);
  BOOST_TEST(back.maps[0].a == m.maps[0].a);
  BOOST_TEST(back.maps[1].rank == 2);
  BOOST_TEST(back.maps[1].v == m.maps[1].v);
  BOOST_TEST(back.maps[1].u == m.maps[1].u);
  BOOST_TEST(back.maps[1].bias == m.maps[1].bias);
  BOOST_TEST(back.find(2) != nullptr);
  BOOST_TEST(back.find(1) == nullptr);
  BOOST_TEST(back.layer_mask().count() == 2);
  BOOST_TEST(back.maps[0].bytes() == 2u * (16 + 4));
}

BOOST_AUTO_TEST_CASE(bad_headers_are_refused_by_name) {
  std::vector<std::uint8_t> const good = standin_bytes(sample_maps());
  struct Case {
    std::function<void(std::vector<std::uint8_t>&)> edit;
    std::string expect;
  };
  std::vector<Case> const cases = {
      {[](auto& b) { b[0] = 'X'; }, "not a stand-in file"},
      {[](auto& b) { put_u32(b, 8, 2); }, "reads version 1, got 2"},
      {[](auto& b) { put_u32(b, 12, 0); }, "hidden size 0"},
      {[](auto& b) { put_u32(b, 12, 1u << 30); }, "hidden size 1073741824"},
      {[](auto& b) { put_u32(b, 16, 0); }, "layer count 0"},
      {[](auto& b) { put_u32(b, 20, 4); }, "4 maps for 3 layers"},
      {[](auto& b) { put_u32(b, 24, 2); }, "value type 2"},
      {[](auto& b) { put_u32(b, kHeader, 3); }, "layer 3 is not below 3"},
      {[](auto& b) { put_u32(b, kHeader + 4, 4); }, "rank 4 is not below the hidden size"},
      {[](auto& b) { b.push_back(0); }, "1 unexpected bytes after the last map"},
      {[](auto& b) { b[kFirstValue] = 0x00, b[kFirstValue + 1] = 0x7c; },
       "map 0 (layer 0) A holds a non-finite value at index 0"},
      {[](auto& b) { b[kFirstValue + 2] = 0x01, b[kFirstValue + 3] = 0xfe; }, "A holds a non-finite value at index 1"},
      {[](auto& b) { b[b.size() - 1] = 0xfc; }, "map 1 (layer 2) b holds a non-finite value at index 3"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::vector<std::uint8_t> bad = good;
    cases[i].edit(bad);
    std::string const message = refusal(bad);
    BOOST_TEST_CONTEXT("case " << i) {
      BOOST_TEST(mentions(message, cases[i].expect));
      BOOST_TEST(mentions(message, "f.standin"));
    }
  }
}

BOOST_AUTO_TEST_CASE(maps_out_of_order_or_repeated_are_refused) {
  StandInMaps m = sample_maps();
  std::swap(m.maps[0], m.maps[1]);
  BOOST_CHECK_THROW(standin_bytes(m), StandInFileError);  // the writer refuses what the reader would
  std::vector<std::uint8_t> bytes = standin_bytes(sample_maps());
  put_u32(bytes, kHeader + 8 + 2 * (16 + 4), 0);  // map 1 says layer 0 again
  BOOST_TEST(mentions(refusal(bytes), "layer 0 is not after layer 0"));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused) {
  std::vector<std::uint8_t> const good = standin_bytes(sample_maps());
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::vector<std::uint8_t> const cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    std::string const message = refusal(cut);
    BOOST_TEST_CONTEXT("first " << n << " bytes") {
      BOOST_TEST(!message.empty());
      BOOST_TEST(mentions(message, n < 8 ? "truncated: the magic" : "truncated"));
    }
  }
}

BOOST_AUTO_TEST_CASE(files_for_another_model_are_refused) {
  StandInMaps const m = sample_maps();
  BOOST_CHECK_NO_THROW(check_fits(m, kHidden, 3, "f.standin"));
  try {
    check_fits(m, 576, 30, "f.standin");
    BOOST_FAIL("a file for another model was accepted");
  } catch (StandInFileError const& e) {
    BOOST_TEST(
        mentions(e.what(), "made for a model with hidden size 4 and 3 layers; this model has hidden size 576 and 30"));
  }
  BOOST_CHECK_THROW(check_fits(m, kHidden, 4, "f.standin"), StandInFileError);
}

BOOST_AUTO_TEST_CASE(files_on_disk) {
  fs::path const dir = fs::temp_directory_path() / ("skipllm_standin_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path const file = dir / "m.standin";
  save_standin_maps(file, sample_maps());
  BOOST_TEST(load_standin_maps(file).maps.size() == 2u);
  BOOST_CHECK_THROW(load_standin_maps(dir / "missing.standin"), StandInFileError);
  BOOST_CHECK_THROW(load_standin_maps(dir), StandInFileError);
  { std::ofstream(dir / "empty.standin"); }
  BOOST_TEST(mentions(
      [&] {
        try {
          load_standin_maps(dir / "empty.standin");
        } catch (StandInFileError const& e) { return std::string(e.what()); }
        return std::string();
      }(),
      "empty.standin: truncated"));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(binary16_conversion) {
  BOOST_TEST(float_to_half(1.0f) == 0x3c00u);
  BOOST_TEST(float_to_half(-2.0f) == 0xc000u);
  BOOST_TEST(float_to_half(65504.0f) == 0x7bffu);
  BOOST_TEST(float_to_half(1e6f) == 0x7c00u);
  BOOST_TEST(float_to_half(std::ldexp(1.0f, -24)) == 0x0001u);
  BOOST_TEST(float_to_half(0.0f) == 0x0000u);
  BOOST_TEST(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00u);  // a tie rounds to even
  BOOST_TEST(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02u);
  BOOST_TEST((float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x7c00u) == 0x7c00u);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-100.0f, 100.0f);
  for (int i = 0; i < 1000; ++i) {
    float const v = u(rng);
    BOOST_TEST(std::abs(half_to_float(float_to_half(v)) - v) <= std::abs(v) * std::ldexp(1.0f, -11));
  }
}

BOOST_AUTO_TEST_CASE(policy_configs_name_their_stand_in_file) {
  std::string const text = R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "greedy",
      "threshold": 0.98, "standin": {"file": "x.standin", "feeds_decision": true}}})";
  PolicyConfig const c = parse_policy_config(text);
  BOOST_TEST(c.standin_file == "x.standin");
  BOOST_TEST(c.standin_feeds);
  PolicyConfig const back = parse_policy_config(policy_config_json(c));
  BOOST_TEST(back.standin_file == "x.standin");
  BOOST_TEST(back.standin_feeds);
  BOOST_TEST(policy_config_json(
                 parse_policy_config(R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "dense"}})"))
                 .find("standin") == std::string::npos);
  for (std::string const bad :
       {R"({"feeds_decision": true})", R"({"file": ""})", R"({"file": "x", "rank": 2})", R"({"file": 3})"}) {
    std::string const doc =
        R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "dense", "standin": )" + bad + "}}";
    BOOST_CHECK_THROW(parse_policy_config(doc), PolicyConfigError);
  }
  // Loaded from a file, a relative name is relative to the config's folder.
  fs::path const dir = fs::temp_directory_path() / ("skipllm_standin_cfg_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  { std::ofstream(dir / "c.json") << text; }
  BOOST_TEST(fs::path(load_policy_config(dir / "c.json").standin_file) == dir / "x.standin");
  fs::remove_all(dir);
}
