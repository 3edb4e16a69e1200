//! @file
//! fp32 math that must round identically on host and device.
#pragma once

#include "../config.hpp"

#if !SKIPLLM_IS_DEVICE_CODE
#  include <cmath>
#endif

namespace skipllm::detail {

//! Correctly rounded square root on both sides (IEEE sqrt on the host, sqrtf on the device
//! without -use_fast_math), so CPU and GPU similarities match bit for bit given the same sums.
SKIPLLM_HOST_DEVICE inline float sqrt(float x) noexcept {
#if SKIPLLM_IS_DEVICE_CODE
  return ::sqrtf(x);
#else
  return std::sqrt(x);
#endif
}

}  // namespace skipllm::detail
