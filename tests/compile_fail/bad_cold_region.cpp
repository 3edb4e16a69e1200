// expect: skipllm: ColdRegion must provide 'bool is_cold\(int layer, int num_layers\) const'
#include "common.hpp"

struct FirstLayerOnly {
  bool is_cold(int layer) const { return layer == 0; }  // missing num_layers
};

int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, p::Greedy, FirstLayerOnly, p::Warmup, p::Cosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
