// The host-side checks of CudaGenerator's calls, in plain C++ so that they are tested without a
// GPU: everything is checked before anything is enqueued, so a refused call leaves every
// sequence as it was.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace skipllm::engine {

//! `slot` as an index into `slots` per-slot arrays; std::out_of_range outside [0, slots).
inline std::size_t checked_slot(int slot, std::size_t slots) {
  if (slot < 0 || static_cast<std::size_t>(slot) >= slots) {
    throw std::out_of_range("engine: slot " + std::to_string(slot) + " is outside [0, " + std::to_string(slots) + ")");
  }
  return static_cast<std::size_t>(slot);
}

//! `token`; std::out_of_range outside the vocabulary.
inline std::int32_t checked_token(std::int32_t token, int vocab) {
  if (token < 0 || token >= vocab) {
    throw std::out_of_range("engine: token id " + std::to_string(token) + " is outside the vocabulary of " +
                            std::to_string(vocab) + " tokens");
  }
  return token;
}

//! A decode step of several sequences: row r appends tokens[r] to the sequence of slots[r], whose
//! next position is positions[slots[r]] (-1: no sequence started). Throws std::invalid_argument
//! for mismatched or empty spans, more rows than slots, a slot named twice or one with no
//! sequence; std::out_of_range for a bad slot or token; std::length_error for a full context.
inline void check_decode_rows(std::span<int const> slots, std::span<std::int32_t const> tokens,
                              std::span<int const> positions, int vocab, int max_context) {
  if (slots.size() != tokens.size() || slots.empty()) {
    throw std::invalid_argument("engine: a decode step needs one token per slot and at least one row");
  }
  if (slots.size() > positions.size()) {
    throw std::invalid_argument("engine: " + std::to_string(slots.size()) + " rows; the generator decodes at most " +
                                std::to_string(positions.size()) + " sequences together");
  }
  std::vector<bool> seen(positions.size(), false);
  for (std::size_t r = 0; r < slots.size(); ++r) {
    std::size_t const s = checked_slot(slots[r], positions.size());
    (void)checked_token(tokens[r], vocab);
    if (seen[s]) throw std::invalid_argument("engine: slot " + std::to_string(slots[r]) + " appears twice");
    seen[s] = true;
    if (positions[s] < 0) {
      throw std::invalid_argument("engine: slot " + std::to_string(slots[r]) + " has no sequence (prefill first)");
    }
    if (positions[s] >= max_context) throw std::length_error("engine: the context is full");
  }
}

}  // namespace skipllm::engine
