//! @file
//! fp32 math that must round identically on host and device.
#pragma once

#include "../config.hpp"

#if !SKIPLLM_IS_DEVICE_CODE
#  include <cmath>
#endif

namespace skipllm::detail {

// Device code uses the _rn intrinsics, which round to nearest even whatever the compiler flags:
// --use_fast_math (-prec-sqrt=false, -prec-div=false, -fmad=true) turns plain sqrtf, '/' and
// a * b + c into approximations or FMAs, and it defines no macro a header could test in CUDA
// 13. (It still flushes denormals: sums that small make finalize return NaN either way.)

//! Correctly rounded square root on both sides, so CPU and GPU similarities match bit for bit
//! given the same sums.
SKIPLLM_HOST_DEVICE inline float sqrt(float x) noexcept {
#if SKIPLLM_IS_DEVICE_CODE
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

//! Correctly rounded a / b on both sides.
SKIPLLM_HOST_DEVICE inline float div_rn(float a, float b) noexcept {
#if SKIPLLM_IS_DEVICE_CODE
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

//! a * b and a + b rounded once each, never fused into an FMA. nvcc contracts a * b + c into
//! fma.rn.f32 by default (one rounding instead of two) while the host compiler does not, so a
//! metric written with plain operators scores differently on the two sides; the intrinsics
//! are never contracted. The host has no FMA without -march flags that enable it (skipllm's
//! builds pass none; -ffp-contract=off keeps it so under them).
SKIPLLM_HOST_DEVICE inline float mul_rn(float a, float b) noexcept {
#if SKIPLLM_IS_DEVICE_CODE
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

SKIPLLM_HOST_DEVICE inline float add_rn(float a, float b) noexcept {
#if SKIPLLM_IS_DEVICE_CODE
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

SKIPLLM_HOST_DEVICE inline double add_rn(double a, double b) noexcept {
#if SKIPLLM_IS_DEVICE_CODE
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

}  // namespace skipllm::detail
