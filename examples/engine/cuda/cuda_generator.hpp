// Greedy decoding of a LlamaModel on a CUDA device: the engine's forward pass as a
// skipllm::cuda::Host of cuda::DecoderStack. Plain C++ (the kernels live in cuda_generator.cu),
// so callers compile with any C++20 compiler. Built only when CUDA is enabled.
//
// Weights are dequantized from the GGUF at load (fp32 or fp16 on the device); the residual
// stream, norms, attention and the KV cache are fp32. One sequence, one row per step (as
// model/generator.hpp). Prefill is dense, token by token through cuda::DecoderStack::prefill;
// each decode token is one replay of a CUDA graph (embedding, every layer with its FFN in an IF
// node set on the device, final norm and logits); the only sync per token is the logits'
// download, which sampling on the host needs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include <skipllm/policy/bundle.hpp>
#include <skipllm/statistics.hpp>
#include <skipllm/trace.hpp>

#include "model/llama_model.hpp"

namespace skipllm::engine {

enum class DeviceWeights { kFloat32, kFloat16 };

struct CudaGeneratorOptions {
  bool record_trace = false;
  DeviceWeights weights = DeviceWeights::kFloat16;
};

class CudaGenerator {
 public:
  //! Uploads the model (dequantized) and plans the stack. Throws skipllm::cuda::Error (a
  //! std::runtime_error) when the device cannot be used, std::invalid_argument for a bad policy.
  CudaGenerator(LlamaModel const& model, skipllm::policy::ConfigurablePolicies const& policies, int max_context,
                CudaGeneratorOptions const& options = {});
  ~CudaGenerator();
  CudaGenerator(CudaGenerator const&) = delete;
  CudaGenerator& operator=(CudaGenerator const&) = delete;

  //! Starts the sequence with `prompt` (dense); returns the logits after its last token.
  std::span<float const> prefill(std::span<std::int32_t const> prompt);
  //! Appends `token` (one decode step with FFN skipping); returns the next logits.
  std::span<float const> decode(std::int32_t token);

  int position() const noexcept;
  //! The stack's statistics and trace, downloaded from the device now (a sync).
  skipllm::SkipStatistics const& statistics();
  skipllm::DecisionTrace const& trace();

  struct Impl;  //!< the device side, per weight type (cuda_generator.cu)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skipllm::engine
