// toy_engine: the smallest complete integration of skipllm into a transformer engine.
//
// A 12-layer toy decoder with random weights, a real KV cache and real attention, wrapped as a
// skipllm Host. Its FFN outputs shrink with depth (as trained LLMs' do: the paper's "FFN
// saturation"), so the cosine across later FFN blocks rises and the greedy policy skips them.
// It prints the same statistics the real engine's CLI prints.
//
//   toy_engine [--tokens N] [--tau T] [--span K] [--warmup W] [--json FILE]
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <skipllm/skipllm.hpp>

namespace {

constexpr int kHidden = 64;
constexpr int kHeads = 4;
constexpr int kHeadDim = kHidden / kHeads;
constexpr int kFfn = 128;
constexpr int kLayers = 12;

using Matrix = std::vector<float>;  // row-major [out, in]

void matvec(Matrix const& w, float const* x, float* y, int out, int in) {
  for (int o = 0; o < out; ++o) {
    float acc = 0;
    for (int i = 0; i < in; ++i) acc += w[static_cast<std::size_t>(o * in + i)] * x[i];
    y[o] = acc;
  }
}

void rms_norm(float const* x, float* y) {
  float ss = 0;
  for (int i = 0; i < kHidden; ++i) ss += x[i] * x[i];
  float const scale = 1.0f / std::sqrt(ss / kHidden + 1e-5f);
  for (int i = 0; i < kHidden; ++i) y[i] = x[i] * scale;
}

// The engine. Everything skipllm needs is the six members marked "Host".
class ToyEngine {
 public:
  struct Step {  // Host: one decode step of one sequence
    int position = 0;
    std::vector<float> x = std::vector<float>(kHidden);  // residual stream
    std::vector<float> f = std::vector<float>(kHidden);  // FFN output
  };

  explicit ToyEngine(int max_tokens) : max_tokens_(max_tokens) {
    std::mt19937 rng(1234);
    for (int l = 0; l < kLayers; ++l) {
      Layer& w = layers_.emplace_back();
      w.wq = random(kHidden * kHidden, rng, kHidden);
      w.wk = random(kHidden * kHidden, rng, kHidden);
      w.wv = random(kHidden * kHidden, rng, kHidden);
      w.wo = random(kHidden * kHidden, rng, kHidden);
      w.w1 = random(kFfn * kHidden, rng, kHidden);
      w.w2 = random(kHidden * kFfn, rng, kFfn);
      w.ffn_scale = 1.2f * std::pow(0.72f, static_cast<float>(l));  // saturation with depth
      w.k_cache.assign(static_cast<std::size_t>(max_tokens * kHidden), 0.0f);
      w.v_cache.assign(static_cast<std::size_t>(max_tokens * kHidden), 0.0f);
    }
  }

  int num_layers() const { return kLayers; }  // Host

  void attention_block(int layer, Step& s) {  // Host: x += Attn(norm(x)), writes K/V
    Layer& w = layers_[static_cast<std::size_t>(layer)];
    float n[kHidden], q[kHidden], out[kHidden] = {}, proj[kHidden];
    rms_norm(s.x.data(), n);
    matvec(w.wq, n, q, kHidden, kHidden);
    float* k = &w.k_cache[static_cast<std::size_t>(s.position * kHidden)];
    float* v = &w.v_cache[static_cast<std::size_t>(s.position * kHidden)];
    matvec(w.wk, n, k, kHidden, kHidden);
    matvec(w.wv, n, v, kHidden, kHidden);
    for (int h = 0; h < kHeads; ++h) attend(w, q + h * kHeadDim, h, s.position, out + h * kHeadDim);
    matvec(w.wo, out, proj, kHidden, kHidden);
    for (int i = 0; i < kHidden; ++i) s.x[static_cast<std::size_t>(i)] += proj[i];
  }

  void ffn_block(int layer, Step& s, std::span<int const>) {  // Host: f = FFN(norm(x)), no residual add
    Layer const& w = layers_[static_cast<std::size_t>(layer)];
    float n[kHidden], hid[kFfn];
    rms_norm(s.x.data(), n);
    matvec(w.w1, n, hid, kFfn, kHidden);
    for (float& a : hid) a = a / (1.0f + std::exp(-a));  // SiLU
    matvec(w.w2, hid, s.f.data(), kHidden, kFfn);
    for (float& a : s.f) a *= w.ffn_scale;
  }

  skipllm::RowView<float> residual(Step& s) { return {s.x.data(), 1, kHidden, kHidden}; }          // Host
  skipllm::RowView<float const> ffn_output(Step& s) { return {s.f.data(), 1, kHidden, kHidden}; }  // Host

  //! The next input: a deterministic embedding derived from the previous output.
  void embed_next(Step& s) const {
    std::mt19937 rng(static_cast<unsigned>(s.position * 7919 + static_cast<int>(s.x[0] * 1000)));
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (float& a : s.x) a = dist(rng);
    ++s.position;
  }

  int max_tokens() const { return max_tokens_; }

 private:
  struct Layer {
    Matrix wq, wk, wv, wo, w1, w2;
    float ffn_scale = 1;
    std::vector<float> k_cache, v_cache;  // [max_tokens, hidden]
  };

  static Matrix random(int n, std::mt19937& rng, int fan_in) {
    std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(fan_in)));
    Matrix m(static_cast<std::size_t>(n));
    for (float& a : m) a = dist(rng);
    return m;
  }

  void attend(Layer const& w, float const* q, int head, int position, float* out) const {
    std::vector<float> scores(static_cast<std::size_t>(position + 1));
    float max_score = -1e30f;
    for (int t = 0; t <= position; ++t) {
      float const* k = &w.k_cache[static_cast<std::size_t>(t * kHidden + head * kHeadDim)];
      float dot = 0;
      for (int i = 0; i < kHeadDim; ++i) dot += q[i] * k[i];
      scores[static_cast<std::size_t>(t)] = dot / std::sqrt(static_cast<float>(kHeadDim));
      max_score = std::max(max_score, scores[static_cast<std::size_t>(t)]);
    }
    float sum = 0;
    for (float& sc : scores) sum += (sc = std::exp(sc - max_score));
    for (int t = 0; t <= position; ++t) {
      float const* v = &w.v_cache[static_cast<std::size_t>(t * kHidden + head * kHeadDim)];
      for (int i = 0; i < kHeadDim; ++i) out[i] += scores[static_cast<std::size_t>(t)] / sum * v[i];
    }
  }

  int max_tokens_;
  std::vector<Layer> layers_;
};

struct Options {
  int tokens = 64;
  skipllm::policy::RuntimePolicies policies{skipllm::policy::Greedy{0.95f, 4, 1}, skipllm::policy::ColdLayers{2, 2},
                                            skipllm::policy::Warmup{8, 6}};
  std::string json;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--tokens")
      o.tokens = std::stoi(value());
    else if (a == "--tau")
      o.policies.skip.tau = std::stof(value());
    else if (a == "--span")
      o.policies.skip.span = std::stoi(value());
    else if (a == "--warmup")
      o.policies.warmup.tokens = std::stoi(value());
    else if (a == "--json")
      o.json = value();
    else
      throw std::invalid_argument("unknown option " + a);
  }
  if (o.tokens < 1 || o.tokens > 4096) throw std::invalid_argument("--tokens must be in [1, 4096]");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  Options const opt = parse(argc, argv);
  ToyEngine engine(opt.tokens);
  skipllm::DecoderStack<ToyEngine, skipllm::policy::RuntimePolicies> stack(engine, opt.policies,
                                                                           {.record_trace = !opt.json.empty()});
  stack.begin_sequence(0);
  ToyEngine::Step step;
  engine.embed_next(step);
  step.position = 0;
  for (int t = 0; t < opt.tokens; ++t) {
    stack.decode(step);
    engine.embed_next(step);
  }
  std::string const policy = skipllm::describe(stack.layer().policies());
  skipllm::print_summary(std::cout, stack.statistics(), policy);
  if (!opt.json.empty()) {
    std::ofstream out(opt.json);
    skipllm::write_json(out, stack.statistics(), policy, &stack.trace());
    if (!out) throw std::runtime_error("cannot write " + opt.json);
    std::cout << "trace written to " << opt.json << "\n";
  }
  return 0;
} catch (std::exception const& e) {
  std::cerr << "toy_engine: " << e.what() << "\n";
  return 2;
}
