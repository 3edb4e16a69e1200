//! @file
//! RandomWindow: the authors' own baseline, a random contiguous window of FFNs per token.
//!
//! *What it decides.* For each token (slot, decode index) a window of `length` consecutive
//! layers is drawn uniformly inside [first, last) and its FFNs are skipped; nothing is measured
//! or tested. The draw is a hash of (seed, slot, decode index), so a run is reproducible and
//! the same on every backend (no random-number state, nothing to copy to the device). The
//! authors' `model_ffn_baseline.py` draws the window inside the non-cold layers (10-35 of 40).
//! A fractional `length` (e.g. 6.4) gives windows of 6 or 7 layers with the right mean, which
//! matches a skip ratio measured for another policy exactly in expectation.
//!
//! *When to use it.* As the baseline at matched skip: set `length` to the mean number of FFNs
//! per eligible token the policy under test skipped, and [first, last) to its non-cold layers.
//! Cold layers still run (the library never asks the skip policy about them).
//!
//! *What it costs.* One 32-bit hash per layer of a non-dense token.
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "../skip_state.hpp"

namespace skipllm::policy {

namespace detail {

//! A small avalanche hash (murmur3's 32-bit finalizer) over three words.
SKIPLLM_HOST_DEVICE constexpr std::uint32_t mix32(std::uint32_t h) noexcept {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

SKIPLLM_HOST_DEVICE constexpr std::uint32_t hash3(std::uint32_t a, std::uint32_t b, std::uint32_t c) noexcept {
  std::uint32_t h = mix32(a ^ 0x9e3779b9u);
  h = mix32(h ^ (b + 0x7f4a7c15u));
  return mix32(h ^ (c + 0x94d049bbu));
}

//! The window [start, start + n) of token (slot, decode_index) inside [first, last):
//! n = floor(length) or floor(length) + 1 (probability frac(length)), clipped to the range.
struct Window {
  int start;
  int count;
};

SKIPLLM_HOST_DEVICE constexpr Window random_window(std::uint32_t seed, int slot, int decode_index, int first, int last,
                                                   float length) noexcept {
  int const range = last - first;
  if (range <= 0 || !(length > 0.0f)) return {first, 0};
  std::uint32_t const h = hash3(seed, static_cast<std::uint32_t>(slot), static_cast<std::uint32_t>(decode_index));
  int n = static_cast<int>(length);
  float const frac = length - static_cast<float>(n);
  // The low 16 bits pick the rounding, the high 16 bits the position: independent enough.
  if (static_cast<float>(h & 0xffffu) < frac * 65536.0f) ++n;
  if (n > range) n = range;
  if (n <= 0) return {first, 0};
  int const positions = range - n + 1;
  int const start = first + static_cast<int>((h >> 16) % static_cast<std::uint32_t>(positions));
  return {start, n};
}

}  // namespace detail

struct RandomWindow {
  float length = 4.0f;     //!< mean window length in layers (>= 0; fractional allowed)
  int first = 0;           //!< windows lie inside [first, last) ...
  int last = 1 << 30;      //!< ... clipped to the model's depth
  std::uint32_t seed = 0;  //!< different seeds draw different windows

  SKIPLLM_HOST_DEVICE constexpr bool should_skip(SkipState&, LayerContext c) const noexcept {
    int const hi = last < c.num_layers ? last : c.num_layers;
    detail::Window const w = detail::random_window(seed, c.slot, c.decode_index, first, hi, length);
    return c.layer >= w.start && c.layer < w.start + w.count;
  }
};

}  // namespace skipllm::policy
