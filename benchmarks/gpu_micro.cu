// GPU micro-benchmarks of the CUDA backend, every result a ratio of arms measured side by side
// in one run (interleaved A/B/A/B replays of CUDA graphs, CUDA events, medians):
//
//   1. dense with gate vs plain dense: a 7B-shaped FFN (hidden 4096, FFN 11008, SwiGLU, cuBLAS
//      GEMMs on bf16 / fp16 weights) through cuda::DecoderStack with policies that never skip
//      (gate kernel + IF node + fused residual/similarity per layer), against the same cuBLAS
//      FFN and a plain residual add in a graph without any of it. Also: weight bytes per second
//      against the same run's device copy bandwidth.
//   2. a skipped FFN: IF node with the condition 0 vs early-exit kernels (a 3-kernel GEMV FFN
//      whose kernels return at once), both minus a graph of the gate kernels alone.
//   3. the fused residual add + similarity kernel vs a plain residual add, hidden 576 to 8192.
//   4. the gate kernel (decisions + compaction + gather) vs batch size 1..64, against the dense
//      FFN step at the same batch.
//   5. whole decode steps of 7B- and 8B-shaped models (attention stand-in + SwiGLU FFN, 32
//      layers, weights generated on the device): dense tok/s and share of copy bandwidth,
//      gated/dense with nothing skipped, and speedups at forced 10/20/25/30% skipping against
//      the byte-ideal, at batch 1, 2, 4, 8 and 16; and 25% skipped by half the rows only.
//   6. batch-1 GEMV over fp16 weights (dequantized at load) vs over Q4_1 blocks dequantized in
//      registers, at 7B matrix shapes.
//
//   gpu_micro [--out DIR] [--commit SHA] [--reps N] [--quick]
// Writes DIR/gpu_micro_<date>.md (default DIR: benchmarks/results) and prints it.
#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <skipllm/cuda/decoder_stack.cuh>
#include <skipllm/cuda/gate_kernel.cuh>
#include <skipllm/cuda/graph.cuh>
#include <skipllm/policy/bundle.hpp>

#ifndef SKIPLLM_GIT_COMMIT
#  define SKIPLLM_GIT_COMMIT "unknown"
#endif

namespace cu = skipllm::cuda;
namespace p = skipllm::policy;

namespace {

#define BENCH_CUDA(call) ::skipllm::cuda::check((call), #call)

void check_cublas(cublasStatus_t s, char const* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("gpu_micro: ") + what + " failed: cuBLAS status " + std::to_string(int(s)));
  }
}

struct Options {
  std::string out_dir = "benchmarks/results";
  std::string commit = SKIPLLM_GIT_COMMIT;
  int reps = 200;
  bool quick = false;
};

// An owning device allocation.
class Buffer {
 public:
  explicit Buffer(std::size_t bytes) : bytes_(bytes) { BENCH_CUDA(cudaMalloc(&p_, bytes ? bytes : 1)); }
  ~Buffer() { (void)cudaFree(p_); }
  Buffer(Buffer const&) = delete;
  Buffer& operator=(Buffer const&) = delete;
  template <class T = void>
  T* get() const {
    return static_cast<T*>(p_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_;
};

__global__ void fill_random(unsigned short* p, std::size_t n, unsigned seed, bool bf16) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    float const v = (float(h & 0xffff) / 65536.0f - 0.5f) * 0.04f;  // small: activations stay finite
    if (bf16) {
      __nv_bfloat16 const b = __float2bfloat16_rn(v);
      p[i] = *reinterpret_cast<unsigned short const*>(&b);
    } else {
      __half const b = __float2half_rn(v);
      p[i] = *reinterpret_cast<unsigned short const*>(&b);
    }
  }
}

template <class D>
void randomize(Buffer& b, unsigned seed) {
  fill_random<<<1024, 256>>>(b.get<unsigned short>(), b.bytes() / 2, seed, std::is_same_v<D, __nv_bfloat16>);
  BENCH_CUDA(cudaGetLastError());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times graphs side by side: every rep launches each arm once, in turn. Returns the median
// seconds per launch of each arm.
std::vector<double> time_arms(std::vector<cu::Graph const*> const& arms, cudaStream_t stream, int reps) {
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  for (int w = 0; w < 3; ++w) {
    for (auto const* g : arms) g->launch(stream);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  std::vector<std::vector<double>> t(arms.size());
  for (int r = 0; r < reps; ++r) {
    for (std::size_t a = 0; a < arms.size(); ++a) {
      BENCH_CUDA(cudaEventRecord(start, stream));
      arms[a]->launch(stream);
      BENCH_CUDA(cudaEventRecord(stop, stream));
      BENCH_CUDA(cudaEventSynchronize(stop));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
      t[a].push_back(ms * 1e-3);
    }
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  std::vector<double> out;
  for (auto& v : t) out.push_back(median(v));
  return out;
}

// Device-to-device copy bandwidth (read + write bytes per second), best of several.
double copy_bandwidth(cudaStream_t stream) {
  std::size_t const bytes = std::size_t{1} << 30;
  Buffer a(bytes), b(bytes);
  BENCH_CUDA(cudaMemsetAsync(a.get(), 1, bytes, stream));
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  double best = 0;
  for (int i = 0; i < 6; ++i) {
    BENCH_CUDA(cudaEventRecord(start, stream));
    BENCH_CUDA(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream));
    BENCH_CUDA(cudaEventRecord(stop, stream));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    if (i > 0) best = std::max(best, 2.0 * double(bytes) / (ms * 1e-3));
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  return best;
}

// ---------------------------------------------------------------------------------------------
// Kernels of the baseline and of the early-exit FFN

// SwiGLU middle: h[b][j] = silu(gu[b][j]) * gu[b][ffn + j]. Guarded (early exit).
template <class D>
__global__ void silu_mul(D const* gu, D* h, int ffn, int const* live_rows, cu::Gate gate, bool guard) {
  if (guard && !cu::ffn_any_runs(gate)) return;
  int const b = static_cast<int>(blockIdx.y);
  if (live_rows != nullptr && b >= *live_rows) return;
  for (int j = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); j < ffn;
       j += static_cast<int>(gridDim.x * blockDim.x)) {
    float const g = cu::load_float(gu[std::size_t(b) * 2 * ffn + j]);
    float const u = cu::load_float(gu[std::size_t(b) * 2 * ffn + ffn + j]);
    h[std::size_t(b) * ffn + j] = cu::store_float<D>(g / (1.0f + __expf(-g)) * u);
  }
}

// y[b][r] = W[r] . x[b] for a row-major W [rows, cols]: one warp per output row, 16-byte loads.
// Guarded: returns at once when the gate says no row runs.
template <class D, int Warps>
__global__ void __launch_bounds__(Warps * 32)
    gemv(D const* w, D const* x, std::int64_t x_stride, D* y, std::int64_t y_stride, int rows, int cols, int batch,
         cu::Gate gate) {
  if (!cu::ffn_any_runs(gate)) return;
  int const warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  int const r = static_cast<int>(blockIdx.x) * Warps + warp;
  if (r >= rows) return;
  constexpr int kWidth = cu::vector_width_v<D>;
  D const* wr = w + std::size_t(r) * cols;
  int const live = *gate.num_rows < batch ? *gate.num_rows : batch;
  for (int b = 0; b < live; ++b) {
    D const* xb = x + b * x_stride;
    float acc = 0;
    for (int k = lane * kWidth; k + kWidth <= cols; k += 32 * kWidth) {
      cu::Vector<D> const wv = *reinterpret_cast<cu::Vector<D> const*>(wr + k);
      cu::Vector<D> const xv = *reinterpret_cast<cu::Vector<D> const*>(xb + k);
#pragma unroll
      for (int j = 0; j < kWidth; ++j) acc += cu::load_float(wv.v[j]) * cu::load_float(xv.v[j]);
    }
    for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) y[b * y_stride + r] = cu::store_float<D>(acc);
  }
}

// The baseline's residual add: x[r] += f[r], no similarity, vectorized like the library.
template <class D>
struct AddOnly {
  static constexpr int kWidth = cu::vector_width_v<D>;
  D* x;
  D const* f;
  __device__ void element(std::int64_t i) { x[i] = cu::store_float<D>(cu::load_float(x[i]) + cu::load_float(f[i])); }
  __device__ void vector(std::int64_t i) {
    cu::Vector<D> xv = *reinterpret_cast<cu::Vector<D> const*>(x + i);
    cu::Vector<D> const fv = *reinterpret_cast<cu::Vector<D> const*>(f + i);
#pragma unroll
    for (int j = 0; j < kWidth; ++j) xv.v[j] = cu::store_float<D>(cu::load_float(xv.v[j]) + cu::load_float(fv.v[j]));
    *reinterpret_cast<cu::Vector<D>*>(x + i) = xv;
  }
};

template <class D, int Threads>
__global__ void __launch_bounds__(Threads) plain_residual_add(skipllm::RowView<D> x, skipllm::RowView<D const> f) {
  AddOnly<D> op{x.row(blockIdx.x), f.row(blockIdx.x)};
  cu::for_each_in_row<Threads>(cu::split_row(op.x, op.f, x.cols), x.cols, static_cast<int>(threadIdx.x), op);
}

template <class D>
void launch_plain_add(skipllm::RowView<D> x, skipllm::RowView<D const> f, cudaStream_t s) {
  if (cu::residual_block_threads(x.cols, sizeof(D)) == cu::kResidualThreadsSmall) {
    plain_residual_add<D, cu::kResidualThreadsSmall>
        <<<static_cast<unsigned>(x.rows), cu::kResidualThreadsSmall, 0, s>>>(x, f);
  } else {
    plain_residual_add<D, cu::kResidualThreadsLarge>
        <<<static_cast<unsigned>(x.rows), cu::kResidualThreadsLarge, 0, s>>>(x, f);
  }
  BENCH_CUDA(cudaGetLastError());
}

// ---------------------------------------------------------------------------------------------
// A 7B-shaped SwiGLU FFN on cuBLAS: gu = W_gu x (W_gu: [2 ffn, hidden]), h = silu(g) u,
// f = W_d h (W_d: [hidden, ffn]). Row-major weights, read as transposed column-major.

template <class D>
struct CublasFfn {
  static constexpr cudaDataType_t kType = std::is_same_v<D, __nv_bfloat16> ? CUDA_R_16BF : CUDA_R_16F;
  int hidden, ffn, layers, max_rows;
  std::vector<std::unique_ptr<Buffer>> w_gu, w_d;
  Buffer gu, h, workspace;
  cublasHandle_t handle = nullptr;

  CublasFfn(int hidden_, int ffn_, int layers_, int max_rows_)
      : hidden(hidden_),
        ffn(ffn_),
        layers(layers_),
        max_rows(max_rows_),
        gu(std::size_t(max_rows_) * 2 * ffn_ * sizeof(D)),
        h(std::size_t(max_rows_) * ffn_ * sizeof(D)),
        workspace(std::size_t{32} << 20) {
    for (int l = 0; l < layers; ++l) {
      w_gu.push_back(std::make_unique<Buffer>(std::size_t(2) * ffn * hidden * sizeof(D)));
      w_d.push_back(std::make_unique<Buffer>(std::size_t(hidden) * ffn * sizeof(D)));
      randomize<D>(*w_gu.back(), 17u * unsigned(l) + 1);
      randomize<D>(*w_d.back(), 17u * unsigned(l) + 2);
    }
    check_cublas(cublasCreate(&handle), "cublasCreate");
  }
  ~CublasFfn() { (void)cublasDestroy(handle); }

  std::size_t weight_bytes_per_layer() const { return std::size_t(3) * ffn * hidden * sizeof(D); }

  // Enqueues layer l for `rows` rows: x [rows][x_stride] -> out [rows][out_stride].
  void enqueue(int l, D const* x, std::int64_t x_stride, D* out, std::int64_t out_stride, int rows, cudaStream_t s) {
    // cublasSetStream resets the workspace to cuBLAS's own pool, so set ours after it: no
    // allocation may happen inside a capture (and none is legal inside an IF body).
    check_cublas(cublasSetStream(handle, s), "cublasSetStream");
    check_cublas(cublasSetWorkspace(handle, workspace.get(), workspace.bytes()), "cublasSetWorkspace");
    float const one = 1.0f, zero = 0.0f;
    check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, 2 * ffn, rows, hidden, &one,
                              w_gu[std::size_t(l)]->get(), kType, hidden, x, kType, static_cast<int>(x_stride), &zero,
                              gu.get(), kType, 2 * ffn, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx(gate_up)");
    silu_mul<D><<<dim3(static_cast<unsigned>((ffn + 255) / 256), static_cast<unsigned>(rows)), 256, 0, s>>>(
        gu.get<D>(), h.get<D>(), ffn, nullptr, cu::Gate{}, false);
    BENCH_CUDA(cudaGetLastError());
    check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, hidden, rows, ffn, &one, w_d[std::size_t(l)]->get(),
                              kType, ffn, h.get(), kType, ffn, &zero, out, kType, static_cast<int>(out_stride),
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx(down)");
  }
};

// The skipllm CUDA host around the cuBLAS FFN: attention is left out (nothing to measure).
template <class D>
struct BenchHost {
  struct Step {
    skipllm::RowView<D> x;
  };
  CublasFfn<D>* ffn;
  int num_layers() const { return ffn->layers; }
  void attention_block(int, Step&, cudaStream_t) {}
  void ffn_block(int l, Step&, cu::FfnBatch<D> const& b, cudaStream_t s) {
    ffn->enqueue(l, b.input.data, b.input.stride, b.output.data, b.output.stride, b.max_rows, s);
  }
  skipllm::RowView<D> residual(Step& s) { return s.x; }
};

struct Report {
  std::ostringstream md;
};

// ---------------------------------------------------------------------------------------------
// 1. Dense with gate vs plain dense

template <class D>
void bench_dense(Report& rep, Options const& o, cudaStream_t stream, double copy_bw, char const* name) {
  constexpr int kHidden = 4096, kFfn = 11008;
  int const layers = o.quick ? 2 : 4;
  CublasFfn<D> ffn(kHidden, kFfn, layers, 1);
  Buffer x(kHidden * sizeof(D)), f(kHidden * sizeof(D));
  randomize<D>(x, 99);
  BENCH_CUDA(cudaDeviceSynchronize());
  skipllm::RowView<D> const xv{x.get<D>(), 1, kHidden, kHidden};
  skipllm::RowView<D const> const fv{f.get<D>(), 1, kHidden, kHidden};

  // Warm up every cuBLAS call before any capture (initialisation must not be captured).
  for (int l = 0; l < layers; ++l) ffn.enqueue(l, x.get<D>(), kHidden, f.get<D>(), kHidden, 1, stream);
  BENCH_CUDA(cudaStreamSynchronize(stream));

  cu::Graph plain = cu::capture_graph(stream, [&](cudaStream_t s) {
    for (int l = 0; l < layers; ++l) {
      ffn.enqueue(l, x.get<D>(), kHidden, f.get<D>(), kHidden, 1, s);
      launch_plain_add<D>(xv, fv, s);
    }
  });

  BenchHost<D> host{&ffn};
  using Stack = cu::DecoderStack<BenchHost<D>, p::DensePolicies>;
  cu::StackOptions const options{.stack = {.max_sequences = 1}, .hidden = kHidden};
  Buffer ws(Stack::workspace_bytes(host, options));
  Stack stack(host, {}, options, ws.get(), ws.bytes(), stream);
  typename BenchHost<D>::Step step{xv};
  stack.begin_sequence(0, stream);
  stack.set_rows(std::vector<int>{0}, stream);
  cu::Graph gated = stack.capture_decode(step, stream);

  auto const t = time_arms({&plain, &gated}, stream, o.quick ? 20 : std::max(50, o.reps / 4));
  double const bytes = double(ffn.weight_bytes_per_layer()) * layers;
  char line[512];
  std::snprintf(line, sizeof line, "| %s | %.1f | %.1f | **%.3f** | %.1f%% | %.1f%% |\n", name, 1e6 * t[0] / layers,
                1e6 * t[1] / layers, t[1] / t[0], 100.0 * bytes / t[0] / copy_bw, 100.0 * bytes / t[1] / copy_bw);
  rep.md << line;
}

// ---------------------------------------------------------------------------------------------
// 2. A skipped FFN: IF node vs early exit

// A gate that always says "skip" (StaticMask over every layer), on a carved workspace.
using SkipAll = skipllm::Policies<p::StaticMask, p::NoCold, p::NoWarmup, p::Cosine>;

template <class Policies, class D>
struct GateRig {
  cu::WorkspaceShape shape;
  std::unique_ptr<Buffer> ws;
  cu::StackBuffers<Policies, D> b;
  Buffer x;

  GateRig(Policies const& policies, int rows, int hidden, int layers, cudaStream_t stream)
      : x(std::size_t(rows) * hidden * sizeof(D)) {
    shape.num_layers = layers;
    shape.max_sequences = rows;
    shape.max_rows = rows;
    shape.hidden = hidden;
    shape.elem_bytes = sizeof(D);
    shape.policies_bytes = sizeof(Policies);
    ws = std::make_unique<Buffer>(cu::workspace_bytes(shape));
    b = cu::carve_workspace<Policies, D>(shape, ws->get(), ws->bytes());
    BENCH_CUDA(cudaMemcpyAsync(b.policies, &policies, sizeof policies, cudaMemcpyHostToDevice, stream));
    cu::launch_begin_sequences(b.states[0], 0, rows, stream);
    cu::launch_begin_sequences(b.states[1], 0, rows, stream);
    std::vector<int> slots(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) slots[std::size_t(r)] = r;
    BENCH_CUDA(cudaMemcpyAsync(b.row_slots, slots.data(), sizeof(int) * slots.size(), cudaMemcpyHostToDevice, stream));
    randomize<D>(x, 5);
    BENCH_CUDA(cudaStreamSynchronize(stream));
  }

  cu::GateParams<Policies, D> params(int layer, int rows, bool gather) const {
    cu::GateParams<Policies, D> g;
    g.gate = {b.policies,  b.states[layer & 1], b.states[(layer + 1) & 1],
              b.row_slots, shape.max_sequences, rows,
              layer,       shape.num_layers,    b.row_runs,
              b.run_rows,  b.num_run_rows,      b.decisions,
              b.scores};
    g.residual = skipllm::RowView<D const>{x.get<D>(), rows, shape.hidden, shape.hidden};
    if (gather && rows > 1) g.ffn_input = skipllm::RowView<D>{b.ffn_input.data, rows, shape.hidden, b.ffn_input.stride};
    return g;
  }
};

template <class D>
void bench_skipped(Report& rep, Options const& o, cudaStream_t stream) {
  constexpr int kHidden = 4096, kFfn = 11008, kWarps = 8;
  int const n = 32;  // skipped FFNs per graph
  SkipAll policies;
  for (int l = 0; l < n; ++l) policies.skip.layers.insert(l);
  GateRig<SkipAll, D> rig(policies, 1, kHidden, n, stream);
  Buffer w_gu(std::size_t(2) * kFfn * kHidden * sizeof(D)), w_d(std::size_t(kHidden) * kFfn * sizeof(D));
  Buffer gu(std::size_t(2) * kFfn * sizeof(D)), h(std::size_t(kFfn) * sizeof(D)), f(kHidden * sizeof(D));
  cudaStream_t body;
  BENCH_CUDA(cudaStreamCreateWithFlags(&body, cudaStreamNonBlocking));
  cu::Gate const gate = rig.b.gate();
  skipllm::RowView<D> const xv{rig.x.template get<D>(), 1, kHidden, kHidden};

  auto ffn = [&](cudaStream_t s) {  // the 3-kernel FFN with the early-exit guard, plus the residual kernel
    gemv<D, kWarps><<<(2 * kFfn + kWarps - 1) / kWarps, kWarps * 32, 0, s>>>(
        w_gu.get<D>(), xv.data, kHidden, gu.get<D>(), 2 * kFfn, 2 * kFfn, kHidden, 1, gate);
    silu_mul<D><<<dim3((kFfn + 255) / 256, 1), 256, 0, s>>>(gu.get<D>(), h.get<D>(), kFfn, gate.num_rows, gate, true);
    gemv<D, kWarps><<<(kHidden + kWarps - 1) / kWarps, kWarps * 32, 0, s>>>(w_d.get<D>(), h.get<D>(), kFfn, f.get<D>(),
                                                                            kHidden, kHidden, kFfn, 1, gate);
    cu::ResidualParams<D> r;
    r.residual = xv;
    r.ffn_output = skipllm::RowView<D const>{f.get<D>(), 1, kHidden, kHidden};
    r.rows = gate.rows;
    r.num_rows = gate.num_rows;
    cu::launch_residual_similarity<p::Cosine>(r, 1, s);
    BENCH_CUDA(cudaGetLastError());
  };
  cu::Graph gates_only = cu::capture_graph(stream, [&](cudaStream_t s) {
    for (int l = 0; l < n; ++l) cu::launch_gate(rig.params(l, 1, false), 1, s);
  });
  cu::Graph if_nodes = cu::capture_graph(stream, [&](cudaStream_t s) {
    for (int l = 0; l < n; ++l) {
      auto g = rig.params(l, 1, false);
      g.condition = cu::make_conditional_handle(s, 1u);
      g.set_condition = true;
      cu::launch_gate(g, 1, s);
      cu::capture_if(s, g.condition, body, ffn);
    }
  });
  cu::Graph early_exit = cu::capture_graph(stream, [&](cudaStream_t s) {
    for (int l = 0; l < n; ++l) {
      cu::launch_gate(rig.params(l, 1, false), 1, s);
      ffn(s);
    }
  });
  auto const t = time_arms({&gates_only, &if_nodes, &early_exit}, stream, o.quick ? 50 : o.reps);
  double const if_cost = (t[1] - t[0]) / n, exit_cost = (t[2] - t[0]) / n;
  char line[512];
  std::snprintf(line, sizeof line, "| %.2f | %.2f | %.2f | **%.2f** |\n", 1e6 * t[0] / n, 1e6 * if_cost,
                1e6 * exit_cost, exit_cost > 0 ? if_cost / exit_cost : 0.0);
  rep.md << line;
  BENCH_CUDA(cudaStreamDestroy(body));
}

// ---------------------------------------------------------------------------------------------
// 3. Fused residual add + similarity vs plain residual add

template <class D>
void bench_similarity(Report& rep, Options const& o, cudaStream_t stream) {
  int const k = 100;  // kernels per graph
  for (int rows : {1, 8}) {
    for (int hidden : {576, 2048, 4096, 8192}) {
      Buffer x(std::size_t(rows) * hidden * sizeof(D)), f(std::size_t(rows) * hidden * sizeof(D)),
          scores(rows * sizeof(float));
      randomize<D>(x, 1);
      randomize<D>(f, 2);
      skipllm::RowView<D> const xv{x.get<D>(), rows, hidden, hidden};
      skipllm::RowView<D const> const fv{f.get<D>(), rows, hidden, hidden};
      cu::Graph plain = cu::capture_graph(stream, [&](cudaStream_t s) {
        for (int i = 0; i < k; ++i) launch_plain_add<D>(xv, fv, s);
      });
      cu::Graph fused = cu::capture_graph(stream, [&](cudaStream_t s) {
        for (int i = 0; i < k; ++i) cu::residual_add_similarity<p::Cosine>(xv, fv, scores.get<float>(), s);
      });
      auto const t = time_arms({&plain, &fused}, stream, o.quick ? 20 : std::max(50, o.reps / 2));
      char line[256];
      std::snprintf(line, sizeof line, "| %d | %d | %.2f | %.2f | **%.3f** |\n", rows, hidden, 1e6 * t[0] / k,
                    1e6 * t[1] / k, t[1] / t[0]);
      rep.md << line;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Gate (decisions + compaction + gather) vs batch size

template <class D>
void bench_compaction(Report& rep, Options const& o, cudaStream_t stream) {
  constexpr int kHidden = 4096, kFfn = 11008;
  int const k = 100;
  CublasFfn<D> ffn(kHidden, kFfn, 1, 64);
  for (int rows : {1, 2, 4, 8, 16, 32, 64}) {
    // Half of the rows are inside a skip span (span_left > 0) at layer 5: mixed decisions, the
    // same on every replay (layer > 0 reads the states, which the gate does not modify).
    p::RuntimePolicies const policies{p::Greedy{0.95f, 4, 1}, p::ColdLayers{0, 0}, p::Warmup{0, 0}};
    GateRig<p::RuntimePolicies, D> rig(policies, rows, kHidden, 8, stream);
    std::vector<skipllm::SkipState> states(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) states[std::size_t(r)].span_left = r % 2;
    BENCH_CUDA(
        cudaMemcpy(rig.b.states[1], states.data(), sizeof(skipllm::SkipState) * states.size(), cudaMemcpyHostToDevice));
    cu::Graph gates = cu::capture_graph(stream, [&](cudaStream_t s) {
      for (int i = 0; i < k; ++i) cu::launch_gate(rig.params(5, rows, true), rows, s);
    });
    Buffer out(std::size_t(rows) * kHidden * sizeof(D));
    ffn.enqueue(0, rig.x.template get<D>(), kHidden, out.get<D>(), kHidden, rows, stream);  // warm-up
    BENCH_CUDA(cudaStreamSynchronize(stream));
    cu::Graph dense = cu::capture_graph(stream, [&](cudaStream_t s) {
      ffn.enqueue(0, rig.x.template get<D>(), kHidden, out.get<D>(), kHidden, rows, s);
    });
    auto const t = time_arms({&gates, &dense}, stream, o.quick ? 20 : std::max(50, o.reps / 4));
    char line[256];
    std::snprintf(line, sizeof line, "| %d | %.2f | %.1f | **%.2f%%** |\n", rows, 1e6 * t[0] / k, 1e6 * t[1],
                  100.0 * (t[0] / k) / t[1]);
    rep.md << line;
  }
}

std::string today() {
  std::time_t const now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// 5. Whole decode steps of 7B/8B-shaped models with forced skipping, batch 1 to 16

// A model shape: the FFN (SwiGLU) and the attention projections' weight rows (q, k, v, o
// stacked: 4 hidden for multi-head 7B, 2.5 hidden for the grouped-query 8B).
struct ModelShape {
  char const* name;
  int hidden, ffn, attention_rows;
};

// The attention stand-in: its projections' weights read once per step (one cuBLAS GEMM over
// [attention_rows, hidden]) and the first `hidden` outputs added to x. No KV cache: at the short
// contexts of this benchmark the cache is a few MiB against GiBs of weights.
template <class D>
struct AttentionStandIn {
  int hidden, rows_out;
  std::vector<std::unique_ptr<Buffer>> w;
  Buffer out, workspace;
  cublasHandle_t handle = nullptr;

  AttentionStandIn(int hidden_, int rows_out_, int layers, int max_rows)
      : hidden(hidden_),
        rows_out(rows_out_),
        out(std::size_t(max_rows) * rows_out_ * sizeof(D)),
        workspace(std::size_t{32} << 20) {
    for (int l = 0; l < layers; ++l) {
      w.push_back(std::make_unique<Buffer>(std::size_t(rows_out) * hidden * sizeof(D)));
      randomize<D>(*w.back(), 31u * unsigned(l) + 7);
    }
    check_cublas(cublasCreate(&handle), "cublasCreate");
  }
  ~AttentionStandIn() { (void)cublasDestroy(handle); }
  std::size_t weight_bytes_per_layer() const { return std::size_t(rows_out) * hidden * sizeof(D); }

  void enqueue(int l, skipllm::RowView<D> x, cudaStream_t s) {
    check_cublas(cublasSetStream(handle, s), "cublasSetStream");
    check_cublas(cublasSetWorkspace(handle, workspace.get(), workspace.bytes()), "cublasSetWorkspace");
    float const one = 1.0f, zero = 0.0f;
    int const rows = static_cast<int>(x.rows);
    check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, rows_out, rows, hidden, &one, w[std::size_t(l)]->get(),
                              CublasFfn<D>::kType, hidden, x.data, CublasFfn<D>::kType, static_cast<int>(x.stride),
                              &zero, out.get(), CublasFfn<D>::kType, rows_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx(attention)");
    launch_plain_add<D>(x, skipllm::RowView<D const>{out.get<D>(), x.rows, hidden, rows_out}, s);
  }
};

template <class D>
struct DecodeHost {
  struct Step {
    skipllm::RowView<D> x;
  };
  AttentionStandIn<D>* attention;
  CublasFfn<D>* ffn;
  int num_layers() const { return ffn->layers; }
  void attention_block(int l, Step& s, cudaStream_t stream) { attention->enqueue(l, s.x, stream); }
  void ffn_block(int l, Step&, cu::FfnBatch<D> const& b, cudaStream_t s) {
    ffn->enqueue(l, b.input.data, b.input.stride, b.output.data, b.output.stride, b.max_rows, s);
  }
  skipllm::RowView<D> residual(Step& s) { return s.x; }
};

}  // namespace

// A custom skip policy: the masked layers are skipped by rows of even slots only, so the rows
// of a step disagree and, at batch >= 2, every masked FFN still runs (for the odd rows). Named
// namespace: the kernels instantiated on it need external linkage (SKIPLLM_KERNEL is hidden).
namespace bench {
struct EvenSlotMask {
  skipllm::LayerMask layers{};
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState&, skipllm::LayerContext c) const noexcept {
    return c.slot % 2 == 0 && layers.contains(c.layer);
  }
};
}  // namespace bench

namespace {

using MixedSkip = skipllm::Policies<bench::EvenSlotMask, p::NoCold, p::NoWarmup, p::Cosine>;

// `skipped` of `layers` layers, spread evenly: what a StaticMask forces every row to skip.
SkipAll forced_skip(int layers, int skipped) {
  SkipAll policies;
  for (int i = 0; i < skipped; ++i) policies.skip.layers.insert((2 * i + 1) * layers / (2 * skipped));
  return policies;
}

template <class D>
void bench_decode(Report& rep, Options const& o, cudaStream_t stream, double copy_bw, ModelShape const& shape) {
  int const layers = o.quick ? 8 : 32;
  constexpr int kMaxRows = 16;
  CublasFfn<D> ffn(shape.hidden, shape.ffn, layers, kMaxRows);
  AttentionStandIn<D> attention(shape.hidden, shape.attention_rows, layers, kMaxRows);
  Buffer x(std::size_t(kMaxRows) * shape.hidden * sizeof(D)), f(std::size_t(kMaxRows) * shape.hidden * sizeof(D));
  randomize<D>(x, 3);
  BENCH_CUDA(cudaDeviceSynchronize());
  double const a_bytes = double(attention.weight_bytes_per_layer()) * layers;
  double const f_bytes = double(ffn.weight_bytes_per_layer());
  std::vector<int> const percents = {10, 20, 25, 30};

  for (int rows : {1, 2, 4, 8, 16}) {
    skipllm::RowView<D> const xv{x.get<D>(), rows, shape.hidden, shape.hidden};
    skipllm::RowView<D const> const fv{f.get<D>(), rows, shape.hidden, shape.hidden};
    for (int l = 0; l < layers; ++l) {  // warm up every cuBLAS call before any capture
      attention.enqueue(l, xv, stream);
      ffn.enqueue(l, x.get<D>(), shape.hidden, f.get<D>(), shape.hidden, rows, stream);
    }
    BENCH_CUDA(cudaStreamSynchronize(stream));
    cu::Graph plain = cu::capture_graph(stream, [&](cudaStream_t s) {
      for (int l = 0; l < layers; ++l) {
        attention.enqueue(l, xv, s);
        ffn.enqueue(l, x.get<D>(), shape.hidden, f.get<D>(), shape.hidden, rows, s);
        launch_plain_add<D>(xv, fv, s);
      }
    });

    // One stack per forced rate (0% first): each graph reads its own policies.
    DecodeHost<D> host{&attention, &ffn};
    using Stack = cu::DecoderStack<DecodeHost<D>, SkipAll>;
    cu::StackOptions const options{.stack = {.max_sequences = rows}, .hidden = shape.hidden};
    std::vector<int> slots(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) slots[std::size_t(r)] = r;
    typename DecodeHost<D>::Step step{xv};
    std::vector<std::unique_ptr<Buffer>> workspaces;
    std::vector<std::unique_ptr<Stack>> stacks;
    std::vector<cu::Graph> graphs;
    std::vector<int> skipped = {0};
    for (int pct : percents) skipped.push_back((pct * layers + 50) / 100);
    for (int k : skipped) {
      workspaces.push_back(std::make_unique<Buffer>(Stack::workspace_bytes(host, options)));
      stacks.push_back(std::make_unique<Stack>(host, forced_skip(layers, k), options, workspaces.back()->get(),
                                               workspaces.back()->bytes(), stream));
      for (int r = 0; r < rows; ++r) stacks.back()->begin_sequence(r, stream);
      stacks.back()->set_rows(slots, stream);
      graphs.push_back(stacks.back()->capture_decode(step, stream));
    }
    // Mixed decisions: 25% of the layers skipped by the even rows only.
    using MixedStack = cu::DecoderStack<DecodeHost<D>, MixedSkip>;
    MixedSkip mixed;
    mixed.skip.layers = forced_skip(layers, (25 * layers + 50) / 100).skip.layers;
    Buffer mixed_ws(MixedStack::workspace_bytes(host, options));
    MixedStack mixed_stack(host, mixed, options, mixed_ws.get(), mixed_ws.bytes(), stream);
    for (int r = 0; r < rows; ++r) mixed_stack.begin_sequence(r, stream);
    mixed_stack.set_rows(slots, stream);
    cu::Graph mixed_graph = mixed_stack.capture_decode(step, stream);

    std::vector<cu::Graph const*> arms = {&plain};
    for (auto const& g : graphs) arms.push_back(&g);
    arms.push_back(&mixed_graph);
    auto const t = time_arms(arms, stream, o.quick ? 10 : std::max(20, o.reps / 8));

    double const dense_bytes = a_bytes + f_bytes * layers;
    char line[768];
    int n = std::snprintf(line, sizeof line, "| %s | %d | %.1f | %.1f%% | **%.3f** |", shape.name, rows, rows / t[0],
                          100.0 * dense_bytes / t[0] / copy_bw, t[1] / t[0]);
    for (std::size_t i = 1; i < skipped.size(); ++i) {
      double const ideal = dense_bytes / (a_bytes + f_bytes * (layers - skipped[i]));
      double const speedup = t[0] / t[i + 1];
      n += std::snprintf(line + n, sizeof line - std::size_t(n), " %.3f / %.3f (%.0f%%) |", speedup, ideal,
                         100.0 * (speedup - 1.0) / (ideal - 1.0));
    }
    n += std::snprintf(line + n, sizeof line - std::size_t(n), " %.3f |", t[0] / t.back());
    rep.md << line << "\n";
  }
}

// ---------------------------------------------------------------------------------------------
// 6. Weights at batch 1: fp16 dequantized at load vs Q4_1 dequantized inside the GEMV

// ggml's Q4_1 block: 32 weights w = d * q + m, q in 0..15, two per byte (low nibbles are
// weights 0..15, high nibbles 16..31). 20 bytes.
struct BlockQ4_1 {
  __half d, m;
  unsigned char qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

__global__ void fill_q4_1(BlockQ4_1* blocks, std::size_t n, unsigned seed) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    BlockQ4_1 b;
    b.d = __float2half_rn(0.002f + 0.001f * float(h & 7));
    b.m = __float2half_rn(-0.016f);
    for (int j = 0; j < 16; ++j) {
      h = h * 1664525u + 1013904223u;
      b.qs[j] = static_cast<unsigned char>(h >> 24);
    }
    blocks[i] = b;
  }
}

// y[r] = W[r] . x, one warp per output row. fp16 weights: 16-byte loads of 8 weights.
template <int Warps>
__global__ void __launch_bounds__(Warps * 32) gemv_f16(__half const* w, float const* x, float* y, int rows, int cols) {
  int const lane = static_cast<int>(threadIdx.x) % 32;
  int const r = static_cast<int>(blockIdx.x) * Warps + static_cast<int>(threadIdx.x) / 32;
  if (r >= rows) return;
  __half const* wr = w + std::size_t(r) * cols;
  float acc = 0;
  for (int k = lane * 8; k + 8 <= cols; k += 32 * 8) {
    cu::Vector<__half> const wv = *reinterpret_cast<cu::Vector<__half> const*>(wr + k);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc += __half2float(wv.v[j]) * x[k + j];
  }
  for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[r] = acc;
}

// The same product reading Q4_1 blocks: each lane dequantizes whole blocks in registers.
template <int Warps>
__global__ void __launch_bounds__(Warps * 32)
    gemv_q4_1(BlockQ4_1 const* w, float const* x, float* y, int rows, int cols) {
  int const lane = static_cast<int>(threadIdx.x) % 32;
  int const r = static_cast<int>(blockIdx.x) * Warps + static_cast<int>(threadIdx.x) / 32;
  if (r >= rows) return;
  int const blocks = cols / 32;
  BlockQ4_1 const* wr = w + std::size_t(r) * blocks;
  float acc = 0;
  for (int b = lane; b < blocks; b += 32) {
    BlockQ4_1 const blk = wr[b];
    float const d = __half2float(blk.d), m = __half2float(blk.m);
    float const* xb = x + b * 32;
    float dot = 0, sum = 0;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      float const lo = float(blk.qs[j] & 15), hi = float(blk.qs[j] >> 4);
      dot += lo * xb[j] + hi * xb[j + 16];
      sum += xb[j] + xb[j + 16];
    }
    acc += d * dot + m * sum;
  }
  for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[r] = acc;
}

void bench_weight_formats(Report& rep, Options const& o, cudaStream_t stream, double copy_bw) {
  constexpr int kWarps = 4;
  struct Shape {
    char const* name;
    int rows, cols;
  };
  int const layers = o.quick ? 4 : 16;  // enough weights per graph to leave the L2 cache behind
  for (Shape const shape : {Shape{"FFN gate/up 7B", 2 * 11008, 4096}, Shape{"FFN down 7B", 4096, 11008},
                            Shape{"attention q 7B", 4096, 4096}}) {
    std::size_t const elems = std::size_t(shape.rows) * shape.cols;
    std::vector<std::unique_ptr<Buffer>> f16, q41;
    for (int l = 0; l < layers; ++l) {
      f16.push_back(std::make_unique<Buffer>(elems * sizeof(__half)));
      randomize<__half>(*f16.back(), 11u * unsigned(l) + 1);
      q41.push_back(std::make_unique<Buffer>(elems / 32 * sizeof(BlockQ4_1)));
      fill_q4_1<<<1024, 256, 0, stream>>>(q41.back()->get<BlockQ4_1>(), elems / 32, 13u * unsigned(l) + 2);
      BENCH_CUDA(cudaGetLastError());
    }
    Buffer x(std::size_t(shape.cols) * sizeof(float)), y(std::size_t(shape.rows) * sizeof(float));
    BENCH_CUDA(cudaMemsetAsync(x.get(), 0, x.bytes(), stream));
    BENCH_CUDA(cudaStreamSynchronize(stream));
    unsigned const grid = static_cast<unsigned>((shape.rows + kWarps - 1) / kWarps);
    cu::Graph dense = cu::capture_graph(stream, [&](cudaStream_t s) {
      for (auto const& w : f16) {
        gemv_f16<kWarps>
            <<<grid, kWarps * 32, 0, s>>>(w->get<__half>(), x.get<float>(), y.get<float>(), shape.rows, shape.cols);
      }
    });
    cu::Graph quant = cu::capture_graph(stream, [&](cudaStream_t s) {
      for (auto const& w : q41) {
        gemv_q4_1<kWarps>
            <<<grid, kWarps * 32, 0, s>>>(w->get<BlockQ4_1>(), x.get<float>(), y.get<float>(), shape.rows, shape.cols);
      }
    });
    auto const t = time_arms({&dense, &quant}, stream, o.quick ? 20 : std::max(50, o.reps / 4));
    double const f16_bytes = double(elems) * sizeof(__half) * layers;
    double const q41_bytes = double(elems / 32) * sizeof(BlockQ4_1) * layers;
    char line[512];
    std::snprintf(line, sizeof line, "| %s | %d x %d | %.1f | %.1f%% | %.1f | %.1f%% | **%.3f** |\n", shape.name,
                  shape.rows, shape.cols, 1e6 * t[0] / layers, 100.0 * f16_bytes / t[0] / copy_bw, 1e6 * t[1] / layers,
                  100.0 * q41_bytes / t[1] / copy_bw, t[1] / t[0]);
    rep.md << line;
  }
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("gpu_micro: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--out") {
      o.out_dir = value();
    } else if (a == "--commit") {
      o.commit = value();
    } else if (a == "--reps") {
      o.reps = std::max(5, std::atoi(value().c_str()));
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "-h" || a == "--help") {
      std::cout << "usage: gpu_micro [--out DIR] [--commit SHA] [--reps N] [--quick]\n";
      std::exit(0);
    } else {
      throw std::invalid_argument("gpu_micro: unknown argument " + a);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  Options const o = parse(argc, argv);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::cerr << "gpu_micro: no CUDA device\n";
    return 2;
  }
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0;
  BENCH_CUDA(cudaDriverGetVersion(&driver));
  BENCH_CUDA(cudaRuntimeGetVersion(&runtime));
  // A blocking stream: set-up work on the legacy stream (fills, copies) stays ordered before it.
  cudaStream_t stream;
  BENCH_CUDA(cudaStreamCreate(&stream));

  Report rep;
  double const bw = copy_bandwidth(stream);
  rep.md << "# skipllm GPU micro-benchmarks\n\n"
         << "- device: " << prop.name << " (sm_" << prop.major << prop.minor << ", " << prop.multiProcessorCount
         << " SMs, " << (prop.totalGlobalMem >> 20) << " MiB)\n"
         << "- date: " << today() << "\n- commit: " << o.commit << "\n- CUDA runtime " << runtime / 1000 << "."
         << (runtime % 1000) / 10 << ", driver " << driver / 1000 << "." << (driver % 1000) / 10 << "\n"
         << "- measured device copy bandwidth (read + write): " << bw / 1e9 << " GB/s\n"
         << "- method: CUDA graphs, arms interleaved replay by replay, CUDA events, medians"
         << (o.quick ? " (quick run)" : "") << "\n\n";

  rep.md << "## 1. Dense with gate vs plain dense (hidden 4096, FFN 11008, batch 1, cuBLAS)\n\n"
         << "Per layer: plain = cuBLAS SwiGLU FFN + residual add; gated = cuda::DecoderStack with policies that never\n"
         << "skip: gate kernel + IF node {same FFN + fused residual add and cosine} (+ token end, once per step).\n"
         << "Goal: gated/plain <= 1.02.\n\n"
         << "| weights | plain us/layer | gated us/layer | gated / plain | plain % of copy BW | gated % of copy BW |\n"
         << "|---|---|---|---|---|---|\n";
  bench_dense<__nv_bfloat16>(rep, o, stream, bw, "bf16");
  bench_dense<__half>(rep, o, stream, bw, "fp16");

  rep.md
      << "\n## 2. A skipped FFN: IF node vs early exit (bf16, 7B shape, batch 1, 32 FFNs per graph)\n\n"
      << "Costs per FFN over a graph of the gate kernels alone. Early exit: gate_up GEMV, SiLU*mul, down GEMV and\n"
      << "the residual kernel, each launched and returning at once. Goal: IF node <= 2 us and <= 50% of early exit.\n\n"
      << "| gate alone us | skipped IF node us | early exit us | IF / early exit |\n|---|---|---|---|\n";
  bench_skipped<__nv_bfloat16>(rep, o, stream);

  rep.md << "\n## 3. Fused residual add + cosine vs plain residual add (bf16, 100 kernels per graph)\n\n"
         << "| rows | hidden | plain add us | fused add + cosine us | fused / plain |\n|---|---|---|---|---|\n";
  bench_similarity<__nv_bfloat16>(rep, o, stream);

  rep.md << "\n## 4. Gate kernel (decisions + compaction + gather) vs batch size (bf16, hidden 4096)\n\n"
         << "Half the rows run. Against one dense cuBLAS FFN step (7B shape) at the same batch.\n\n"
         << "| rows | gate us | dense FFN us | gate / FFN |\n|---|---|---|---|\n";
  bench_compaction<__nv_bfloat16>(rep, o, stream);

  rep.md
      << "\n## 5. Whole decode steps with forced skipping (bf16, " << (o.quick ? 8 : 32)
      << " layers, synthetic weights generated on the device)\n\n"
      << "Per layer: an attention stand-in (one cuBLAS GEMM over the q/k/v/o weights, no KV cache) and the SwiGLU "
         "FFN.\n"
      << "dense = the plain graph without skipllm; gated = cuda::DecoderStack with nothing skipped; then a StaticMask\n"
      << "forcing every row to skip 10/20/25/30% of the FFNs. Cells: speedup over dense / byte-ideal speedup\n"
      << "(weight bytes of dense over weight bytes read) (share of the ideal gain reached). Every row skips the same\n"
      << "layers here; at batch >= 2 the FFN runs whenever any row runs (docs/cuda.md), which the last column\n"
      << "measures. Goals: dense >= 75% of copy bandwidth at batch 1; gated/dense <= 1.02; >= 90% of the ideal at\n"
      << "25%; never slower than dense at batch 2-16.\n\n"
      << "Last column: 25% skipped by the even rows only (mixed decisions): speedup over dense.\n\n"
      << "| model | batch | dense tok/s | dense % of copy BW | gated / dense | 10% | 20% | 25% | 30% | 25% mixed |\n"
      << "|---|---|---|---|---|---|---|---|---|---|\n";
  bench_decode<__nv_bfloat16>(rep, o, stream, bw, {"7B (MHA)", 4096, 11008, 4 * 4096});
  bench_decode<__nv_bfloat16>(rep, o, stream, bw, {"8B (GQA)", 4096, 14336, 4096 * 5 / 2});

  rep.md
      << "\n## 6. Weights at batch 1: fp16 dequantized at load vs Q4_1 dequantized in the GEMV\n\n"
      << "The choice a GPU engine makes for a Q4_1 GGUF (the default model's type): expand to fp16 at load (3.6x the\n"
      << "bytes, plain loads) or read the 20-byte blocks and dequantize in registers. One warp per output row, fp32\n"
      << "activations, " << (o.quick ? 4 : 16)
      << " distinct weight matrices per graph. Bandwidth shares count the bytes each\n"
      << "format reads.\n\n"
      << "| matrix | shape | fp16 us | fp16 % of copy BW | Q4_1 us | Q4_1 % of copy BW | Q4_1 / fp16 time |\n"
      << "|---|---|---|---|---|---|---|\n";
  bench_weight_formats(rep, o, stream, bw);

  std::string const text = rep.md.str();
  std::cout << text;
  std::filesystem::create_directories(o.out_dir);
  std::string const path = o.out_dir + "/gpu_micro_" + today() + ".md";
  std::ofstream(path) << text;
  std::cout << "\nwritten to " << path << "\n";
  BENCH_CUDA(cudaStreamDestroy(stream));
  return 0;
} catch (std::exception const& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
