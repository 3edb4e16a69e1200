//! @file
//! CUDA graph conditional IF nodes, built from inside a stream capture.
//!
//! While `stream` is capturing (cudaStreamBeginCapture, or an engine's own capture):
//!
//!     auto handle = skipllm::cuda::make_conditional_handle(stream);      // default: run
//!     my_decision_kernel<<<..., stream>>>(handle, ...);   // one thread: set_condition(handle, v)
//!     skipllm::cuda::capture_if(stream, handle, body_stream, [&](cudaStream_t s) {
//!       ffn_kernels<<<..., s>>>(...);                      // captured into the IF body
//!     });
//!     ... the capture continues after the IF node ...
//!
//! The body is captured on `body_stream` (any non-capturing stream other than `stream`) into
//! the graph CUDA creates for the node, with cudaStreamBeginCaptureToGraph. Bodies may hold
//! kernels, memcpy/memset, child graphs and further conditionals; not host nodes, events or
//! memory allocation nodes (so cuBLAS needs cublasSetWorkspace and a warm-up call before the
//! capture). A body must not be empty (drivers before r570 hang on that).
//!
//! CUDA API versions: CUDA 13.0 folded the edge-data variants into cudaGraphAddNode,
//! cudaStreamGetCaptureInfo and cudaStreamUpdateCaptureDependencies; 12.3-12.9 spell them
//! cudaGraphAddNode_v2, cudaStreamGetCaptureInfo_v3 and (4-argument) UpdateCaptureDependencies.
//! cudaStreamBeginCaptureToGraph has the same six arguments in both. The wrappers below pick by
//! CUDART_VERSION; config.cuh rejects anything older than 12.4.
#pragma once

#include <exception>
#include <utility>

#include "config.cuh"

namespace skipllm::cuda {

namespace detail {

//! The graph a capturing stream writes to, and the nodes its next node will depend on.
struct CaptureFrontier {
  cudaGraph_t graph = nullptr;
  cudaGraphNode_t const* nodes = nullptr;
  cudaGraphEdgeData const* edges = nullptr;  //!< may be nullptr (all default edges)
  std::size_t count = 0;
};

inline CaptureFrontier capture_frontier(cudaStream_t stream) {
  CaptureFrontier f;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
#if CUDART_VERSION >= 13000
  check(cudaStreamGetCaptureInfo(stream, &status, nullptr, &f.graph, &f.nodes, &f.edges, &f.count),
        "cudaStreamGetCaptureInfo");
#else
  check(cudaStreamGetCaptureInfo_v3(stream, &status, nullptr, &f.graph, &f.nodes, &f.edges, &f.count),
        "cudaStreamGetCaptureInfo_v3");
#endif
  if (status != cudaStreamCaptureStatusActive) {
    throw Error(cudaErrorStreamCaptureImplicit, "conditional nodes need a stream that is capturing");
  }
  return f;
}

inline cudaGraphNode_t add_node(CaptureFrontier const& f, cudaGraphNodeParams& params) {
  cudaGraphNode_t node = nullptr;
#if CUDART_VERSION >= 13000
  check(cudaGraphAddNode(&node, f.graph, f.nodes, f.edges, f.count, &params), "cudaGraphAddNode");
#else
  check(cudaGraphAddNode_v2(&node, f.graph, f.nodes, f.edges, f.count, &params), "cudaGraphAddNode_v2");
#endif
  return node;
}

//! The capture in `stream` continues after `node` (and only after it).
inline void continue_after(cudaStream_t stream, cudaGraphNode_t node) {
#if CUDART_VERSION >= 13000
  check(cudaStreamUpdateCaptureDependencies(stream, &node, nullptr, 1, cudaStreamSetCaptureDependencies),
        "cudaStreamUpdateCaptureDependencies");
#else
  check(cudaStreamUpdateCaptureDependencies(stream, &node, 1, cudaStreamSetCaptureDependencies),
        "cudaStreamUpdateCaptureDependencies");
#endif
}

//! Nodes in `graph` (cudaGraphGetNodes' count).
inline std::size_t node_count(cudaGraph_t graph) {
  std::size_t count = 0;
  check(cudaGraphGetNodes(graph, nullptr, &count), "cudaGraphGetNodes");
  return count;
}

}  // namespace detail

//! What went wrong capturing an IF node, from what the capture left: `body_nodes` in its body,
//! and the capture frontier of the outer stream afterwards (`frontier_count` nodes, and whether
//! they are just the IF node). nullptr when nothing did. Host logic, tested without a GPU.
//!  - an empty body: the body enqueued nothing on the stream it was given (its work went to
//!    another stream, so it ran at capture time or lands outside the node); drivers before
//!    r570 also hang on an empty body;
//!  - a frontier that moved: the body enqueued work on the outer, capturing stream, which the
//!    graph then runs after the node, unconditionally and too late for what follows in the body.
constexpr char const* if_capture_problem(std::size_t body_nodes, std::size_t frontier_count,
                                         bool frontier_is_node) noexcept {
  if (frontier_count != 1 || !frontier_is_node) {
    return "the IF body enqueued work on the capturing stream instead of the stream it was given";
  }
  if (body_nodes == 0) {
    return "the IF body enqueued nothing on the stream it was given (work on any other stream is not captured "
           "into the node)";
  }
  return nullptr;
}

//! Nodes captured so far by `stream`, which must be capturing (e.g. a body stream inside
//! capture_if): lets a caller check that a callback enqueued something on the stream it gave.
inline std::size_t captured_node_count(cudaStream_t stream) {
  return detail::node_count(detail::capture_frontier(stream).graph);
}

//! True when `stream` is capturing into a graph now.
inline bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream, &status), "cudaStreamIsCapturing");
  return status == cudaStreamCaptureStatusActive;
}

//! A new conditional handle on the graph `stream` is capturing into. With `assign_default`,
//! every launch of the graph starts with the condition at `default_value` (1: the body runs
//! unless a kernel says otherwise, the safe choice for an FFN). A handle belongs to one node.
inline cudaGraphConditionalHandle make_conditional_handle(cudaStream_t stream, unsigned default_value = 1,
                                                          bool assign_default = true) {
  detail::CaptureFrontier const f = detail::capture_frontier(stream);
  cudaGraphConditionalHandle handle = 0;
  check(cudaGraphConditionalHandleCreate(&handle, f.graph, default_value,
                                         assign_default ? static_cast<unsigned>(cudaGraphCondAssignDefault) : 0u),
        "cudaGraphConditionalHandleCreate");
  return handle;
}

//! Appends an IF node on `handle` to the capture in `stream`, after everything captured so far;
//! `body(body_stream)` is captured into its body; the capture in `stream` then continues after
//! the node. Returns the node. Throws `Error` (cudaErrorStreamCaptureUnjoined) when the body
//! left its node empty or enqueued on `stream` (if_capture_problem).
template <class Body>
cudaGraphNode_t capture_if(cudaStream_t stream, cudaGraphConditionalHandle handle, cudaStream_t body_stream,
                           Body&& body) {
  if (body_stream == stream) {
    throw Error(cudaErrorInvalidValue, "capture_if needs a body stream other than the capturing stream");
  }
  detail::CaptureFrontier const frontier = detail::capture_frontier(stream);
  // Every reserved field zero: the union's first member (reserved1) spans all of it.
  cudaGraphNodeParams params = {cudaGraphNodeTypeConditional, {0, 0, 0}, {}, 0};
  params.conditional.handle = handle;
  params.conditional.type = cudaGraphCondTypeIf;
  params.conditional.size = 1;
  cudaGraphNode_t const node = detail::add_node(frontier, params);
  cudaGraph_t const body_graph = params.conditional.phGraph_out[0];
  detail::continue_after(stream, node);

  check(cudaStreamBeginCaptureToGraph(body_stream, body_graph, nullptr, nullptr, 0, cudaStreamCaptureModeThreadLocal),
        "cudaStreamBeginCaptureToGraph (IF body)");
  try {
    std::forward<Body>(body)(body_stream);
  } catch (...) {
    cudaGraph_t ignored = nullptr;
    (void)cudaStreamEndCapture(body_stream, &ignored);  // leave the body stream usable
    throw;
  }
  cudaGraph_t captured = nullptr;
  check(cudaStreamEndCapture(body_stream, &captured), "cudaStreamEndCapture (IF body)");
  detail::CaptureFrontier const after = detail::capture_frontier(stream);
  char const* const problem =
      if_capture_problem(detail::node_count(body_graph), after.count, after.count == 1 && after.nodes[0] == node);
  if (problem != nullptr) throw Error(cudaErrorStreamCaptureUnjoined, problem);
  return node;
}

//! Device side: sets `handle`'s condition. Call it from exactly one thread of one kernel per
//! graph launch (concurrent calls are undefined behaviour).
__device__ __forceinline__ void set_condition(cudaGraphConditionalHandle handle, bool value) {
  cudaGraphSetConditional(handle, value ? 1u : 0u);
}

}  // namespace skipllm::cuda
