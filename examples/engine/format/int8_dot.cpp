// Integer dot products on int8 activations: activation quantization, the portable kernels, and the
// run-time choice between them and the x86 ones (int8_dot_x86.inc, compiled once per set).
#include "format/int8_dot.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "format/cpu_features.hpp"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#  include <immintrin.h>
#  define SKIPLLM_INT8_X86 1
#else
#  define SKIPLLM_INT8_X86 0
#endif

namespace skipllm::engine {

namespace {

constexpr std::int64_t kBlock32 = 32;    // activation block of the Q*_0 / Q*_1 weight types
constexpr std::int64_t kBlock256 = 256;  // activation block of the K-quants

// Weights stream from DRAM at a few bytes per multiply-add; without software prefetch the
// hardware prefetchers fall behind (see quant.cpp). Rows are walked back to back, so fetching
// 2 KiB ahead runs on into the next rows; a prefetch never faults.
constexpr std::uintptr_t kPrefetchDistance = 2048;

std::uint16_t load_u16(std::byte const* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float load_half(std::byte const* p) { return half_to_float(load_u16(p)); }

// Where a block-of-32 type keeps its fields, and how its stored integers u become weights:
// w = d * (u + offset) + min (min only when has_min).
struct Block32Layout {
  std::size_t bytes;  // per block
  std::size_t qs;     // offset of the 16 nibble bytes (Q8_0: the 32 signed bytes)
  std::size_t qh;     // offset of the 32-bit fifth-bit mask, 0 if none
  bool has_min;       // fp16 min at offset 2
  int offset;
};

constexpr Block32Layout block32_layout(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return {18, 2, 0, false, -8};
    case GgmlType::Q4_1: return {20, 4, 0, true, 0};
    case GgmlType::Q5_0: return {22, 6, 2, false, -16};
    case GgmlType::Q5_1: return {24, 8, 4, true, 0};
    default: return {34, 2, 0, false, 0};  // Q8_0
  }
}

// ---- Portable kernels: the same integers in plain loops ----

struct PortableKernels {
  // The block's stored integers in element order: nibble j (low) and j+16 (high), plus bit j of
  // the Q5 mask as the fifth bit; Q8_0's signed bytes.
  template <GgmlType Type>
  static std::array<std::int32_t, kBlock32> stored_values(std::byte const* block) {
    constexpr Block32Layout layout = block32_layout(Type);
    std::array<std::int32_t, kBlock32> u{};
    if constexpr (Type == GgmlType::Q8_0) {
      for (std::size_t j = 0; j < u.size(); ++j) u[j] = static_cast<std::int8_t>(block[layout.qs + j]);
    } else {
      std::uint32_t high = 0;
      if constexpr (layout.qh != 0) std::memcpy(&high, block + layout.qh, sizeof high);
      for (std::size_t j = 0; j < 16; ++j) {
        auto const byte = static_cast<std::uint8_t>(block[layout.qs + j]);
        u[j] = (byte & 0xF) | static_cast<std::int32_t>(((high >> j) & 1) << 4);
        u[j + 16] = (byte >> 4) | static_cast<std::int32_t>(((high >> (j + 16)) & 1) << 4);
      }
    }
    return u;
  }

  template <GgmlType Type>
  static float blocks32(std::byte const* row, Int8Activations const& x) {
    constexpr Block32Layout layout = block32_layout(Type);
    float acc = 0;
    for (std::size_t b = 0; b < static_cast<std::size_t>(x.n / kBlock32); ++b, row += layout.bytes) {
      auto const u = stored_values<Type>(row);
      std::int32_t dot = 0;
      for (std::size_t j = 0; j < u.size(); ++j) dot += u[j] * x.q[b * kBlock32 + j];
      float const dw = load_half(row);
      acc += dw * x.d[b] * static_cast<float>(dot);
      if constexpr (layout.has_min) {
        acc += load_half(row + 2) * x.sum[b];
      } else if constexpr (layout.offset != 0) {
        acc += static_cast<float>(layout.offset) * dw * x.sum[b];
      }
    }
    return acc;
  }

  template <bool FifthBit>
  static float q45_k(std::byte const* row, Int8KActivations const& x) {
    constexpr std::size_t bytes = FifthBit ? 176 : 144;
    constexpr std::size_t qs_at = FifthBit ? 48 : 16;
    float acc = 0;
    for (std::size_t b = 0; b < static_cast<std::size_t>(x.n / kBlock256); ++b, row += bytes) {
      std::int8_t const* a = &x.q[b * kBlock256];
      std::int32_t const* sum16 = &x.sum16[b * kBlock256 / 16];
      std::array<std::uint8_t, 12> packed;
      std::memcpy(packed.data(), row + 4, packed.size());
      std::int32_t dots = 0, mins = 0;
      for (int j = 0; j < 8; ++j) {  // sub-block j: nibble j % 2 of qs[32 * (j / 2) + l], bit j of qh[l]
        std::int32_t dot = 0;
        for (int l = 0; l < 32; ++l) {
          auto const byte = static_cast<std::uint8_t>(row[qs_at + static_cast<std::size_t>(32 * (j / 2) + l)]);
          int u = (byte >> (4 * (j % 2))) & 0xF;
          if constexpr (FifthBit)
            u |= ((static_cast<std::uint8_t>(row[16 + static_cast<std::size_t>(l)]) >> j) & 1) << 4;
          dot += u * a[32 * j + l];
        }
        KScaleMin const s = k_scale_min(packed, j);
        dots += s.scale * dot;
        mins += s.min * (sum16[2 * j] + sum16[2 * j + 1]);
      }
      acc += x.d[b] * (load_half(row) * static_cast<float>(dots) - load_half(row + 2) * static_cast<float>(mins));
    }
    return acc;
  }

  static float q6_k(std::byte const* row, Int8KActivations const& x) {
    float acc = 0;
    for (std::size_t b = 0; b < static_cast<std::size_t>(x.n / kBlock256); ++b, row += 210) {
      std::int8_t const* a = &x.q[b * kBlock256];
      std::int32_t dots = 0;
      for (int e = 0; e < kBlock256; e += 16) {  // one scale per 16 elements
        int const half = e / 128, c = (e % 128) / 32;
        std::int32_t dot = 0;
        for (int l = e % 32; l < e % 32 + 16; ++l) {
          auto const ql = static_cast<std::uint8_t>(row[static_cast<std::size_t>(64 * half + 32 * (c % 2) + l)]);
          auto const qh = static_cast<std::uint8_t>(row[static_cast<std::size_t>(128 + 32 * half + l)]);
          int const u = ((ql >> (4 * (c / 2))) & 0xF) | (((qh >> (2 * c)) & 3) << 4);
          dot += (u - 32) * a[e - e % 32 + l];
        }
        dots += static_cast<std::int8_t>(row[192 + static_cast<std::size_t>(e / 16)]) * dot;
      }
      acc += x.d[b] * load_half(row + 208) * static_cast<float>(dots);
    }
    return acc;
  }
};

// ---- x86 kernels: int8_dot_x86.inc compiled for AVX2 and for AVX-512 VNNI ----
#if SKIPLLM_INT8_X86

namespace avx2 {
#  define SKIPLLM_INT8_TARGET __attribute__((target("avx2,fma,f16c")))
SKIPLLM_INT8_TARGET inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
#  include "format/int8_dot_x86.inc"
#  undef SKIPLLM_INT8_TARGET
}  // namespace avx2

namespace avx512_vnni {
#  define SKIPLLM_INT8_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
SKIPLLM_INT8_TARGET inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}
#  include "format/int8_dot_x86.inc"
#  undef SKIPLLM_INT8_TARGET
}  // namespace avx512_vnni

#endif  // SKIPLLM_INT8_X86

// ---- Dispatch ----

std::string block_error(GgmlType type, std::int64_t want, std::int64_t got) {
  std::string const name(type_name(type));
  if (want == 0) return "dot_row_int8: " + name + " weights have no integer dot product (use dot_row)";
  return "dot_row_int8: " + name + " weights take int8 activations in blocks of " + std::to_string(want) + ", not " +
         std::to_string(got);
}

// The kernels of set K for `type`, overloaded on the activation format (the pointer is a tag).
template <class K>
Int8RowDot kernel(GgmlType type, Int8Activations const*) {
  switch (type) {
    case GgmlType::Q4_0: return &K::template blocks32<GgmlType::Q4_0>;
    case GgmlType::Q4_1: return &K::template blocks32<GgmlType::Q4_1>;
    case GgmlType::Q5_0: return &K::template blocks32<GgmlType::Q5_0>;
    case GgmlType::Q5_1: return &K::template blocks32<GgmlType::Q5_1>;
    default: return &K::template blocks32<GgmlType::Q8_0>;
  }
}

template <class K>
Int8KRowDot kernel(GgmlType type, Int8KActivations const*) {
  switch (type) {
    case GgmlType::Q4_K: return &K::template q45_k<false>;
    case GgmlType::Q5_K: return &K::template q45_k<true>;
    default: return &K::q6_k;
  }
}

void check_type(GgmlType type, std::int64_t block) {
  if (int8_activation_block(type) != block)
    throw std::invalid_argument(block_error(type, int8_activation_block(type), block));
}

template <class Activations>
void check_operands(GgmlType type, Activations const& x, std::int64_t block) {
  check_type(type, block);
  if (x.n <= 0 || x.n % block != 0 || x.q.size() != static_cast<std::size_t>(x.n))
    throw std::invalid_argument("dot_row_int8: activations not quantized");
}

void check_supported(DotIsa isa) {
  if (!cpu_supports(isa))
    throw std::invalid_argument("skipllm engine: this CPU cannot run the " + std::string(isa_name(isa)) + " kernels");
}

// The kernel of `type` on `isa` for activations of type A.
template <class A>
auto kernel_on(DotIsa isa, GgmlType type) {
  A const* const format = nullptr;
  switch (isa) {
#if SKIPLLM_INT8_X86
    case DotIsa::avx512_vnni: return kernel<avx512_vnni::Kernels>(type, format);
    case DotIsa::avx2: return kernel<avx2::Kernels>(type, format);
#endif
    default: return kernel<PortableKernels>(type, format);
  }
}

DotIsa best_isa() {
  if (cpu_supports(DotIsa::avx512_vnni)) return DotIsa::avx512_vnni;
  if (cpu_supports(DotIsa::avx2)) return DotIsa::avx2;
  return DotIsa::portable;
}

DotIsa isa_from_environment() {
  char const* name = std::getenv("SKIPLLM_INT8_ISA");
  if (name == nullptr || *name == '\0') return best_isa();
  std::optional<DotIsa> const isa = parse_isa(name);
  if (!isa) {
    throw std::invalid_argument(std::string("SKIPLLM_INT8_ISA=") + name + " is not one of avx512-vnni, avx2, portable");
  }
  check_supported(*isa);
  return *isa;
}

// The chosen path; -1 until the first use reads the environment.
std::atomic<int> chosen_isa{-1};

// The scale d = max|x| / 127 of n values and their rounding to int8 into q; returns sum q.
std::int32_t quantize_block(float const* x, std::int64_t n, std::int8_t* q, float& d) {
  float amax = 0;
  for (std::int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  d = amax / 127.0f;
  float const inv = d > 0 ? 1.0f / d : 0.0f;
  std::int32_t sum = 0;
  // Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer, to
  // nearest even as std::nearbyint does in the default mode, but in plain arithmetic the compiler
  // vectorizes (nearbyint is a library call on baseline x86-64). |x * inv| <= 127 up to one
  // rounding of inv; the clamp keeps |q| <= 127 regardless.
  constexpr float kRound = 12582912.0f;
  for (std::int64_t j = 0; j < n; ++j) {
    float const v = std::clamp(x[j] * inv, -127.0f, 127.0f);
    q[j] = static_cast<std::int8_t>((v + kRound) - kRound);
    sum += q[j];
  }
  return sum;
}

void check_quantize(float const* x, std::int64_t n, std::int64_t block) {
  if (n <= 0 || n % block != 0) {
    throw std::invalid_argument("quantize_activations: n = " + std::to_string(n) + " is not a positive multiple of " +
                                std::to_string(block));
  }
  if (x == nullptr) throw std::invalid_argument("quantize_activations: null input");
}

}  // namespace

void quantize_activations(float const* x, std::int64_t n, Int8Activations& out) {
  check_quantize(x, n, kBlock32);
  out.n = n;
  out.q.resize(static_cast<std::size_t>(n));
  out.d.resize(static_cast<std::size_t>(n / kBlock32));
  out.sum.resize(static_cast<std::size_t>(n / kBlock32));
  for (std::size_t b = 0; b < out.d.size(); ++b) {
    std::int32_t const sum = quantize_block(x + b * kBlock32, kBlock32, &out.q[b * kBlock32], out.d[b]);
    out.sum[b] = out.d[b] * static_cast<float>(sum);
  }
}

void quantize_activations(float const* x, std::int64_t n, Int8KActivations& out) {
  check_quantize(x, n, kBlock256);
  out.n = n;
  out.q.resize(static_cast<std::size_t>(n));
  out.d.resize(static_cast<std::size_t>(n / kBlock256));
  out.sum16.resize(static_cast<std::size_t>(n / 16));
  for (std::size_t b = 0; b < out.d.size(); ++b)
    quantize_block(x + b * kBlock256, kBlock256, &out.q[b * kBlock256], out.d[b]);
  for (std::size_t k = 0; k < out.sum16.size(); ++k) {
    std::int32_t sum = 0;
    for (std::size_t j = 0; j < 16; ++j) sum += out.q[16 * k + j];
    out.sum16[k] = sum;
  }
}

std::int64_t int8_activation_block(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0: return kBlock32;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return kBlock256;
    default: return 0;
  }
}

bool supports_int8_dot(GgmlType type) { return int8_activation_block(type) != 0; }

std::string_view isa_name(DotIsa isa) {
  switch (isa) {
    case DotIsa::avx512_vnni: return "avx512-vnni";
    case DotIsa::avx2: return "avx2";
    default: return "portable";
  }
}

std::optional<DotIsa> parse_isa(std::string_view name) {
  for (DotIsa const isa : {DotIsa::portable, DotIsa::avx2, DotIsa::avx512_vnni})
    if (isa_name(isa) == name) return isa;
  return std::nullopt;
}

bool cpu_supports(DotIsa isa) {
  switch (isa) {
    case DotIsa::avx512_vnni: return SKIPLLM_INT8_X86 && cpu_has_avx512_vnni();
    case DotIsa::avx2: return SKIPLLM_INT8_X86 && cpu_has_avx2();
    default: return true;
  }
}

DotIsa int8_dot_isa() {
  int isa = chosen_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = static_cast<int>(isa_from_environment());
    chosen_isa.store(isa, std::memory_order_relaxed);
  }
  return static_cast<DotIsa>(isa);
}

void set_int8_dot_isa(DotIsa isa) {
  check_supported(isa);
  chosen_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
}

Int8RowDot int8_row_dot(GgmlType type) {
  check_type(type, kBlock32);
  return kernel_on<Int8Activations>(int8_dot_isa(), type);
}

Int8KRowDot int8k_row_dot(GgmlType type) {
  check_type(type, kBlock256);
  return kernel_on<Int8KActivations>(int8_dot_isa(), type);
}

float dot_row_int8(GgmlType type, std::byte const* row, Int8Activations const& x, DotIsa isa) {
  check_operands(type, x, kBlock32);
  check_supported(isa);
  return kernel_on<Int8Activations>(isa, type)(row, x);
}

float dot_row_int8(GgmlType type, std::byte const* row, Int8KActivations const& x, DotIsa isa) {
  check_operands(type, x, kBlock256);
  check_supported(isa);
  return kernel_on<Int8KActivations>(isa, type)(row, x);
}

float dot_row_int8(GgmlType type, std::byte const* row, Int8Activations const& x) {
  check_operands(type, x, kBlock32);
  return kernel_on<Int8Activations>(int8_dot_isa(), type)(row, x);
}

float dot_row_int8(GgmlType type, std::byte const* row, Int8KActivations const& x) {
  check_operands(type, x, kBlock256);
  return kernel_on<Int8KActivations>(int8_dot_isa(), type)(row, x);
}

}  // namespace skipllm::engine
