// expect: skipllm: Host must provide 'skipllm::RowView<T> residual\(Step&\)'
#include "common.hpp"

struct HostWithRawPointer : GoodHost {
  float* residual(Step& s) { return s.x.data(); }  // must be a RowView
};

int main() {
  HostWithRawPointer host;
  skipllm::DecoderStack<HostWithRawPointer> stack(host);
  HostWithRawPointer::Step step;
  stack.decode(step);
}
