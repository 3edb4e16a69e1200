// expect: skipllm: FixedGreedy span must be at least 1
#include "common.hpp"

// A compile-time parameter out of range is refused when the policy is built, not at run time.
int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, p::FixedGreedy<0.95f, 0>, p::ColdLayers, p::Warmup, p::Cosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
