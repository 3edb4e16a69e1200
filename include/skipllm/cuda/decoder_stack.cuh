//! @file
//! cuda::DecoderStack: the sequence-level driver on a GPU. Same policies, same SkipStatistics
//! and DecisionTrace as skipllm::DecoderStack; the decode step is enqueued on a stream with no
//! host sync, and can be captured once into a graph and replayed per token.
//!
//!     using Stack = skipllm::cuda::DecoderStack<MyGpuEngine, Policies>;
//!     StackOptions o{.stack = {.max_sequences = 8, .record_trace = true}, .hidden = 4096,
//!                    .trace_capacity = 4096};
//!     std::size_t bytes = Stack::workspace_bytes(engine, o);   // plan: query ...
//!     cudaMalloc(&ws, bytes);                                  // ... the caller allocates
//!     Stack stack(engine, policies, o, ws, bytes, stream);     // carve + initialize (enqueued)
//!     stack.begin_sequence(slot, stream);
//!     stack.prefill(prompt_step, stream);                      // dense
//!     stack.set_rows(slots, stream);                           // row r of a step is slots[r]
//!     auto token = stack.capture_decode(step, stream);         // IF node per FFN
//!     for (...) token.launch(stream);                          // one launch per token
//!     stack.collect(stream);                                   // when asked: sync + download
//!     stack.statistics().skip_ratio();
//!
//! Nothing is allocated, synchronized or read back per token: decisions, scores, statistics
//! counters and the trace buffer stay on the device until `collect`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "../stack_options.hpp"
#include "../statistics.hpp"
#include "../trace.hpp"
#include "begin_sequences_kernel.cuh"
#include "decoder_layer.cuh"
#include "device_counters.cuh"
#include "graph.cuh"
#include "token_kernel.cuh"

namespace skipllm::cuda {

//! The options every stack takes (as the CPU stack's), plus what the device workspace is
//! planned for.
struct StackOptions {
  skipllm::StackOptions stack;  //!< sequence slots, rows per step, whether the trace records from the start
  std::int64_t hidden = 0;      //!< elements per residual row (required)
  int max_prefill_rows = 0;     //!< rows of a prefill chunk through prefill() (0: none)
  int trace_capacity = 0;       //!< token records the device keeps between collects (0: no trace)
  SkipMechanism mechanism = SkipMechanism::kConditionalNode;
};

//! Throws std::invalid_argument when a policy update changes the warm-up length: the token-end
//! kernel of every captured graph and the stack's SkipStatistics keep the length the stack was
//! built with, so counting on would mix two definitions of "after warm-up". Host logic.
inline void check_same_warmup(int built_with, int update) {
  if (update != built_with) {
    throw std::invalid_argument("skipllm: set_policies cannot change the warm-up length (" +
                                std::to_string(built_with) + " -> " + std::to_string(update) +
                                " tokens): captured graphs and the statistics keep it; build a new stack");
  }
}

//! Throws std::logic_error when `stream` is capturing: `what` copies from host memory, which a
//! graph would replay from a stale (or freed) host buffer.
inline void check_not_capturing(cudaStream_t stream, char const* what) {
  if (is_capturing(stream)) {
    throw std::logic_error(std::string("skipllm: ") + what +
                           " copies from host memory and cannot be captured; call it before capturing or "
                           "launching the step");
  }
}

//! Throws std::runtime_error when the device saw rows whose slot was out of range or named twice
//! in one step (row_slots() written by the engine, which the host cannot check). Host logic.
inline void check_no_bad_rows(unsigned long long bad_rows) {
  if (bad_rows != 0) {
    throw std::runtime_error("skipllm: " + std::to_string(bad_rows) +
                             " decode rows named a slot out of range or already named by an earlier row of the same "
                             "step (row_slots() written by the engine); their states raced, so the counters since "
                             "the last collect are not folded");
  }
}

template <class Host, class... P>
class DecoderStack {
 public:
  using layer_type = DecoderLayer<Host, P...>;
  using policies_type = typename layer_type::policies_type;
  using step_type = typename layer_type::step_type;
  using value_type = typename layer_type::value_type;
  using device_type = typename layer_type::device_type;
  using buffers_type = typename layer_type::buffers_type;

  //! The workspace shape for `options` on a model of `num_layers` layers. Throws
  //! std::invalid_argument when the trace is to be recorded with no room for it.
  static WorkspaceShape shape_for(StackOptions const& o, int num_layers) {
    if (o.stack.record_trace && o.trace_capacity <= 0) {
      throw std::invalid_argument("skipllm: record_trace needs trace_capacity > 0 (the device's room for the trace)");
    }
    WorkspaceShape s;
    s.num_layers = num_layers;
    s.max_sequences = o.stack.max_sequences;
    s.max_rows = o.stack.rows_per_step();
    s.max_prefill_rows = o.max_prefill_rows;
    s.hidden = o.hidden;
    s.trace_capacity = o.trace_capacity;
    s.elem_bytes = static_cast<int>(sizeof(device_type));
    s.policies_bytes = sizeof(policies_type);
    return s;
  }

  //! Device bytes the caller must allocate for `options` (256-byte aligned; cudaMalloc is).
  static std::size_t workspace_bytes(StackOptions const& options, int num_layers) {
    return cuda::workspace_bytes(shape_for(options, num_layers));
  }
  static std::size_t workspace_bytes(Host const& host, StackOptions const& options) {
    return workspace_bytes(options, static_cast<int>(host.num_layers()));
  }

  //! Carves `workspace` and enqueues its initialization on `stream` (policies upload, every
  //! slot at the start of a sequence, counters zero). Creates the stream IF bodies are captured
  //! on. Throws std::invalid_argument for a bad shape or a small workspace.
  DecoderStack(Host& host, policies_type const& policies, StackOptions const& options, void* workspace,
               std::size_t bytes, cudaStream_t stream)
      : options_(options),
        policies_(policies),
        buffers_(
            carve_workspace<policies_type, device_type>(shape_for(options, num_layers_of(host)), workspace, bytes)),
        body_stream_(make_body_stream()),
        layer_(host, buffers_, body_stream_),
        statistics_(buffers_.shape.num_layers, warmup_tokens_of(policies.warmup)),
        trace_(buffers_.shape.num_layers) {
    set_policies(policies, stream);
    launch_begin_sequences(buffers_.states[0], 0, buffers_.shape.max_sequences, stream);
    launch_begin_sequences(buffers_.states[1], 0, buffers_.shape.max_sequences, stream);
    check(cudaMemsetAsync(buffers_.row_slots, 0xff, sizeof(int) * static_cast<std::size_t>(buffers_.shape.max_rows),
                          stream),
          "cudaMemsetAsync(row_slots)");
    check(cudaMemsetAsync(buffers_.layer_counts, 0,
                          sizeof(unsigned long long) * layer_counter_count(buffers_.shape.num_layers), stream),
          "cudaMemsetAsync(layer_counts)");
    check(cudaMemsetAsync(buffers_.totals, 0, sizeof(unsigned long long) * kNumTotals, stream),
          "cudaMemsetAsync(totals)");
    record_trace(options.stack.record_trace, stream);
  }

  DecoderStack(DecoderStack const&) = delete;
  DecoderStack& operator=(DecoderStack const&) = delete;
  ~DecoderStack() {
    if (body_stream_ != nullptr) (void)cudaStreamDestroy(body_stream_);
  }

  // ------------------------------------------------------------------------------------------
  // Sequences and rows (host calls between steps; not captured)

  //! Uploads new runtime policy parameters (a threshold sweep needs no re-capture). The warm-up
  //! length must stay (check_same_warmup); not capturable. Throws std::invalid_argument for
  //! policies that stand in for skipped FFNs: the device gate has no stand-in path yet, and a
  //! stand-in must not silently become a plain skip.
  void set_policies(policies_type const& policies, cudaStream_t stream) {
    check_not_capturing(stream, "set_policies");
    check_same_warmup(statistics_.warmup_tokens(), warmup_tokens_of(policies.warmup));
    if (policy::stands_in_anywhere(policies.action, buffers_.shape.num_layers)) {
      throw std::invalid_argument(
          "skipllm: the CUDA backend does not run stand-ins for skipped FFNs yet; "
          "use the CPU backend or a SkipAction of NoStandIn");
    }
    policies_ = policies;
    check(cudaMemcpyAsync(buffers_.policies, &policies_, sizeof(policies_type), cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(policies)");
  }

  //! Starts a new sequence in `slot`: its next decode step is its decode index 0.
  void begin_sequence(int slot, cudaStream_t stream) {
    launch_begin_sequences(buffers_.states[0], static_cast<int>(checked_slot(slot)), 1, stream);
  }

  //! The rows of the next decode steps: row r belongs to the sequence in `slots[r]`; a negative
  //! slot marks a padding row (no decision, no FFN, not counted). Checked here, on the host.
  //! Uploaded only when the rows differ from the last upload: steady decoding copies nothing.
  void set_rows(std::span<int const> slots, cudaStream_t stream) {
    check_not_capturing(stream, "set_rows");
    // The rows of the last upload were checked then: steady decoding neither re-checks nor copies.
    if (uploaded_ && std::ranges::equal(slots, staged_slots_)) {
      rows_ = static_cast<int>(slots.size());
      return;
    }
    if (slots.size() > static_cast<std::size_t>(buffers_.shape.max_rows)) {
      throw std::invalid_argument("skipllm: decode step has " + std::to_string(slots.size()) +
                                  " rows; the stack was built for at most " + std::to_string(buffers_.shape.max_rows));
    }
    std::vector<bool> seen(static_cast<std::size_t>(buffers_.shape.max_sequences), false);
    for (int const slot : slots) {
      if (slot < 0) continue;
      std::size_t const s = checked_slot(slot);
      if (seen[s])
        throw std::invalid_argument("skipllm: slot " + std::to_string(slot) + " appears twice in one decode step");
      seen[s] = true;
    }
    rows_ = static_cast<int>(slots.size());
    staged_slots_.assign(slots.begin(), slots.end());
    uploaded_ = true;
    if (!staged_slots_.empty()) {
      check(cudaMemcpyAsync(buffers_.row_slots, staged_slots_.data(), sizeof(int) * staged_slots_.size(),
                            cudaMemcpyHostToDevice, stream),
            "cudaMemcpyAsync(row_slots)");
    }
  }

  //! Device array [max_rows] of row slots, for engines that write it themselves (then call
  //! `set_row_count`). The host cannot check such rows: the token-end kernel counts rows with a
  //! slot out of range or named twice, and `collect` throws when there were any.
  int* row_slots() const noexcept { return buffers_.row_slots; }
  void set_row_count(int rows) {
    uploaded_ = false;  // the device array may no longer hold what set_rows uploaded
    if (rows < 0 || rows > buffers_.shape.max_rows) {
      throw std::invalid_argument("skipllm: row count " + std::to_string(rows) + " is outside [0, " +
                                  std::to_string(buffers_.shape.max_rows) + "]");
    }
    rows_ = rows;
  }
  int rows() const noexcept { return rows_; }

  // ------------------------------------------------------------------------------------------
  // Steps (enqueue only: capturable, no sync, no allocation)

  //! Dense forward of every layer over all rows of `step` (a prompt, or a chunk of one).
  void prefill(step_type& step, cudaStream_t stream) {
    if constexpr (layer_type::valid) {
      for (int l = 0; l < buffers_.shape.num_layers; ++l) layer_.prefill(l, step, stream);
      statistics_.record_prefill(static_cast<std::uint64_t>(layer_.host().residual(step).rows));
    }
  }

  //! One decode token for each row set by set_rows. Capturable: under a stream capture with
  //! SkipMechanism::kConditionalNode every FFN becomes an IF node.
  void decode(step_type& step, cudaStream_t stream) {
    if constexpr (layer_type::valid) {
      auto const x = layer_.host().residual(step);
      if (rows_ == 0) throw std::logic_error("skipllm: no rows to decode: call set_rows first");
      if (x.rows != rows_) {
        throw std::invalid_argument("skipllm: decode step has " + std::to_string(x.rows) + " residual rows but " +
                                    std::to_string(rows_) + " rows were set (set_rows)");
      }
      if (x.cols != buffers_.shape.hidden) {
        throw std::invalid_argument(
            "skipllm: residual rows have " + std::to_string(x.cols) +
            " elements; the stack was planned for hidden = " + std::to_string(buffers_.shape.hidden));
      }
      int const L = buffers_.shape.num_layers;
      for (int l = 0; l < L; ++l) layer_.decode(l, step, rows_, stream, options_.mechanism);
      TokenEndParams e;
      e.row_slots = buffers_.row_slots;
      e.rows = rows_;
      e.num_slots = buffers_.shape.max_sequences;
      e.num_layers = L;
      e.warmup_tokens = warmup_tokens_of(policies_.warmup);
      e.states_in = buffers_.states[L & 1];
      e.states_out = buffers_.states[0];
      e.decisions = buffers_.decisions;
      e.scores = buffers_.scores;
      e.layer_counts = buffers_.layer_counts;
      e.totals = buffers_.totals;
      e.trace = buffers_.trace;
      launch_token_end(e, stream);
    }
  }

  //! set_rows, then decode (not capturable: set_rows copies from host memory).
  void decode(step_type& step, std::span<int const> slots, cudaStream_t stream) {
    set_rows(slots, stream);
    decode(step, stream);
  }

  //! Captures one decode step into an instantiated graph (IF nodes with kConditionalNode).
  //! Replay it with Graph::launch once per token; the rows and shapes are those set now.
  Graph capture_decode(step_type& step, cudaStream_t stream) {
    return capture_graph(stream, [&](cudaStream_t s) { decode(step, s); });
  }

  // ------------------------------------------------------------------------------------------
  // Statistics and trace (downloaded only here)

  //! Turns the device-side trace on or off (only with trace_capacity > 0). Enqueued; takes
  //! effect for later steps without re-capturing.
  void record_trace(bool on, cudaStream_t stream) {
    check_not_capturing(stream, "record_trace");
    trace_flag_ = on && buffers_.trace.capacity > 0 ? 1ull : 0ull;
    check(cudaMemcpyAsync(buffers_.totals + kTraceEnabled, &trace_flag_, sizeof trace_flag_, cudaMemcpyHostToDevice,
                          stream),
          "cudaMemcpyAsync(trace flag)");
  }

  //! Waits for `stream`, downloads the device counters and trace records gathered since the
  //! last collect, folds them into statistics() and trace(), and clears them on the device.
  //! The one call that synchronizes; make it when the numbers are wanted, not per token.
  void collect(cudaStream_t stream) {
    int const L = buffers_.shape.num_layers;
    std::vector<unsigned long long> counts(layer_counter_count(L));
    unsigned long long totals[kNumTotals] = {};
    check(cudaMemcpyAsync(counts.data(), buffers_.layer_counts, sizeof(unsigned long long) * counts.size(),
                          cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(layer_counts)");
    check(cudaMemcpyAsync(totals, buffers_.totals, sizeof totals, cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(totals)");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize(collect)");
    auto const records = static_cast<std::size_t>(
        std::min<unsigned long long>(totals[kTraceCount], static_cast<unsigned long long>(buffers_.trace.capacity)));
    std::vector<int> slots(records), indices(records);
    std::vector<FfnDecision> decisions(records * static_cast<std::size_t>(L));
    std::vector<float> scores(decisions.size());
    if (records > 0) {
      check(cudaMemcpyAsync(slots.data(), buffers_.trace.slots, sizeof(int) * records, cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(trace slots)");
      check(cudaMemcpyAsync(indices.data(), buffers_.trace.decode_indices, sizeof(int) * records,
                            cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(trace decode indices)");
      check(
          cudaMemcpyAsync(decisions.data(), buffers_.trace.decisions, decisions.size(), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(trace decisions)");
      check(cudaMemcpyAsync(scores.data(), buffers_.trace.scores, sizeof(float) * scores.size(), cudaMemcpyDeviceToHost,
                            stream),
            "cudaMemcpyAsync(trace scores)");
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize(collect trace)");
    }
    // Check and add first: both throw, and counts refused must stay on the device.
    check_no_bad_rows(totals[kBadRows]);
    statistics_.add_counts(to_layer_counts(counts), totals[kTokensAfterWarmup]);
    // Clear what was downloaded (kTraceEnabled, the last total, stays).
    check(cudaMemsetAsync(buffers_.layer_counts, 0, sizeof(unsigned long long) * counts.size(), stream),
          "cudaMemsetAsync(layer_counts)");
    check(cudaMemsetAsync(buffers_.totals, 0, sizeof(unsigned long long) * kTraceEnabled, stream),
          "cudaMemsetAsync(totals)");
    std::size_t const layers = static_cast<std::size_t>(L);
    for (std::size_t i = 0; i < records; ++i) {
      trace_.append({slots[i], indices[i]}, std::span<FfnDecision const>(decisions).subspan(i * layers, layers),
                    std::span<float const>(scores).subspan(i * layers, layers));
    }
    dropped_trace_records_ += totals[kTraceDropped];
  }

  SkipStatistics const& statistics() const noexcept { return statistics_; }
  DecisionTrace const& trace() const noexcept { return trace_; }
  DecisionTrace& trace() noexcept { return trace_; }
  //! Trace records lost because the device trace buffer was full between two collects.
  std::uint64_t dropped_trace_records() const noexcept { return dropped_trace_records_; }
  //! Clears the host-side statistics and trace (device counters are cleared by each collect).
  void reset_statistics() noexcept {
    statistics_.reset();
    trace_.clear();
    dropped_trace_records_ = 0;
  }

  //! Downloads every slot's state (synchronizes `stream`; for tests and debugging).
  std::vector<SkipState> download_states(cudaStream_t stream) const {
    std::vector<SkipState> states(static_cast<std::size_t>(buffers_.shape.max_sequences));
    check(cudaMemcpyAsync(states.data(), buffers_.states[0], sizeof(SkipState) * states.size(), cudaMemcpyDeviceToHost,
                          stream),
          "cudaMemcpyAsync(states)");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize(states)");
    return states;
  }

  policies_type const& policies() const noexcept { return policies_; }
  layer_type& layer() noexcept { return layer_; }
  buffers_type const& buffers() const noexcept { return buffers_; }
  int num_layers() const noexcept { return buffers_.shape.num_layers; }
  StackOptions const& options() const noexcept { return options_; }

 private:
  static cudaStream_t make_body_stream() {
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    return stream;
  }

  static int num_layers_of(Host& host) {
    if constexpr (layer_type::valid) {
      return static_cast<int>(host.num_layers());
    } else {
      return 1;
    }
  }

  std::size_t checked_slot(int slot) const { return skipllm::detail::checked_slot(slot, buffers_.shape.max_sequences); }

  StackOptions options_;
  policies_type policies_;
  buffers_type buffers_;
  cudaStream_t body_stream_ = nullptr;
  layer_type layer_;
  SkipStatistics statistics_;
  DecisionTrace trace_;
  std::vector<int> staged_slots_;  //!< what set_rows last uploaded, when `uploaded_`
  bool uploaded_ = false;
  int rows_ = 0;
  unsigned long long trace_flag_ = 0;
  std::uint64_t dropped_trace_records_ = 0;
};

}  // namespace skipllm::cuda
