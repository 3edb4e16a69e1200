// A toy Host whose FFN outputs are scripted: the test says which cosine each (slot, token,
// layer) FFN block will measure, so the expected skip pattern is known before the run.
//
// attention_block resets each row's residual to e0 (and logs what came in); ffn_block writes
// f = t * e1 with t = sqrt(1/c^2 - 1), so cos(h, h + f) = c.
#pragma once

#include <cmath>
#include <functional>
#include <span>
#include <vector>

#include <skipllm/numeric.hpp>
#include <skipllm/row_view.hpp>

template <class T = float>
struct ScriptedHost {
  static constexpr int kHidden = 4;

  struct Step {
    std::vector<int> slots;         // per row
    std::vector<int> decode_index;  // per row
    std::vector<T> x;               // [rows, kHidden]
    std::vector<T> f;               // [rows, kHidden]
    explicit Step(std::vector<int> s, std::vector<int> d = {})
        : slots(std::move(s)),
          decode_index(d.empty() ? std::vector<int>(slots.size(), 0) : std::move(d)),
          x(slots.size() * kHidden),
          f(slots.size() * kHidden) {}
    std::int64_t rows() const { return static_cast<std::int64_t>(slots.size()); }
  };

  using Script = std::function<float(int slot, int decode_index, int layer)>;

  int layers;
  Script script;
  bool log_rows = true;                          // off: the host allocates nothing per call
  std::vector<int> attention_calls;              // [layer]
  std::vector<int> ffn_calls;                    // [layer]
  std::vector<std::vector<int>> ffn_rows;        // every row list ffn_block received, in order
  std::vector<std::vector<int>> ffn_rows_layer;  // the layer of each entry of ffn_rows
  std::vector<std::vector<bool>> ffn_applied;    // [call][row]: did the previous layer add an FFN output?

  ScriptedHost(int num_layers, Script s)
      : layers(num_layers),
        script(std::move(s)),
        attention_calls(static_cast<std::size_t>(num_layers)),
        ffn_calls(static_cast<std::size_t>(num_layers)) {}

  int num_layers() const { return layers; }

  void attention_block(int layer, Step& s) {
    ++attention_calls[static_cast<std::size_t>(layer)];
    std::vector<bool> applied;
    if (log_rows) applied.reserve(static_cast<std::size_t>(s.rows()));
    for (std::int64_t r = 0; r < s.rows(); ++r) {
      T* x = &s.x[static_cast<std::size_t>(r * kHidden)];
      if (log_rows) applied.push_back(skipllm::to_float(x[1]) != 0.0f);
      for (int i = 0; i < kHidden; ++i) x[i] = skipllm::from_float<T>(i == 0 ? 1.0f : 0.0f);
    }
    if (log_rows) ffn_applied.push_back(std::move(applied));
  }

  void ffn_block(int layer, Step& s, std::span<int const> rows) {
    ++ffn_calls[static_cast<std::size_t>(layer)];
    if (log_rows) {
      ffn_rows.emplace_back(rows.begin(), rows.end());
      ffn_rows_layer.push_back({layer});
    }
    for (int const r : rows) {
      auto const ru = static_cast<std::size_t>(r);
      float const c = script(s.slots[ru], s.decode_index[ru], layer);
      float const t = std::sqrt(1.0f / (c * c) - 1.0f);
      for (int i = 0; i < kHidden; ++i)
        s.f[ru * kHidden + static_cast<std::size_t>(i)] = skipllm::from_float<T>(i == 1 ? t : 0.0f);
    }
  }

  skipllm::RowView<T> residual(Step& s) { return {s.x.data(), s.rows(), kHidden, kHidden}; }
  skipllm::RowView<T const> ffn_output(Step& s) { return {s.f.data(), s.rows(), kHidden, kHidden}; }
};
