// The reference engine's transformer blocks, packaged as a skipllm Host.
//
// This is the integration an existing engine would write: attention (with RoPE, grouped-query
// heads and a KV cache) and the SwiGLU FFN as two calls, plus views of the residual stream
// and the FFN output. skipllm::DecoderStack decides which FFNs run and does the residual add.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <skipllm/row_view.hpp>

#include "model/kv_cache.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::engine {

//! How decode-time matrix products treat the activations: exact fp32 against dequantized weights
//! (matches an fp32 reference to 1e-4), or rounded to int8 (per block of 32, or of 256 for the
//! K-quants) for integer dot products on every quantized weight type (faster; llama.cpp's CPU
//! arithmetic; format/int8_dot.hpp). F32/F16/BF16 weights stay fp32 either way. Prefill always
//! uses fp32.
enum class ActivationPrecision { kFloat32, kInt8 };

//! "fp32" or "int8" (the CLI's --precision values).
constexpr std::string_view precision_name(ActivationPrecision p) {
  return p == ActivationPrecision::kInt8 ? "int8" : "fp32";
}

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
    std::vector<float> attn_out;       // [capacity, n_embd] layer-skip mode: attention not yet added
  };

  LlamaHost(LlamaModel const& model, ThreadPool& pool, int max_slots, int max_context,
            ActivationPrecision precision = ActivationPrecision::kFloat32,
            KvCacheType kv_cache = KvCacheType::kFloat16);

  LlamaModel const& model() const noexcept { return model_; }
  int max_context() const noexcept { return max_context_; }
  int max_slots() const noexcept { return max_slots_; }
  ActivationPrecision precision() const noexcept { return precision_; }
  KvCache const& kv_cache() const noexcept { return kv_; }

  Step make_step(int capacity) const;

  //! Layer-skip mode (the baseline FFN-SkipLLM argues against): attention_block writes the
  //! layer's K/V from the current hidden state x (as usual: K/V come from norm(x)) but keeps
  //! the attention output aside; ffn_block adds it to x first for the rows that run. A row whose
  //! FFN the policy skips therefore skips the whole layer (x_{l+1} = x_l), and its K/V entry for
  //! this layer is the one computed from the copied hidden state, as early-exit methods fill
  //! it. The attention of skipped rows is still computed (and discarded): this mode is for
  //! quality at matched skipped parameters, not for timing.
  void set_layer_skip(bool on) noexcept { layer_skip_ = on; }
  bool layer_skip() const noexcept { return layer_skip_; }

  //! Loads `tokens` into `step` (embedding lookup) with their positions and slots. Throws when
  //! a token, position or slot is out of range or the step is too small.
  void set_tokens(Step& step, std::span<std::int32_t const> tokens, std::span<int const> positions,
                  std::span<int const> slots) const;

  // ---- skipllm Host ----
  int num_layers() const noexcept { return model_.config().n_layers; }
  void attention_block(int layer, Step& step);
  void ffn_block(int layer, Step& step, std::span<int const> rows);
  //! The optional stand-in for a skipped FFN: f = A norm(x) + b for the listed rows, with the
  //! model's fitted map of `layer` (LlamaModel::standins()); std::logic_error without one.
  void standin_block(int layer, Step& step, std::span<int const> rows);
  skipllm::RowView<float> residual(Step& s) const {
    return {s.x.data(), s.rows, model_.config().n_embd, model_.config().n_embd};
  }
  skipllm::RowView<float const> ffn_output(Step& s) const {
    return {s.f.data(), s.rows, model_.config().n_embd, model_.config().n_embd};
  }

  //! Final norm and output head for row `row`: `out` gets `vocab` logits.
  void logits(Step& step, int row, std::span<float> out);

  //! Final-norm hidden state of `row` (for the similarity profile and tests).
  void final_hidden(Step const& step, int row, std::span<float> out) const;

 private:
  void attend(Step& step, int layer, int row, int head, std::vector<float>& scores);

  LlamaModel const& model_;
  ThreadPool& pool_;
  int max_slots_;
  int max_context_;
  ActivationPrecision precision_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  KvCache kv_;
  bool layer_skip_ = false;
};

//! y[r, o] = W[o, :] . x[r, :] for r < rows, split over the pool by output feature. With many
//! rows each weight row is dequantized once and reused (prefill); with few, it is read in its
//! stored type (decode), against int8-rounded activations when `precision` says so and the
//! weight type allows it.
void matmul(ThreadPool& pool, WeightMatrix const& w, float const* x, int rows, float* y,
            ActivationPrecision precision = ActivationPrecision::kFloat32);

//! One product of a grouped matmul: y = W x, for an input x shared by the group.
struct MatmulOutput {
  WeightMatrix const* w;
  float* y;
};
inline constexpr std::size_t kMaxMatmulOutputs = 4;

//! Several products of the same input (Q, K and V; gate and up) in one parallel pass, which
//! halves the thread dispatches per layer at batch 1. All matrices share the input width.
void matmul(ThreadPool& pool, std::span<MatmulOutput const> outputs, float const* x, int rows,
            ActivationPrecision precision = ActivationPrecision::kFloat32);

//! y = x / rms(x) * weight.
void rms_norm(float const* x, float const* weight, float* y, int n, float eps);

}  // namespace skipllm::engine
