#include "model/llama_host.hpp"

#include "format/int8_dot.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "model/standin.hpp"

namespace skipllm::engine {

namespace {
// Below this many rows a weight row is used in its stored type; from here on it is worth
// dequantizing it once and running fp32 dots against every row.
constexpr int kDequantizeRows = 4;

// Multiply-adds below which attention runs on the calling thread.
constexpr std::int64_t kSerialAttentionWork = 1 << 12;

float silu(float v) { return v / (1.0f + std::exp(-v)); }
}  // namespace

void rms_norm(float const* x, float const* weight, float* y, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  float const scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale * weight[i];
}

namespace {

// The decode-time activations of a matmul group in the formats its weight types take, quantized
// once by the calling thread before the parallel pass.
struct GroupActivations {
  std::array<std::int64_t, kMaxMatmulOutputs> block{};  // per output: 32, 256, or 0 for fp32
  std::array<Int8RowDot, kMaxMatmulOutputs> dot32{};    // per output with block 32: its kernel
  std::array<Int8KRowDot, kMaxMatmulOutputs> dot256{};  // per output with block 256: its kernel
  std::vector<Int8Activations>* blocks32 = nullptr;     // [rows] when some output takes them
  std::vector<Int8KActivations>* blocks256 = nullptr;   // [rows] likewise

  GroupActivations(std::span<MatmulOutput const> outputs, float const* x, int rows, bool int8) {
    std::int64_t const in = outputs.front().w->cols;
    // The calling thread's scratch, reused; reached through pointers because a lambda does not
    // capture a thread_local: the workers would see their own, empty, instances.
    thread_local std::vector<Int8Activations> scratch32;
    thread_local std::vector<Int8KActivations> scratch256;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
      std::int64_t const b = int8 ? int8_activation_block(outputs[k].w->type) : 0;
      block[k] = b != 0 && in % b == 0 ? b : 0;
      if (block[k] == 32) {
        blocks32 = &scratch32;
        dot32[k] = int8_row_dot(outputs[k].w->type);
      } else if (block[k] == 256) {
        blocks256 = &scratch256;
        dot256[k] = int8k_row_dot(outputs[k].w->type);
      }
    }
    auto const n = static_cast<std::size_t>(rows);
    if (blocks32 != nullptr) {
      if (blocks32->size() < n) blocks32->resize(n);
      for (std::size_t r = 0; r < n; ++r) quantize_activations(x + r * in, in, (*blocks32)[r]);
    }
    if (blocks256 != nullptr) {
      if (blocks256->size() < n) blocks256->resize(n);
      for (std::size_t r = 0; r < n; ++r) quantize_activations(x + r * in, in, (*blocks256)[r]);
    }
  }
};

}  // namespace

void matmul(ThreadPool& pool, std::span<MatmulOutput const> outputs, float const* x, int rows,
            ActivationPrecision precision) {
  if (outputs.empty() || outputs.size() > kMaxMatmulOutputs)
    throw std::invalid_argument("engine: a matmul group holds 1 to " + std::to_string(kMaxMatmulOutputs) + " products");
  std::int64_t const in = outputs.front().w->cols;
  std::array<std::int64_t, kMaxMatmulOutputs + 1> first{};  // outputs[k] owns rows first[k] .. first[k+1]-1
  for (std::size_t k = 0; k < outputs.size(); ++k) first[k + 1] = first[k] + outputs[k].w->rows;
  bool const decode = rows < kDequantizeRows;
  GroupActivations const act(outputs, x, rows, decode && precision == ActivationPrecision::kInt8);
  pool.parallel_for(first[outputs.size()], [&](std::int64_t begin, std::int64_t end) {
    thread_local std::vector<float> dequantized;
    std::size_t k = 0;
    for (std::int64_t i = begin; i < end; ++i) {
      while (i >= first[k + 1]) ++k;
      WeightMatrix const& w = *outputs[k].w;
      std::int64_t const o = i - first[k];
      float* y = outputs[k].y;
      if (!decode) {  // prefill: dequantize the weight row once for all rows
        dequantized.resize(static_cast<std::size_t>(in));
        dequantize_row(w.type, w.row(o), dequantized.data(), in);
        auto const* bytes = reinterpret_cast<std::byte const*>(dequantized.data());
        for (int r = 0; r < rows; ++r) y[r * w.rows + o] = dot_row(GgmlType::F32, bytes, x + r * in, in);
      } else if (act.block[k] == 32) {
        for (int r = 0; r < rows; ++r)
          y[r * w.rows + o] = act.dot32[k](w.row(o), (*act.blocks32)[static_cast<std::size_t>(r)]);
      } else if (act.block[k] == 256) {
        for (int r = 0; r < rows; ++r)
          y[r * w.rows + o] = act.dot256[k](w.row(o), (*act.blocks256)[static_cast<std::size_t>(r)]);
      } else {
        for (int r = 0; r < rows; ++r) y[r * w.rows + o] = dot_row(w.type, w.row(o), x + r * in, in);
      }
    }
  });
}

void matmul(ThreadPool& pool, WeightMatrix const& w, float const* x, int rows, float* y,
            ActivationPrecision precision) {
  MatmulOutput const output{&w, y};
  matmul(pool, std::span<MatmulOutput const>(&output, 1), x, rows, precision);
}

LlamaHost::LlamaHost(LlamaModel const& model, ThreadPool& pool, int max_slots, int max_context,
                     ActivationPrecision precision, KvCacheType kv_cache)
    : model_(model),
      pool_(pool),
      max_slots_(max_slots),
      max_context_(max_context),
      precision_(precision),
      kv_(model.config(), max_slots, max_context, kv_cache) {
  LlamaConfig const& c = model.config();
  int const half = c.head_dim / 2;
  inv_freq_.resize(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) {
    inv_freq_[static_cast<std::size_t>(i)] =
        static_cast<float>(std::pow(static_cast<double>(c.rope_base), -2.0 * i / c.head_dim));
  }
}

LlamaHost::Step LlamaHost::make_step(int capacity) const {
  LlamaConfig const& c = model_.config();
  auto const cap = static_cast<std::size_t>(capacity);
  Step s;
  s.capacity = capacity;
  s.tokens.resize(cap);
  s.positions.resize(cap);
  s.slots.resize(cap);
  for (auto* v : {&s.x, &s.f, &s.normed, &s.q, &s.attn, &s.down, &s.attn_out})
    v->resize(cap * static_cast<std::size_t>(c.n_embd));
  s.gate.resize(cap * static_cast<std::size_t>(c.n_ff));
  s.up.resize(cap * static_cast<std::size_t>(c.n_ff));
  s.rope.resize(cap * static_cast<std::size_t>(c.head_dim));
  return s;
}

void LlamaHost::set_tokens(Step& s, std::span<std::int32_t const> tokens, std::span<int const> positions,
                           std::span<int const> slots) const {
  LlamaConfig const& c = model_.config();
  if (tokens.size() != positions.size() || tokens.size() != slots.size()) {
    throw std::invalid_argument("engine: tokens, positions and slots differ in length");
  }
  if (tokens.size() > static_cast<std::size_t>(s.capacity)) {
    throw std::invalid_argument("engine: " + std::to_string(tokens.size()) + " rows exceed the step capacity " +
                                std::to_string(s.capacity));
  }
  s.rows = static_cast<int>(tokens.size());
  for (int r = 0; r < s.rows; ++r) {
    auto const ru = static_cast<std::size_t>(r);
    if (tokens[ru] < 0 || tokens[ru] >= c.vocab)
      throw std::out_of_range("engine: token id " + std::to_string(tokens[ru]) + " is outside the vocabulary of " +
                              std::to_string(c.vocab) + " tokens");
    if (positions[ru] < 0 || positions[ru] >= max_context_) {
      throw std::out_of_range("engine: position " + std::to_string(positions[ru]) + " exceeds the context of " +
                              std::to_string(max_context_) + " tokens");
    }
    if (slots[ru] < 0 || slots[ru] >= max_slots_)
      throw std::out_of_range("engine: slot " + std::to_string(slots[ru]) + " out of range");
    s.tokens[ru] = tokens[ru];
    s.positions[ru] = positions[ru];
    s.slots[ru] = slots[ru];
    WeightMatrix const& e = model_.token_embedding();
    dequantize_row(e.type, e.row(tokens[ru]), &s.x[ru * static_cast<std::size_t>(c.n_embd)], c.n_embd);
    // RoPE angles for this position: pairs (2i, 2i+1) rotate by position * inv_freq[i].
    float* rope = &s.rope[ru * static_cast<std::size_t>(c.head_dim)];
    for (std::size_t i = 0; i < inv_freq_.size(); ++i) {
      double const angle = static_cast<double>(positions[ru]) * inv_freq_[i];
      rope[2 * i] = static_cast<float>(std::cos(angle));
      rope[2 * i + 1] = static_cast<float>(std::sin(angle));
    }
  }
}

namespace {
void apply_rope(float* v, float const* rope, int n_heads, int head_dim) {
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + h * head_dim;
    for (int i = 0; i < head_dim / 2; ++i) {
      float const cs = rope[2 * i], sn = rope[2 * i + 1];
      float const x0 = x[2 * i], x1 = x[2 * i + 1];
      x[2 * i] = x0 * cs - x1 * sn;
      x[2 * i + 1] = x0 * sn + x1 * cs;
    }
  }
}
}  // namespace

void LlamaHost::attention_block(int layer, Step& s) {
  LlamaConfig const& c = model_.config();
  LlamaLayerWeights const& w = model_.layer(layer);
  std::size_t const d = static_cast<std::size_t>(c.n_embd);
  for (int r = 0; r < s.rows; ++r) { rms_norm(&s.x[r * d], w.attn_norm.data(), &s.normed[r * d], c.n_embd, c.rms_eps); }
  // K and V go straight to the cache; f is free scratch until the FFN runs.
  float* k = s.f.data();
  float* v = s.down.data();
  MatmulOutput const qkv[] = {{&w.wq, s.q.data()}, {&w.wk, k}, {&w.wv, v}};  // one parallel pass
  matmul(pool_, qkv, s.normed.data(), s.rows, precision_);
  std::size_t const kv = static_cast<std::size_t>(c.kv_dim());
  for (int r = 0; r < s.rows; ++r) {
    float const* rope = &s.rope[static_cast<std::size_t>(r) * c.head_dim];
    apply_rope(&s.q[r * d], rope, c.n_heads, c.head_dim);
    apply_rope(&k[r * kv], rope, c.n_kv_heads, c.head_dim);
    kv_.store(s.slots[static_cast<std::size_t>(r)], layer, s.positions[static_cast<std::size_t>(r)], &k[r * kv],
              &v[r * kv]);
  }
  auto attend_range = [&](std::int64_t begin, std::int64_t end) {
    thread_local std::vector<float> scores;
    for (std::int64_t i = begin; i < end; ++i)
      attend(s, layer, static_cast<int>(i / c.n_heads), static_cast<int>(i % c.n_heads), scores);
  };
  std::int64_t const items = static_cast<std::int64_t>(s.rows) * c.n_heads;
  // A short context is cheaper to attend to on this thread than to hand out (a dispatch costs
  // microseconds; one head over a few hundred positions costs less).
  std::int64_t const work = items * (s.positions[static_cast<std::size_t>(s.rows - 1)] + 1) * c.head_dim;
  if (work < kSerialAttentionWork) {
    attend_range(0, items);
  } else {
    pool_.parallel_for(items, attend_range);
  }
  if (layer_skip_) {
    // Added by ffn_block for the rows that run; dropped for the rows whose layer is skipped.
    matmul(pool_, w.wo, s.attn.data(), s.rows, s.attn_out.data(), precision_);
    return;
  }
  matmul(pool_, w.wo, s.attn.data(), s.rows, s.normed.data(), precision_);
  for (std::size_t i = 0; i < static_cast<std::size_t>(s.rows) * d; ++i) s.x[i] += s.normed[i];
}

void LlamaHost::attend(Step& s, int layer, int row, int head, std::vector<float>& scores) {
  LlamaConfig const& c = model_.config();
  auto const ru = static_cast<std::size_t>(row);
  int const slot = s.slots[ru];
  int const length = s.positions[ru] + 1;  // causal: positions 0 .. own
  int const kv_head = head / (c.n_heads / c.n_kv_heads);
  std::size_t const hd = static_cast<std::size_t>(c.head_dim);
  float const* q = &s.q[ru * static_cast<std::size_t>(c.n_embd) + static_cast<std::size_t>(head) * hd];
  float const scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  scores.resize(static_cast<std::size_t>(length));
  kv_.scores(slot, layer, kv_head, q, scale, length, scores.data());
  float const max_score = *std::max_element(scores.begin(), scores.end());
  float sum = 0;
  for (float& sc : scores) sum += (sc = std::exp(sc - max_score));
  float const inv_sum = 1.0f / sum;
  for (float& sc : scores) sc *= inv_sum;
  float* out = &s.attn[ru * static_cast<std::size_t>(c.n_embd) + static_cast<std::size_t>(head) * hd];
  std::fill_n(out, hd, 0.0f);
  kv_.add_weighted_values(slot, layer, kv_head, scores.data(), length, out);
}

void LlamaHost::ffn_block(int layer, Step& s, std::span<int const> rows) {
  LlamaConfig const& c = model_.config();
  LlamaLayerWeights const& w = model_.layer(layer);
  std::size_t const d = static_cast<std::size_t>(c.n_embd);
  std::size_t const ff = static_cast<std::size_t>(c.n_ff);
  int const n = static_cast<int>(rows.size());
  if (layer_skip_) {
    for (int const r : rows) {
      float* x = &s.x[static_cast<std::size_t>(r) * d];
      float const* a = &s.attn_out[static_cast<std::size_t>(r) * d];
      for (std::size_t i = 0; i < d; ++i) x[i] += a[i];
    }
  }
  // Gather the rows that run into a compact block, so skipped rows cost nothing.
  for (int i = 0; i < n; ++i) {
    rms_norm(&s.x[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)]) * d], w.ffn_norm.data(),
             &s.normed[static_cast<std::size_t>(i) * d], c.n_embd, c.rms_eps);
  }
  MatmulOutput const gate_up[] = {{&w.w_gate, s.gate.data()}, {&w.w_up, s.up.data()}};
  matmul(pool_, gate_up, s.normed.data(), n, precision_);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n) * ff; ++i) s.gate[i] = silu(s.gate[i]) * s.up[i];
  matmul(pool_, w.w_down, s.gate.data(), n, s.down.data(), precision_);
  for (int i = 0; i < n; ++i) {
    std::copy_n(&s.down[static_cast<std::size_t>(i) * d], d,
                &s.f[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)]) * d]);
  }
}

void LlamaHost::standin_block(int layer, Step& s, std::span<int const> rows) {
  LlamaConfig const& c = model_.config();
  StandIns const* standins = model_.standins();
  if (standins == nullptr || !standins->has(layer))
    throw std::logic_error("engine: a policy stands in for layer " + std::to_string(layer) +
                           "'s FFN, but the model has no stand-in map for it");
  std::size_t const d = static_cast<std::size_t>(c.n_embd);
  for (int const r : rows) {
    std::size_t const row = static_cast<std::size_t>(r) * d;
    rms_norm(&s.x[row], model_.layer(layer).ffn_norm.data(), &s.normed[row], c.n_embd, c.rms_eps);
    standins->apply(layer, &s.normed[row], &s.f[row], s.gate.data());  // gate: scratch of n_ff >= rank floats
  }
}

void LlamaHost::final_hidden(Step const& s, int row, std::span<float> out) const {
  LlamaConfig const& c = model_.config();
  rms_norm(&s.x[static_cast<std::size_t>(row) * c.n_embd], model_.output_norm().data(), out.data(), c.n_embd,
           c.rms_eps);
}

void LlamaHost::logits(Step& s, int row, std::span<float> out) {
  LlamaConfig const& c = model_.config();
  if (out.size() != static_cast<std::size_t>(c.vocab))
    throw std::invalid_argument("engine: logits buffer must hold vocab entries");
  float* hidden = &s.normed[0];
  final_hidden(s, row, std::span<float>(hidden, static_cast<std::size_t>(c.n_embd)));
  matmul(pool_, model_.output(), hidden, 1, out.data(), precision_);
}

}  // namespace skipllm::engine
