//! @file
//! SkipStatistics: per-layer run/skip counts and the skip ratios skipllm reports.
//!
//! A block whose FFN a stand-in replaced (FfnDecision::kStandIn) counts as skipped (its weights
//! were not read) and also as stood in, so that every ratio keeps meaning "FFN blocks not run"
//! and the stand-in's own cost can be told apart.
//!
//! Only decode tokens are counted (prefill is always dense and reported separately). Three
//! ratios, because papers disagree on the denominator:
//!  - `skip_ratio()`: skipped FFN blocks / (layers x decode tokens), everything counted;
//!  - `skip_ratio_after_warmup()`: the authors' figure, skipped / (layers x decode tokens
//!    after the warm-up), refresh tokens included in the denominator;
//!  - `skip_ratio_eligible()`: skipped / blocks the skip policy was asked about (not cold,
//!    not in a dense token), i.e. how often the policy said "skip" when it could.
//!
//! Tokens come in one at a time (`record_token`, the CPU driver) or as counts summed elsewhere
//! (`add_counts`: the CUDA driver's device counters, or another thread's statistics).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "skip_state.hpp"

namespace skipllm {

//! What the FFN of one layer did over all counted tokens.
struct LayerCounts {
  std::uint64_t ran = 0;        //!< eligible, policy chose to run
  std::uint64_t skipped = 0;    //!< skipped: the FFN's weights were not read (stood-in blocks included)
  std::uint64_t stood_in = 0;   //!< of the skipped blocks, those where the host's stand-in ran
  std::uint64_t ran_cold = 0;   //!< ran because the layer is cold
  std::uint64_t ran_dense = 0;  //!< ran because the token was dense
  std::uint64_t eligible() const noexcept { return ran + skipped; }
  std::uint64_t total() const noexcept { return ran + skipped + ran_cold + ran_dense; }

  //! Counts `n` blocks that ended in `d`.
  void add(FfnDecision d, std::uint64_t n = 1) noexcept {
    switch (d) {
      case FfnDecision::kRun: ran += n; break;
      case FfnDecision::kSkip: skipped += n; break;
      case FfnDecision::kRunCold: ran_cold += n; break;
      case FfnDecision::kRunDense: ran_dense += n; break;
      case FfnDecision::kStandIn:
        skipped += n;
        stood_in += n;
        break;
    }
  }
  LayerCounts& operator+=(LayerCounts const& o) noexcept {
    ran += o.ran;
    skipped += o.skipped;
    stood_in += o.stood_in;
    ran_cold += o.ran_cold;
    ran_dense += o.ran_dense;
    return *this;
  }
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
    for (std::size_t l = 0; l < decisions.size() && l < layers_.size(); ++l) layers_[l].add(decisions[l]);
  }

  //! Adds decode tokens counted elsewhere: `layers[l]` sums layer l's decisions over those
  //! tokens ([num_layers]), and `after_warmup` of them had a decode index at or past the
  //! warm-up. The same statistics as recording the tokens one by one: every token has one
  //! decision per layer, so layer 0's total is the token count, and layer 0's `ran_dense` the
  //! dense tokens (record_token reads a token's first decision). Throws std::invalid_argument,
  //! adding nothing, when the layer count differs, the layers count different numbers of
  //! tokens, or `after_warmup` exceeds the tokens.
  void add_counts(std::span<LayerCounts const> layers, std::uint64_t after_warmup) {
    if (layers.size() != layers_.size()) {
      throw std::invalid_argument("skipllm: SkipStatistics::add_counts got counts for " +
                                  std::to_string(layers.size()) + " layers; the statistics have " +
                                  std::to_string(layers_.size()));
    }
    std::uint64_t const tokens = layers.empty() ? 0 : layers.front().total();
    for (std::size_t l = 0; l < layers.size(); ++l) {
      if (layers[l].total() != tokens) {
        throw std::invalid_argument("skipllm: SkipStatistics::add_counts: layer " + std::to_string(l) + " counts " +
                                    std::to_string(layers[l].total()) + " tokens, layer 0 counts " +
                                    std::to_string(tokens));
      }
    }
    if (after_warmup > tokens) {
      throw std::invalid_argument("skipllm: SkipStatistics::add_counts: " + std::to_string(after_warmup) +
                                  " tokens after the warm-up, but only " + std::to_string(tokens) + " tokens");
    }
    tokens_ += tokens;
    tokens_after_warmup_ += after_warmup;
    if (!layers.empty()) dense_tokens_ += layers.front().ran_dense;
    for (std::size_t l = 0; l < layers.size(); ++l) layers_[l] += layers[l];
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
  //! Skipped blocks where a stand-in ran (a subset of skipped_blocks()).
  std::uint64_t stood_in_blocks() const noexcept { return sum(&LayerCounts::stood_in); }
  std::uint64_t eligible_blocks() const noexcept { return sum(&LayerCounts::ran) + skipped_blocks(); }

  double skip_ratio() const noexcept { return ratio(skipped_blocks(), ffn_blocks()); }
  double skip_ratio_eligible() const noexcept { return ratio(skipped_blocks(), eligible_blocks()); }
  double skip_ratio_after_warmup() const noexcept {
    return ratio(skipped_blocks(), tokens_after_warmup_ * layers_.size());
  }

 private:
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
