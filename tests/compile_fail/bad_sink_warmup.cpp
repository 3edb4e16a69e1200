// expect: skipllm: SinkWarmup must provide 'bool is_dense\(int decode_index\) const'
#include "common.hpp"

struct NonConstWarmup {
  bool is_dense(int t) { return t < 4; }  // not const
};

int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, p::Greedy, p::ColdLayers, NonConstWarmup, p::Cosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
