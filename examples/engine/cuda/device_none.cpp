// The answer of a build without CUDA (SKIPLLM_ENABLE_CUDA=OFF, or no nvcc found).
#include "cuda/device.hpp"

namespace skipllm::engine {

std::optional<std::string> cuda_device_problem() {
  return "this skipllm was built without CUDA (configure with -DSKIPLLM_ENABLE_CUDA=ON and nvcc >= 12.4)";
}

}  // namespace skipllm::engine
