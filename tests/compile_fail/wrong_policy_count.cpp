// expect: skipllm: DecoderLayer takes no policies \(the paper's defaults\), one Policies<...> bundle, or four policies
#include "common.hpp"

int main() {
  GoodHost host;
  skipllm::DecoderLayer<GoodHost, p::Greedy, p::ColdLayers> layer(host);  // two of four
  (void)layer;
}
