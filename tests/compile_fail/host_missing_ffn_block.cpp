// expect: skipllm: Host must provide 'void ffn_block\(int layer, Step&, std::span<int const> rows\)'
#include "common.hpp"

struct HostWithoutFfn {
  struct Step {
    std::vector<float> x, f;
  };
  int num_layers() const { return 4; }
  void attention_block(int, Step&) {}
  void ffn(int, Step&) {}  // wrong name and signature
  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, 4, 4}; }
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, 4, 4}; }
};

int main() {
  HostWithoutFfn host;
  skipllm::DecoderStack<HostWithoutFfn> stack(host);
  HostWithoutFfn::Step step;
  stack.decode(step);
}
