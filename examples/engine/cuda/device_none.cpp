// The answer of a build without CUDA (SKIPLLM_ENABLE_CUDA=OFF, or no nvcc found): no device can
// be used, and CudaGenerator, which the command line names, refuses to start.
#include <stdexcept>

#include "cuda/cuda_generator.hpp"
#include "cuda/device.hpp"

namespace skipllm::engine {

namespace {
char const* const kNoCuda =
    "this skipllm was built without CUDA (configure with -DSKIPLLM_ENABLE_CUDA=ON and nvcc >= 12.4)";
}  // namespace

std::optional<std::string> cuda_device_problem() { return std::string(kNoCuda); }

struct CudaGenerator::Impl {};

CudaGenerator::CudaGenerator(LlamaModel const&, skipllm::policy::ConfigurablePolicies const&, int,
                             CudaGeneratorOptions const&) {
  throw std::runtime_error(kNoCuda);
}
CudaGenerator::~CudaGenerator() = default;
// A CudaGenerator is never constructed here, so these are never called.
std::span<float const> CudaGenerator::prefill(std::span<std::int32_t const>) { throw std::runtime_error(kNoCuda); }
std::span<float const> CudaGenerator::decode(std::int32_t) { throw std::runtime_error(kNoCuda); }
std::span<float const> CudaGenerator::prefill(int, std::span<std::int32_t const>) { throw std::runtime_error(kNoCuda); }
std::span<float const> CudaGenerator::decode(std::span<int const>, std::span<std::int32_t const>) {
  throw std::runtime_error(kNoCuda);
}
int CudaGenerator::position() const noexcept { return 0; }
int CudaGenerator::position(int) const { throw std::runtime_error(kNoCuda); }
int CudaGenerator::max_context() const noexcept { return 0; }
int CudaGenerator::max_sequences() const noexcept { return 0; }
std::size_t CudaGenerator::kv_cache_bytes() const noexcept { return 0; }
skipllm::SkipStatistics const& CudaGenerator::statistics() { throw std::runtime_error(kNoCuda); }
skipllm::DecisionTrace& CudaGenerator::trace() { throw std::runtime_error(kNoCuda); }

}  // namespace skipllm::engine
