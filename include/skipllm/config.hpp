//! @file
//! Compiler portability: SKIPLLM_HOST_DEVICE, the version, toolchain checks.
//!
//! Every other skipllm header includes this one first. It has no dependencies of its own, so
//! `.hpp` headers compile with any C++20 compiler and `.cuh` headers with nvcc.
#pragma once

#define SKIPLLM_VERSION_MAJOR 0
#define SKIPLLM_VERSION_MINOR 1
#define SKIPLLM_VERSION_PATCH 0

#if defined(__CUDACC__) || defined(__HIPCC__)
#  define SKIPLLM_HOST_DEVICE __host__ __device__
#  define SKIPLLM_DEVICE __device__
#else
#  define SKIPLLM_HOST_DEVICE
#  define SKIPLLM_DEVICE
#endif

#if defined(__CUDA_ARCH__)
#  define SKIPLLM_IS_DEVICE_CODE 1
#else
#  define SKIPLLM_IS_DEVICE_CODE 0
#endif

// Toolchain floor. Concepts and the library parts we rely on (<span>, <bit>, <concepts>)
// arrived complete in g++ 11; graph conditional nodes (the CUDA backend) in CUDA 12.4.
#if __cplusplus < 202002L && !defined(_MSVC_LANG)
#  error "skipllm: C++20 is required (compile with -std=c++20)"
#endif
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && (__GNUC__ < 11)
#  error "skipllm: g++ 11 or newer is required"
#endif
#if defined(__CUDACC__) && defined(__CUDACC_VER_MAJOR__)
#  if (__CUDACC_VER_MAJOR__ < 12) || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ < 4)
#    error "skipllm: nvcc 12.4 or newer is required"
#  endif
#endif

namespace skipllm {

//! The library version as one comparable number: major * 10000 + minor * 100 + patch.
inline constexpr int version = SKIPLLM_VERSION_MAJOR * 10000 + SKIPLLM_VERSION_MINOR * 100 + SKIPLLM_VERSION_PATCH;

}  // namespace skipllm
