// expect: skipllm: SkipPolicy must provide 'bool should_skip\(SkipState&, LayerContext\) const'
#include "common.hpp"

struct SkipsByName {  // wrong member name: skip instead of should_skip
  bool skip(skipllm::SkipState&, skipllm::LayerContext) const { return true; }
};

int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, SkipsByName, p::ColdLayers, p::Warmup, p::Cosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
