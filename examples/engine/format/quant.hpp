//! @file
//! ggml tensor types: block geometry, dequantization to fp32, and the row dot product that is the
//! inner loop of the CPU matvec.
//!
//! Block layouts follow ggml (`ggml-common.h`); every dequantizer is bit-exact against the `gguf`
//! Python package's reference (`tests/engine/fixtures/make_quant_golden.py`).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace skipllm::engine {

//! The ggml type ids this engine can read. The values are ggml's, as stored in GGUF tensor infos.
//! Other ids (IQ*, Q2_K, ...) are refused by the reader by name, never cast to this enum.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

//! ggml's name for a type ("Q4_1"). Also names ids outside the enum, for error messages:
//! "IQ2_XXS" for 16, "Q4_2" for the removed id 4, and "unknown" for ids ggml never assigned.
std::string_view type_name(GgmlType type);

//! True for the ids in GgmlType, the only ones dequantize_row and dot_row accept.
bool is_supported(std::uint32_t type_id);

//! Elements per block (1 for F32/F16/BF16, 32 for Q*_0/Q*_1, 256 for K-quants).
//! Throws std::invalid_argument for an unsupported type.
std::size_t block_size(GgmlType type);
//! Bytes per block (e.g. 20 for Q4_1). Throws std::invalid_argument for an unsupported type.
std::size_t block_bytes(GgmlType type);

//! Converts one IEEE binary16 value (bits) to float exactly: subnormals, infinities and NaN
//! payloads are kept. Independent of the CPU's FTZ/DAZ flags.
float half_to_float(std::uint16_t bits);

//! Dequantizes `n` consecutive elements starting at block data `src` into `dst`.
//! `n` must be a non-negative multiple of block_size(type) (else std::invalid_argument).
void dequantize_row(GgmlType type, std::byte const* src, float* dst, std::int64_t n);

//! Dot product of one weight row of `n` elements (in `type`'s block format) with the float vector
//! `x`: the inner loop of the CPU matvec. Weights are expanded in registers (AVX2 path for F32,
//! F16, BF16, Q4_0, Q4_1, Q8_0) or 256 elements at a time in an L1 buffer, never as a whole row.
//! Agrees with dequantize_row + an exact dot product to 1e-5 of sum |w_i x_i|. No alignment is
//! required of `row` or `x`. Dispatches at run time to AVX2+FMA+F16C code on x86 CPUs that have
//! it (see dot_row_isa()), else to dot_row_portable.
float dot_row(GgmlType type, std::byte const* row, float const* x, std::int64_t n);

//! The portable path of dot_row (plain loops, default compiler flags). Exposed so tests can check
//! both paths on a machine that dispatches to the SIMD one.
float dot_row_portable(GgmlType type, std::byte const* row, float const* x, std::int64_t n);

//! Which code dot_row runs on this machine: "avx2" or "portable".
std::string_view dot_row_isa();

//! The 6-bit scale and min of sub-block j (0..7) of a Q4_K or Q5_K block, from its 12 packed
//! scale bytes (block bytes 4..15).
struct KScaleMin {
  int scale, min;
};
//! Inline: the integer K-quant kernels call it eight times per block.
inline KScaleMin k_scale_min(std::array<std::uint8_t, 12> const& packed, int j) {
  // Sub-blocks 0..3 use the low 6 bits of bytes j and j+4; sub-blocks 4..7 take a nibble of byte
  // j+4 and borrow the top 2 bits of bytes j-4 (scale) and j (min).
  if (j < 4) return {packed[j] & 63, packed[j + 4] & 63};
  return {(packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4)};
}

}  // namespace skipllm::engine
