//! @file
//! cuda::DecoderLayer<Host, Policies...>: one transformer layer with an adaptive FFN, enqueued
//! on a CUDA stream with no host sync.
//!
//! Why a counterpart rather than a device backend plugged into skipllm::DecoderLayer: the CPU
//! layer decides on the host, row by row, and hands the FFN a host-side row list. On a GPU
//! that is a device-to-host read per layer (a sync, and no graph capture). Here the decision
//! lives on the device: the gate kernel runs `decide` on device-resident states and writes the
//! row list to device memory; the FFN is enqueued once (or captured once into an IF node) and
//! learns on the device which rows to compute. The policy bundles, the policy resolution
//! (`DecoderLayer<Host, Skip, Cold, Warmup, Metric>`, `<Host, Policies<...>>`, `<Host>`),
//! decision.hpp and the statistics/trace types are shared with the CPU driver; only the
//! enqueueing differs.
//!
//! Per decode step of layer l (rows of the step; the stack passes them in order 0..L-1):
//!   1. host.attention_block(l, step, stream)               always: every layer writes its K/V
//!   2. gate kernel                                         decide every row (decision.hpp),
//!      flags + compacted rows + count, step record, IF condition, gather of the FFN input
//!   3. [IF node when capturing with kConditionalNode]      body captured once:
//!        host.ffn_block(l, step, batch, body stream)       FFN on the compacted rows
//!        residual_similarity kernel                        x[rows[i]] += f[i], score, observe
//!                                                          (+ sum x^2 for the host's next norm)
//!      Without a graph (or with kEarlyExit) the same two are enqueued directly and return at
//!      once when no row runs (the early-exit guard).
//! States are double-buffered across layers: layer l reads states[l % 2] and writes
//! states[(l + 1) % 2] (see block_gate.cuh); the stack's token_end kernel folds them back into
//! states[0].
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "../decoder_layer.hpp"
#include "conditional_node.cuh"
#include "dense_batch_kernel.cuh"
#include "gate_kernel.cuh"
#include "host.cuh"
#include "residual_similarity_kernel.cuh"
#include "workspace.cuh"

namespace skipllm::cuda {

template <class Host, class... P>
class DecoderLayer {
 public:
  using host_type = Host;
  using policies_type = typename skipllm::detail::resolve_policies<P...>::type;
  using metric = typename policies_type::metric;
  //! What the residual kernel folds: the metric, plus the row's sum of squares for a host that
  //! takes the next-RMSNorm statistic (next_norm.cuh).
  using residual_metric = residual_metric_t<Host, metric>;
  using step_type = typename skipllm::detail::step_of<Host>::type;
  //! The host's storage type (e.g. skipllm::bfloat16_t) and the kernels' (e.g. __nv_bfloat16).
  using value_type = std::remove_cv_t<residual_element_t<Host>>;
  using device_type = std::conditional_t<is_storage_v<value_type>, device_storage_t<value_type>, float>;
  using buffers_type = StackBuffers<policies_type, device_type>;

  static constexpr bool valid = check_host<Host>() && policies_type::valid;
  static_assert(skipllm::detail::checks_ran<valid>);  // report a bad host or policy where the type is named

  //! `buffers`: a carved workspace (owned by the caller, e.g. cuda::DecoderStack).
  //! `body_stream`: a stream IF-node bodies are captured on (not the decode stream).
  DecoderLayer(Host& host, buffers_type const& buffers, cudaStream_t body_stream)
      : host_(&host), buffers_(&buffers), body_stream_(body_stream) {}

  Host& host() const noexcept { return *host_; }
  buffers_type const& buffers() const noexcept { return *buffers_; }

  //! Enqueues one decode step of `layer` for the first `rows` rows of the step (their slots in
  //! buffers().row_slots). Under a stream capture with kConditionalNode, the FFN goes into an
  //! IF node; otherwise it is enqueued behind the early-exit guard.
  void decode(int layer, step_type& step, int rows, cudaStream_t stream, SkipMechanism mechanism) {
    if constexpr (valid) {
      buffers_type const& b = *buffers_;
      host_->attention_block(layer, step, stream);
      RowView<device_type> const x = device_view(host_->residual(step));
      bool const gather = b.layout.gather && rows > 1;
      std::int64_t const record = static_cast<std::int64_t>(layer) * rows;  // [layers][rows]

      GateParams<policies_type, device_type> g;
      g.gate.policies = b.policies;
      g.gate.states_in = b.states[layer & 1];
      g.gate.states_out = b.states[(layer + 1) & 1];
      g.gate.row_slots = b.row_slots;
      g.gate.num_slots = b.shape.max_sequences;
      g.gate.rows = rows;
      g.gate.layer = layer;
      g.gate.num_layers = b.shape.num_layers;
      g.gate.row_runs = b.row_runs;
      g.gate.run_rows = b.run_rows;
      g.gate.num_run_rows = b.num_run_rows;
      g.gate.decisions = b.decisions + record;
      g.gate.scores = b.scores + record;
      g.residual = RowView<device_type const>{x.data, x.rows, x.cols, x.stride};
      if (gather) g.ffn_input = RowView<device_type>{b.ffn_input.data, rows, x.cols, b.ffn_input.stride};
      bool const conditional = mechanism == SkipMechanism::kConditionalNode && is_capturing(stream);
      if (conditional) {
        g.condition = make_conditional_handle(stream, 1u);
        g.set_condition = true;
      }
      launch_gate(g, gather ? rows : 1, stream);

      FfnBatch<value_type> batch;
      batch.input = gather ? value_view<value_type const>(b.ffn_input.data, rows, x.cols, b.ffn_input.stride)
                           : value_view<value_type const>(x.data, rows, x.cols, x.stride);
      batch.output = value_view<value_type>(b.ffn_output.data, rows, x.cols, b.ffn_output.stride);
      batch.gate = b.gate();
      batch.max_rows = rows;

      ResidualParams<device_type> r;
      r.residual = x;
      r.ffn_output = RowView<device_type const>{b.ffn_output.data, rows, x.cols, b.ffn_output.stride};
      r.rows = b.run_rows;
      r.num_rows = b.num_run_rows;
      r.row_slots = b.row_slots;
      r.states = b.states[(layer + 1) & 1];
      r.scores = b.scores + record;
      r.sum_squares = sum_squares(step);

      auto body = [&](cudaStream_t s) {
        host_->ffn_block(layer, step, batch, s);
        // The residual add below would otherwise hide an ffn_block that enqueued nothing here.
        if (conditional) check_ffn_captured(layer, captured_node_count(s));
        launch_residual_similarity<residual_metric>(r, rows, s);
      };
      if (conditional) {
        capture_if(stream, g.condition, body_stream_, body);
      } else {
        body(stream);
      }
    }
  }

  //! Throws when the FFN of `layer` left no node in its IF body: it launched on a stream other
  //! than the one it was given, and the residual kernel would add a stale output. Host logic.
  static void check_ffn_captured(int layer, std::size_t ffn_nodes) {
    if (ffn_nodes == 0) {
      throw std::logic_error("skipllm: ffn_block of layer " + std::to_string(layer) +
                             " enqueued nothing on the stream it was given; launch the FFN on that stream only "
                             "(work on another stream is not captured into the IF node)");
    }
  }

  //! Enqueues a dense step of `layer` over every row of `step` (prefill): no decisions, no
  //! scores, no state. The FFN reads the residual rows in place (the batch is all rows).
  void prefill(int layer, step_type& step, cudaStream_t stream) {
    if constexpr (valid) {
      buffers_type const& b = *buffers_;
      host_->attention_block(layer, step, stream);
      RowView<device_type> const x = device_view(host_->residual(step));
      int const rows = static_cast<int>(x.rows);
      if (rows > b.layout.batch_rows) {
        throw std::invalid_argument("skipllm: prefill step has " + std::to_string(rows) +
                                    " rows; the workspace was planned for at most " +
                                    std::to_string(b.layout.batch_rows) + " (max_prefill_rows)");
      }
      if (rows == 0) return;
      launch_dense_batch(b.run_rows, b.row_runs, b.num_run_rows, rows, stream);
      FfnBatch<value_type> batch;
      batch.input = value_view<value_type const>(x.data, rows, x.cols, x.stride);
      batch.output = value_view<value_type>(b.ffn_output.data, rows, x.cols, b.ffn_output.stride);
      batch.gate = b.gate();
      batch.max_rows = rows;
      host_->ffn_block(layer, step, batch, stream);
      ResidualParams<device_type> r;
      r.residual = x;
      r.ffn_output = RowView<device_type const>{b.ffn_output.data, rows, x.cols, b.ffn_output.stride};
      r.sum_squares = sum_squares(step);
      launch_residual_similarity<residual_metric>(r, rows, stream);
    }
  }

 private:
  // The host's next-RMSNorm statistic ([residual rows]), when it takes one.
  double* sum_squares(step_type& step) const {
    if constexpr (CudaHostFusesNextNorm<Host>) {
      return host_->residual_sum_squares(step);
    } else {
      return nullptr;
    }
  }

  // Both views alias device memory; they differ in the element type the rows are read as.
  // device_view: the host's residual rows as the kernels' type (device_type).
  template <class V>
  static RowView<device_type> device_view(RowView<V> v) {
    return RowView<device_type>{device_pointer(v.data), v.rows, v.cols, v.stride};
  }
  // value_view: kernel-typed rows (the residual, the workspace's FFN buffers) as the host's
  // storage type (value_type, const or not), for the FfnBatch handed to the host.
  template <class V, class D>
  static RowView<V> value_view(D* data, std::int64_t rows, std::int64_t cols, std::int64_t stride) {
    using Raw = std::remove_cv_t<D>;
    return RowView<V>{reinterpret_cast<V*>(const_cast<Raw*>(data)), rows, cols, stride};
  }

  Host* host_;
  buffers_type const* buffers_;
  cudaStream_t body_stream_;
};

}  // namespace skipllm::cuda
