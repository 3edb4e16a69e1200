// expect: skipllm: a policy must be trivially copyable
#include <string>

#include "common.hpp"

struct NamedGreedy : p::Greedy {
  std::string name = "mine";  // owns memory: cannot travel into a kernel
};

int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, NamedGreedy, p::ColdLayers, p::Warmup, p::Cosine> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
