//! @file
//! The CUDA Host concept: the engine the CUDA backend drives, and FfnBatch, what its FFN gets.
//!
//! The CPU Host (concepts.hpp) computes; a CUDA host *enqueues*. Its blocks launch kernels on
//! the stream they are given and return at once, never synchronizing, allocating or reading
//! back, so that a whole decode step can be captured into one graph and replayed:
//!
//!   Requires (H a host, s an H::Step, st a cudaStream_t, T the residual's storage type):
//!     typename H::Step;                               one forward step over a batch of rows
//!     int  h.num_layers() const;
//!     void h.attention_block(int layer, Step&, cudaStream_t);   x += Attn(norm(x)); K/V written
//!     void h.ffn_block(int layer, Step&, FfnBatch<T> const&, cudaStream_t);
//!                                                     batch.output = FFN(norm(batch.input))
//!     RowView<T> h.residual(Step&);                   x, [rows, hidden], device memory
//!
//! T is float, __half, __nv_bfloat16, skipllm::half_t or skipllm::bfloat16_t. The FFN's input
//! and output are compacted (FfnBatch): row i of the batch is residual row `gate.rows[i]`, for i
//! below the live count, which lives on the device. Launch shapes may use `max_rows` and let
//! rows past the count return early (`ffn_row_runs`); their inputs are zero and their outputs
//! are ignored. skipllm adds the output into the residual stream itself (fused with the
//! similarity), so ffn_block must not.
#pragma once

#include <concepts>
#include <type_traits>

#include "../row_view.hpp"
#include "config.cuh"
#include "gate.cuh"
#include "storage.cuh"

namespace skipllm::cuda {

//! One layer's FFN work: the compacted rows, where their outputs go, and the gate.
template <class T>
struct FfnBatch {
  RowView<T const> input;  //!< [max_rows, hidden]: batch row i = residual row gate.rows[i]; zero past the count
  RowView<T> output;       //!< [max_rows, hidden]: write FFN(norm(input row i)) to row i
  Gate gate;               //!< live count, row list and flags on the device (the early-exit guard)
  int max_rows = 0;        //!< the most rows that can be live: size launches by this
};

// ---------------------------------------------------------------------------------------------
// The concept, one named requirement per member (see concepts.hpp for why).

template <class H>
concept CudaHostHasStep = requires {
  typename H::Step;
};

template <class H>
concept CudaHostHasNumLayers = requires(H const& h) {
  { h.num_layers() } -> std::convertible_to<int>;
};

template <class H>
concept CudaHostHasResidual = CudaHostHasStep<H> && requires(H& h, typename H::Step& s) {
  requires skipllm::detail::is_row_view_v<std::remove_cvref_t<decltype(h.residual(s))>>;
};

namespace detail {
template <class H>
struct residual_of {
  using type = float;  // placeholder when the host has none (check_host reports it)
};
template <CudaHostHasResidual H>
struct residual_of<H> {
  using type = typename std::remove_cvref_t<decltype(std::declval<H&>().residual(
      std::declval<typename H::Step&>()))>::element_type;
};
}  // namespace detail

//! The element type of the host's residual view (may be const-qualified if the host is wrong).
template <class H>
using residual_element_t = typename detail::residual_of<H>::type;

template <class H>
concept CudaHostResidualIsStorage =
    CudaHostHasResidual<H> && is_storage_v<residual_element_t<H>> && !std::is_const_v<residual_element_t<H>>;

template <class H>
concept CudaHostHasAttention = CudaHostHasStep<H> &&
    requires(H& h, typename H::Step& s, int layer, cudaStream_t stream) {
  h.attention_block(layer, s, stream);
};

template <class H>
concept CudaHostHasFfn = CudaHostHasStep<H> &&
    requires(H& h, typename H::Step& s, int layer, FfnBatch<std::remove_cv_t<residual_element_t<H>>> const& batch,
             cudaStream_t stream) {
  h.ffn_block(layer, s, batch, stream);
};

template <class H>
concept Host = CudaHostHasStep<H> && CudaHostHasNumLayers<H> && CudaHostResidualIsStorage<H> &&
    CudaHostHasAttention<H> && CudaHostHasFfn<H>;

template <class H>
constexpr bool check_host() {
  static_assert(CudaHostHasStep<H>,
                "skipllm: CUDA Host must declare a nested type 'Step' (one forward step over a batch of rows)");
  static_assert(CudaHostHasNumLayers<H>, "skipllm: CUDA Host must provide 'int num_layers() const'");
  if constexpr (CudaHostHasStep<H>) {
    static_assert(CudaHostHasResidual<H>,
                  "skipllm: CUDA Host must provide 'skipllm::RowView<T> residual(Step&)' (x, [rows, hidden], "
                  "device memory)");
    if constexpr (CudaHostHasResidual<H>) {
      static_assert(CudaHostResidualIsStorage<H>,
                    "skipllm: CUDA Host residual must be a mutable RowView of float, __half, __nv_bfloat16, "
                    "skipllm::half_t or skipllm::bfloat16_t");
    }
    static_assert(CudaHostHasAttention<H>,
                  "skipllm: CUDA Host must provide 'void attention_block(int layer, Step&, cudaStream_t)' "
                  "(enqueue x += Attn(norm(x)) on the stream)");
    static_assert(CudaHostHasFfn<H>,
                  "skipllm: CUDA Host must provide 'void ffn_block(int layer, Step&, skipllm::cuda::FfnBatch<T> "
                  "const&, cudaStream_t)' (enqueue batch.output = FFN(norm(batch.input)) on the stream)");
  }
  return Host<H>;
}

}  // namespace skipllm::cuda
