//! @file
//! The CUDA backend's base: toolchain check, kernel attribute, error reporting, the skip
//! mechanisms' names.
//!
//! Every `skipllm/cuda/*.cuh` header includes this one first. The `.cuh` headers need nvcc
//! (they hold kernels); the `.hpp` headers they build on compile with any C++20 compiler.
#pragma once

#if !defined(__CUDACC__)
#  error "skipllm: the skipllm/cuda/*.cuh headers hold CUDA kernels; compile this file with nvcc"
#endif

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "../config.hpp"

#if !defined(CUDART_VERSION) || CUDART_VERSION < 12040
#  error "skipllm: the CUDA backend needs CUDA runtime 12.4 or newer (graph conditional nodes)"
#endif

//! Kernels get hidden visibility: several shared objects of one process may each instantiate
//! the same skipllm kernel, and must not resolve to one another's copy.
#define SKIPLLM_KERNEL __global__ __attribute__((visibility("hidden")))

namespace skipllm::cuda {

//! How a skipped FFN is skipped on the device, without a host sync. See docs/cuda.md.
enum class SkipMechanism : unsigned char {
  //! Each FFN body sits in a CUDA graph IF node whose condition the gate kernel sets. Used
  //! when the decode step is being captured into a graph; a skipped body costs about one node
  //! and reads no weights. Outside a capture, the stack falls back to kEarlyExit.
  kConditionalNode = 0,
  //! The FFN kernels are always launched and return at once when the gate says no row runs
  //! (`ffn_any_runs`, `ffn_row_runs`): for engines that do not use graphs.
  kEarlyExit = 1,
};

//! A CUDA runtime error, with the call that failed in the message.
class Error : public std::runtime_error {
 public:
  Error(cudaError_t code, std::string const& what)
      : std::runtime_error("skipllm: " + what + ": " + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")"),
        code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

//! Throws `Error` when `code` is not cudaSuccess. Host code only.
inline void check(cudaError_t code, char const* what) {
  if (code != cudaSuccess) throw Error(code, what);
}

//! Checks the launch that was just enqueued (configuration errors surface here, not later).
inline void check_launch(char const* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace skipllm::cuda
