// Token generation on the reference engine: prefill (dense) and decode through
// skipllm::DecoderStack, with greedy or temperature/top-p sampling.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <stdexcept>
#include <vector>

#include <skipllm/decoder_stack.hpp>
#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/validate.hpp>

#include "model/llama_host.hpp"

namespace skipllm::engine {

//! The library's configurable policies: any runtime skip policy (the paper's greedy rule,
//! per-layer thresholds, the random-window baseline, a static mask), explicit cold sets and a
//! runtime warm-up; one build runs whatever a config file or the command line chose.
using EngineStack = skipllm::DecoderStack<LlamaHost, skipllm::policy::ConfigurablePolicies>;

struct SamplingOptions {
  float temperature = 0.0f;  //!< 0: greedy; else finite and > 0
  float top_p = 1.0f;        //!< in (0, 1]
  std::uint64_t seed = 0;
};

//! A hidden state or logits holding NaN or Inf: the model's arithmetic broke down (corrupt
//! weights, an overflow). Raised instead of returning a token picked from meaningless numbers.
struct NonFiniteError : std::runtime_error {
  using runtime_error::runtime_error;
};

//! Throws std::invalid_argument naming the first invalid field (a negative or NaN temperature,
//! top_p outside (0, 1]).
void validate(SamplingOptions const& options);

//! Picks a token from logits: argmax when temperature is 0, else top-p sampling. Throws
//! std::invalid_argument for invalid options and NonFiniteError when a logit is NaN or +Inf or
//! none is finite (-Inf alone is a masked-out token).
std::int32_t sample(std::span<float const> logits, SamplingOptions const& options, std::mt19937_64& rng);

//! How a Generator runs, besides its policies.
struct GeneratorOptions {
  bool record_trace = false;  //!< keep every decision and score (stack().trace())
  //! The layer-skip baseline: a skipped layer also skips its attention (LlamaHost::set_layer_skip).
  //! An engine switch, not a skip policy: the policies decide *which* blocks to skip, this says
  //! how much of the layer a skip covers.
  bool skip_attention = false;
  ActivationPrecision precision = ActivationPrecision::kFloat32;  //!< int8: faster decode, less exact
  KvCacheType kv_cache = KvCacheType::kFloat16;                   //!< fp32 keeps K and V unrounded
};

//! One sequence at a time (slot 0): feed a prompt, then decode token by token.
class Generator {
 public:
  //! Throws std::invalid_argument when a policy value is invalid (skipllm::policy::invalid_reason).
  Generator(LlamaModel const& model, ThreadPool& pool, skipllm::policy::ConfigurablePolicies const& policies,
            int max_context, GeneratorOptions const& options = {});

  //! Starts a new sequence with `prompt` (dense prefill, in chunks); returns the logits after
  //! its last token. Throws std::invalid_argument when the prompt is empty or does not leave
  //! room for one more token in the context, std::out_of_range for a token id outside the
  //! vocabulary (before reading the embedding table), NonFiniteError when a hidden state comes
  //! out NaN or Inf.
  std::span<float const> prefill(std::span<std::int32_t const> prompt);

  //! Appends `token` (one decode step with FFN skipping); returns the next logits. Throws
  //! std::length_error when the KV cache is full (nothing is written), std::out_of_range for a
  //! token id outside the vocabulary, NonFiniteError when the hidden state comes out NaN or Inf.
  std::span<float const> decode(std::int32_t token);

  int position() const noexcept { return position_; }
  int max_context() const noexcept { return host_.max_context(); }
  EngineStack& stack() noexcept { return stack_; }
  LlamaHost& host() noexcept { return host_; }
  //! Residual stream of the last decoded (or prefilled) token, before the final norm.
  std::span<float const> last_residual() const;

 private:
  static constexpr int kPrefillChunk = 64;

  // Throws NonFiniteError when a row of `step`'s residual stream is not finite.
  void check_finite(LlamaHost::Step const& step) const;

  LlamaHost host_;
  EngineStack stack_;
  LlamaHost::Step prefill_step_;
  LlamaHost::Step decode_step_;
  std::vector<float> logits_;
  int position_ = 0;
  LlamaHost::Step const* last_step_ = nullptr;
};

}  // namespace skipllm::engine
