#include "model/llama_model.hpp"

#include <string_view>

namespace skipllm::engine {

namespace {

std::string key(LlamaConfig const& c, std::string_view suffix) { return c.architecture + "." + std::string(suffix); }

int positive_int(GgufFile const& f, std::string const& k) {
  std::uint64_t const v = f.get_uint(k);
  if (v == 0 || v > (1u << 30)) {
    throw ModelError(f.label() + ": metadata " + k + " = " + std::to_string(v) + " is out of range");
  }
  return static_cast<int>(v);
}

WeightMatrix matrix(GgufFile const& f, std::string const& name, std::int64_t rows, std::int64_t cols) {
  TensorInfo const& t = f.tensor(name);
  if (t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows) {
    throw ModelError(f.label() + ": tensor " + name + " has shape [" + std::to_string(t.ne[0]) + ", " +
                     std::to_string(t.ne[1]) + "], expected [" + std::to_string(cols) + ", " + std::to_string(rows) +
                     "] (ne order)");
  }
  return WeightMatrix{t.type, t.data, rows, cols, t.row_bytes()};
}

std::vector<float> vector_f32(GgufFile const& f, std::string const& name, std::int64_t n) {
  TensorInfo const& t = f.tensor(name);
  if (t.ne[0] != n || t.rows() != 1) {
    throw ModelError(f.label() + ": tensor " + name + " has " + std::to_string(t.ne[0]) + " x " +
                     std::to_string(t.rows()) + " elements, expected " + std::to_string(n));
  }
  std::vector<float> out(static_cast<std::size_t>(n));
  dequantize_row(t.type, t.data, out.data(), n);
  return out;
}

}  // namespace

LlamaConfig read_llama_config(GgufFile const& f) {
  LlamaConfig c;
  c.architecture = std::string(f.get_string("general.architecture"));
  c.n_layers = positive_int(f, key(c, "block_count"));
  c.n_embd = positive_int(f, key(c, "embedding_length"));
  c.n_heads = positive_int(f, key(c, "attention.head_count"));
  c.n_kv_heads =
      f.has(key(c, "attention.head_count_kv")) ? positive_int(f, key(c, "attention.head_count_kv")) : c.n_heads;
  c.n_ff = positive_int(f, key(c, "feed_forward_length"));
  c.context_length = positive_int(f, key(c, "context_length"));
  c.rope_base = static_cast<float>(f.find_float(key(c, "rope.freq_base")).value_or(10000.0));
  c.rms_eps = static_cast<float>(f.find_float(key(c, "attention.layer_norm_rms_epsilon")).value_or(1e-5));
  if (c.n_embd % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) {
    throw ModelError(f.label() + ": heads do not divide: embedding " + std::to_string(c.n_embd) + ", heads " +
                     std::to_string(c.n_heads) + ", kv heads " + std::to_string(c.n_kv_heads));
  }
  c.head_dim = c.n_embd / c.n_heads;
  if (c.head_dim % 2 != 0) throw ModelError(f.label() + ": RoPE needs an even head dimension");
  if (auto const rope_dims = f.find_uint(key(c, "rope.dimension_count"));
      rope_dims && *rope_dims != static_cast<std::uint64_t>(c.head_dim)) {
    throw ModelError(f.label() + ": partial RoPE (" + std::to_string(*rope_dims) + " of " + std::to_string(c.head_dim) +
                     " dimensions) is not supported");
  }
  c.vocab = static_cast<int>(f.tensor("token_embd.weight").ne[1]);
  if (c.n_layers > 256) throw ModelError(f.label() + ": more than 256 layers is not supported");
  return c;
}

LlamaModel::LlamaModel(GgufFile const& f) : config_(read_llama_config(f)) {
  LlamaConfig const& c = config_;
  token_embd_ = matrix(f, "token_embd.weight", c.vocab, c.n_embd);
  output_norm_ = vector_f32(f, "output_norm.weight", c.n_embd);
  tied_ = f.find_tensor("output.weight") == nullptr;
  output_ = tied_ ? token_embd_ : matrix(f, "output.weight", c.vocab, c.n_embd);
  layers_.reserve(static_cast<std::size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    std::string const p = "blk." + std::to_string(l) + ".";
    LlamaLayerWeights& w = layers_.emplace_back();
    w.attn_norm = vector_f32(f, p + "attn_norm.weight", c.n_embd);
    w.wq = matrix(f, p + "attn_q.weight", c.n_embd, c.n_embd);
    w.wk = matrix(f, p + "attn_k.weight", c.kv_dim(), c.n_embd);
    w.wv = matrix(f, p + "attn_v.weight", c.kv_dim(), c.n_embd);
    w.wo = matrix(f, p + "attn_output.weight", c.n_embd, c.n_embd);
    w.ffn_norm = vector_f32(f, p + "ffn_norm.weight", c.n_embd);
    w.w_gate = matrix(f, p + "ffn_gate.weight", c.n_ff, c.n_embd);
    w.w_up = matrix(f, p + "ffn_up.weight", c.n_ff, c.n_embd);
    w.w_down = matrix(f, p + "ffn_down.weight", c.n_embd, c.n_ff);
  }
}

std::size_t LlamaModel::bytes_per_token_dense() const {
  std::size_t total = output_.bytes();
  for (auto const& l : layers_) total += l.attention_bytes() + l.ffn_bytes();
  return total;
}

}  // namespace skipllm::engine
