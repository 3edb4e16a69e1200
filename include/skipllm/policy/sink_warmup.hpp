//! @file
//! SinkWarmup policies: decode tokens that run every FFN.
//!
//! *What it decides.* `is_dense(decode_index)`: true for tokens decoded without any skip.
//! Prefill is always dense. The first generated tokens are decoded densely so the attention
//! sink and the early KV entries settle before any FFN is skipped; the authors' code also
//! decodes every M-th token densely afterwards (a periodic refresh: their budget schedule is
//! k,k,k,k,k,0 repeating, i.e. M = 6).
//!
//! *When to use which.* `FixedWarmup<16, 6>` is the authors' setting for a 1,024-token budget
//! (16 = max_seq_len / 64). `Warmup` sets both numbers at runtime. `NoWarmup` is the
//! ablation.
//!
//! *What it costs.* An integer compare (and a modulo with a refresh) per token.
//!
//! `warmup_tokens()` reports N so the statistics can state the authors' skip ratio, which
//! counts only tokens after the warm-up.
#pragma once

#include "../config.hpp"

namespace skipllm::policy {

namespace detail {

//! Dense for the first `warmup` tokens, then for the last of every `every` tokens (none when
//! `every` is 0).
SKIPLLM_HOST_DEVICE constexpr bool warmup_is_dense(int decode_index, int warmup, int every) noexcept {
  if (decode_index < warmup) return true;
  return every > 0 && (decode_index - warmup) % every == every - 1;
}

}  // namespace detail

//! N warm-up tokens and a dense refresh every `Every`-th token (0: no refresh), compile-time.
template <int N, int Every = 0>
struct FixedWarmup {
  static_assert(N >= 0 && Every >= 0, "skipllm: FixedWarmup counts must be non-negative");
  static constexpr int tokens = N;
  static constexpr int every = Every;

  SKIPLLM_HOST_DEVICE constexpr bool is_dense(int decode_index) const noexcept {
    return detail::warmup_is_dense(decode_index, N, Every);
  }
  SKIPLLM_HOST_DEVICE constexpr int warmup_tokens() const noexcept { return N; }
};

//! The same rule with both numbers chosen at runtime.
struct Warmup {
  int tokens = 16;
  int every = 0;

  SKIPLLM_HOST_DEVICE constexpr bool is_dense(int decode_index) const noexcept {
    return detail::warmup_is_dense(decode_index, tokens, every);
  }
  SKIPLLM_HOST_DEVICE constexpr int warmup_tokens() const noexcept { return tokens; }
};

//! Every decode token may skip.
struct NoWarmup {
  SKIPLLM_HOST_DEVICE constexpr bool is_dense(int) const noexcept { return false; }
  SKIPLLM_HOST_DEVICE constexpr int warmup_tokens() const noexcept { return 0; }
};

}  // namespace skipllm::policy
