// The reference engine's transformer blocks, packaged as a skipllm Host.
//
// This is the integration an existing engine would write: attention (with RoPE, grouped-query
// heads and a KV cache) and the SwiGLU FFN as two calls, plus views of the residual stream
// and the FFN output. skipllm::DecoderStack decides which FFNs run and does the residual add.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <skipllm/row_view.hpp>

#include "llama_model.hpp"
#include "thread_pool.hpp"

namespace skipllm::engine {

class LlamaHost {
 public:
  //! One forward step: `rows` tokens, each of some sequence slot at some position. Buffers are
  //! sized once for `capacity` rows (make_step) and reused.
  struct Step {
    int rows = 0;
    int capacity = 0;
    std::vector<std::int32_t> tokens;  // [capacity]
    std::vector<int> positions;        // [capacity]
    std::vector<int> slots;            // [capacity] KV-cache slot of each row
    std::vector<float> x;              // [capacity, n_embd] residual stream
    std::vector<float> f;              // [capacity, n_embd] FFN output
    std::vector<float> normed;         // [capacity, n_embd]
    std::vector<float> q;              // [capacity, n_embd]
    std::vector<float> attn;           // [capacity, n_embd]
    std::vector<float> gate;           // [capacity, n_ff]
    std::vector<float> up;             // [capacity, n_ff]
    std::vector<float> down;           // [capacity, n_embd]
    std::vector<float> rope;           // [capacity, head_dim]: cos, sin interleaved per pair
  };

  LlamaHost(LlamaModel const& model, ThreadPool& pool, int max_slots, int max_context);

  LlamaModel const& model() const noexcept { return model_; }
  int max_context() const noexcept { return max_context_; }
  int max_slots() const noexcept { return max_slots_; }

  Step make_step(int capacity) const;

  //! Loads `tokens` into `step` (embedding lookup) with their positions and slots. Throws when
  //! a token, position or slot is out of range or the step is too small.
  void set_tokens(Step& step, std::span<std::int32_t const> tokens, std::span<int const> positions,
                  std::span<int const> slots) const;

  // ---- skipllm Host ----
  int num_layers() const noexcept { return model_.config().n_layers; }
  void attention_block(int layer, Step& step);
  void ffn_block(int layer, Step& step, std::span<int const> rows);
  skipllm::RowView<float> residual(Step& s) const { return {s.x.data(), s.rows, model_.config().n_embd, model_.config().n_embd}; }
  skipllm::RowView<float const> ffn_output(Step& s) const {
    return {s.f.data(), s.rows, model_.config().n_embd, model_.config().n_embd};
  }

  //! Final norm and output head for row `row`: `out` gets `vocab` logits.
  void logits(Step& step, int row, std::span<float> out);

  //! Final-norm hidden state of `row` (for the similarity profile and tests).
  void final_hidden(Step const& step, int row, std::span<float> out) const;

 private:
  float* k_cache(int slot, int layer, int position);
  float* v_cache(int slot, int layer, int position);
  void attend(Step& step, int layer, int row, int head, std::vector<float>& scores);

  LlamaModel const& model_;
  ThreadPool& pool_;
  int max_slots_;
  int max_context_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  std::vector<float> kv_cache_;  // [slot][layer][k|v][position][kv_dim]
};

//! y[r, o] = W[o, :] . x[r, :] for r < rows, split over the pool by output feature. With many
//! rows each weight row is dequantized once and reused (prefill); with few, it is read in its
//! stored type (decode).
void matmul(ThreadPool& pool, WeightMatrix const& w, float const* x, int rows, float* y);

//! y = x / rms(x) * weight.
void rms_norm(float const* x, float const* weight, float* y, int n, float eps);

}  // namespace skipllm::engine
