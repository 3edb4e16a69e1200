#include "model/llama_model.hpp"

#include <charconv>
#include <limits>
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

// A float the forward pass divides by or takes powers of: NaN, infinities and values <= 0 would
// turn every hidden state into NaN instead of failing here.
float positive_float(GgufFile const& f, std::string const& k, double fallback) {
  double const v = f.find_float(k).value_or(fallback);
  if (!(v > 0 && v <= std::numeric_limits<float>::max())) {  // false for NaN; the cast below stays in range
    throw ModelError(f.label() + ": metadata " + k + " = " + std::to_string(v) + " is not a positive finite number");
  }
  return static_cast<float>(v);
}

// The vocabulary arrays and llama.vocab_size, where present, must count the rows of token_embd:
// a tokenizer with more tokens would index past the embedding, one with fewer would leave rows
// that can be sampled but not decoded. The typed getters also refuse element-type confusion
// (scores as INT8, token types as floats).
void check_vocabulary(GgufFile const& f, LlamaConfig const& c) {
  auto const expect = [&](std::uint64_t n, std::string const& claim) {
    if (n != static_cast<std::uint64_t>(c.vocab)) {
      throw ModelError(f.label() + ": " + claim + ", but token_embd.weight has " + std::to_string(c.vocab) + " rows");
    }
  };
  auto const entries = [&](char const* k, std::size_t n) { expect(n, k + (" has " + std::to_string(n)) + " entries"); };
  if (auto const n = f.find_uint(key(c, "vocab_size"))) expect(*n, key(c, "vocab_size") + " is " + std::to_string(*n));
  if (f.has("tokenizer.ggml.tokens"))
    entries("tokenizer.ggml.tokens", f.get_string_array("tokenizer.ggml.tokens").size());
  if (f.has("tokenizer.ggml.scores"))
    entries("tokenizer.ggml.scores", f.get_float_array("tokenizer.ggml.scores").size());
  if (f.has("tokenizer.ggml.token_type")) {
    entries("tokenizer.ggml.token_type", f.get_int_array("tokenizer.ggml.token_type").size());
  }
}

// Every blk.N tensor must belong to a layer the metadata counts; one past block_count means the
// file and its metadata disagree on the depth of the model.
void check_layer_tensors(GgufFile const& f, LlamaConfig const& c) {
  constexpr std::string_view prefix = "blk.";
  for (TensorInfo const& t : f.tensors()) {
    std::string_view const name = t.name;
    if (!name.starts_with(prefix)) continue;
    std::uint64_t layer = 0;
    auto const [end, ec] = std::from_chars(name.data() + prefix.size(), name.data() + name.size(), layer);
    bool const numbered = ec == std::errc{} && end != name.data() + name.size() && *end == '.';
    if (numbered && layer < static_cast<std::uint64_t>(c.n_layers)) continue;
    throw ModelError(f.label() + ": tensor " + t.name + " belongs to layer " +
                     std::string(name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size())) + ", but " +
                     key(c, "block_count") + " is " + std::to_string(c.n_layers));
  }
}

// "[32, 8, 2]": the dims the file declares, innermost first.
std::string shape(TensorInfo const& t) {
  std::string out = "[";
  for (int d = 0; d < t.n_dims; ++d) out += (d > 0 ? ", " : "") + std::to_string(t.ne[static_cast<std::size_t>(d)]);
  return out + "]";
}

WeightMatrix matrix(GgufFile const& f, std::string const& name, std::int64_t rows, std::int64_t cols) {
  TensorInfo const& t = f.tensor(name);
  if (t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows) {
    throw ModelError(f.label() + ": tensor " + name + " has shape " + shape(t) + ", expected [" + std::to_string(cols) +
                     ", " + std::to_string(rows) + "] (ne order)");
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
  c.rope_base = positive_float(f, key(c, "rope.freq_base"), 10000.0);
  c.rms_eps = positive_float(f, key(c, "attention.layer_norm_rms_epsilon"), 1e-5);
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
  std::int64_t const vocab = f.tensor("token_embd.weight").ne[1];  // >= 1: the reader refuses empty dims
  if (vocab > (1 << 30)) throw ModelError(f.label() + ": token_embd.weight has " + std::to_string(vocab) + " rows");
  c.vocab = static_cast<int>(vocab);
  if (c.n_layers > 256) throw ModelError(f.label() + ": more than 256 layers is not supported");
  return c;
}

LlamaModel::LlamaModel(GgufFile const& f) : config_(read_llama_config(f)) {
  LlamaConfig const& c = config_;
  token_embd_ = matrix(f, "token_embd.weight", c.vocab, c.n_embd);
  check_vocabulary(f, c);
  check_layer_tensors(f, c);
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
