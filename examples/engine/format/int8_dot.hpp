//! @file
//! Integer dot products of quantized weight rows with activations rounded to int8: the arithmetic
//! llama.cpp uses on CPU, and the engine's decode path under `--precision int8`.
//!
//! Rounding the activation vector to int8 (one fp32 scale per block) lets a weight block be dotted
//! with byte multiply-adds on its stored integers instead of dequantizing every weight to fp32:
//! faster, at the cost of the activation rounding error (logits move by up to ~1 on SmolLM2-135M
//! against an fp32 oracle, as llama.cpp's do). Every quantized type the engine reads has an integer
//! kernel: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 take activations in blocks of 32 (Int8Activations); the
//! K-quants Q4_K, Q5_K and Q6_K take blocks of 256 with a sum per 16 (Int8KActivations, ggml's
//! Q8_K). F32, F16 and BF16 weights have no integer form worth the rounding and stay on the float
//! path (dot_row in quant.hpp).
//!
//! Three code paths compute the same integers: AVX-512 VNNI (_mm256_dpbusd_epi32), AVX2
//! (_mm256_maddubs_epi16 + _mm256_madd_epi16) and a portable one. The fastest the CPU supports is
//! chosen at run time (int8_dot_isa()); tests and benchmarks can force any supported one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "format/quant.hpp"

namespace skipllm::engine {

//! x rounded to int8 per block of 32: q[i] = round(x[i] / d_b), d_b = max|x| / 127 over block b,
//! so |q| <= 127 (the kernels rely on it). For Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 weights.
struct Int8Activations {
  std::vector<std::int8_t> q;  //!< [n]
  std::vector<float> d;        //!< [n / 32] block scales
  std::vector<float> sum;      //!< [n / 32] d_b * sum of the block's q (the offset types' term)
  std::int64_t n = 0;
};

//! x rounded to int8 per block of 256 (ggml's Q8_K), for the K-quants Q4_K, Q5_K and Q6_K:
//! q[i] = round(x[i] / d_b), d_b = max|x| / 127 over block b, and the integer sum of q over every
//! 16 elements (the K-quants' per-sub-block min and offset terms).
struct Int8KActivations {
  std::vector<std::int8_t> q;       //!< [n]
  std::vector<float> d;             //!< [n / 256] block scales
  std::vector<std::int32_t> sum16;  //!< [n / 16] sum of q over each 16 elements
  std::int64_t n = 0;
};

//! Quantizes `n` values of x into `out`, reusing its storage. n must be a positive multiple of
//! 32 (Int8Activations) or 256 (Int8KActivations); else std::invalid_argument. x must be finite.
void quantize_activations(float const* x, std::int64_t n, Int8Activations& out);
void quantize_activations(float const* x, std::int64_t n, Int8KActivations& out);

//! The activation blocks a weight type's integer dot product takes: 32 (Int8Activations), 256
//! (Int8KActivations), or 0 for the types without one (F32, F16, BF16).
std::int64_t int8_activation_block(GgmlType type);

//! True for the types with an integer dot product: every quantized type the engine reads.
bool supports_int8_dot(GgmlType type);

//! The code paths of dot_row_int8.
enum class DotIsa { portable, avx2, avx512_vnni };

//! "portable", "avx2", "avx512-vnni".
std::string_view isa_name(DotIsa isa);
//! The DotIsa named by `name` (as isa_name spells it), or nullopt.
std::optional<DotIsa> parse_isa(std::string_view name);

//! True when this CPU can run `isa` (portable: always).
bool cpu_supports(DotIsa isa);

//! The path dot_row_int8 runs: the fastest this CPU supports, unless SKIPLLM_INT8_ISA (read once,
//! at the first call) or set_int8_dot_isa() chose another. An unknown or unsupported name in
//! SKIPLLM_INT8_ISA throws std::invalid_argument from the first call.
DotIsa int8_dot_isa();

//! Makes dot_row_int8 run `isa` from now on (for benchmarks comparing paths). Throws
//! std::invalid_argument when the CPU lacks it.
void set_int8_dot_isa(DotIsa isa);

//! Dot product of one weight row with quantized activations (x.n elements), on int8_dot_isa().
//! The block products are exact integers and their scales are applied in fp32: the result is
//! within 1e-5 of sum |w_i d_b q_i| of dequantize_row(w) . (d_b * q) in exact arithmetic, on
//! every path (tests/engine/format/test_int8_dot.cpp). Throws std::invalid_argument when the type
//! takes the other activation blocks or none.
float dot_row_int8(GgmlType type, std::byte const* row, Int8Activations const& x);
float dot_row_int8(GgmlType type, std::byte const* row, Int8KActivations const& x);

//! The same on a chosen path, for tests. Throws std::invalid_argument when the CPU lacks `isa`.
float dot_row_int8(GgmlType type, std::byte const* row, Int8Activations const& x, DotIsa isa);
float dot_row_int8(GgmlType type, std::byte const* row, Int8KActivations const& x, DotIsa isa);

//! A resolved kernel: dot_row_int8 without its per-call checks and dispatch, for a caller that
//! dots many rows of one matrix with the same activations (the matmul resolves one per matrix).
using Int8RowDot = float (*)(std::byte const* row, Int8Activations const& x);
using Int8KRowDot = float (*)(std::byte const* row, Int8KActivations const& x);

//! The kernel dot_row_int8 runs for `type` on int8_dot_isa(), for activations in blocks of 32
//! (int8_row_dot) or 256 (int8k_row_dot). Throws std::invalid_argument when the type takes the
//! other blocks or none.
Int8RowDot int8_row_dot(GgmlType type);
Int8KRowDot int8k_row_dot(GgmlType type);

}  // namespace skipllm::engine
