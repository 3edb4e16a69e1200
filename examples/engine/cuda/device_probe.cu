// The CUDA build's answer: the device probe of the library (no driver, no device, an unusable
// driver).
#include <skipllm/cuda/device_probe.cuh>

#include "cuda/device.hpp"

namespace skipllm::engine {

std::optional<std::string> cuda_device_problem() {
  skipllm::cuda::DeviceProbe const probe = skipllm::cuda::probe_device();
  if (!probe.usable()) return probe.message;
  return std::nullopt;
}

}  // namespace skipllm::engine
