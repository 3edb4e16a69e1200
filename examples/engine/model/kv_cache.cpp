#include "model/kv_cache.hpp"

#include <algorithm>
#include <stdexcept>

#include "format/cpu_features.hpp"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#  include <immintrin.h>
#  define SKIPLLM_KV_X86 1
#  define SKIPLLM_TARGET_F16C __attribute__((target("avx2,fma,f16c")))
#else
#  define SKIPLLM_KV_X86 0
#endif

namespace skipllm::engine {

namespace {

// Eight independent partial sums: a loop the compiler vectorizes without -ffast-math.
float dot_f32(float const* a, float const* b, std::size_t n) {
  float lanes[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t j = 0; j < 8; ++j) lanes[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) lanes[0] += a[i] * b[i];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

float dot_f16_portable(float const* q, skipllm::half_t const* k, std::size_t n) {
  float lanes[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t j = 0; j < 8; ++j) lanes[j] += q[i + j] * skipllm::to_float(k[i + j]);
  }
  for (; i < n; ++i) lanes[0] += q[i] * skipllm::to_float(k[i]);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

void axpy_f16_portable(float p, skipllm::half_t const* v, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] += p * skipllm::to_float(v[i]);
}

#if SKIPLLM_KV_X86
// fp16 -> fp32 is exact, so F16C's conversion gives the same floats as skipllm::to_float.
SKIPLLM_TARGET_F16C __m256 load_f16x8(skipllm::half_t const* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<__m128i const*>(p)));
}

SKIPLLM_TARGET_F16C float dot_f16_f16c(float const* q, skipllm::half_t const* k, std::size_t n) {
  __m256 acc = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_f16x8(k + i), acc);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float sum = _mm_cvtss_f32(s);
  for (; i < n; ++i) sum += q[i] * skipllm::to_float(k[i]);
  return sum;
}

SKIPLLM_TARGET_F16C void axpy_f16_f16c(float p, skipllm::half_t const* v, std::size_t n, float* out) {
  __m256 const pv = _mm256_set1_ps(p);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, load_f16x8(v + i), _mm256_loadu_ps(out + i)));
  for (; i < n; ++i) out[i] += p * skipllm::to_float(v[i]);
}

SKIPLLM_TARGET_F16C void scores_f16c(float const* q, skipllm::half_t const* k, std::size_t hd, float scale, int length,
                                     float* out) {
  for (int t = 0; t < length; ++t) out[t] = dot_f16_f16c(q, k + static_cast<std::size_t>(t) * hd, hd) * scale;
}

SKIPLLM_TARGET_F16C void values_f16c(skipllm::half_t const* v, std::size_t hd, float const* p, int length, float* out) {
  for (int t = 0; t < length; ++t) axpy_f16_f16c(p[t], v + static_cast<std::size_t>(t) * hd, hd, out);
}
#endif

}  // namespace

std::string_view kv_cache_type_name(KvCacheType type) { return type == KvCacheType::kFloat16 ? "fp16" : "fp32"; }

std::size_t kv_bytes_per_token(LlamaConfig const& c, KvCacheType type) {
  std::size_t const element = type == KvCacheType::kFloat16 ? sizeof(skipllm::half_t) : sizeof(float);
  return 2 * static_cast<std::size_t>(c.n_layers) * static_cast<std::size_t>(c.kv_dim()) * element;
}

KvCache::KvCache(LlamaConfig const& c, int slots, int context, KvCacheType type)
    : type_(type), layers_(c.n_layers), kv_heads_(c.n_kv_heads), head_dim_(c.head_dim), context_(context) {
  if (slots < 1 || context < 1) throw std::invalid_argument("engine: KV cache needs >= 1 slot and position");
  std::size_t const elements = static_cast<std::size_t>(slots) * kv_bytes_per_token(c, KvCacheType::kFloat32) /
                               sizeof(float) * static_cast<std::size_t>(context);
  if (type == KvCacheType::kFloat16) {
    f16_.assign(elements, skipllm::half_t{0});
  } else {
    f32_.assign(elements, 0.0f);
  }
}

std::size_t KvCache::bytes() const noexcept {
  return f16_.size() * sizeof(skipllm::half_t) + f32_.size() * sizeof(float);
}

std::size_t KvCache::offset(int slot, int layer, int which, int kv_head) const {
  std::size_t const plane = static_cast<std::size_t>(context_) * static_cast<std::size_t>(head_dim_);  // one head
  std::size_t const head = ((static_cast<std::size_t>(slot) * layers_ + layer) * 2 + which) * kv_heads_ + kv_head;
  return head * plane;
}

void KvCache::store(int slot, int layer, int position, float const* k, float const* v) {
  auto const hd = static_cast<std::size_t>(head_dim_);
  for (int h = 0; h < kv_heads_; ++h) {
    for (int which = 0; which < 2; ++which) {
      float const* src = (which == 0 ? k : v) + static_cast<std::size_t>(h) * hd;
      std::size_t const at = offset(slot, layer, which, h) + static_cast<std::size_t>(position) * hd;
      if (type_ == KvCacheType::kFloat16) {
        std::transform(src, src + hd, &f16_[at], [](float x) { return skipllm::from_float<skipllm::half_t>(x); });
      } else {
        std::copy_n(src, hd, &f32_[at]);
      }
    }
  }
}

void KvCache::scores(int slot, int layer, int kv_head, float const* q, float scale, int length, float* out) const {
  auto const hd = static_cast<std::size_t>(head_dim_);
  std::size_t const at = offset(slot, layer, 0, kv_head);
  if (type_ == KvCacheType::kFloat32) {
    for (int t = 0; t < length; ++t) out[t] = dot_f32(q, &f32_[at + static_cast<std::size_t>(t) * hd], hd) * scale;
    return;
  }
#if SKIPLLM_KV_X86
  if (cpu_has_avx2()) return scores_f16c(q, &f16_[at], hd, scale, length, out);
#endif
  for (int t = 0; t < length; ++t)
    out[t] = dot_f16_portable(q, &f16_[at + static_cast<std::size_t>(t) * hd], hd) * scale;
}

void KvCache::add_weighted_values(int slot, int layer, int kv_head, float const* p, int length, float* out) const {
  auto const hd = static_cast<std::size_t>(head_dim_);
  std::size_t const at = offset(slot, layer, 1, kv_head);
  if (type_ == KvCacheType::kFloat32) {
    for (int t = 0; t < length; ++t) {
      float const* vt = &f32_[at + static_cast<std::size_t>(t) * hd];
      for (std::size_t i = 0; i < hd; ++i) out[i] += p[t] * vt[i];
    }
    return;
  }
#if SKIPLLM_KV_X86
  if (cpu_has_avx2()) return values_f16c(&f16_[at], hd, p, length, out);
#endif
  for (int t = 0; t < length; ++t) axpy_f16_portable(p[t], &f16_[at + static_cast<std::size_t>(t) * hd], hd, out);
}

}  // namespace skipllm::engine
