// ggml block formats: dequantization and the row dot product (portable and AVX2 paths).
//
// Bit-exactness note: the reference (numpy in gguf-py, ggml's C) rounds each product before adding
// the block minimum, while a compiler targeting FMA may fuse `d * q + m`. That is harmless here
// because every product that feeds an add is exact in fp32: an fp16 scale has 11 significant bits,
// a K-quant sub-scale 6 and a quant 4 or 5, so d*q, d*sc and (d*sc)*q need at most 22 of fp32's 24
// bits (fp16 subnormals are normal in fp32). Rounding once or twice then gives the same float.
#include "format/quant.hpp"

#include "format/cpu_features.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#  include <immintrin.h>
#  define SKIPLLM_ENGINE_X86_SIMD 1
#  define SKIPLLM_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#  define SKIPLLM_ENGINE_X86_SIMD 0
#endif

namespace skipllm::engine {

static_assert(std::endian::native == std::endian::little,
              "GGUF data is little-endian and is read in place; big-endian hosts are not supported");

namespace {

constexpr std::int64_t qk = 32;     // elements per Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 block
constexpr std::int64_t qk_k = 256;  // elements per K-quant super-block

std::uint16_t load_u16(std::byte const* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint32_t load_u32(std::byte const* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float load_half(std::byte const* p) { return half_to_float(load_u16(p)); }

// A block's bytes copied into a local array. The loops below then vectorize: std::byte has no
// SIMD vector type, and a store through float* cannot alias a local array (it may alias a
// std::byte* source, which would need run-time overlap checks).
template <class T, std::size_t N>
std::array<T, N> load_array(std::byte const* p) {
  std::array<T, N> a;
  std::memcpy(a.data(), p, sizeof a);
  return a;
}

// ---- Per-block dequantizers. Each writes block_size(type) floats. ----

// Q4_0 and Q4_1: byte j holds element j in its low nibble and element j+16 in its high nibble.
void dequant_q4_0(std::byte const* b, float* y) {
  float const d = load_half(b);
  auto const qs = load_array<std::uint8_t, qk / 2>(b + 2);
  for (int j = 0; j < qk / 2; ++j) y[j] = d * static_cast<float>((qs[j] & 0xF) - 8);
  for (int j = 0; j < qk / 2; ++j) y[j + qk / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
}

void dequant_q4_1(std::byte const* b, float* y) {
  float const d = load_half(b);
  float const m = load_half(b + 2);
  auto const qs = load_array<std::uint8_t, qk / 2>(b + 4);
  for (int j = 0; j < qk / 2; ++j) y[j] = d * static_cast<float>(qs[j] & 0xF) + m;
  for (int j = 0; j < qk / 2; ++j) y[j + qk / 2] = d * static_cast<float>(qs[j] >> 4) + m;
}

// Q5_0 and Q5_1: the nibbles as in Q4, plus bit j of the 32-bit mask `qh` as element j's fifth bit.
std::array<int, qk> q5_values(std::byte const* qh_bytes, std::byte const* qs_bytes) {
  const std::uint32_t qh = load_u32(qh_bytes);
  auto const qs = load_array<std::uint8_t, qk / 2>(qs_bytes);
  // Testing qh against a table of masks, rather than shifting it by j, keeps the loops
  // vectorizable on SSE2, which has no per-lane variable shift.
  static constexpr auto bit = [] {
    std::array<std::uint32_t, qk> b{};
    for (int j = 0; j < qk; ++j) b[j] = 1U << j;
    return b;
  }();
  std::array<int, qk> q;
  for (int j = 0; j < qk / 2; ++j) q[j] = (qs[j] & 0xF) | ((qh & bit[j]) != 0 ? 16 : 0);
  for (int j = 0; j < qk / 2; ++j) q[j + qk / 2] = (qs[j] >> 4) | ((qh & bit[j + qk / 2]) != 0 ? 16 : 0);
  return q;
}

void dequant_q5_0(std::byte const* b, float* y) {
  float const d = load_half(b);
  auto const q = q5_values(b + 2, b + 6);
  for (int j = 0; j < qk; ++j) y[j] = d * static_cast<float>(q[j] - 16);
}

void dequant_q5_1(std::byte const* b, float* y) {
  float const d = load_half(b);
  float const m = load_half(b + 2);
  auto const q = q5_values(b + 4, b + 8);
  for (int j = 0; j < qk; ++j) y[j] = d * static_cast<float>(q[j]) + m;
}

void dequant_q8_0(std::byte const* b, float* y) {
  float const d = load_half(b);
  auto const qs = load_array<std::int8_t, qk>(b + 2);
  for (int j = 0; j < qk; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// Q4_K and Q5_K: fp16 d, fp16 dmin, 12 scale bytes, [Q5_K: qh[32]], qs[128]. Sub-block j
// (32 elements) takes the low nibbles of qs[32*(j/2) + l] when j is even, the high nibbles when
// odd; Q5_K adds bit j of qh[l] as the fifth bit. Value = d*scale*q - dmin*min.
template <bool HasHighBits>
void dequant_k_nibbles(std::byte const* b, float* y) {
  float const d = load_half(b);
  float const dmin = load_half(b + 2);
  auto const scales = load_array<std::uint8_t, 12>(b + 4);
  auto const qh = load_array<std::uint8_t, 32>(b + 16);  // Q4_K: the first qs bytes, unused
  auto const qs = load_array<std::uint8_t, 128>(b + (HasHighBits ? 48 : 16));
  for (int j = 0; j < qk_k / 32; ++j) {
    auto const [scale, min] = k_scale_min(scales, j);
    float const dl = d * static_cast<float>(scale);
    float const ml = dmin * static_cast<float>(min);
    int const shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      int v = (qs[32 * (j / 2) + l] >> shift) & 0xF;
      if constexpr (HasHighBits) v |= ((qh[l] >> j) & 1) << 4;
      y[32 * j + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

// Q6_K: ql[128], qh[64], int8 scales[16], fp16 d (last). Each 128-element half uses 64 ql bytes
// and 32 qh bytes; element 32*k + l of a half (k = 0..3) takes nibble k/2 of ql[l + 32*(k%2)] and
// bits 2k..2k+1 of qh[l]. One scale per 16 elements.
void dequant_q6_k(std::byte const* b, float* y) {
  float const d = load_half(b + 208);
  auto const ql = load_array<std::uint8_t, 128>(b);
  auto const qh = load_array<std::uint8_t, 64>(b + 128);
  auto const scales = load_array<std::int8_t, 16>(b + 192);
  // Loops ordered so the innermost one has fixed shifts and one scale: it vectorizes.
  for (int half = 0; half < 2; ++half) {
    for (int k = 0; k < 4; ++k) {
      for (int s = 0; s < 2; ++s) {  // 16 elements per scale
        int const first = 128 * half + 32 * k + 16 * s;
        float const dl = d * static_cast<float>(scales[first / 16]);
        for (int l = 16 * s; l < 16 * s + 16; ++l) {
          int const low = (ql[64 * half + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
          int const high = (qh[32 * half + l] >> (2 * k)) & 3;
          y[128 * half + 32 * k + l] = dl * static_cast<float>((low | (high << 4)) - 32);
        }
      }
    }
  }
}

void dequant_f32(std::byte const* b, float* y) { std::memcpy(y, b, sizeof(float)); }
void dequant_f16(std::byte const* b, float* y) { *y = load_half(b); }
void dequant_bf16(std::byte const* b, float* y) {  // bf16 is the top half of an fp32
  *y = std::bit_cast<float>(static_cast<std::uint32_t>(load_u16(b)) << 16);
}

struct TypeTraits {
  GgmlType type;
  std::int64_t block_size;
  std::size_t block_bytes;
  void (*dequant_blocks)(std::byte const* src, float* dst, std::int64_t n_blocks);
};

// One indirect call per run of blocks, not per block: the per-block function inlines into the loop.
template <std::int64_t BlockSize, std::size_t BlockBytes, void (*Block)(std::byte const*, float*)>
void dequant_blocks(std::byte const* src, float* dst, std::int64_t n_blocks) {
  for (std::int64_t b = 0; b < n_blocks; ++b) Block(src + b * BlockBytes, dst + b * BlockSize);
}

template <GgmlType Type, std::int64_t BlockSize, std::size_t BlockBytes, void (*Block)(std::byte const*, float*)>
constexpr TypeTraits make_traits() {
  return {Type, BlockSize, BlockBytes, dequant_blocks<BlockSize, BlockBytes, Block>};
}

constexpr std::array<TypeTraits, 11> traits_table{{
    make_traits<GgmlType::F32, 1, 4, dequant_f32>(),
    make_traits<GgmlType::F16, 1, 2, dequant_f16>(),
    make_traits<GgmlType::Q4_0, qk, 18, dequant_q4_0>(),
    make_traits<GgmlType::Q4_1, qk, 20, dequant_q4_1>(),
    make_traits<GgmlType::Q5_0, qk, 22, dequant_q5_0>(),
    make_traits<GgmlType::Q5_1, qk, 24, dequant_q5_1>(),
    make_traits<GgmlType::Q8_0, qk, 34, dequant_q8_0>(),
    make_traits<GgmlType::Q4_K, qk_k, 144, dequant_k_nibbles<false>>(),
    make_traits<GgmlType::Q5_K, qk_k, 176, dequant_k_nibbles<true>>(),
    make_traits<GgmlType::Q6_K, qk_k, 210, dequant_q6_k>(),
    make_traits<GgmlType::BF16, 1, 2, dequant_bf16>(),
}};

TypeTraits const* find_traits(GgmlType type) {
  for (TypeTraits const& t : traits_table)
    if (t.type == type) return &t;
  return nullptr;
}

TypeTraits const& traits(GgmlType type) {
  if (TypeTraits const* t = find_traits(type)) return *t;
  throw std::invalid_argument("skipllm engine: unsupported ggml type " + std::string(type_name(type)) + " (id " +
                              std::to_string(static_cast<std::uint32_t>(type)) + ")");
}

// The checks every public entry point makes; cheap next to even one block of work.
TypeTraits const& checked_traits(GgmlType type, std::int64_t n, char const* what) {
  TypeTraits const& t = traits(type);
  if (n < 0 || n % t.block_size != 0)
    throw std::invalid_argument(std::string("skipllm engine: ") + what + ": " + std::to_string(n) +
                                " elements is not a multiple of the " + std::string(type_name(type)) + " block size " +
                                std::to_string(t.block_size));
  return t;
}

// ---- Portable dot product ----

// Eight independent partial sums: the compiler may map them to SIMD lanes without -ffast-math
// (which it would need to reorder one running sum), and they hide the add latency.
float dot_f32_portable(float const* a, float const* b, std::int64_t n) {
  float acc[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Expands the row one L1-sized chunk at a time and dots each chunk: no fp32 copy of the row.
float dot_via_chunks(TypeTraits const& t, std::byte const* row, float const* x, std::int64_t n,
                     float (*dot_f32)(float const*, float const*, std::int64_t)) {
  constexpr std::int64_t chunk = 256;  // a multiple of every block size
  float buf[chunk];
  float sum = 0.0f;
  for (std::int64_t i = 0; i < n; i += chunk) {
    const std::int64_t len = n - i < chunk ? n - i : chunk;
    t.dequant_blocks(row, buf, len / t.block_size);
    sum += dot_f32(buf, x + i, len);
    row += len / t.block_size * t.block_bytes;
  }
  return sum;
}

// ---- AVX2 + FMA + F16C path (x86, selected at run time) ----
#if SKIPLLM_ENGINE_X86_SIMD

SKIPLLM_TARGET_AVX2 float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Without this, Q4_1 streamed from DRAM at ~2 GB/s against ~8 GB/s from cache (measured on a
// 2-core Xeon VM): at this much arithmetic per cache line the hardware prefetchers fall behind. A
// matvec walks rows back to back, so fetching 2 KiB ahead runs on into the next rows. Prefetches
// never fault, so running past the end of the tensor is harmless; the address is formed as an
// integer because pointer arithmetic past the end of an object is undefined.
constexpr std::uintptr_t prefetch_distance = 2048;
SKIPLLM_TARGET_AVX2 void prefetch_ahead(std::byte const* p) {
  _mm_prefetch(reinterpret_cast<char const*>(reinterpret_cast<std::uintptr_t>(p) + prefetch_distance), _MM_HINT_T0);
}

SKIPLLM_TARGET_AVX2 float half_avx2(std::byte const* p) { return _cvtsh_ss(load_u16(p)); }

// 8 bytes at p, zero-extended to 32-bit lanes. (The intrinsic loads are unaligned and may alias.)
SKIPLLM_TARGET_AVX2 __m256i load_u8x8(std::byte const* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<__m128i const*>(p)));
}

SKIPLLM_TARGET_AVX2 __m256 load_x(float const* x) { return _mm256_loadu_ps(x); }

SKIPLLM_TARGET_AVX2 float dot_f32_avx2(float const* a, float const* b, std::int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// F32 weights are loaded straight from the mapping: _mm256_loadu_ps needs no alignment.
SKIPLLM_TARGET_AVX2 float dot_f32w_avx2(std::byte const* row, float const* x, std::int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16, row += 64) {
    prefetch_ahead(row);
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(reinterpret_cast<float const*>(row)), load_x(x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(reinterpret_cast<float const*>(row + 32)), load_x(x + i + 8), acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i, row += 4) {
    float w;
    std::memcpy(&w, row, sizeof w);
    sum += w * x[i];
  }
  return sum;
}

SKIPLLM_TARGET_AVX2 float dot_f16_avx2(std::byte const* row, float const* x, std::int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16, row += 32) {
    prefetch_ahead(row);
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<__m128i const*>(row)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<__m128i const*>(row + 16)));
    acc0 = _mm256_fmadd_ps(w0, load_x(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, load_x(x + i + 8), acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i, row += 2) sum += half_avx2(row) * x[i];
  return sum;
}

SKIPLLM_TARGET_AVX2 float dot_bf16_avx2(std::byte const* row, float const* x, std::int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8, row += 16) {
    prefetch_ahead(row);
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<__m128i const*>(row)));
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(h, 16)), load_x(x + i), acc);
  }
  float sum = hsum(acc);
  for (; i < n; ++i, row += 2) sum += std::bit_cast<float>(static_cast<std::uint32_t>(load_u16(row)) << 16) * x[i];
  return sum;
}

// Q4_0 and Q4_1 blocks hold 16 bytes of nibbles: byte j carries element j (low) and j+16 (high).
// Zero-extending 8 bytes to 32-bit lanes and splitting each lane with an AND and a shift gives
// elements j..j+7 and j+16..j+23 without a shuffle per nibble half.
struct Nibbles {
  __m256 e0, e8, e16, e24;  // elements 0-7, 8-15, 16-23, 24-31 as floats
};

SKIPLLM_TARGET_AVX2 Nibbles load_nibbles(std::byte const* qs) {
  const __m256i mask = _mm256_set1_epi32(0xF);
  const __m256i a = load_u8x8(qs);
  const __m256i b = load_u8x8(qs + 8);
  return {_mm256_cvtepi32_ps(_mm256_and_si256(a, mask)), _mm256_cvtepi32_ps(_mm256_and_si256(b, mask)),
          _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 4)), _mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4))};
}

// The block's scale d and offset m as broadcasts, so that w = d*q + m. Q4_1 stores fp16 d and m
// side by side (one load, one conversion); Q4_0's w = d*(q - 8) is d*q + (-8d), with the same
// result bit for bit since d*q and 8d are exact in fp32.
template <GgmlType Type>
SKIPLLM_TARGET_AVX2 void load_d_m(std::byte const* block, __m256& d, __m256& m) {
  if constexpr (Type == GgmlType::Q4_1) {
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load_u32(block))));
    d = _mm256_broadcastss_ps(dm);
    m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
  } else {
    float const scale = half_avx2(block);
    d = _mm256_set1_ps(scale);
    m = _mm256_set1_ps(-8.0f * scale);
  }
}

// Q4_0 / Q4_1: w = d*q + m formed per lane and multiplied into four independent accumulators.
// (Factoring out d per block needs a per-block reduction chain; this measured ~20% faster.)
template <GgmlType Type, std::int64_t BlockBytes, std::int64_t QsOffset>
SKIPLLM_TARGET_AVX2 float dot_q4_avx2(std::byte const* row, float const* x, std::int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  for (std::int64_t i = 0; i < n; i += qk, row += BlockBytes) {
    prefetch_ahead(row);
    __m256 d, m;
    load_d_m<Type>(row, d, m);
    const Nibbles q = load_nibbles(row + QsOffset);
    acc0 = _mm256_fmadd_ps(_mm256_fmadd_ps(q.e0, d, m), load_x(x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_fmadd_ps(q.e8, d, m), load_x(x + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_fmadd_ps(q.e16, d, m), load_x(x + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_fmadd_ps(q.e24, d, m), load_x(x + i + 24), acc3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

// 8 signed bytes at p as floats.
SKIPLLM_TARGET_AVX2 __m256 load_i8x8_ps(std::byte const* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<__m128i const*>(p))));
}

SKIPLLM_TARGET_AVX2 __m256 q8_block_qx(std::byte const* qs, float const* x) {
  __m256 t = _mm256_mul_ps(load_i8x8_ps(qs), load_x(x));
  t = _mm256_fmadd_ps(load_i8x8_ps(qs + 8), load_x(x + 8), t);
  t = _mm256_fmadd_ps(load_i8x8_ps(qs + 16), load_x(x + 16), t);
  return _mm256_fmadd_ps(load_i8x8_ps(qs + 24), load_x(x + 24), t);
}

SKIPLLM_TARGET_AVX2 float dot_q8_0_avx2(std::byte const* row, float const* x, std::int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 2 * qk <= n; i += 2 * qk, row += 68) {
    prefetch_ahead(row);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(row)), q8_block_qx(row + 2, x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(row + 34)), q8_block_qx(row + 36, x + i + qk), acc1);
  }
  if (i < n) acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(row)), q8_block_qx(row + 2, x + i), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_unchecked_avx2(TypeTraits const& t, std::byte const* row, float const* x, std::int64_t n) {
  switch (t.type) {
    case GgmlType::F32: return dot_f32w_avx2(row, x, n);
    case GgmlType::F16: return dot_f16_avx2(row, x, n);
    case GgmlType::BF16: return dot_bf16_avx2(row, x, n);
    case GgmlType::Q4_0: return dot_q4_avx2<GgmlType::Q4_0, 18, 2>(row, x, n);
    case GgmlType::Q4_1: return dot_q4_avx2<GgmlType::Q4_1, 20, 4>(row, x, n);
    case GgmlType::Q8_0: return dot_q8_0_avx2(row, x, n);
    default: return dot_via_chunks(t, row, x, n, dot_f32_avx2);  // Q5_*, K-quants: rare for this model
  }
}

#endif  // SKIPLLM_ENGINE_X86_SIMD

}  // namespace

std::string_view type_name(GgmlType type) {
  // Every id ggml has assigned, so refusals can name what a file holds. Ids 4, 5, 31-33 and 36-38
  // were removed from ggml and are invalid in files.
  static constexpr std::array<std::string_view, 43> names{
      "F32",        "F16",        "Q4_0",       "Q4_1",  "Q4_2",     "Q4_3",     "Q5_0",     "Q5_1",    "Q8_0",
      "Q8_1",       "Q2_K",       "Q3_K",       "Q4_K",  "Q5_K",     "Q6_K",     "Q8_K",     "IQ2_XXS", "IQ2_XS",
      "IQ3_XXS",    "IQ1_S",      "IQ4_NL",     "IQ3_S", "IQ2_S",    "IQ4_XS",   "I8",       "I16",     "I32",
      "I64",        "F64",        "IQ1_M",      "BF16",  "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",   "TQ2_0",
      "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4",    "Q1_0",     "Q2_0"};
  auto const id = static_cast<std::uint32_t>(type);
  return id < names.size() ? names[id] : std::string_view("unknown");
}

bool is_supported(std::uint32_t type_id) { return find_traits(static_cast<GgmlType>(type_id)) != nullptr; }

std::size_t block_size(GgmlType type) { return static_cast<std::size_t>(traits(type).block_size); }
std::size_t block_bytes(GgmlType type) { return traits(type).block_bytes; }

float half_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000U) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1FU;
  const std::uint32_t mantissa = bits & 0x3FFU;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000U | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal (mantissa * 2^-24): shift the leading 1 up to the implicit-bit position (bit 10),
  // lowering the exponent once per shift. Integer-only, so FTZ/DAZ modes cannot flush it.
  int const shift = std::countl_zero(mantissa) - 21;
  const std::uint32_t normalized = (mantissa << shift) & 0x3FFU;
  return std::bit_cast<float>(sign | (static_cast<std::uint32_t>(113 - shift) << 23) | (normalized << 13));
}

void dequantize_row(GgmlType type, std::byte const* src, float* dst, std::int64_t n) {
  TypeTraits const& t = checked_traits(type, n, "dequantize_row");
  t.dequant_blocks(src, dst, n / t.block_size);
}

float dot_row_portable(GgmlType type, std::byte const* row, float const* x, std::int64_t n) {
  return dot_via_chunks(checked_traits(type, n, "dot_row"), row, x, n, dot_f32_portable);
}

float dot_row(GgmlType type, std::byte const* row, float const* x, std::int64_t n) {
  TypeTraits const& t = checked_traits(type, n, "dot_row");
#if SKIPLLM_ENGINE_X86_SIMD
  if (cpu_has_avx2()) return dot_unchecked_avx2(t, row, x, n);
#endif
  return dot_via_chunks(t, row, x, n, dot_f32_portable);
}

std::string_view dot_row_isa() {
#if SKIPLLM_ENGINE_X86_SIMD
  if (cpu_has_avx2()) return "avx2";
#endif
  return "portable";
}

}  // namespace skipllm::engine
