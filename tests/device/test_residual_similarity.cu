// The fused residual add + similarity kernel against the CPU backend
// (skipllm::cpu::residual_add_similarity): every storage type, both metrics, hidden sizes from
// 1 to 8192 (multiples of the vector width and not), aligned, equally misaligned (vector path
// with a scalar head) and differently misaligned (scalar path) rows, zero/NaN/Inf/overflowing
// inputs. The stored residual must match bit for bit; scores bit for bit the host replica of
// the GPU's summation order (cuda/row_reduction.cuh), whatever the alignment, and within the
// stated bound (residual_score_bound) of the CPU's; the decisions a threshold makes on them must
// agree except within that band around it, which is measured and reported.
#define BOOST_TEST_MODULE skipllm CUDA residual add and similarity
#include "device_test_support.cuh"

#include <boost/mpl/list.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <skipllm/cpu/residual_similarity.hpp>
#include <skipllm/cuda/residual_similarity_kernel.cuh>
#include <skipllm/policy/similarity.hpp>

namespace cu = skipllm::cuda;
namespace p = skipllm::policy;
using Storages = boost::mpl::list<float, skipllm::half_t, skipllm::bfloat16_t>;

namespace {

// Where rows sit in their buffers: the first element's offset and the row stride.
struct Placement {
  std::int64_t x_offset, x_stride, f_offset, f_stride;
};

Placement aligned(std::int64_t hidden) {
  std::int64_t const s = (hidden + 7) / 8 * 8;
  return {0, s, 0, s};
}
Placement same_misalignment(std::int64_t hidden) { return {1, hidden + 3, 1, hidden + 3}; }
Placement different_misalignment(std::int64_t hidden) { return {1, hidden + 1, 0, hidden}; }

struct Outcome {
  int x_mismatches = 0;
  int score_mismatches = 0;    // GPU vs CPU beyond the stated bound
  int replica_mismatches = 0;  // GPU vs the host replica of its order, bit for bit
  std::vector<float> cpu_scores, gpu_scores;
};

// Runs both backends on the same rows (`xv`, `fv`: [rows][hidden] fp32 values, stored as T).
template <class Metric, class T>
Outcome compare(std::vector<float> const& xv, std::vector<float> const& fv, int rows, std::int64_t hidden,
                Placement pl) {
  std::size_t const x_size = static_cast<std::size_t>(pl.x_offset + rows * pl.x_stride);
  std::size_t const f_size = static_cast<std::size_t>(pl.f_offset + rows * pl.f_stride);
  std::vector<T> x(x_size, skipllm::from_float<T>(-7.0f));  // -7 marks padding that must stay
  std::vector<T> f(f_size, skipllm::from_float<T>(3.0f));
  for (int r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < hidden; ++i) {
      auto const v = static_cast<std::size_t>(r * hidden + i);
      x[static_cast<std::size_t>(pl.x_offset + r * pl.x_stride + i)] = skipllm::from_float<T>(xv[v]);
      f[static_cast<std::size_t>(pl.f_offset + r * pl.f_stride + i)] = skipllm::from_float<T>(fv[v]);
    }
  }
  test::DeviceBuffer<T> dx(x), df(f);
  test::DeviceBuffer<float> dscores(static_cast<std::size_t>(rows));
  cu::residual_add_similarity<Metric>(skipllm::RowView<T>{dx.get() + pl.x_offset, rows, hidden, pl.x_stride},
                                      skipllm::RowView<T const>{df.get() + pl.f_offset, rows, hidden, pl.f_stride},
                                      dscores.get(), nullptr);
  TEST_CUDA(cudaDeviceSynchronize());

  Outcome out;
  out.gpu_scores = dscores.download();
  std::vector<T> const gx = dx.download();
  int const threads = cu::residual_block_threads(hidden, sizeof(T));
  std::vector<float> before(static_cast<std::size_t>(hidden)), after(before.size());
  for (int r = 0; r < rows; ++r) {
    T const* xr = x.data() + pl.x_offset + r * pl.x_stride;
    T const* fr = f.data() + pl.f_offset + r * pl.f_stride;
    for (std::size_t i = 0; i < before.size(); ++i) {
      before[i] = skipllm::to_float(xr[i]);
      after[i] = before[i] + skipllm::to_float(fr[i]);
    }
    float const replica = Metric::finalize(cu::gpu_order_aggregate<Metric>(
        before.data(), after.data(), hidden, threads, cu::row_chunk_width(static_cast<int>(sizeof(T)))));
    out.replica_mismatches += test::same_value(replica, out.gpu_scores[static_cast<std::size_t>(r)]) ? 0 : 1;
    out.cpu_scores.push_back(skipllm::cpu::residual_add_similarity<Metric>(
        x.data() + pl.x_offset + r * pl.x_stride, f.data() + pl.f_offset + r * pl.f_stride, hidden));
  }
  for (std::size_t i = 0; i < x.size(); ++i) out.x_mismatches += test::same_value(gx[i], x[i]) ? 0 : 1;
  for (int r = 0; r < rows; ++r) {
    auto const ru = static_cast<std::size_t>(r);
    float const g = out.gpu_scores[ru], c = out.cpu_scores[ru];
    bool const agree = std::isnan(g) || std::isnan(c)
                           ? std::isnan(g) && std::isnan(c)
                           : std::fabs(double(g) - c) <= cu::residual_score_bound<Metric>(c, hidden, sizeof(T));
    out.score_mismatches += agree ? 0 : 1;
  }
  return out;
}

template <class Metric, class T>
void check_random(std::int64_t hidden, Placement pl, char const* where) {
  int const rows = 3;
  auto const xv = test::gaussian(static_cast<std::size_t>(rows * hidden), static_cast<std::uint32_t>(hidden) * 3 + 1);
  auto const fv =
      test::gaussian(static_cast<std::size_t>(rows * hidden), static_cast<std::uint32_t>(hidden) * 3 + 2, 0.3f);
  Outcome const o = compare<Metric, T>(xv, fv, rows, hidden, pl);
  BOOST_TEST(o.x_mismatches == 0, "hidden " << hidden << " " << where);
  BOOST_TEST(o.score_mismatches == 0,
             "hidden " << hidden << " " << where << " gpu " << o.gpu_scores[0] << " cpu " << o.cpu_scores[0]);
  BOOST_TEST(o.replica_mismatches == 0, "hidden " << hidden << " " << where);
}

}  // namespace

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE_TEMPLATE(random_rows_match_the_cpu_backend, T, Storages) {
  for (std::int64_t hidden : {1, 2, 17, 97, 576, 1000, 2048, 2049, 4096, 4099, 8192}) {
    check_random<p::Cosine, T>(hidden, aligned(hidden), "aligned");
    check_random<p::Cosine, T>(hidden, same_misalignment(hidden), "misaligned (vector path with a head)");
    check_random<p::Cosine, T>(hidden, different_misalignment(hidden), "differently misaligned (scalar path)");
    check_random<p::RelativeUpdate, T>(hidden, same_misalignment(hidden), "RelativeUpdate");
  }
}

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE_TEMPLATE(edge_inputs_match_the_cpu_backend, T, Storages) {
  float const nan = std::numeric_limits<float>::quiet_NaN();
  float const inf = std::numeric_limits<float>::infinity();
  for (std::int64_t hidden : {1, 17, 576}) {
    auto const n = static_cast<std::size_t>(hidden);
    // Rows: zero x and f; zero x; zero f (cos 1); a NaN in x; an Inf in f; a huge pair (half
    // overflows to Inf when stored, the fp32 score stays finite); f = -x (after = 0).
    std::vector<std::vector<float>> xs, fs;
    auto const base = test::gaussian(n, 11);
    xs.push_back(std::vector<float>(n, 0.0f)), fs.push_back(std::vector<float>(n, 0.0f));
    xs.push_back(std::vector<float>(n, 0.0f)), fs.push_back(base);
    xs.push_back(base), fs.push_back(std::vector<float>(n, 0.0f));
    xs.push_back(base), fs.push_back(base);
    xs.back()[n / 2] = nan;
    xs.push_back(base), fs.push_back(base);
    fs.back()[n - 1] = inf;
    xs.push_back(std::vector<float>(n, 60000.0f)), fs.push_back(std::vector<float>(n, 60000.0f));
    xs.push_back(base), fs.push_back(base);
    for (float& v : fs.back()) v = -v;
    std::vector<float> xv, fv;
    for (std::size_t r = 0; r < xs.size(); ++r) {
      xv.insert(xv.end(), xs[r].begin(), xs[r].end());
      fv.insert(fv.end(), fs[r].begin(), fs[r].end());
    }
    int const rows = static_cast<int>(xs.size());
    for (Placement pl : {aligned(hidden), same_misalignment(hidden)}) {
      Outcome const c = compare<p::Cosine, T>(xv, fv, rows, hidden, pl);
      BOOST_TEST(c.x_mismatches == 0, "hidden " << hidden);
      BOOST_TEST(c.score_mismatches == 0, "hidden " << hidden);
      BOOST_TEST(c.replica_mismatches == 0, "hidden " << hidden);
      BOOST_TEST(std::isnan(c.gpu_scores[0]));  // zero vectors: undefined, never a skip
      BOOST_TEST(std::isnan(c.gpu_scores[1]));
      BOOST_TEST(std::isnan(c.gpu_scores[3]));  // NaN input
      BOOST_TEST(std::isnan(c.gpu_scores[4]));  // Inf input
      BOOST_TEST(std::isnan(c.gpu_scores[6]));  // after = 0
      Outcome const u = compare<p::RelativeUpdate, T>(xv, fv, rows, hidden, pl);
      BOOST_TEST(u.x_mismatches == 0, "hidden " << hidden);
      BOOST_TEST(u.score_mismatches == 0, "hidden " << hidden);
    }
  }
}

// Rows built so that cos(h, h + f) sits within +-4 bounds of tau: the decisions "score > tau" of
// both backends must agree outside the stated band, and the rows inside it (where fp32
// summation order may legitimately flip them) are counted and reported. Most rows lie outside
// the band, so a bound that is too tight fails here.
BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE_TEMPLATE(decisions_near_the_threshold, T, Storages) {
  constexpr float kTau = 0.95f;
  constexpr std::int64_t kHidden = 4096;
  constexpr int kRows = 256;
  std::vector<float> xv, fv;
  std::mt19937 gen(5);
  double const bound = cu::residual_score_bound<p::Cosine>(kTau, kHidden, sizeof(T));
  std::uniform_real_distribution<double> jitter(-4.0 * bound, 4.0 * bound);
  for (int r = 0; r < kRows; ++r) {
    auto h = test::gaussian(kHidden, 100 + static_cast<std::uint32_t>(r));
    auto e = test::gaussian(kHidden, 900 + static_cast<std::uint32_t>(r));
    for (auto& v : h) v = skipllm::to_float(skipllm::from_float<T>(v));
    // e orthogonal to h, then f = t e with |h| / sqrt(|h|^2 + t^2) = target.
    double hh = 0, he = 0;
    for (std::int64_t i = 0; i < kHidden; ++i) hh += double(h[i]) * h[i], he += double(h[i]) * e[i];
    double ee = 0;
    for (std::int64_t i = 0; i < kHidden; ++i) e[i] = float(e[i] - he / hh * h[i]), ee += double(e[i]) * e[i];
    double const target = kTau + jitter(gen);
    double const t = std::sqrt(hh) * std::sqrt(1.0 / (target * target) - 1.0) / std::sqrt(ee);
    for (std::int64_t i = 0; i < kHidden; ++i) e[i] = float(t * e[i]);
    xv.insert(xv.end(), h.begin(), h.end());
    fv.insert(fv.end(), e.begin(), e.end());
  }
  Outcome const o = compare<p::Cosine, T>(xv, fv, kRows, kHidden, aligned(kHidden));
  BOOST_TEST(o.x_mismatches == 0);
  int in_band = 0, disagree = 0, disagree_outside = 0;
  float max_diff = 0;
  for (int r = 0; r < kRows; ++r) {
    float const g = o.gpu_scores[static_cast<std::size_t>(r)], c = o.cpu_scores[static_cast<std::size_t>(r)];
    max_diff = std::max(max_diff, std::fabs(g - c));
    bool const band = std::fabs(double(c) - kTau) <= bound;
    in_band += band;
    if ((g > kTau) != (c > kTau)) {
      ++disagree;
      disagree_outside += band ? 0 : 1;
    }
  }
  BOOST_TEST_MESSAGE("near-threshold rows (" << sizeof(T) * 8 << "-bit storage): " << in_band << " of " << kRows
                                             << " within +-" << bound << " of tau; CPU/GPU decisions differ on "
                                             << disagree << "; max |score difference| " << max_diff);
  BOOST_TEST(disagree_outside == 0);
  BOOST_TEST(o.score_mismatches == 0);
  BOOST_TEST(o.replica_mismatches == 0);
  BOOST_TEST(in_band < kRows / 2);  // the test reaches rows outside the band
}

// The kernel-side storage types are accepted directly too (the same kernels as half_t/bfloat16_t).
BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(cuda_native_types_map_to_the_same_kernels) {
  constexpr std::int64_t kHidden = 97;
  auto const xv = test::gaussian(kHidden, 1), fv = test::gaussian(kHidden, 2);
  std::vector<__half> x(kHidden), f(kHidden);
  std::vector<skipllm::half_t> xh(kHidden), fh(kHidden);
  for (std::int64_t i = 0; i < kHidden; ++i) {
    x[i] = __float2half_rn(xv[i]), f[i] = __float2half_rn(fv[i]);
    xh[i] = skipllm::from_float<skipllm::half_t>(xv[i]), fh[i] = skipllm::from_float<skipllm::half_t>(fv[i]);
  }
  test::DeviceBuffer<__half> dx(x), df(f);
  test::DeviceBuffer<float> score(1);
  cu::residual_add_similarity<p::Cosine>(skipllm::RowView<__half>{dx.get(), 1, kHidden, kHidden},
                                         skipllm::RowView<__half const>{df.get(), 1, kHidden, kHidden}, score.get(),
                                         nullptr);
  TEST_CUDA(cudaDeviceSynchronize());
  float const cpu = skipllm::cpu::residual_add_similarity<p::Cosine>(xh.data(), fh.data(), kHidden);
  BOOST_TEST(std::fabs(double(score.download()[0]) - cpu) <= cu::residual_score_bound<p::Cosine>(cpu, kHidden, 2));
  auto const gx = dx.download();
  for (std::int64_t i = 0; i < kHidden; ++i) {
    BOOST_TEST(std::memcmp(&gx[static_cast<std::size_t>(i)], &xh[static_cast<std::size_t>(i)], 2) == 0);
  }
}

// The next-RMSNorm hook (next_norm.cuh): with WithRowSquares the kernel also stores each new
// row's sum of squares, bit for bit the host replica of its order, through the compacted row
// list (rows 2 and 0 of three, in that order: row 1's entry must stay as it was); the scores
// are the plain metric's, bit for bit.
BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(row_squares_are_stored_for_the_rows_that_ran) {
  using W = cu::WithRowSquares<p::Cosine>;
  for (std::int64_t hidden : {97, 576, 4096}) {
    int const rows = 3;
    auto const xv = test::gaussian(static_cast<std::size_t>(rows * hidden), 5);
    auto const fv = test::gaussian(static_cast<std::size_t>(rows * hidden), 6, 0.3f);
    test::DeviceBuffer<float> plain_x(xv), fused_x(xv), df(fv);
    test::DeviceBuffer<float> plain_scores(rows), fused_scores(rows);
    test::DeviceBuffer<double> squares(std::vector<double>(rows, -1.0));
    test::DeviceBuffer<int> list(std::vector<int>{2, 0}), live(std::vector<int>{2});
    auto const params = [&](float* x, float* scores) {
      cu::ResidualParams<float> r;
      r.residual = skipllm::RowView<float>{x, rows, hidden, hidden};
      r.ffn_output = skipllm::RowView<float const>{df.get(), 2, hidden, hidden};
      r.rows = list.get();
      r.num_rows = live.get();
      r.scores = scores;
      return r;
    };
    // f's batch row i belongs to residual row list[i]: f rows 0 and 1 go to residual rows 2 and 0.
    cu::launch_residual_similarity<p::Cosine>(params(plain_x.get(), plain_scores.get()), rows, nullptr);
    cu::ResidualParams<float> fused = params(fused_x.get(), fused_scores.get());
    fused.sum_squares = squares.get();
    cu::launch_residual_similarity<W>(fused, rows, nullptr);
    TEST_CUDA(cudaDeviceSynchronize());
    std::vector<double> const got = squares.download();
    std::vector<float> const new_x = fused_x.download(), ps = plain_scores.download(), fs = fused_scores.download();
    BOOST_TEST(got[1] == -1.0, "hidden " << hidden << ": a row whose FFN did not run keeps its statistic");
    int const threads = cu::residual_block_threads(hidden, sizeof(float));
    for (int r : {0, 2}) {
      auto const at = static_cast<std::ptrdiff_t>(r * hidden);
      std::vector<float> before(xv.begin() + at, xv.begin() + at + hidden);
      std::vector<float> after(new_x.begin() + at, new_x.begin() + at + hidden);
      W::Accumulator const replica =
          cu::gpu_order_aggregate<W>(before.data(), after.data(), hidden, threads, cu::row_chunk_width(4));
      BOOST_TEST(got[static_cast<std::size_t>(r)] == replica.squares, "hidden " << hidden << " row " << r);
      BOOST_TEST(test::same_value(fs[static_cast<std::size_t>(r)], ps[static_cast<std::size_t>(r)]));
    }
    BOOST_TEST(plain_x.download() == new_x);
  }
}
