// expect: skipllm: CUDA Host must provide 'void ffn_block\(int layer, Step&, skipllm::cuda::FfnBatch<T> const&, cudaStream_t\)'
#include <skipllm/cuda/decoder_stack.cuh>

struct GpuHostWithoutFfn {
  struct Step {
    skipllm::RowView<float> x;
  };
  int num_layers() const { return 4; }
  void attention_block(int, Step&, cudaStream_t) {}
  void ffn_block(int, Step&, std::span<int const>) {}  // the CPU host's signature
  skipllm::RowView<float> residual(Step& s) { return s.x; }
};

int main() {
  GpuHostWithoutFfn host;
  skipllm::cuda::StackOptions const options{.hidden = 4};
  std::size_t const bytes = skipllm::cuda::DecoderStack<GpuHostWithoutFfn>::workspace_bytes(host, options);
  (void)bytes;
}
