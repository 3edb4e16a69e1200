//! @file
//! SkipStatistics: per-layer run/skip counts and the skip ratios skipllm reports.
//!
//! Only decode tokens are counted (prefill is always dense and reported separately). Three
//! ratios, because papers disagree on the denominator:
//!  - `skip_ratio()`: skipped FFN blocks / (layers x decode tokens), everything counted;
//!  - `skip_ratio_after_warmup()`: the authors' figure, skipped / (layers x decode tokens
//!    after the warm-up), refresh tokens included in the denominator;
//!  - `skip_ratio_eligible()`: skipped / blocks the skip policy was asked about (not cold,
//!    not in a dense token), i.e. how often the policy said "skip" when it could.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "skip_state.hpp"

namespace skipllm {

//! What the FFN of one layer did over all counted tokens.
struct LayerCounts {
  std::uint64_t ran = 0;        //!< eligible, policy chose to run
  std::uint64_t skipped = 0;    //!< skipped
  std::uint64_t ran_cold = 0;   //!< ran because the layer is cold
  std::uint64_t ran_dense = 0;  //!< ran because the token was dense
  std::uint64_t eligible() const noexcept { return ran + skipped; }
  std::uint64_t total() const noexcept { return ran + skipped + ran_cold + ran_dense; }
};

class SkipStatistics {
 public:
  SkipStatistics() = default;
  SkipStatistics(int num_layers, int warmup_tokens)
      : layers_(static_cast<std::size_t>(num_layers)), warmup_tokens_(warmup_tokens) {}

  //! Counts one decoded token whose per-layer decisions are `decisions` ([num_layers]).
  void record_token(int decode_index, std::span<FfnDecision const> decisions) noexcept {
    ++tokens_;
    if (decode_index >= warmup_tokens_) ++tokens_after_warmup_;
    if (!decisions.empty() && decisions.front() == FfnDecision::kRunDense) ++dense_tokens_;
    for (std::size_t l = 0; l < decisions.size() && l < layers_.size(); ++l) count(layers_[l], decisions[l]);
  }

  void record_prefill(std::uint64_t tokens) noexcept { prefill_tokens_ += tokens; }

  void reset() noexcept {
    for (auto& l : layers_) l = LayerCounts{};
    tokens_ = tokens_after_warmup_ = dense_tokens_ = prefill_tokens_ = 0;
  }

  int num_layers() const noexcept { return static_cast<int>(layers_.size()); }
  int warmup_tokens() const noexcept { return warmup_tokens_; }
  std::span<LayerCounts const> layers() const noexcept { return layers_; }
  std::uint64_t tokens() const noexcept { return tokens_; }
  std::uint64_t tokens_after_warmup() const noexcept { return tokens_after_warmup_; }
  std::uint64_t dense_tokens() const noexcept { return dense_tokens_; }
  std::uint64_t prefill_tokens() const noexcept { return prefill_tokens_; }

  std::uint64_t ffn_blocks() const noexcept { return tokens_ * layers_.size(); }
  std::uint64_t skipped_blocks() const noexcept { return sum(&LayerCounts::skipped); }
  std::uint64_t eligible_blocks() const noexcept { return sum(&LayerCounts::ran) + skipped_blocks(); }

  double skip_ratio() const noexcept { return ratio(skipped_blocks(), ffn_blocks()); }
  double skip_ratio_eligible() const noexcept { return ratio(skipped_blocks(), eligible_blocks()); }
  double skip_ratio_after_warmup() const noexcept {
    return ratio(skipped_blocks(), tokens_after_warmup_ * layers_.size());
  }

 private:
  static void count(LayerCounts& c, FfnDecision d) noexcept {
    switch (d) {
      case FfnDecision::kRun: ++c.ran; break;
      case FfnDecision::kSkip: ++c.skipped; break;
      case FfnDecision::kRunCold: ++c.ran_cold; break;
      case FfnDecision::kRunDense: ++c.ran_dense; break;
    }
  }
  std::uint64_t sum(std::uint64_t LayerCounts::*field) const noexcept {
    std::uint64_t s = 0;
    for (auto const& l : layers_) s += l.*field;
    return s;
  }
  static double ratio(std::uint64_t num, std::uint64_t den) noexcept {
    return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
  }

  std::vector<LayerCounts> layers_;
  int warmup_tokens_ = 0;
  std::uint64_t tokens_ = 0;
  std::uint64_t tokens_after_warmup_ = 0;
  std::uint64_t dense_tokens_ = 0;
  std::uint64_t prefill_tokens_ = 0;
};

}  // namespace skipllm
