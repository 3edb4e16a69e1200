// CudaGenerator: the LLaMA forward pass on a CUDA device as a skipllm::cuda::Host.
//
// Mirrors model/llama_host.cpp operation by operation (RMSNorm from a double sum of squares,
// interleaved-pair RoPE with angles computed on the host in double, grouped-query attention
// over an fp32 KV cache, SwiGLU, tied embeddings), with products and sums rounded one by one
// where the CPU's order is cheap to follow, so dense greedy tokens match the CPU engine's. The
// matrix products are warp-per-row GEMVs over weights dequantized at load. The sums of squares
// come from the residual adds themselves (the library's next-norm hook for the FFN's add, the
// engine's own fused add for the attention's), so no RMSNorm here reduces.
#include "cuda/cuda_generator.hpp"

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <skipllm/cuda/decoder_stack.cuh>
#include <skipllm/cuda/next_norm.cuh>
#include <skipllm/policy/validate.hpp>

#include "cuda/decode_rows.hpp"
#include "format/quant.hpp"

namespace skipllm::engine {

namespace cu = skipllm::cuda;

namespace cuda_kernels {

constexpr int kMaxHeadDim = 256;
constexpr int kNormThreads = 256;
constexpr int kGemvWarps = 8;
constexpr int kAttentionThreads = 128;

//! What the host writes before each step, per row: the token, its position, the slot whose KV
//! cache it uses and its RoPE angles.
struct TokenInput {
  int token = 0;
  int position = 0;
  int slot = 0;
  float rope[kMaxHeadDim] = {};  //!< cos, sin interleaved per pair (as LlamaHost::set_tokens)
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

// The block's sum of `mine` (kNormThreads threads), valid in every thread: a pairwise tree in
// double, as the library's residual kernel sums its squares.
__device__ double block_sum(double mine) {
  __shared__ double partial[kNormThreads];
  int const tid = static_cast<int>(threadIdx.x);
  partial[tid] = mine;
  __syncthreads();
  for (int s = kNormThreads / 2; s > 0; s >>= 1) {
    if (tid < s) partial[tid] = __dadd_rn(partial[tid], partial[tid + s]);
    __syncthreads();
  }
  double const total = partial[0];
  __syncthreads();  // partial is reused by the next call
  return total;
}

// One block per row: x[row] <- its token's embedding, and sum_squares[row] <- sum x^2 (the next
// RMSNorm's statistic, cuda/next_norm.cuh).
template <class W>
__global__ void __launch_bounds__(kNormThreads)
    embed(W const* table, int cols, TokenInput const* in, float* x, double* sum_squares) {
  int const row = static_cast<int>(blockIdx.x);
  W const* src = table + static_cast<std::size_t>(in[row].token) * cols;
  float* dst = x + static_cast<std::size_t>(row) * cols;
  double ss = 0;
  for (int i = static_cast<int>(threadIdx.x); i < cols; i += kNormThreads) {
    dst[i] = to_float(src[i]);
    ss = __dadd_rn(ss, static_cast<double>(dst[i]) * dst[i]);
  }
  double const total = block_sum(ss);
  if (threadIdx.x == 0) sum_squares[row] = total;
}

// One block per row: x[row] += y[row] (the attention's residual add), and sum_squares[row] <-
// sum x^2 of the new row, fused as the library fuses the FFN's add.
__global__ void __launch_bounds__(kNormThreads) add_rows(float* x, float const* y, double* sum_squares, int cols) {
  int const row = static_cast<int>(blockIdx.x);
  x += static_cast<std::size_t>(row) * cols;
  y += static_cast<std::size_t>(row) * cols;
  double ss = 0;
  for (int i = static_cast<int>(threadIdx.x); i < cols; i += kNormThreads) {
    x[i] = __fadd_rn(x[i], y[i]);
    ss = __dadd_rn(ss, static_cast<double>(x[i]) * x[i]);
  }
  double const total = block_sum(ss);
  if (threadIdx.x == 0) sum_squares[row] = total;
}

//! Which statistic row `i` of a norm's input uses: its own (rows == nullptr), or that of residual
//! row rows[i] for the FFN's compacted batch (rows at or past *num_rows are padding: zeros).
struct NormRows {
  int const* rows = nullptr;
  int const* num_rows = nullptr;
};

// RMSNorm without a reduction, one block per row: y = x * (1 / sqrt(sum / n + eps)) * w, the sum
// of squares kept current by whoever last changed the residual row (embed, add_rows, or the
// library's residual kernel). The same float formula as the CPU's, from its double sum.
__global__ void __launch_bounds__(kNormThreads)
    scale_norm(float const* x, long long x_stride, double const* sum_squares, NormRows map, float const* w, float* y,
               long long y_stride, int n, float eps) {
  int const i = static_cast<int>(blockIdx.x);
  x += static_cast<long long>(i) * x_stride;
  y += static_cast<long long>(i) * y_stride;
  if (map.rows != nullptr && i >= *map.num_rows) {
    for (int c = static_cast<int>(threadIdx.x); c < n; c += kNormThreads) y[c] = 0.0f;
    return;
  }
  double const ss = sum_squares[map.rows != nullptr ? map.rows[i] : i];
  float const scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(static_cast<float>(ss / n), eps)));
  for (int c = static_cast<int>(threadIdx.x); c < n; c += kNormThreads) y[c] = __fmul_rn(__fmul_rn(x[c], scale), w[c]);
}

// y[b][r] = W[r] . x[b] for W [rows, cols] and batch row b = blockIdx.y: one warp per output row.
template <class W>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv(W const* w, float const* x, long long x_stride, float* y, long long y_stride, int rows, int cols) {
  int const lane = static_cast<int>(threadIdx.x) % 32;
  int const r = static_cast<int>(blockIdx.x) * kGemvWarps + static_cast<int>(threadIdx.x) / 32;
  if (r >= rows) return;
  x += static_cast<long long>(blockIdx.y) * x_stride;
  y += static_cast<long long>(blockIdx.y) * y_stride;
  W const* wr = w + static_cast<std::size_t>(r) * cols;
  float acc = 0;
  for (int k = lane; k < cols; k += 32) acc += to_float(wr[k]) * x[k];
  for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[r] = acc;
}

// Rotates pairs (2i, 2i+1) of every head of q (n_heads) and k (n_kv_heads) of row blockIdx.y.
__global__ void rope(float* q, float* k, TokenInput const* in, int n_heads, int n_kv_heads, int head_dim) {
  int const row = static_cast<int>(blockIdx.y);
  q += static_cast<std::size_t>(row) * n_heads * head_dim;
  k += static_cast<std::size_t>(row) * n_kv_heads * head_dim;
  float const* angles = in[row].rope;
  int const half = head_dim / 2;
  int const pairs = (n_heads + n_kv_heads) * half;
  for (int p = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); p < pairs;
       p += static_cast<int>(gridDim.x * blockDim.x)) {
    int const head = p / half, i = p % half;
    float* v = head < n_heads ? q + head * head_dim : k + (head - n_heads) * head_dim;
    float const cs = angles[2 * i], sn = angles[2 * i + 1];
    float const x0 = v[2 * i], x1 = v[2 * i + 1];
    v[2 * i] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
    v[2 * i + 1] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
  }
}

//! Where the KV cache of one layer and slot lies: [slot][K, V][position][kv_dim] per layer.
struct KvPlanes {
  float* layer = nullptr;  //!< the layer's first slot
  std::size_t plane = 0;   //!< elements of one K (or V) plane: max_context * kv_dim
  __device__ float* k(int slot) const { return layer + static_cast<std::size_t>(slot) * 2 * plane; }
  __device__ float* v(int slot) const { return k(slot) + plane; }
};

// K and V of row blockIdx.x's position into its slot's cache.
__global__ void store_kv(float const* k, float const* v, KvPlanes cache, TokenInput const* in, int kv_dim) {
  int const row = static_cast<int>(blockIdx.x);
  std::size_t const base = static_cast<std::size_t>(in[row].position) * kv_dim;
  float* const kc = cache.k(in[row].slot);
  float* const vc = cache.v(in[row].slot);
  for (int i = static_cast<int>(threadIdx.x); i < kv_dim; i += static_cast<int>(blockDim.x)) {
    kc[base + i] = k[static_cast<std::size_t>(row) * kv_dim + i];
    vc[base + i] = v[static_cast<std::size_t>(row) * kv_dim + i];
  }
}

// One block per (query head, row): causal softmax attention over the row's positions 0 ..
// position in its slot's cache.
__global__ void __launch_bounds__(kAttentionThreads)
    attention(float const* q, KvPlanes cache, float* out, TokenInput const* in, int n_heads, int n_kv_heads,
              int head_dim) {
  extern __shared__ float scores[];  // [position + 1]
  __shared__ float reduce[kAttentionThreads];
  int const head = static_cast<int>(blockIdx.x);
  int const row = static_cast<int>(blockIdx.y);
  int const tid = static_cast<int>(threadIdx.x);
  int const length = in[row].position + 1;
  int const kv_head = head / (n_heads / n_kv_heads);
  int const kv_dim = n_kv_heads * head_dim;
  float const* const k_cache = cache.k(in[row].slot);
  float const* const v_cache = cache.v(in[row].slot);
  float const* qh = q + static_cast<std::size_t>(row) * n_heads * head_dim + head * head_dim;
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
  float* const o = out + static_cast<std::size_t>(row) * n_heads * head_dim + head * head_dim;
  for (int i = tid; i < head_dim; i += kAttentionThreads) {
    float acc = 0;
    for (int t = 0; t < length; ++t) {
      acc += __fmul_rn(scores[t], inv_sum) * v_cache[static_cast<std::size_t>(t) * kv_dim + kv_head * head_dim + i];
    }
    o[i] = acc;
  }
}

__global__ void silu_mul(float* gate, float const* up, int n) {
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += static_cast<int>(gridDim.x * blockDim.x)) {
    float const g = gate[i];
    gate[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
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

//! The forward pass as a skipllm::cuda::Host: enqueues only, on the stream it is given. Buffers
//! hold up to `max_rows` rows (one per sequence of a decode step); a step's rows are its own.
template <class W>
class DeviceLlama {
 public:
  struct Step {
    int rows = 1;  //!< rows of x_ (and of the token inputs) this step uses
  };

  DeviceLlama(LlamaModel const& model, int max_context, int max_rows)
      : config_(model.config()), max_context_(max_context), max_rows_(max_rows) {
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
    std::size_t const R = static_cast<std::size_t>(max_rows);
    auto const floats = [R](std::size_t n) { return DeviceArray(R * n * sizeof(float)); };
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
    kv_cache_ = DeviceArray(kv_cache_bytes(c, max_context, max_rows));
    input_ = DeviceArray(R * sizeof(k::TokenInput));
    sum_squares_ = DeviceArray(R * sizeof(double));
  }

  //! Bytes of the KV cache: fp32 K and V of every layer, slot and position.
  static std::size_t kv_cache_bytes(LlamaConfig const& c, int max_context, int slots) {
    return static_cast<std::size_t>(c.n_layers) * static_cast<std::size_t>(slots) * 2 *
           static_cast<std::size_t>(max_context) * static_cast<std::size_t>(c.kv_dim()) * sizeof(float);
  }

  // ---- skipllm::cuda::Host ----
  int num_layers() const { return config_.n_layers; }

  void attention_block(int layer, Step& step, cudaStream_t s) {
    LlamaConfig const& c = config_;
    DeviceLayer<W> const& w = layers_[static_cast<std::size_t>(layer)];
    auto const rows = static_cast<unsigned>(step.rows);
    long long const d = c.n_embd;
    k::scale_norm<<<rows, k::kNormThreads, 0, s>>>(x_.as<float>(), d, sum_squares(), k::NormRows{},
                                                   w.attn_norm.template as<float>(), normed_.as<float>(), d, c.n_embd,
                                                   c.rms_eps);
    gemv(w.wq, normed_.as<float>(), d, q_.as<float>(), c.n_embd, step.rows, s);
    gemv(w.wk, normed_.as<float>(), d, k_.as<float>(), c.kv_dim(), step.rows, s);
    gemv(w.wv, normed_.as<float>(), d, v_.as<float>(), c.kv_dim(), step.rows, s);
    int const pairs = (c.n_heads + c.n_kv_heads) * c.head_dim / 2;
    k::rope<<<dim3(blocks_for(pairs, 256), rows), 256, 0, s>>>(q_.as<float>(), k_.as<float>(), input(), c.n_heads,
                                                               c.n_kv_heads, c.head_dim);
    k::KvPlanes const cache{kv_cache_.as<float>() + static_cast<std::size_t>(layer) * layer_elements(), plane()};
    k::store_kv<<<rows, 256, 0, s>>>(k_.as<float>(), v_.as<float>(), cache, input(), c.kv_dim());
    std::size_t const shared = sizeof(float) * static_cast<std::size_t>(max_context_);
    k::attention<<<dim3(static_cast<unsigned>(c.n_heads), rows), k::kAttentionThreads, shared, s>>>(
        q_.as<float>(), cache, attn_.as<float>(), input(), c.n_heads, c.n_kv_heads, c.head_dim);
    gemv(w.wo, attn_.as<float>(), d, projected_.as<float>(), d, step.rows, s);
    k::add_rows<<<rows, k::kNormThreads, 0, s>>>(x_.as<float>(), projected_.as<float>(), sum_squares(), c.n_embd);
    cu::check_launch("attention_block");
  }

  // The norm is here, the residual add is not. At one row batch.input is the residual row
  // itself; above one row it is the stack's compacted copy (padded stride), and batch.output
  // has the stack's stride too. Rows past the live count are zero in, ignored out.
  void ffn_block(int layer, Step&, cu::FfnBatch<float> const& batch, cudaStream_t s) {
    LlamaConfig const& c = config_;
    DeviceLayer<W> const& w = layers_[static_cast<std::size_t>(layer)];
    int const rows = batch.max_rows;
    long long const d = c.n_embd, ff = c.n_ff;
    k::NormRows const map{batch.gate.rows, batch.gate.num_rows};  // batch row i is residual row rows[i]
    k::scale_norm<<<static_cast<unsigned>(rows), k::kNormThreads, 0, s>>>(
        batch.input.data, batch.input.stride, sum_squares(), map, w.ffn_norm.template as<float>(), normed_.as<float>(),
        d, c.n_embd, c.rms_eps);
    gemv(w.w_gate, normed_.as<float>(), d, gate_.as<float>(), ff, rows, s);
    gemv(w.w_up, normed_.as<float>(), d, up_.as<float>(), ff, rows, s);
    k::silu_mul<<<blocks_for(rows * c.n_ff, 256), 256, 0, s>>>(gate_.as<float>(), up_.as<float>(), rows * c.n_ff);
    gemv(w.w_down, gate_.as<float>(), ff, batch.output.data, batch.output.stride, rows, s);
    cu::check_launch("ffn_block");
  }

  skipllm::RowView<float> residual(Step& step) { return {x_.as<float>(), step.rows, config_.n_embd, config_.n_embd}; }

  // The next-RMSNorm hook (skipllm/cuda/next_norm.cuh): the stack's residual kernel writes each
  // row's new sum of squares here whenever the FFN ran; embed and add_rows write it wherever
  // this host changes the residual itself. So every norm here is a scale, with no reduction.
  double* residual_sum_squares(Step&) { return sum_squares(); }

  // ---- around the layers ----
  void embed(Step const& step, cudaStream_t s) {
    k::embed<<<static_cast<unsigned>(step.rows), k::kNormThreads, 0, s>>>(embedding_.get(), config_.n_embd, input(),
                                                                          x_.as<float>(), sum_squares());
    cu::check_launch("embed");
  }
  void logits(Step const& step, cudaStream_t s) {
    long long const d = config_.n_embd;
    k::scale_norm<<<static_cast<unsigned>(step.rows), k::kNormThreads, 0, s>>>(
        x_.as<float>(), d, sum_squares(), k::NormRows{}, output_norm_.as<float>(), normed_.as<float>(), d,
        config_.n_embd, config_.rms_eps);
    gemv(output_.rows > 0 ? output_ : embedding_, normed_.as<float>(), d, logits_.as<float>(), config_.vocab, step.rows,
         s);
    cu::check_launch("logits");
  }
  //! Enqueues the upload of the next step's inputs, one per row (pageable: staged before this
  //! returns).
  void set_inputs(std::span<k::TokenInput const> in, cudaStream_t s) {
    cu::check(cudaMemcpyAsync(input_.as<void>(), in.data(), in.size_bytes(), cudaMemcpyHostToDevice, s),
              "cudaMemcpyAsync(inputs)");
  }
  float const* device_logits() const { return logits_.as<float const>(); }
  LlamaConfig const& config() const { return config_; }
  std::size_t kv_cache_bytes() const { return kv_cache_.bytes(); }

 private:
  // y[b] = m . x[b] for the first `rows` rows (strides in elements).
  void gemv(DeviceMatrix<W> const& m, float const* x, long long x_stride, float* y, long long y_stride, int rows,
            cudaStream_t s) {
    k::gemv<W><<<dim3(blocks_for(m.rows, k::kGemvWarps), static_cast<unsigned>(rows)), k::kGemvWarps * 32, 0, s>>>(
        m.get(), x, x_stride, y, y_stride, m.rows, m.cols);
  }
  std::size_t plane() const { return static_cast<std::size_t>(max_context_) * config_.kv_dim(); }
  std::size_t layer_elements() const { return static_cast<std::size_t>(max_rows_) * 2 * plane(); }
  k::TokenInput const* input() const { return input_.as<k::TokenInput const>(); }
  double* sum_squares() const { return sum_squares_.as<double>(); }

  LlamaConfig config_;
  int max_context_;
  int max_rows_;
  std::vector<DeviceLayer<W>> layers_;
  DeviceMatrix<W> embedding_, output_;
  DeviceArray output_norm_, x_, normed_, q_, k_, v_, attn_, projected_, gate_, up_, logits_, kv_cache_, input_,
      sum_squares_;
};

}  // namespace

// The generator proper, for one weight type.
struct CudaGenerator::Impl {
  virtual ~Impl() = default;
  virtual std::span<float const> prefill(int slot, std::span<std::int32_t const> prompt) = 0;
  virtual std::span<float const> decode(std::span<int const> slots, std::span<std::int32_t const> tokens) = 0;
  virtual skipllm::SkipStatistics const& statistics() = 0;
  virtual skipllm::DecisionTrace& trace() = 0;
  virtual std::size_t kv_cache_bytes() const = 0;
  std::vector<int> positions;  //!< per slot; -1: no sequence started
  int max_context = 0;
};

namespace {

static_assert(cu::CudaHostFusesNextNorm<DeviceLlama<float>> && cu::CudaHostFusesNextNorm<DeviceLlama<__half>>,
              "DeviceLlama takes the next-RMSNorm statistic from the stack's residual kernel");

template <class W>
class GeneratorImpl final : public CudaGenerator::Impl {
  using Stack = cu::DecoderStack<DeviceLlama<W>, skipllm::policy::ConfigurablePolicies>;

 public:
  GeneratorImpl(LlamaModel const& model, skipllm::policy::ConfigurablePolicies const& policies, int context,
                CudaGeneratorOptions const& options)
      : model_(model, context, options.max_sequences),
        stream_(make_stream()),
        options_{.stack = {.max_sequences = options.max_sequences,
                           .max_rows = options.max_sequences,
                           .record_trace = options.record_trace},
                 .hidden = model.config().n_embd,
                 .max_prefill_rows = 1,
                 .trace_capacity = options.record_trace ? context * options.max_sequences : 0},
        workspace_(Stack::workspace_bytes(model_, options_)),
        stack_(model_, policies, options_, workspace_.as<void>(), workspace_.bytes(), stream_),
        graphs_(static_cast<std::size_t>(options.max_sequences)),
        logits_(static_cast<std::size_t>(options.max_sequences) * static_cast<std::size_t>(model.config().vocab)) {
    positions.assign(static_cast<std::size_t>(options.max_sequences), -1);
    max_context = context;
    LlamaConfig const& c = model.config();
    for (int i = 0; i < c.head_dim / 2; ++i) {
      inv_freq_.push_back(static_cast<float>(std::pow(static_cast<double>(c.rope_base), -2.0 * i / c.head_dim)));
    }
  }
  ~GeneratorImpl() override {
    graphs_.clear();
    (void)cudaStreamDestroy(stream_);
  }

  std::span<float const> prefill(int slot, std::span<std::int32_t const> prompt) override {
    std::size_t const s = checked_slot(slot);
    if (prompt.empty()) throw std::invalid_argument("engine: empty prompt");
    if (static_cast<int>(prompt.size()) >= max_context) {
      throw std::invalid_argument("engine: a prompt of " + std::to_string(prompt.size()) +
                                  " tokens leaves no room in a context of " + std::to_string(max_context));
    }
    for (std::int32_t const token : prompt) (void)checked(token);  // nothing runs on a bad prompt
    stack_.begin_sequence(slot, stream_);
    positions[s] = 0;
    typename DeviceLlama<W>::Step step{.rows = 1};
    for (std::int32_t const token : prompt) {
      k::TokenInput const in = input_for(token, slot);
      model_.set_inputs(std::span<k::TokenInput const>(&in, 1), stream_);
      model_.embed(step, stream_);
      stack_.prefill(step, stream_);
      ++positions[s];
    }
    model_.logits(step, stream_);
    return download_logits(1);
  }

  std::span<float const> decode(std::span<int const> slots, std::span<std::int32_t const> tokens) override {
    check_rows(slots, tokens);
    std::vector<k::TokenInput> inputs;
    for (std::size_t r = 0; r < slots.size(); ++r) inputs.push_back(input_for(tokens[r], slots[r]));
    int const rows = static_cast<int>(slots.size());
    model_.set_inputs(inputs, stream_);
    stack_.set_rows(slots, stream_);
    typename DeviceLlama<W>::Step step{.rows = rows};
    std::optional<cu::Graph>& graph = graphs_[static_cast<std::size_t>(rows - 1)];
    if (!graph) {  // one graph per row count: a graph bakes its launch shapes
      graph = cu::capture_graph(stream_, [&](cudaStream_t s) {
        model_.embed(step, s);
        stack_.decode(step, s);
        model_.logits(step, s);
      });
    }
    graph->launch(stream_);
    for (int const slot : slots) ++positions[static_cast<std::size_t>(slot)];
    return download_logits(rows);
  }

  skipllm::SkipStatistics const& statistics() override {
    stack_.collect(stream_);
    return stack_.statistics();
  }
  skipllm::DecisionTrace& trace() override {
    stack_.collect(stream_);
    return stack_.trace();
  }
  std::size_t kv_cache_bytes() const override { return model_.kv_cache_bytes(); }

 private:
  static cudaStream_t make_stream() {
    cudaStream_t s = nullptr;
    cu::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    return s;
  }

  std::size_t checked_slot(int slot) const { return engine::checked_slot(slot, positions.size()); }
  std::int32_t checked(std::int32_t token) const { return checked_token(token, model_.config().vocab); }
  void check_rows(std::span<int const> slots, std::span<std::int32_t const> tokens) const {
    check_decode_rows(slots, tokens, positions, model_.config().vocab, max_context);
  }

  k::TokenInput input_for(std::int32_t token, int slot) const {
    k::TokenInput in;
    in.token = checked(token);
    in.slot = slot;
    in.position = positions[static_cast<std::size_t>(slot)];
    for (std::size_t i = 0; i < inv_freq_.size(); ++i) {  // as LlamaHost::set_tokens
      double const angle = static_cast<double>(in.position) * inv_freq_[i];
      in.rope[2 * i] = static_cast<float>(std::cos(angle));
      in.rope[2 * i + 1] = static_cast<float>(std::sin(angle));
    }
    return in;
  }

  std::span<float const> download_logits(int rows) {
    std::size_t const n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(model_.config().vocab);
    cu::check(
        cudaMemcpyAsync(logits_.data(), model_.device_logits(), sizeof(float) * n, cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync(logits)");
    cu::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize(logits)");
    return std::span<float const>(logits_.data(), n);
  }

  DeviceLlama<W> model_;
  cudaStream_t stream_;
  cu::StackOptions options_;
  DeviceArray workspace_;
  Stack stack_;
  std::vector<std::optional<cu::Graph>> graphs_;  //!< [rows - 1]: the decode graph of that row count
  std::vector<float> inv_freq_;
  std::vector<float> logits_;
};

}  // namespace

CudaGenerator::CudaGenerator(LlamaModel const& model, skipllm::policy::ConfigurablePolicies const& policies,
                             int max_context, CudaGeneratorOptions const& options) {
  if (char const* reason = skipllm::policy::invalid_reason(policies)) throw std::invalid_argument(reason);
  if (options.max_sequences < 1) throw std::invalid_argument("engine: max_sequences must be at least 1");
  if (options.weights == DeviceWeights::kFloat32) {
    impl_ = std::make_unique<GeneratorImpl<float>>(model, policies, max_context, options);
  } else {
    impl_ = std::make_unique<GeneratorImpl<__half>>(model, policies, max_context, options);
  }
}

CudaGenerator::~CudaGenerator() = default;

std::span<float const> CudaGenerator::prefill(std::span<std::int32_t const> prompt) {
  return impl_->prefill(0, prompt);
}
std::span<float const> CudaGenerator::decode(std::int32_t token) {
  int const slot = 0;
  return impl_->decode(std::span<int const>(&slot, 1), std::span<std::int32_t const>(&token, 1));
}
std::span<float const> CudaGenerator::prefill(int slot, std::span<std::int32_t const> prompt) {
  return impl_->prefill(slot, prompt);
}
std::span<float const> CudaGenerator::decode(std::span<int const> slots, std::span<std::int32_t const> tokens) {
  return impl_->decode(slots, tokens);
}
int CudaGenerator::position() const noexcept { return std::max(impl_->positions[0], 0); }
int CudaGenerator::position(int slot) const {
  if (slot < 0 || slot >= max_sequences()) throw std::out_of_range("engine: slot " + std::to_string(slot));
  return std::max(impl_->positions[static_cast<std::size_t>(slot)], 0);
}
int CudaGenerator::max_context() const noexcept { return impl_->max_context; }
int CudaGenerator::max_sequences() const noexcept { return static_cast<int>(impl_->positions.size()); }
std::size_t CudaGenerator::kv_cache_bytes() const noexcept { return impl_->kv_cache_bytes(); }
skipllm::SkipStatistics const& CudaGenerator::statistics() { return impl_->statistics(); }
skipllm::DecisionTrace& CudaGenerator::trace() { return impl_->trace(); }

}  // namespace skipllm::engine
