// custom_policy: writing your own SkipPolicy in a few lines.
//
// `StreakPolicy` skips one FFN at a time, and only after `streak` consecutive measured layers
// scored above tau: more cautious than the paper's greedy span, and it re-checks after every
// skip. It keeps its counter in SkipState::scratch, which the library reserves for custom
// policies and zeroes per sequence. Compose it with the library's cold region, warm-up and
// metric, and DecoderLayer/DecoderStack use it like a built-in policy (on CPU and GPU alike,
// since it is plain host/device code).
#include <cstdio>
#include <iostream>
#include <span>
#include <vector>

#include <skipllm/skipllm.hpp>

struct StreakPolicy {
  float tau = 0.95f;
  unsigned streak = 2;

  SKIPLLM_HOST_DEVICE constexpr void begin_token(skipllm::SkipState& s) const { s.scratch = 0; }

  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext) const {
    // prev_similarity is NaN after a skip, so the streak restarts: every skip needs new evidence.
    s.scratch = s.prev_similarity > tau ? s.scratch + 1 : 0;
    return s.scratch >= streak;
  }
};

static_assert(skipllm::SkipPolicy<StreakPolicy>);

// A host whose FFN output shrinks with depth, so the cosine crosses tau around layer 4.
struct DepthHost {
  struct Step {
    std::vector<float> x = std::vector<float>(16), f = std::vector<float>(16);
  };
  int num_layers() const { return 16; }
  void attention_block(int, Step& s) { s.x.assign(16, 1.0f); }
  void ffn_block(int layer, Step& s, std::span<int const>) {
    for (int i = 0; i < 16; ++i)
      s.f[static_cast<std::size_t>(i)] = (i % 2 ? 1.0f : -1.0f) * 0.8f / static_cast<float>(1 + layer);
  }
  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, 16, 16}; }
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, 16, 16}; }
};

int main() {
  namespace p = skipllm::policy;
  using Policies = skipllm::Policies<StreakPolicy, p::ColdLayers, p::Warmup, p::Cosine>;
  DepthHost host;
  skipllm::DecoderStack<DepthHost, Policies> stack(
      host, Policies{StreakPolicy{0.95f, 2}, p::ColdLayers{2, 2}, p::Warmup{1, 0}}, {.record_trace = true});
  stack.begin_sequence(0);
  DepthHost::Step step;
  for (int t = 0; t < 3; ++t) stack.decode(step);
  for (std::size_t t = 0; t < stack.trace().size(); ++t) {
    std::printf("token %zu: ", t);
    for (skipllm::FfnDecision d : stack.trace().decisions(t)) std::putchar(skipllm::decision_letter(d));
    std::putchar('\n');
  }
  skipllm::print_summary(std::cout, stack.statistics(), skipllm::describe(stack.layer().policies()));
  return 0;
}
