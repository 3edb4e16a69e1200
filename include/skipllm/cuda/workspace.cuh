//! @file
//! The CUDA stack's workspace: one caller-owned device allocation, carved into every buffer the
//! decode step touches, so that running a step never allocates.
//!
//!     WorkspaceShape shape{...};
//!     std::size_t bytes = workspace_bytes(shape);        // query
//!     cudaMalloc(&ptr, bytes);                           // the caller allocates, once
//!     StackBuffers<Policies, T> b = carve_workspace<Policies, T>(shape, ptr, bytes);
//!
//! Contents, each 256-byte aligned ([dims] in elements):
//!   policies          one Policies value (read by the gate; update it without re-capturing)
//!   states[2]         [max_sequences] SkipState, double-buffered across layers (states[0] is
//!                     the state between tokens)
//!   row_slots         [max_rows] int: the slot of each row of the step; < 0 marks padding
//!   row_runs          [rows] byte, run_rows [rows] int, num_run_rows int: the gate's output
//!   decisions/scores  [num_layers][max_rows]: the step record
//!   layer_counts      [num_layers][kNumFfnDecisions] u64, totals [kNumTotals] u64: the
//!                     device counters (device_counters.cuh)
//!   trace             [trace_capacity] slots, decode indices, [trace_capacity][num_layers]
//!                     decisions and scores: the device trace buffer (device_trace.cuh)
//!   ffn_input         [max_rows][row_stride] compacted FFN input (only when max_rows > 1)
//!   ffn_output        [rows][row_stride] compacted FFN output
//! where rows = max(max_rows, max_prefill_rows) and row_stride is hidden rounded up to whole
//! 16-byte vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../row_view.hpp"
#include "../skip_state.hpp"
#include "device_counters.cuh"
#include "device_trace.cuh"
#include "gate.cuh"
#include "storage.cuh"

namespace skipllm::cuda {

//! The sizes a workspace is planned for.
struct WorkspaceShape {
  int num_layers = 0;
  int max_sequences = 1;
  int max_rows = 1;          //!< rows of a decode step
  int max_prefill_rows = 0;  //!< rows of a prefill chunk (0: no prefill through the stack)
  std::int64_t hidden = 0;   //!< elements per row
  int trace_capacity = 0;    //!< token records kept on the device between collects (0: no trace)
  int elem_bytes = 4;        //!< bytes per activation element
  std::size_t policies_bytes = 0;
};

inline constexpr std::size_t kWorkspaceAlignment = 256;

//! Byte offsets of every buffer, and the total.
struct WorkspaceLayout {
  std::size_t policies = 0, states0 = 0, states1 = 0, row_slots = 0, row_runs = 0, run_rows = 0, num_run_rows = 0,
              decisions = 0, scores = 0, layer_counts = 0, totals = 0, trace_slots = 0, trace_decode_indices = 0,
              trace_decisions = 0, trace_scores = 0, ffn_input = 0, ffn_output = 0;
  std::size_t bytes = 0;
  int batch_rows = 0;           //!< rows of row_runs / run_rows / ffn_output
  std::int64_t row_stride = 0;  //!< elements between FFN batch rows
  bool gather = false;          //!< the decode step gathers into ffn_input (max_rows > 1)
};

//! Throws std::invalid_argument with a `skipllm:` message when `shape` cannot be planned.
inline void validate(WorkspaceShape const& s) {
  auto fail = [](std::string const& what) { throw std::invalid_argument("skipllm: " + what); };
  if (s.num_layers <= 0) fail("num_layers must be positive, got " + std::to_string(s.num_layers));
  if (s.max_sequences <= 0) fail("max_sequences must be positive, got " + std::to_string(s.max_sequences));
  if (s.max_rows <= 0) fail("max_rows must be positive, got " + std::to_string(s.max_rows));
  if (s.max_prefill_rows < 0) fail("max_prefill_rows must be >= 0, got " + std::to_string(s.max_prefill_rows));
  if (s.hidden <= 0) fail("hidden must be positive, got " + std::to_string(s.hidden));
  if (s.trace_capacity < 0) fail("trace_capacity must be >= 0, got " + std::to_string(s.trace_capacity));
  if (s.elem_bytes != 2 && s.elem_bytes != 4) fail("elem_bytes must be 2 or 4, got " + std::to_string(s.elem_bytes));
}

//! The layout for `s` (host and device agree on it; nothing is allocated).
inline WorkspaceLayout plan_workspace(WorkspaceShape const& s) {
  validate(s);
  WorkspaceLayout w;
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    std::size_t const offset = at;
    at += (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
    return offset;
  };
  auto const L = static_cast<std::size_t>(s.num_layers);
  auto const B = static_cast<std::size_t>(s.max_rows);
  auto const C = static_cast<std::size_t>(s.trace_capacity);
  w.batch_rows = s.max_rows > s.max_prefill_rows ? s.max_rows : s.max_prefill_rows;
  auto const R = static_cast<std::size_t>(w.batch_rows);
  std::int64_t const width = kVectorBytes / s.elem_bytes;
  w.row_stride = (s.hidden + width - 1) / width * width;
  w.gather = s.max_rows > 1;

  w.policies = take(s.policies_bytes > 0 ? s.policies_bytes : 1);
  w.states0 = take(sizeof(SkipState) * static_cast<std::size_t>(s.max_sequences));
  w.states1 = take(sizeof(SkipState) * static_cast<std::size_t>(s.max_sequences));
  w.row_slots = take(sizeof(int) * B);
  w.row_runs = take(R);
  w.run_rows = take(sizeof(int) * R);
  w.num_run_rows = take(sizeof(int));
  w.decisions = take(sizeof(FfnDecision) * L * B);
  w.scores = take(sizeof(float) * L * B);
  w.layer_counts = take(sizeof(unsigned long long) * layer_counter_count(s.num_layers));
  w.totals = take(sizeof(unsigned long long) * kNumTotals);
  w.trace_slots = take(sizeof(int) * C);
  w.trace_decode_indices = take(sizeof(int) * C);
  w.trace_decisions = take(sizeof(FfnDecision) * C * L);
  w.trace_scores = take(sizeof(float) * C * L);
  auto const row_bytes = static_cast<std::size_t>(w.row_stride) * static_cast<std::size_t>(s.elem_bytes);
  w.ffn_input = take(w.gather ? row_bytes * B : 0);
  w.ffn_output = take(row_bytes * R);
  w.bytes = at;
  return w;
}

//! Bytes of device memory a stack of shape `s` needs.
inline std::size_t workspace_bytes(WorkspaceShape const& s) { return plan_workspace(s).bytes; }

//! Typed views of a carved workspace. `T` is the kernel-side storage type.
template <class Policies, class T>
struct StackBuffers {
  WorkspaceShape shape;
  WorkspaceLayout layout;
  Policies* policies = nullptr;
  SkipState* states[2] = {nullptr, nullptr};
  int* row_slots = nullptr;
  unsigned char* row_runs = nullptr;
  int* run_rows = nullptr;
  int* num_run_rows = nullptr;
  FfnDecision* decisions = nullptr;            //!< [num_layers][max_rows]
  float* scores = nullptr;                     //!< [num_layers][max_rows]
  unsigned long long* layer_counts = nullptr;  //!< [num_layers][kNumFfnDecisions]
  unsigned long long* totals = nullptr;        //!< [kNumTotals]
  DeviceTraceBuffer trace;
  RowView<T> ffn_input;  //!< data == nullptr when the step does not gather
  RowView<T> ffn_output;

  Gate gate() const noexcept { return Gate{row_runs, run_rows, num_run_rows}; }
};

//! Carves `workspace` (device memory, 256-byte aligned, at least workspace_bytes(shape) bytes).
template <class Policies, class T>
StackBuffers<Policies, T> carve_workspace(WorkspaceShape shape, void* workspace, std::size_t bytes) {
  shape.elem_bytes = static_cast<int>(sizeof(T));
  shape.policies_bytes = sizeof(Policies);
  WorkspaceLayout const w = plan_workspace(shape);
  if (workspace == nullptr || bytes < w.bytes) {
    throw std::invalid_argument("skipllm: the workspace holds " + std::to_string(bytes) + " bytes; this shape needs " +
                                std::to_string(w.bytes) + " (see workspace_bytes)");
  }
  if (reinterpret_cast<std::uintptr_t>(workspace) % kWorkspaceAlignment != 0) {
    throw std::invalid_argument("skipllm: the workspace must be 256-byte aligned (cudaMalloc memory is)");
  }
  auto* const base = static_cast<unsigned char*>(workspace);
  auto at = [&](std::size_t offset) { return static_cast<void*>(base + offset); };
  StackBuffers<Policies, T> b;
  b.shape = shape;
  b.layout = w;
  b.policies = static_cast<Policies*>(at(w.policies));
  b.states[0] = static_cast<SkipState*>(at(w.states0));
  b.states[1] = static_cast<SkipState*>(at(w.states1));
  b.row_slots = static_cast<int*>(at(w.row_slots));
  b.row_runs = static_cast<unsigned char*>(at(w.row_runs));
  b.run_rows = static_cast<int*>(at(w.run_rows));
  b.num_run_rows = static_cast<int*>(at(w.num_run_rows));
  b.decisions = static_cast<FfnDecision*>(at(w.decisions));
  b.scores = static_cast<float*>(at(w.scores));
  b.layer_counts = static_cast<unsigned long long*>(at(w.layer_counts));
  b.totals = static_cast<unsigned long long*>(at(w.totals));
  b.trace.slots = static_cast<int*>(at(w.trace_slots));
  b.trace.decode_indices = static_cast<int*>(at(w.trace_decode_indices));
  b.trace.decisions = static_cast<FfnDecision*>(at(w.trace_decisions));
  b.trace.scores = static_cast<float*>(at(w.trace_scores));
  b.trace.capacity = shape.trace_capacity;
  if (w.gather) {
    b.ffn_input = RowView<T>{static_cast<T*>(at(w.ffn_input)), shape.max_rows, shape.hidden, w.row_stride};
  }
  b.ffn_output = RowView<T>{static_cast<T*>(at(w.ffn_output)), w.batch_rows, shape.hidden, w.row_stride};
  return b;
}

}  // namespace skipllm::cuda
