// Token generation on the reference engine: prefill (dense) and decode through
// skipllm::DecoderStack, with greedy or temperature/top-p sampling.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include <skipllm/decoder_stack.hpp>

#include "format/engine_policies.hpp"
#include "model/llama_host.hpp"

namespace skipllm::engine {

//! The engine's policies (engine_policies.hpp): the paper's greedy rule with every knob at
//! runtime, per-layer thresholds, explicit cold sets, the random-window and layer-skip baselines.
using EngineStack = skipllm::DecoderStack<LlamaHost, EnginePolicies>;

struct SamplingOptions {
  float temperature = 0.0f;  //!< 0: greedy
  float top_p = 1.0f;
  std::uint64_t seed = 0;
};

//! Picks a token from logits: argmax when temperature is 0, else top-p sampling.
std::int32_t sample(std::span<float const> logits, SamplingOptions const& options, std::mt19937_64& rng);

//! One sequence at a time (slot 0): feed a prompt, then decode token by token.
class Generator {
 public:
  //! With `policies.skip.skip_attention`, a skipped layer also skips its attention (the
  //! layer-skip baseline; LlamaHost::set_layer_skip).
  Generator(LlamaModel const& model, ThreadPool& pool, EnginePolicies const& policies, int max_context,
            bool record_trace = false, ActivationPrecision precision = ActivationPrecision::kFloat32);
  //! The same with the CLI's RuntimePolicies (to_engine_policies).
  Generator(LlamaModel const& model, ThreadPool& pool, skipllm::policy::RuntimePolicies const& policies,
            int max_context, bool record_trace = false, ActivationPrecision precision = ActivationPrecision::kFloat32)
      : Generator(model, pool, to_engine_policies(policies), max_context, record_trace, precision) {}

  //! Starts a new sequence with `prompt` (dense prefill, in chunks); returns the logits after
  //! its last token.
  std::span<float const> prefill(std::span<std::int32_t const> prompt);

  //! Appends `token` (one decode step with FFN skipping); returns the next logits.
  std::span<float const> decode(std::int32_t token);

  int position() const noexcept { return position_; }
  int max_context() const noexcept { return host_.max_context(); }
  EngineStack& stack() noexcept { return stack_; }
  LlamaHost& host() noexcept { return host_; }
  //! Residual stream of the last decoded (or prefilled) token, before the final norm.
  std::span<float const> last_residual() const;

 private:
  static constexpr int kPrefillChunk = 64;

  LlamaHost host_;
  EngineStack stack_;
  LlamaHost::Step prefill_step_;
  LlamaHost::Step decode_step_;
  std::vector<float> logits_;
  int position_ = 0;
  LlamaHost::Step const* last_step_ = nullptr;
};

}  // namespace skipllm::engine
