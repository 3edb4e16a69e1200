// A well-formed host and well-formed policies; each compile-fail case breaks exactly one thing.
#pragma once

#include <span>
#include <vector>

#include <skipllm/decoder_stack.hpp>

struct GoodHost {
  struct Step {
    std::vector<float> x, f;
  };
  int num_layers() const { return 4; }
  void attention_block(int, Step&) {}
  void ffn_block(int, Step&, std::span<int const>) {}
  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, 4, 4}; }
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, 4, 4}; }
};

namespace p = skipllm::policy;
