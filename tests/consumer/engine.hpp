// The smallest useful host: 12 layers, a fixed FFN whose update is tiny (cos(h, h + FFN(h)) ~ 1),
// so a greedy policy skips.
#pragma once

#include <cstdio>
#include <span>
#include <vector>

#include <skipllm/skipllm.hpp>

struct Engine {
  struct Step {
    std::vector<float> x = std::vector<float>(8, 1.0f);
    std::vector<float> f = std::vector<float>(8, 0.0f);
  };
  int num_layers() const { return 12; }
  void attention_block(int, Step&) {}
  void ffn_block(int, Step& s, std::span<int const>) { s.f.assign(8, 0.001f); }
  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, 8, 8}; }
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, 8, 8}; }
};

//! Decodes 40 tokens and reports the skipped share; exit status 0 when something was skipped.
template <class Stack>
int decode_and_report(Stack& stack) {
  stack.begin_sequence(0);
  Engine::Step step;
  for (int t = 0; t < 40; ++t) stack.decode(step);
  std::printf("skipped %llu of %llu FFN blocks (%.1f%%)\n",
              static_cast<unsigned long long>(stack.statistics().skipped_blocks()),
              static_cast<unsigned long long>(stack.statistics().ffn_blocks()), 100 * stack.statistics().skip_ratio());
  return stack.statistics().skipped_blocks() > 0 ? 0 : 1;
}
