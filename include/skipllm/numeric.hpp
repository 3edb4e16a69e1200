//! @file
//! Storage types and the fp32 arithmetic helpers that policies and backends share.
//!
//! skipllm keeps activations in the host's storage type (float, IEEE half, bfloat16) and always
//! accumulates in fp32. `half_t` and `bfloat16_t` are plain 16-bit containers with exact,
//! round-to-nearest-even conversions written without intrinsics, so the CPU backend and the
//! tests need no CUDA headers. The CUDA backend maps them onto `__half` / `__nv_bfloat16`.
#pragma once

#include <concepts>
#include <cstdint>

#include "config.hpp"

namespace skipllm {

namespace detail {

template <class To, class From>
SKIPLLM_HOST_DEVICE constexpr To bit_cast(From const& from) noexcept {
  static_assert(sizeof(To) == sizeof(From), "skipllm: bit_cast needs types of equal size");
  return __builtin_bit_cast(To, from);
}

//! A quiet NaN, usable in constexpr host and device code alike.
SKIPLLM_HOST_DEVICE constexpr float quiet_nan() noexcept { return bit_cast<float>(std::uint32_t{0x7fc00000u}); }

//! +Inf, usable in constexpr host and device code alike.
SKIPLLM_HOST_DEVICE constexpr float infinity() noexcept { return bit_cast<float>(std::uint32_t{0x7f800000u}); }

}  // namespace detail

//! True for every value except NaN and +-Inf. `x - x` is 0 exactly for finite x and NaN
//! otherwise; this needs no <cmath>, is constexpr, and behaves the same on host and device
//! (it is only unreliable under -ffast-math, which skipllm does not support).
SKIPLLM_HOST_DEVICE constexpr bool is_finite(float x) noexcept { return (x - x) == 0.0f; }

//! IEEE 754 binary16 storage.
struct half_t {
  std::uint16_t bits;
  friend constexpr bool operator==(half_t, half_t) = default;
};

//! bfloat16 storage: the upper 16 bits of an IEEE binary32.
struct bfloat16_t {
  std::uint16_t bits;
  friend constexpr bool operator==(bfloat16_t, bfloat16_t) = default;
};

SKIPLLM_HOST_DEVICE constexpr float to_float(float x) noexcept { return x; }

SKIPLLM_HOST_DEVICE constexpr float to_float(bfloat16_t x) noexcept {
  return detail::bit_cast<float>(static_cast<std::uint32_t>(x.bits) << 16);
}

SKIPLLM_HOST_DEVICE constexpr float to_float(half_t x) noexcept {
  std::uint32_t const sign = static_cast<std::uint32_t>(x.bits & 0x8000u) << 16;
  std::uint32_t exponent = (x.bits >> 10) & 0x1fu;
  std::uint32_t mantissa = x.bits & 0x3ffu;
  if (exponent == 0x1fu) {  // Inf or NaN: keep the payload
    return detail::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return detail::bit_cast<float>(sign);
    // Subnormal half: renormalise into float's wider exponent range.
    exponent = 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3ffu;
  }
  return detail::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

//! Converts fp32 to a storage type, rounding to nearest even.
template <class T>
SKIPLLM_HOST_DEVICE constexpr T from_float(float x) noexcept;

template <>
SKIPLLM_HOST_DEVICE constexpr float from_float<float>(float x) noexcept {
  return x;
}

template <>
SKIPLLM_HOST_DEVICE constexpr bfloat16_t from_float<bfloat16_t>(float x) noexcept {
  std::uint32_t const bits = detail::bit_cast<std::uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a (quiet) NaN after truncation
    return bfloat16_t{static_cast<std::uint16_t>((bits >> 16) | 0x40u)};
  }
  std::uint32_t const rounding = 0x7fffu + ((bits >> 16) & 1u);
  return bfloat16_t{static_cast<std::uint16_t>((bits + rounding) >> 16)};
}

template <>
SKIPLLM_HOST_DEVICE constexpr half_t from_float<half_t>(float x) noexcept {
  std::uint32_t const bits = detail::bit_cast<std::uint32_t>(x);
  auto const sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  std::uint32_t const magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return half_t{static_cast<std::uint16_t>(sign | 0x7e00u)};   // NaN
  if (magnitude >= 0x477ff000u) return half_t{static_cast<std::uint16_t>(sign | 0x7c00u)};  // rounds to Inf
  if (magnitude < 0x38800000u) {
    // Result is subnormal (or zero): scale the value to units of 2^-24 and round to even.
    if (magnitude < 0x33000000u) return half_t{sign};      // below half of the smallest subnormal
    std::uint32_t const shift = 126u - (magnitude >> 23);  // 14..24
    std::uint32_t const mant = (magnitude & 0x7fffffu) | 0x800000u;
    std::uint32_t const half_ulp = 1u << (shift - 1);
    std::uint32_t rounded = mant >> shift;
    std::uint32_t const rest = mant & ((1u << shift) - 1u);
    if (rest > half_ulp || (rest == half_ulp && (rounded & 1u))) ++rounded;
    return half_t{static_cast<std::uint16_t>(sign | rounded)};
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to even.
  std::uint32_t const rebased = magnitude - (112u << 23);
  std::uint32_t const rounding = 0xfffu + ((rebased >> 13) & 1u);
  return half_t{static_cast<std::uint16_t>(sign | ((rebased + rounding) >> 13))};
}

//! A type skipllm can read activations from: `to_float` converts one element to fp32.
template <class T>
concept StorageType = requires(T const& v) {
  { to_float(v) } -> std::same_as<float>;
};

}  // namespace skipllm
