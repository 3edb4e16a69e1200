// Instantiates the kernels whose generated code tests/device/check_ptx.cmake inspects: the
// residual/similarity kernel (both block sizes, both metrics, two storage types, and with the
// next-norm hook's WithRowSquares, whose double sum must leave the metric's float terms alone)
// and the gate with a bundle that holds per-layer thresholds (~1 KiB). Compiled to PTX only,
// never run.
#include <cuda_bf16.h>

#include <skipllm/cuda/gate_kernel.cuh>
#include <skipllm/cuda/next_norm.cuh>
#include <skipllm/cuda/residual_similarity_kernel.cuh>
#include <skipllm/policy/bundle.hpp>

namespace cu = skipllm::cuda;
namespace pol = skipllm::policy;

template <class Metric, class T>
void instantiate_residual(cudaStream_t stream) {
  cu::ResidualParams<T> small;
  small.residual.cols = 64;  // the 128-thread block
  cu::launch_residual_similarity<Metric>(small, 1, stream);
  cu::ResidualParams<T> large;
  large.residual.cols = 4096;  // the 512-thread block
  cu::launch_residual_similarity<Metric>(large, 1, stream);
}

void instantiate_all(cudaStream_t stream) {
  instantiate_residual<pol::Cosine, __nv_bfloat16>(stream);
  instantiate_residual<pol::RelativeUpdate, float>(stream);
  instantiate_residual<cu::WithRowSquares<pol::Cosine>, float>(stream);
  cu::GateParams<pol::ConfigurablePolicies, __nv_bfloat16> gate;
  cu::launch_gate(gate, 1, stream);
}
