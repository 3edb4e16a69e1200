//! @file
//! A fixed-capacity set of layer indices, usable on host and device.
#pragma once

#include <cstdint>

#include "config.hpp"

namespace skipllm {

//! A bitset of up to `kMaxLayers` layers. Fixed size so it can live in a kernel parameter
//! and be loaded from a calibration file without allocation.
struct LayerMask {
  static constexpr int kMaxLayers = 256;
  std::uint64_t words[kMaxLayers / 64] = {};

  //! Layers outside [0, kMaxLayers) are never members.
  SKIPLLM_HOST_DEVICE constexpr bool contains(int layer) const noexcept {
    if (layer < 0 || layer >= kMaxLayers) return false;
    return (words[layer / 64] >> (layer % 64)) & 1u;
  }

  //! Adds `layer`; returns false (and changes nothing) when it is out of range.
  constexpr bool insert(int layer) noexcept {
    if (layer < 0 || layer >= kMaxLayers) return false;
    words[layer / 64] |= std::uint64_t{1} << (layer % 64);
    return true;
  }

  constexpr int count() const noexcept {
    int n = 0;
    for (std::uint64_t w : words) n += __builtin_popcountll(w);
    return n;
  }

  friend constexpr bool operator==(LayerMask const&, LayerMask const&) = default;
};

}  // namespace skipllm
