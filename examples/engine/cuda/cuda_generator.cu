// CudaGenerator: the LLaMA forward pass on a CUDA device as a skipllm::cuda::Host.
//
// Mirrors model/llama_host.cpp operation by operation (RMSNorm with a double sum of squares,
// interleaved-pair RoPE with angles computed on the host in double, grouped-query attention
// over an fp32 KV cache, SwiGLU, tied embeddings), with products and sums rounded one by one
// where the CPU's order is cheap to follow, so dense greedy tokens match the CPU engine's. The
// matrix products are warp-per-row GEMVs over weights dequantized at load.
#include "cuda/cuda_generator.hpp"

#include <cuda_fp16.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <skipllm/cuda/decoder_stack.cuh>
#include <skipllm/policy/validate.hpp>

#include "format/quant.hpp"

namespace skipllm::engine {

namespace cu = skipllm::cuda;

namespace cuda_kernels {

constexpr int kMaxHeadDim = 256;
constexpr int kNormThreads = 256;
constexpr int kGemvWarps = 8;
constexpr int kAttentionThreads = 128;

//! What the host writes before each token: the token, its position and its RoPE angles.
struct TokenInput {
  int token = 0;
  int position = 0;
  float rope[kMaxHeadDim] = {};  //!< cos, sin interleaved per pair (as LlamaHost::set_tokens)
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <class W>
__global__ void embed(W const* table, int cols, TokenInput const* in, float* x) {
  W const* row = table + static_cast<std::size_t>(in->token) * cols;
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < cols;
       i += static_cast<int>(gridDim.x * blockDim.x)) {
    x[i] = to_float(row[i]);
  }
}

// y = x * (1 / sqrt(mean(x^2) + eps)) * w, the sum of squares in double (as the CPU).
__global__ void __launch_bounds__(kNormThreads) rms_norm(float const* x, float const* w, float* y, int n, float eps) {
  __shared__ double partial[kNormThreads];
  int const tid = static_cast<int>(threadIdx.x);
  double ss = 0;
  for (int i = tid; i < n; i += kNormThreads) ss += static_cast<double>(x[i]) * x[i];
  partial[tid] = ss;
  __syncthreads();
  for (int s = kNormThreads / 2; s > 0; s >>= 1) {
    if (tid < s) partial[tid] += partial[tid + s];
    __syncthreads();
  }
  float const scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(static_cast<float>(partial[0] / n), eps)));
  for (int i = tid; i < n; i += kNormThreads) y[i] = __fmul_rn(__fmul_rn(x[i], scale), w[i]);
}

// y[r] = W[r] . x for W [rows, cols]: one warp per output row.
template <class W>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv(W const* w, float const* x, float* y, int rows, int cols) {
  int const lane = static_cast<int>(threadIdx.x) % 32;
  int const r = static_cast<int>(blockIdx.x) * kGemvWarps + static_cast<int>(threadIdx.x) / 32;
  if (r >= rows) return;
  W const* wr = w + static_cast<std::size_t>(r) * cols;
  float acc = 0;
  for (int k = lane; k < cols; k += 32) acc += to_float(wr[k]) * x[k];
  for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[r] = acc;
}

// Rotates pairs (2i, 2i+1) of every head of q (n_heads) and k (n_kv_heads).
__global__ void rope(float* q, float* k, TokenInput const* in, int n_heads, int n_kv_heads, int head_dim) {
  int const half = head_dim / 2;
  int const pairs = (n_heads + n_kv_heads) * half;
  for (int p = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); p < pairs;
       p += static_cast<int>(gridDim.x * blockDim.x)) {
    int const head = p / half, i = p % half;
    float* v = head < n_heads ? q + head * head_dim : k + (head - n_heads) * head_dim;
    float const cs = in->rope[2 * i], sn = in->rope[2 * i + 1];
    float const x0 = v[2 * i], x1 = v[2 * i + 1];
    v[2 * i] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
    v[2 * i + 1] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
  }
}

// K and V of this position into the layer's cache ([position][kv_dim] planes).
__global__ void store_kv(float const* k, float const* v, float* k_cache, float* v_cache, TokenInput const* in,
                         int kv_dim) {
  std::size_t const base = static_cast<std::size_t>(in->position) * kv_dim;
  for (int i = static_cast<int>(threadIdx.x); i < kv_dim; i += static_cast<int>(blockDim.x)) {
    k_cache[base + i] = k[i];
    v_cache[base + i] = v[i];
  }
}

// One block per query head: causal softmax attention over positions 0 .. position.
__global__ void __launch_bounds__(kAttentionThreads)
    attention(float const* q, float const* k_cache, float const* v_cache, float* out, TokenInput const* in, int n_heads,
              int n_kv_heads, int head_dim) {
  extern __shared__ float scores[];  // [position + 1]
  __shared__ float reduce[kAttentionThreads];
  int const head = static_cast<int>(blockIdx.x);
  int const tid = static_cast<int>(threadIdx.x);
  int const length = in->position + 1;
  int const kv_head = head / (n_heads / n_kv_heads);
  int const kv_dim = n_kv_heads * head_dim;
  float const* qh = q + head * head_dim;
  float const scale = __fdiv_rn(1.0f, __fsqrt_rn(static_cast<float>(head_dim)));
  float local_max = -INFINITY;
  for (int t = tid; t < length; t += kAttentionThreads) {
    float const* kt = k_cache + static_cast<std::size_t>(t) * kv_dim + kv_head * head_dim;
    float dot = 0;
    for (int i = 0; i < head_dim; ++i) dot += qh[i] * kt[i];
    scores[t] = __fmul_rn(dot, scale);
    local_max = fmaxf(local_max, scores[t]);
  }
  reduce[tid] = local_max;
  __syncthreads();
  for (int s = kAttentionThreads / 2; s > 0; s >>= 1) {
    if (tid < s) reduce[tid] = fmaxf(reduce[tid], reduce[tid + s]);
    __syncthreads();
  }
  float const max_score = reduce[0];
  __syncthreads();
  float local_sum = 0;
  for (int t = tid; t < length; t += kAttentionThreads) {
    scores[t] = expf(scores[t] - max_score);
    local_sum += scores[t];
  }
  reduce[tid] = local_sum;
  __syncthreads();
  for (int s = kAttentionThreads / 2; s > 0; s >>= 1) {
    if (tid < s) reduce[tid] += reduce[tid + s];
    __syncthreads();
  }
  float const inv_sum = __fdiv_rn(1.0f, reduce[0]);
  for (int i = tid; i < head_dim; i += kAttentionThreads) {
    float acc = 0;
    for (int t = 0; t < length; ++t) {
      acc += __fmul_rn(scores[t], inv_sum) * v_cache[static_cast<std::size_t>(t) * kv_dim + kv_head * head_dim + i];
    }
    out[head * head_dim + i] = acc;
  }
}

__global__ void silu_mul(float* gate, float const* up, int n) {
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += static_cast<int>(gridDim.x * blockDim.x)) {
    float const g = gate[i];
    gate[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
  }
}

__global__ void add(float* x, float const* y, int n) {
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += static_cast<int>(gridDim.x * blockDim.x)) {
    x[i] = __fadd_rn(x[i], y[i]);
  }
}

}  // namespace cuda_kernels

namespace {

namespace k = cuda_kernels;

//! An owning device allocation.
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0) cu::check(cudaMalloc(&p_, bytes_), "cudaMalloc");
  }
  DeviceArray(DeviceArray&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceArray() {
    if (p_ != nullptr) (void)cudaFree(p_);
  }
  template <class T>
  T* as() const noexcept {
    return static_cast<T*>(p_);
  }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

template <class T>
DeviceArray upload(std::vector<T> const& host) {
  DeviceArray d(host.size() * sizeof(T));
  cu::check(cudaMemcpy(d.as<void>(), host.data(), d.bytes(), cudaMemcpyHostToDevice), "cudaMemcpy(upload)");
  return d;
}

//! A weight matrix dequantized to W on the device.
template <class W>
struct DeviceMatrix {
  DeviceArray data;
  int rows = 0, cols = 0;
  W const* get() const noexcept { return data.as<W const>(); }
};

template <class W>
DeviceMatrix<W> upload_matrix(WeightMatrix const& m) {
  std::vector<float> row(static_cast<std::size_t>(m.cols));
  std::vector<W> all(static_cast<std::size_t>(m.rows * m.cols));
  for (std::int64_t r = 0; r < m.rows; ++r) {
    dequantize_row(m.type, m.row(r), row.data(), m.cols);
    for (std::int64_t c = 0; c < m.cols; ++c) {
      if constexpr (std::is_same_v<W, float>) {
        all[static_cast<std::size_t>(r * m.cols + c)] = row[static_cast<std::size_t>(c)];
      } else {
        all[static_cast<std::size_t>(r * m.cols + c)] = __float2half_rn(row[static_cast<std::size_t>(c)]);
      }
    }
  }
  return {upload(all), static_cast<int>(m.rows), static_cast<int>(m.cols)};
}

template <class W>
struct DeviceLayer {
  DeviceArray attn_norm, ffn_norm;
  DeviceMatrix<W> wq, wk, wv, wo, w_gate, w_up, w_down;
};

unsigned blocks_for(int n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

//! The forward pass as a skipllm::cuda::Host: enqueues only, on the stream it is given.
template <class W>
class DeviceLlama {
 public:
  struct Step {
    skipllm::RowView<float> x;
  };

  DeviceLlama(LlamaModel const& model, int max_context) : config_(model.config()), max_context_(max_context) {
    LlamaConfig const& c = config_;
    if (static_cast<std::size_t>(max_context) * sizeof(float) > 48 * 1024) {
      throw std::invalid_argument(
          "engine: the CUDA engine attends over at most 12288 positions (one block's shared "
          "memory); got a context of " +
          std::to_string(max_context));
    }
    if (c.head_dim > k::kMaxHeadDim) {
      throw std::invalid_argument("engine: head_dim " + std::to_string(c.head_dim) + " exceeds the CUDA engine's " +
                                  std::to_string(k::kMaxHeadDim));
    }
    for (int l = 0; l < c.n_layers; ++l) {
      LlamaLayerWeights const& w = model.layer(l);
      DeviceLayer<W> d;
      d.attn_norm = upload(w.attn_norm);
      d.ffn_norm = upload(w.ffn_norm);
      d.wq = upload_matrix<W>(w.wq);
      d.wk = upload_matrix<W>(w.wk);
      d.wv = upload_matrix<W>(w.wv);
      d.wo = upload_matrix<W>(w.wo);
      d.w_gate = upload_matrix<W>(w.w_gate);
      d.w_up = upload_matrix<W>(w.w_up);
      d.w_down = upload_matrix<W>(w.w_down);
      layers_.push_back(std::move(d));
    }
    embedding_ = upload_matrix<W>(model.token_embedding());
    if (!model.tied_embeddings()) output_ = upload_matrix<W>(model.output());
    output_norm_ = upload(model.output_norm());
    auto const floats = [](std::size_t n) { return DeviceArray(n * sizeof(float)); };
    std::size_t const d = static_cast<std::size_t>(c.n_embd), kv = static_cast<std::size_t>(c.kv_dim());
    x_ = floats(d);
    normed_ = floats(d);
    q_ = floats(d);
    k_ = floats(kv);
    v_ = floats(kv);
    attn_ = floats(d);
    projected_ = floats(d);
    gate_ = floats(static_cast<std::size_t>(c.n_ff));
    up_ = floats(static_cast<std::size_t>(c.n_ff));
    logits_ = floats(static_cast<std::size_t>(c.vocab));
    kv_cache_ = floats(static_cast<std::size_t>(c.n_layers) * 2 * max_context * kv);
    input_ = DeviceArray(sizeof(k::TokenInput));
  }

  // ---- skipllm::cuda::Host ----
  int num_layers() const { return config_.n_layers; }

  void attention_block(int layer, Step&, cudaStream_t s) {
    LlamaConfig const& c = config_;
    DeviceLayer<W> const& w = layers_[static_cast<std::size_t>(layer)];
    k::rms_norm<<<1, k::kNormThreads, 0, s>>>(x_.as<float>(), w.attn_norm.template as<float>(), normed_.as<float>(),
                                              c.n_embd, c.rms_eps);
    gemv(w.wq, normed_.as<float>(), q_.as<float>(), s);
    gemv(w.wk, normed_.as<float>(), k_.as<float>(), s);
    gemv(w.wv, normed_.as<float>(), v_.as<float>(), s);
    int const pairs = (c.n_heads + c.n_kv_heads) * c.head_dim / 2;
    k::rope<<<blocks_for(pairs, 256), 256, 0, s>>>(q_.as<float>(), k_.as<float>(), input(), c.n_heads, c.n_kv_heads,
                                                   c.head_dim);
    float* const k_cache = kv_cache_.as<float>() + static_cast<std::size_t>(layer) * 2 * plane();
    float* const v_cache = k_cache + plane();
    k::store_kv<<<1, 256, 0, s>>>(k_.as<float>(), v_.as<float>(), k_cache, v_cache, input(), c.kv_dim());
    std::size_t const shared = sizeof(float) * static_cast<std::size_t>(max_context_);
    k::attention<<<static_cast<unsigned>(c.n_heads), k::kAttentionThreads, shared, s>>>(
        q_.as<float>(), k_cache, v_cache, attn_.as<float>(), input(), c.n_heads, c.n_kv_heads, c.head_dim);
    gemv(w.wo, attn_.as<float>(), projected_.as<float>(), s);
    k::add<<<blocks_for(c.n_embd, 256), 256, 0, s>>>(x_.as<float>(), projected_.as<float>(), c.n_embd);
    cu::check_launch("attention_block");
  }

  // One row: batch.input is the residual row itself; the norm is here, the residual add is not.
  void ffn_block(int layer, Step&, cu::FfnBatch<float> const& batch, cudaStream_t s) {
    LlamaConfig const& c = config_;
    DeviceLayer<W> const& w = layers_[static_cast<std::size_t>(layer)];
    k::rms_norm<<<1, k::kNormThreads, 0, s>>>(batch.input.data, w.ffn_norm.template as<float>(), normed_.as<float>(),
                                              c.n_embd, c.rms_eps);
    gemv(w.w_gate, normed_.as<float>(), gate_.as<float>(), s);
    gemv(w.w_up, normed_.as<float>(), up_.as<float>(), s);
    k::silu_mul<<<blocks_for(c.n_ff, 256), 256, 0, s>>>(gate_.as<float>(), up_.as<float>(), c.n_ff);
    gemv(w.w_down, gate_.as<float>(), batch.output.data, s);
    cu::check_launch("ffn_block");
  }

  skipllm::RowView<float> residual(Step&) { return {x_.as<float>(), 1, config_.n_embd, config_.n_embd}; }

  // ---- around the layers ----
  void embed(cudaStream_t s) {
    k::embed<<<blocks_for(config_.n_embd, 256), 256, 0, s>>>(embedding_.get(), config_.n_embd, input(), x_.as<float>());
    cu::check_launch("embed");
  }
  void logits(cudaStream_t s) {
    k::rms_norm<<<1, k::kNormThreads, 0, s>>>(x_.as<float>(), output_norm_.as<float>(), normed_.as<float>(),
                                              config_.n_embd, config_.rms_eps);
    gemv(output_.rows > 0 ? output_ : embedding_, normed_.as<float>(), logits_.as<float>(), s);
    cu::check_launch("logits");
  }
  //! Enqueues the upload of the next token's input (pageable: staged before this returns).
  void set_input(k::TokenInput const& in, cudaStream_t s) {
    cu::check(cudaMemcpyAsync(input_.as<void>(), &in, sizeof in, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync(input)");
  }
  float const* device_logits() const { return logits_.as<float const>(); }
  LlamaConfig const& config() const { return config_; }

 private:
  void gemv(DeviceMatrix<W> const& m, float const* x, float* y, cudaStream_t s) {
    k::gemv<W><<<blocks_for(m.rows, k::kGemvWarps), k::kGemvWarps * 32, 0, s>>>(m.get(), x, y, m.rows, m.cols);
  }
  std::size_t plane() const { return static_cast<std::size_t>(max_context_) * config_.kv_dim(); }
  k::TokenInput const* input() const { return input_.as<k::TokenInput const>(); }

  LlamaConfig config_;
  int max_context_;
  std::vector<DeviceLayer<W>> layers_;
  DeviceMatrix<W> embedding_, output_;
  DeviceArray output_norm_, x_, normed_, q_, k_, v_, attn_, projected_, gate_, up_, logits_, kv_cache_, input_;
};

}  // namespace

// The generator proper, for one weight type.
struct CudaGenerator::Impl {
  virtual ~Impl() = default;
  virtual std::span<float const> prefill(std::span<std::int32_t const> prompt) = 0;
  virtual std::span<float const> decode(std::int32_t token) = 0;
  virtual skipllm::SkipStatistics const& statistics() = 0;
  virtual skipllm::DecisionTrace const& trace() = 0;
  int position = 0;
};

namespace {

template <class W>
class GeneratorImpl final : public CudaGenerator::Impl {
  using Stack = cu::DecoderStack<DeviceLlama<W>, skipllm::policy::ConfigurablePolicies>;

 public:
  GeneratorImpl(LlamaModel const& model, skipllm::policy::ConfigurablePolicies const& policies, int max_context,
                CudaGeneratorOptions const& options)
      : model_(model, max_context),
        max_context_(max_context),
        stream_(make_stream()),
        options_{.stack = {.max_sequences = 1, .record_trace = options.record_trace},
                 .hidden = model.config().n_embd,
                 .max_prefill_rows = 1,
                 .trace_capacity = options.record_trace ? max_context : 0},
        workspace_(Stack::workspace_bytes(model_, options_)),
        stack_(model_, policies, options_, workspace_.as<void>(), workspace_.bytes(), stream_),
        logits_(static_cast<std::size_t>(model.config().vocab)) {
    step_.x = model_.residual(step_);
    stack_.set_rows(std::vector<int>{0}, stream_);
    LlamaConfig const& c = model.config();
    for (int i = 0; i < c.head_dim / 2; ++i) {
      inv_freq_.push_back(static_cast<float>(std::pow(static_cast<double>(c.rope_base), -2.0 * i / c.head_dim)));
    }
  }
  ~GeneratorImpl() override {
    graph_.reset();
    (void)cudaStreamDestroy(stream_);
  }

  std::span<float const> prefill(std::span<std::int32_t const> prompt) override {
    if (prompt.empty()) throw std::invalid_argument("engine: empty prompt");
    if (static_cast<int>(prompt.size()) >= max_context_) {
      throw std::invalid_argument("engine: a prompt of " + std::to_string(prompt.size()) +
                                  " tokens leaves no room in a context of " + std::to_string(max_context_));
    }
    for (std::int32_t const token : prompt) (void)checked(token);  // nothing runs on a bad prompt
    stack_.begin_sequence(0, stream_);
    position = 0;
    for (std::int32_t const token : prompt) {
      model_.set_input(input_for(token), stream_);
      model_.embed(stream_);
      stack_.prefill(step_, stream_);
      ++position;
    }
    model_.logits(stream_);
    return download_logits();
  }

  std::span<float const> decode(std::int32_t token) override {
    if (position >= max_context_) throw std::length_error("engine: the context is full");
    model_.set_input(input_for(token), stream_);
    if (!graph_) {
      graph_ = cu::capture_graph(stream_, [&](cudaStream_t s) {
        model_.embed(s);
        stack_.decode(step_, s);
        model_.logits(s);
      });
    }
    graph_->launch(stream_);
    ++position;
    return download_logits();
  }

  skipllm::SkipStatistics const& statistics() override {
    stack_.collect(stream_);
    return stack_.statistics();
  }
  skipllm::DecisionTrace const& trace() override {
    stack_.collect(stream_);
    return stack_.trace();
  }

 private:
  static cudaStream_t make_stream() {
    cudaStream_t s = nullptr;
    cu::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    return s;
  }

  std::int32_t checked(std::int32_t token) const {
    if (token < 0 || token >= model_.config().vocab) {
      throw std::out_of_range("engine: token id " + std::to_string(token) + " is outside the vocabulary of " +
                              std::to_string(model_.config().vocab) + " tokens");
    }
    return token;
  }

  k::TokenInput input_for(std::int32_t token) const {
    k::TokenInput in;
    in.token = checked(token);
    in.position = position;
    for (std::size_t i = 0; i < inv_freq_.size(); ++i) {  // as LlamaHost::set_tokens
      double const angle = static_cast<double>(position) * inv_freq_[i];
      in.rope[2 * i] = static_cast<float>(std::cos(angle));
      in.rope[2 * i + 1] = static_cast<float>(std::sin(angle));
    }
    return in;
  }

  std::span<float const> download_logits() {
    cu::check(cudaMemcpyAsync(logits_.data(), model_.device_logits(), sizeof(float) * logits_.size(),
                              cudaMemcpyDeviceToHost, stream_),
              "cudaMemcpyAsync(logits)");
    cu::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize(logits)");
    return logits_;
  }

  DeviceLlama<W> model_;
  int max_context_;
  cudaStream_t stream_;
  cu::StackOptions options_;
  DeviceArray workspace_;
  Stack stack_;
  typename DeviceLlama<W>::Step step_;
  std::optional<cu::Graph> graph_;
  std::vector<float> inv_freq_;
  std::vector<float> logits_;
};

}  // namespace

CudaGenerator::CudaGenerator(LlamaModel const& model, skipllm::policy::ConfigurablePolicies const& policies,
                             int max_context, CudaGeneratorOptions const& options) {
  if (char const* reason = skipllm::policy::invalid_reason(policies)) throw std::invalid_argument(reason);
  if (options.weights == DeviceWeights::kFloat32) {
    impl_ = std::make_unique<GeneratorImpl<float>>(model, policies, max_context, options);
  } else {
    impl_ = std::make_unique<GeneratorImpl<__half>>(model, policies, max_context, options);
  }
}

CudaGenerator::~CudaGenerator() = default;

std::span<float const> CudaGenerator::prefill(std::span<std::int32_t const> prompt) { return impl_->prefill(prompt); }
std::span<float const> CudaGenerator::decode(std::int32_t token) { return impl_->decode(token); }
int CudaGenerator::position() const noexcept { return impl_->position; }
skipllm::SkipStatistics const& CudaGenerator::statistics() { return impl_->statistics(); }
skipllm::DecisionTrace const& CudaGenerator::trace() { return impl_->trace(); }

}  // namespace skipllm::engine
