// expect: skipllm: the policies stand in for skipped FFNs .*'void standin_block\(int layer, Step&, std::span<int const> rows\)'
#include "common.hpp"

// A complete host, but without the stand-in block the policies below ask for.
struct HostWithoutStandIn {
  struct Step {
    std::vector<float> x, f;
  };
  int num_layers() const { return 4; }
  void attention_block(int, Step&) {}
  void ffn_block(int, Step&, std::span<int const>) {}
  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, 4, 4}; }
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, 4, 4}; }
};

using StandInPolicies = skipllm::Policies<skipllm::policy::Greedy, skipllm::policy::NoCold, skipllm::policy::NoWarmup,
                                          skipllm::policy::Cosine, skipllm::policy::FixedStandIn<false>>;

int main() {
  HostWithoutStandIn host;
  skipllm::DecoderStack<HostWithoutStandIn, StandInPolicies> stack(host);
  HostWithoutStandIn::Step step;
  stack.decode(step);
}
