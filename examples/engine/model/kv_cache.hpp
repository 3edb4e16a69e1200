// The attention's key/value cache: storage in fp16 (the default) or fp32, and the two products
// attention takes from it, scores against the keys and the probability-weighted sum of the values.
//
// Layout [slot][layer][k|v][kv_head][position][head_dim]: one head's keys (or values) over the
// context are contiguous, so attention streams them. fp16 halves the cache (on a 7B LLaMA-2 shape,
// 0.5 MiB per token of context instead of 1 MiB) at a rounding of the stored K and V to 11
// significant bits, round-to-nearest-even as skipllm::from_float<half_t> does; products are in fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <skipllm/numeric.hpp>

#include "model/llama_model.hpp"

namespace skipllm::engine {

enum class KvCacheType { kFloat16, kFloat32 };

//! "fp16" or "fp32".
std::string_view kv_cache_type_name(KvCacheType type);

//! K+V bytes one token of context takes in every layer: 2 * layers * kv_heads * head_dim * bytes.
std::size_t kv_bytes_per_token(LlamaConfig const& config, KvCacheType type);

class KvCache {
 public:
  //! Zero-filled storage for `slots` sequences of `context` positions each.
  KvCache(LlamaConfig const& config, int slots, int context, KvCacheType type);

  KvCacheType type() const noexcept { return type_; }
  //! The storage held, in bytes.
  std::size_t bytes() const noexcept;

  //! Writes one token's K and V (kv_dim floats each, heads side by side) at `position`.
  void store(int slot, int layer, int position, float const* k, float const* v);

  //! out[t] = scale * (q . K[t]) for t < length: the keys of `kv_head`, head_dim values each.
  void scores(int slot, int layer, int kv_head, float const* q, float scale, int length, float* out) const;

  //! out[i] += sum over t < length of p[t] * V[t][i]: the values of `kv_head`.
  void add_weighted_values(int slot, int layer, int kv_head, float const* p, int length, float* out) const;

 private:
  // Offset of element 0 of (slot, layer, k or v, kv_head, position 0).
  std::size_t offset(int slot, int layer, int which, int kv_head) const;

  KvCacheType type_;
  int layers_, kv_heads_, head_dim_, context_;
  std::vector<float> f32_;
  std::vector<skipllm::half_t> f16_;
};

}  // namespace skipllm::engine
