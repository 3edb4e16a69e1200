// expect: skipllm: SimilarityMetric must provide 'static float finalize\(Accumulator\)'
#include "common.hpp"

struct DoubleCosine : p::Cosine {
  static double finalize(Accumulator) { return 1.0; }  // must return float
};

int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, p::Greedy, p::ColdLayers, p::Warmup, DoubleCosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
