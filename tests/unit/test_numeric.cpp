#define BOOST_TEST_MODULE skipllm numeric
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <skipllm/numeric.hpp>

using skipllm::bfloat16_t;
using skipllm::from_float;
using skipllm::half_t;
using skipllm::to_float;

namespace {
std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
}  // namespace

BOOST_AUTO_TEST_CASE(is_finite_separates_nan_and_inf) {
  BOOST_TEST(skipllm::is_finite(0.0f));
  BOOST_TEST(skipllm::is_finite(-3.0e38f));
  BOOST_TEST(skipllm::is_finite(std::numeric_limits<float>::denorm_min()));
  BOOST_TEST(!skipllm::is_finite(std::numeric_limits<float>::infinity()));
  BOOST_TEST(!skipllm::is_finite(-std::numeric_limits<float>::infinity()));
  BOOST_TEST(!skipllm::is_finite(std::numeric_limits<float>::quiet_NaN()));
  static_assert(!skipllm::is_finite(skipllm::detail::quiet_nan()));
}

BOOST_AUTO_TEST_CASE(half_known_values) {
  BOOST_TEST(to_float(half_t{0x3c00}) == 1.0f);
  BOOST_TEST(to_float(half_t{0xc000}) == -2.0f);
  BOOST_TEST(to_float(half_t{0x7bff}) == 65504.0f);
  BOOST_TEST(to_float(half_t{0x0001}) == std::ldexp(1.0f, -24));  // smallest subnormal
  BOOST_TEST(std::isinf(to_float(half_t{0x7c00})));
  BOOST_TEST(std::isnan(to_float(half_t{0x7e00})));
  BOOST_TEST(from_float<half_t>(65520.0f).bits == 0x7c00);  // rounds up to Inf
  BOOST_TEST(from_float<half_t>(65519.0f).bits == 0x7bff);
  BOOST_TEST(from_float<half_t>(std::ldexp(1.0f, -25)).bits == 0x0000);  // tie to even: 0
  BOOST_TEST(from_float<half_t>(std::ldexp(1.5f, -25)).bits == 0x0001);
  BOOST_TEST(from_float<half_t>(1.0f + std::ldexp(1.0f, -11)).bits == 0x3c00);  // tie to even
  BOOST_TEST(from_float<half_t>(1.0f + std::ldexp(3.0f, -11)).bits == 0x3c02);
  static_assert(to_float(from_float<half_t>(0.5f)) == 0.5f);
}

BOOST_AUTO_TEST_CASE(half_round_trips_every_value) {
  int mismatches = 0;
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    half_t const h{static_cast<std::uint16_t>(b)};
    float const f = to_float(h);
    if (std::isnan(f)) {
      mismatches += !std::isnan(to_float(from_float<half_t>(f)));
    } else {
      mismatches += from_float<half_t>(f).bits != h.bits;
    }
  }
  BOOST_TEST(mismatches == 0);
}

BOOST_AUTO_TEST_CASE(half_rounding_matches_double_reference) {
  // Nearest-even rounding checked against the midpoints of a sweep of half values.
  int mismatches = 0;
  for (std::uint32_t b = 0x0001; b < 0x7bff; b += 7) {
    float const lo = to_float(half_t{static_cast<std::uint16_t>(b)});
    float const hi = to_float(half_t{static_cast<std::uint16_t>(b + 1)});
    float const mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);
    std::uint16_t const even = (b & 1u) ? static_cast<std::uint16_t>(b + 1) : static_cast<std::uint16_t>(b);
    mismatches += from_float<half_t>(mid).bits != even;
    mismatches += from_float<half_t>(std::nextafter(mid, 0.0f)).bits != b;
    mismatches += from_float<half_t>(std::nextafter(mid, 1e9f)).bits != b + 1;
  }
  BOOST_TEST(mismatches == 0);
}

BOOST_AUTO_TEST_CASE(bfloat16_rounds_to_nearest_even_and_keeps_nan) {
  BOOST_TEST(to_float(bfloat16_t{0x3f80}) == 1.0f);
  BOOST_TEST(from_float<bfloat16_t>(1.0f).bits == 0x3f80);
  float const tie = to_float(bfloat16_t{0x3f80}) + std::ldexp(1.0f, -8);  // halfway to 0x3f81
  BOOST_TEST(from_float<bfloat16_t>(tie).bits == 0x3f80);
  BOOST_TEST(from_float<bfloat16_t>(std::nextafter(tie, 2.0f)).bits == 0x3f81);
  // A NaN whose payload sits only in the low bits must not truncate to Inf.
  float nan_low;
  std::uint32_t const nan_bits = 0x7f800001u;
  std::memcpy(&nan_low, &nan_bits, sizeof nan_low);
  BOOST_TEST(std::isnan(to_float(from_float<bfloat16_t>(nan_low))));
  BOOST_TEST(from_float<bfloat16_t>(std::numeric_limits<float>::infinity()).bits == 0x7f80);
  BOOST_TEST((bits_of(to_float(bfloat16_t{0x8000})) == 0x80000000u));  // -0 kept
}
