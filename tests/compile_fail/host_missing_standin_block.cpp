// expect: skipllm: the policies stand in for skipped FFNs .*'void standin_block\(int layer, Step&, std::span<int const> rows\)'
#include "common.hpp"

// GoodHost is complete for plain skipping, but has no stand-in block for these policies.
using StandInPolicies = skipllm::Policies<p::Greedy, p::NoCold, p::NoWarmup, p::Cosine, p::FixedStandIn<false>>;

int main() {
  GoodHost host;
  skipllm::DecoderStack<GoodHost, StandInPolicies> stack(host);
  GoodHost::Step step;
  stack.decode(step);
}
