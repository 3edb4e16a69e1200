//! @file
//! Storage types on the device, and the vectorized row access every skipllm kernel uses.
//!
//! Hosts hand skipllm rows of `float`, `__half`, `__nv_bfloat16`, or skipllm's own
//! `half_t` / `bfloat16_t` (the same bits; kernels see them as `__half` / `__nv_bfloat16`).
//! That is the closed list of storage types the CUDA backend instantiates; anything else is a
//! `skipllm:` compile error. Arithmetic is always fp32.
//!
//! Rows move in 16-byte vectors (4 floats, 8 halves): a row is split into a scalar head up to
//! the first 16-byte boundary, whole vectors, and a scalar tail (`RowSplit`). Two rows read
//! together (x and f) are vectorized when they sit at the same offset from a 16-byte boundary;
//! otherwise the row goes element by element (correct, slower). Hidden sizes need not be
//! multiples of the vector width.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../detail/dependent_false.hpp"
#include "../numeric.hpp"
#include "config.cuh"

namespace skipllm::cuda {

// ---------------------------------------------------------------------------------------------
// The closed list of storage types

//! Maps a host-facing storage type to the type kernels use. The primary template rejects
//! everything outside the list.
template <class T>
struct storage {
  static_assert(skipllm::detail::dependent_false_v<T>,
                "skipllm: CUDA storage type must be float, __half, __nv_bfloat16, skipllm::half_t or "
                "skipllm::bfloat16_t");
  using device_type = float;  // keeps later errors from piling up
};
template <>
struct storage<float> {
  using device_type = float;
};
template <>
struct storage<__half> {
  using device_type = __half;
};
template <>
struct storage<half_t> {
  using device_type = __half;
};
template <>
struct storage<__nv_bfloat16> {
  using device_type = __nv_bfloat16;
};
template <>
struct storage<bfloat16_t> {
  using device_type = __nv_bfloat16;
};

template <class T>
inline constexpr bool is_storage_v =
    std::is_same_v<std::remove_cv_t<T>, float> || std::is_same_v<std::remove_cv_t<T>, __half> ||
    std::is_same_v<std::remove_cv_t<T>, half_t> || std::is_same_v<std::remove_cv_t<T>, __nv_bfloat16> ||
    std::is_same_v<std::remove_cv_t<T>, bfloat16_t>;

//! The kernel-side type of storage `T` (cv-qualifiers dropped).
template <class T>
using device_storage_t = typename storage<std::remove_cv_t<T>>::device_type;

//! Reinterprets a host-facing pointer as its kernel-side type (same size, same bits).
template <class T>
device_storage_t<T>* device_pointer(T* p) noexcept {
  static_assert(sizeof(device_storage_t<T>) == sizeof(std::remove_cv_t<T>));
  return reinterpret_cast<device_storage_t<T>*>(const_cast<std::remove_cv_t<T>*>(p));
}

// ---------------------------------------------------------------------------------------------
// fp32 conversions on the device (round to nearest even, as the CPU backend's from_float)

__device__ __forceinline__ float load_float(float x) { return x; }
__device__ __forceinline__ float load_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float load_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T store_float(float x);
template <>
__device__ __forceinline__ float store_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half store_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 store_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// ---------------------------------------------------------------------------------------------
// Vectorized rows

inline constexpr int kVectorBytes = 16;

//! Elements of `T` in one 16-byte vector.
template <class T>
inline constexpr int vector_width_v = kVectorBytes / static_cast<int>(sizeof(T));

//! One 16-byte vector of `T`.
template <class T>
struct alignas(kVectorBytes) Vector {
  T v[vector_width_v<T>];
};

//! How a row of `n` elements (or two rows walked together) is cut for 16-byte access:
//! `head` scalar elements, `vectors` whole vectors, `tail` scalar elements. When the rows'
//! offsets from a 16-byte boundary differ, `vectorized` is false and the whole row is scalar.
struct RowSplit {
  bool vectorized = false;
  int head = 0;
  std::int64_t vectors = 0;
  int tail = 0;
};

//! The split for rows starting at addresses `a` and `b` (pass the same address twice for one
//! row), of `n` elements of `elem_bytes` bytes each. Host and device, constexpr: unit-tested
//! without a GPU.
SKIPLLM_HOST_DEVICE constexpr RowSplit split_row(std::uintptr_t a, std::uintptr_t b, std::int64_t n,
                                                 int elem_bytes) noexcept {
  RowSplit s;
  if (n <= 0) return s;
  auto const vec = static_cast<std::uintptr_t>(kVectorBytes);
  auto const elem = static_cast<std::uintptr_t>(elem_bytes);
  std::uintptr_t const offset = a % vec;
  if (offset != b % vec || offset % elem != 0) {
    s.head = 0;
    s.vectors = 0;
    s.tail = 0;
    return s;  // not vectorized: the caller walks all n elements
  }
  std::int64_t const width = kVectorBytes / elem_bytes;
  std::int64_t head = offset == 0 ? 0 : static_cast<std::int64_t>((vec - offset) / elem);
  if (head > n) head = n;
  s.vectorized = true;
  s.head = static_cast<int>(head);
  s.vectors = (n - head) / width;
  s.tail = static_cast<int>(n - head - s.vectors * width);
  return s;
}

template <class T>
SKIPLLM_HOST_DEVICE inline RowSplit split_row(T const* a, T const* b, std::int64_t n) noexcept {
  return split_row(reinterpret_cast<std::uintptr_t>(a), reinterpret_cast<std::uintptr_t>(b), n,
                   static_cast<int>(sizeof(T)));
}

//! Calls `op(i)` for every element index `i` of a row of `n` elements, each index by one thread
//! of the block (`Threads` threads, this one `tid`), vector by vector where `split` allows:
//! `op` is called as `op.element(i)` for scalar elements and `op.vector(i)` for the vector
//! starting at element `i`. The work is spread evenly; the order within a thread is fixed.
template <int Threads, class Op>
__device__ __forceinline__ void for_each_in_row(RowSplit const& split, std::int64_t n, int tid, Op& op) {
  if (!split.vectorized) {
    for (std::int64_t i = tid; i < n; i += Threads) op.element(i);
    return;
  }
  constexpr int kWidth = Op::kWidth;
  for (int i = tid; i < split.head; i += Threads) op.element(i);
  for (std::int64_t v = tid; v < split.vectors; v += Threads) op.vector(split.head + v * kWidth);
  std::int64_t const tail_start = split.head + split.vectors * kWidth;
  for (int i = tid; i < split.tail; i += Threads) op.element(tail_start + i);
}

namespace detail {

template <class T>
struct CopyRow {
  static constexpr int kWidth = vector_width_v<T>;
  T* dst;
  T const* src;
  __device__ __forceinline__ void element(std::int64_t i) { dst[i] = src[i]; }
  __device__ __forceinline__ void vector(std::int64_t i) {
    *reinterpret_cast<Vector<T>*>(dst + i) = *reinterpret_cast<Vector<T> const*>(src + i);
  }
};

template <class T>
struct ZeroRow {
  static constexpr int kWidth = vector_width_v<T>;
  T* dst;
  __device__ __forceinline__ void element(std::int64_t i) { dst[i] = store_float<T>(0.0f); }
  __device__ __forceinline__ void vector(std::int64_t i) {
    Vector<T> z;
#pragma unroll
    for (int j = 0; j < kWidth; ++j) z.v[j] = store_float<T>(0.0f);
    *reinterpret_cast<Vector<T>*>(dst + i) = z;
  }
};

}  // namespace detail

//! Copies a row (`dst` <- `src`, `n` elements) with the block's threads.
template <int Threads, class T>
__device__ __forceinline__ void copy_row(T* __restrict__ dst, T const* __restrict__ src, std::int64_t n) {
  detail::CopyRow<T> op{dst, src};
  for_each_in_row<Threads>(split_row(dst, src, n), n, static_cast<int>(threadIdx.x), op);
}

//! Sets a row to zero with the block's threads.
template <int Threads, class T>
__device__ __forceinline__ void zero_row(T* dst, std::int64_t n) {
  detail::ZeroRow<T> op{dst};
  for_each_in_row<Threads>(split_row(dst, dst, n), n, static_cast<int>(threadIdx.x), op);
}

}  // namespace skipllm::cuda
