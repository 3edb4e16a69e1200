//! @file
//! DecisionTrace: the per-token, per-layer record of decisions and similarity scores.
//!
//! Opt-in (the driver records only when asked). Storage is two flat arrays growing by
//! amortised doubling; call `reserve` up front to keep the decode loop allocation-free.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "skip_state.hpp"

namespace skipllm {

class DecisionTrace {
 public:
  struct Token {
    int slot;          //!< the sequence's slot
    int decode_index;  //!< position among the sequence's decoded tokens
  };

  DecisionTrace() = default;
  explicit DecisionTrace(int num_layers) : num_layers_(num_layers) {}

  void reserve(std::size_t tokens) {
    tokens_.reserve(tokens);
    decisions_.reserve(tokens * static_cast<std::size_t>(num_layers_));
    scores_.reserve(tokens * static_cast<std::size_t>(num_layers_));
  }

  void clear() noexcept {
    tokens_.clear();
    decisions_.clear();
    scores_.clear();
  }

  //! Appends one token: its decisions and scores, one per layer (score NaN where skipped).
  void append(Token token, std::span<FfnDecision const> decisions, std::span<float const> scores) {
    if (decisions.size() != static_cast<std::size_t>(num_layers_) || scores.size() != decisions.size()) {
      throw std::invalid_argument("skipllm: DecisionTrace::append needs one decision and one score per layer (" +
                                  std::to_string(num_layers_) + ")");
    }
    tokens_.push_back(token);
    decisions_.insert(decisions_.end(), decisions.begin(), decisions.end());
    scores_.insert(scores_.end(), scores.begin(), scores.end());
  }

  int num_layers() const noexcept { return num_layers_; }
  std::size_t size() const noexcept { return tokens_.size(); }
  Token token(std::size_t i) const { return tokens_.at(i); }
  std::span<FfnDecision const> decisions(std::size_t i) const { return row(decisions_, i); }
  std::span<float const> scores(std::size_t i) const { return row(scores_, i); }

  //! The decisions laid out `[slot][decode_index][layer]` for `policy::ReplayTrace`; cells the
  //! trace does not cover say kRun.
  std::vector<FfnDecision> replay_buffer(int num_slots, int num_tokens) const {
    std::vector<FfnDecision> out(static_cast<std::size_t>(num_slots) * num_tokens * num_layers_, FfnDecision::kRun);
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      Token const t = tokens_[i];
      if (t.slot < 0 || t.slot >= num_slots || t.decode_index < 0 || t.decode_index >= num_tokens) continue;
      auto const d = decisions(i);
      std::size_t const base = (static_cast<std::size_t>(t.slot) * num_tokens + t.decode_index) * num_layers_;
      std::copy(d.begin(), d.end(), out.begin() + static_cast<std::ptrdiff_t>(base));
    }
    return out;
  }

 private:
  template <class T>
  std::span<T const> row(std::vector<T> const& v, std::size_t i) const {
    if (i >= tokens_.size()) throw std::out_of_range("skipllm: DecisionTrace token index out of range");
    return std::span<T const>(v).subspan(i * static_cast<std::size_t>(num_layers_),
                                         static_cast<std::size_t>(num_layers_));
  }

  int num_layers_ = 0;
  std::vector<Token> tokens_;
  std::vector<FfnDecision> decisions_;  // [token][layer]
  std::vector<float> scores_;           // [token][layer]
};

}  // namespace skipllm
