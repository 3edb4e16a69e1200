// expect: skipllm: CUDA storage type must be float, __half, __nv_bfloat16, skipllm::half_t or skipllm::bfloat16_t
#include <skipllm/cuda/residual_similarity_kernel.cuh>
#include <skipllm/policy/similarity.hpp>

int main() {
  skipllm::RowView<double> x{};
  skipllm::RowView<double const> f{};
  skipllm::cuda::residual_add_similarity<skipllm::policy::Cosine>(x, f, nullptr, nullptr);
}
