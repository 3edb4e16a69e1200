// LLaMA-family weights read from a GGUF file: the configuration and views of every tensor.
//
// Weights stay in the file's mapping and in their stored type (Q4_1 for the default model);
// matrix-vector products dequantize on the fly (quant.hpp), so a 135M-parameter model costs
// its file size in memory, not four bytes a weight. Only the small norm vectors are
// converted to fp32 at load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "format/gguf.hpp"

namespace skipllm::engine {

struct ModelError : std::runtime_error {
  using runtime_error::runtime_error;
};

struct LlamaConfig {
  std::string architecture;  // "llama" (also accepted: other LLaMA-layout architectures)
  int n_layers = 0;
  int n_embd = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int n_ff = 0;
  int vocab = 0;
  int context_length = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;

  int kv_dim() const { return n_kv_heads * head_dim; }
};

//! A weight matrix [rows = output features, cols = input features] in its GGUF storage type.
struct WeightMatrix {
  GgmlType type{};
  std::byte const* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t row_bytes = 0;

  std::byte const* row(std::int64_t r) const { return data + static_cast<std::size_t>(r) * row_bytes; }
  std::size_t bytes() const { return static_cast<std::size_t>(rows) * row_bytes; }
};

struct LlamaLayerWeights {
  std::vector<float> attn_norm;  // [n_embd]
  WeightMatrix wq, wk, wv, wo;
  std::vector<float> ffn_norm;  // [n_embd]
  WeightMatrix w_gate, w_up, w_down;

  std::size_t attention_bytes() const { return wq.bytes() + wk.bytes() + wv.bytes() + wo.bytes(); }
  std::size_t ffn_bytes() const { return w_gate.bytes() + w_up.bytes() + w_down.bytes(); }
};

class StandIns;

class LlamaModel {
 public:
  //! Reads the configuration and every tensor, checking each shape against the configuration.
  //! The GgufFile must outlive the model (the weights point into its mapping).
  explicit LlamaModel(GgufFile const& file);

  LlamaConfig const& config() const noexcept { return config_; }
  LlamaLayerWeights const& layer(int l) const { return layers_[static_cast<std::size_t>(l)]; }
  WeightMatrix const& token_embedding() const noexcept { return token_embd_; }
  WeightMatrix const& output() const noexcept { return output_; }  // token_embd when tied
  std::vector<float> const& output_norm() const noexcept { return output_norm_; }
  bool tied_embeddings() const noexcept { return tied_; }

  //! Weight bytes one decode token reads: every layer's attention and FFN, and the output head.
  std::size_t bytes_per_token_dense() const;
  std::size_t ffn_bytes_per_layer() const { return layers_.front().ffn_bytes(); }

  //! Fitted stand-ins for skipped FFNs (model/standin.hpp), which LlamaHost::standin_block runs
  //! when a policy stands in; none unless set. Like the weights, shared by every host.
  void set_standins(std::shared_ptr<StandIns const> standins) noexcept { standins_ = std::move(standins); }
  StandIns const* standins() const noexcept { return standins_.get(); }

 private:
  LlamaConfig config_;
  std::vector<LlamaLayerWeights> layers_;
  WeightMatrix token_embd_;
  WeightMatrix output_;
  std::vector<float> output_norm_;
  bool tied_ = false;
  std::shared_ptr<StandIns const> standins_;
};

//! Reads the model configuration from GGUF metadata (keys prefixed by the architecture name).
LlamaConfig read_llama_config(GgufFile const& file);

}  // namespace skipllm::engine
