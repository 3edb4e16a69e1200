#include "cli/cuda_task_generator.hpp"

#include <memory>
#include <stdexcept>

#include "cuda/cuda_generator.hpp"

namespace skipllm::cli {

namespace {

namespace eng = skipllm::engine;

class CudaTaskGenerator final : public eng::eval::TaskGenerator {
 public:
  CudaTaskGenerator(eng::LlamaModel const& model, eng::eval::TaskGeneratorSpec const& spec)
      : generator_(model, spec.policies, spec.max_context,
                   {.record_trace = spec.record_trace, .weights = eng::DeviceWeights::kFloat32}) {}
  std::span<float const> prefill(std::span<std::int32_t const> prompt) override { return generator_.prefill(prompt); }
  std::span<float const> decode(std::int32_t token) override { return generator_.decode(token); }
  int position() const override { return generator_.position(); }
  int max_context() const override { return generator_.max_context(); }
  skipllm::SkipStatistics const& statistics() override { return generator_.statistics(); }
  skipllm::DecisionTrace& trace() override { return generator_.trace(); }

 private:
  eng::CudaGenerator generator_;
};

}  // namespace

engine::eval::GeneratorFactory cuda_task_generators(engine::LlamaModel const& model) {
  return [&model](engine::eval::TaskGeneratorSpec const& spec) -> std::unique_ptr<engine::eval::TaskGenerator> {
    if (spec.skip_attention) {
      throw std::invalid_argument("--device cuda does not run the layer-skip baseline (skip_attention) yet");
    }
    return std::make_unique<CudaTaskGenerator>(model, spec);
  };
}

}  // namespace skipllm::cli
