// expect: skipllm: FixedWarmup counts must be non-negative
#include "common.hpp"

// A negative warm-up length is refused at compile time.
int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, p::Greedy, p::ColdLayers, p::FixedWarmup<-1>, p::Cosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
