// Greedy decoding of a LlamaModel on a CUDA device: the engine's forward pass as a
// skipllm::cuda::Host of cuda::DecoderStack. Plain C++ (the kernels live in cuda_generator.cu),
// so callers compile with any C++20 compiler. Built only when CUDA is enabled.
//
// Weights are dequantized from the GGUF at load (fp32 or fp16 on the device); the residual
// stream, norms, attention and the KV cache are fp32. Up to max_sequences sequences, each in
// its own slot (KV cache and skip state); a decode step decodes any of them together, one row
// per sequence (the single-sequence calls use slot 0, as model/generator.hpp). Prefill is
// dense, token by token through cuda::DecoderStack::prefill; each decode step is one replay of
// the CUDA graph of its row count (embedding, every layer with its FFN in an IF node set on the
// device, final norm and logits); the only sync per step is the logits' download, which
// sampling on the host needs.
#pragma once

#include <cstddef>
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
  int max_sequences = 1;  //!< slots, and the most rows of one decode step (one graph per row count)
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

  //! Starts the sequence of slot 0 with `prompt` (dense); returns the logits after its last token.
  std::span<float const> prefill(std::span<std::int32_t const> prompt);
  //! Appends `token` to slot 0 (one decode step with FFN skipping); returns the next logits.
  std::span<float const> decode(std::int32_t token);

  //! Starts a new sequence in `slot` with `prompt` (dense); returns the logits after its last
  //! token. The other slots' sequences are kept. Throws std::out_of_range for a bad slot or
  //! token id, std::invalid_argument for an empty prompt or one that fills the context.
  std::span<float const> prefill(int slot, std::span<std::int32_t const> prompt);
  //! One decode step for several sequences: row r appends `tokens[r]` to the sequence in
  //! `slots[r]` (each started by prefill, named once). Returns the next logits, [rows][vocab]
  //! row-major. Checks everything before anything runs: std::invalid_argument for mismatched or
  //! empty spans, too many rows, a repeated or unstarted slot; std::out_of_range for a bad slot
  //! or token; std::length_error when a row's context is full.
  std::span<float const> decode(std::span<int const> slots, std::span<std::int32_t const> tokens);

  int position() const noexcept;  //!< slot 0's
  int position(int slot) const;
  int max_context() const noexcept;
  int max_sequences() const noexcept;
  //! Device bytes of the KV cache (fp32 K and V of every layer, slot and position).
  std::size_t kv_cache_bytes() const noexcept;
  //! The stack's statistics and trace, downloaded from the device now (a sync). The trace may
  //! be cleared by the caller (later steps append to what is left).
  skipllm::SkipStatistics const& statistics();
  skipllm::DecisionTrace& trace();

  struct Impl;  //!< the device side, per weight type (cuda_generator.cu)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skipllm::engine
