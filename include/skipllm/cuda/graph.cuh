//! @file
//! Graph: an instantiated CUDA graph captured from a callable, launched once per decode step.
//!
//!     skipllm::cuda::Graph token = skipllm::cuda::capture_graph(stream, [&](cudaStream_t s) {
//!       stack.decode(step, s);          // IF nodes per FFN, set by the gate kernels
//!     });
//!     for (...) { update inputs on the device; token.launch(stream); }
//!
//! Instantiate once, replay many times: instantiation costs milliseconds, a launch microseconds.
#pragma once

#include <utility>

#include "config.cuh"

namespace skipllm::cuda {

//! Owns a cudaGraph_t and its executable instance. Move-only.
class Graph {
 public:
  Graph() = default;
  //! Takes ownership of `graph` and instantiates it.
  explicit Graph(cudaGraph_t graph) : graph_(graph) {
    cudaError_t const status = cudaGraphInstantiate(&exec_, graph_, 0);
    if (status != cudaSuccess) {
      exec_ = nullptr;
      reset();
      throw Error(status, "cudaGraphInstantiate");
    }
  }
  Graph(Graph&& other) noexcept
      : graph_(std::exchange(other.graph_, nullptr)), exec_(std::exchange(other.exec_, nullptr)) {}
  Graph& operator=(Graph&& other) noexcept {
    if (this != &other) {
      reset();
      graph_ = std::exchange(other.graph_, nullptr);
      exec_ = std::exchange(other.exec_, nullptr);
    }
    return *this;
  }
  Graph(Graph const&) = delete;
  Graph& operator=(Graph const&) = delete;
  ~Graph() { reset(); }

  //! Enqueues one replay of the whole graph on `stream`.
  void launch(cudaStream_t stream) const { check(cudaGraphLaunch(exec_, stream), "cudaGraphLaunch"); }

  cudaGraph_t graph() const noexcept { return graph_; }
  cudaGraphExec_t exec() const noexcept { return exec_; }
  explicit operator bool() const noexcept { return exec_ != nullptr; }

  //! Nodes at the top level of the graph (an IF node counts as one).
  std::size_t num_nodes() const {
    std::size_t n = 0;
    check(cudaGraphGetNodes(graph_, nullptr, &n), "cudaGraphGetNodes");
    return n;
  }

 private:
  void reset() noexcept {
    if (exec_ != nullptr) (void)cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) (void)cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
  }

  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

//! Captures what `record(stream)` enqueues on `stream` (which must not be the legacy default
//! stream) into a graph and instantiates it. Nothing runs during the capture.
template <class Record>
Graph capture_graph(cudaStream_t stream, Record&& record,
                    cudaStreamCaptureMode mode = cudaStreamCaptureModeThreadLocal) {
  check(cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture");
  try {
    std::forward<Record>(record)(stream);
  } catch (...) {
    cudaGraph_t partial = nullptr;
    if (cudaStreamEndCapture(stream, &partial) == cudaSuccess && partial != nullptr) (void)cudaGraphDestroy(partial);
    throw;
  }
  cudaGraph_t graph = nullptr;
  check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  return Graph(graph);
}

}  // namespace skipllm::cuda
