#include "eval/standin_fit.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include <skipllm/decoder_stack.hpp>
#include <skipllm/policy/bundle.hpp>

#include "eval/reference_arithmetic.hpp"
#include "model/generator.hpp"
#include "model/llama_host.hpp"

namespace skipllm::engine::standin {

namespace {

using Vec = std::vector<double>;

std::size_t at(int row, int col, int cols) {
  return static_cast<std::size_t>(row) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(col);
}

void for_each_row(ThreadPool& pool, int n, std::function<void(int)> const& body) {
  pool.parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) body(static_cast<int>(i));
  });
}

//! C = A B, A [n][k], B [k][m], row-major.
Vec multiply(Vec const& a, Vec const& b, int n, int k, int m, ThreadPool& pool) {
  Vec c(static_cast<std::size_t>(n) * static_cast<std::size_t>(m));
  for_each_row(pool, n, [&](int i) {
    double* ci = &c[at(i, 0, m)];
    for (int p = 0; p < k; ++p) {
      double const aip = a[at(i, p, k)];
      double const* bp = &b[at(p, 0, m)];
      for (int j = 0; j < m; ++j) ci[j] += aip * bp[j];
    }
  });
  return c;
}

Vec transpose(Vec const& a, int n, int m) {
  Vec t(a.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) t[at(j, i, n)] = a[at(i, j, m)];
  return t;
}

Vec means(Vec const& sums, std::uint64_t n) {
  Vec m(sums.size());
  for (std::size_t i = 0; i < sums.size(); ++i) m[i] = sums[i] / static_cast<double>(n);
  return m;
}

//! Centred second moments: sum(u v^T) / n - mean(u) mean(v)^T.
Vec centred(Vec const& sum, Vec const& mu, Vec const& mv, std::uint64_t n, int d) {
  Vec c(sum.size());
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      c[at(i, j, d)] =
          sum[at(i, j, d)] / static_cast<double>(n) - mu[static_cast<std::size_t>(i)] * mv[static_cast<std::size_t>(j)];
  return c;
}

//! In-place lower Cholesky factor of a symmetric [d][d] matrix; false when not positive definite.
bool cholesky(Vec& a, int d) {
  for (int j = 0; j < d; ++j) {
    double s = a[at(j, j, d)];
    for (int k = 0; k < j; ++k) s -= a[at(j, k, d)] * a[at(j, k, d)];
    if (!(s > 0.0)) return false;
    double const l = std::sqrt(s);
    a[at(j, j, d)] = l;
    for (int i = j + 1; i < d; ++i) {
      double t = a[at(i, j, d)];
      for (int k = 0; k < j; ++k) t -= a[at(i, k, d)] * a[at(j, k, d)];
      a[at(i, j, d)] = t / l;
    }
  }
  return true;
}

//! Solves L L^T X = B in place, B [d][m] (m right-hand sides as columns), split over columns.
void cholesky_solve(Vec const& l, Vec& b, int d, int m, ThreadPool& pool) {
  pool.parallel_for(m, [&](std::int64_t c0, std::int64_t c1) {
    for (int i = 0; i < d; ++i) {  // forward: L Z = B
      for (int k = 0; k < i; ++k) {
        double const lik = l[at(i, k, d)];
        for (std::int64_t c = c0; c < c1; ++c)
          b[at(i, 0, m) + static_cast<std::size_t>(c)] -= lik * b[at(k, 0, m) + static_cast<std::size_t>(c)];
      }
      for (std::int64_t c = c0; c < c1; ++c) b[at(i, 0, m) + static_cast<std::size_t>(c)] /= l[at(i, i, d)];
    }
    for (int i = d - 1; i >= 0; --i) {  // backward: L^T X = Z
      for (int k = i + 1; k < d; ++k) {
        double const lki = l[at(k, i, d)];
        for (std::int64_t c = c0; c < c1; ++c)
          b[at(i, 0, m) + static_cast<std::size_t>(c)] -= lki * b[at(k, 0, m) + static_cast<std::size_t>(c)];
      }
      for (std::int64_t c = c0; c < c1; ++c) b[at(i, 0, m) + static_cast<std::size_t>(c)] /= l[at(i, i, d)];
    }
  });
}

//! Eigen-decomposition of a small symmetric [n][n] matrix by cyclic Jacobi rotations: returns
//! the eigenvectors as columns of V ([n][n]); `s` ends with the eigenvalues on its diagonal.
Vec jacobi_eigen(Vec& s, int n) {
  Vec v(static_cast<std::size_t>(n) * static_cast<std::size_t>(n), 0.0);
  for (int i = 0; i < n; ++i) v[at(i, i, n)] = 1.0;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int p = 0; p < n; ++p) {
      diag += s[at(p, p, n)] * s[at(p, p, n)];
      for (int q = p + 1; q < n; ++q) off += s[at(p, q, n)] * s[at(p, q, n)];
    }
    if (off <= 1e-24 * diag) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        double const apq = s[at(p, q, n)];
        if (std::abs(apq) < 1e-300) continue;
        double const theta = (s[at(q, q, n)] - s[at(p, p, n)]) / (2.0 * apq);
        double const t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        double const c = 1.0 / std::sqrt(t * t + 1.0), sn = t * c;
        for (int k = 0; k < n; ++k) {  // S P
          double const kp = s[at(k, p, n)], kq = s[at(k, q, n)];
          s[at(k, p, n)] = c * kp - sn * kq;
          s[at(k, q, n)] = sn * kp + c * kq;
        }
        for (int k = 0; k < n; ++k) {  // P^T (S P)
          double const pk = s[at(p, k, n)], qk = s[at(q, k, n)];
          s[at(p, k, n)] = c * pk - sn * qk;
          s[at(q, k, n)] = sn * pk + c * qk;
        }
        for (int k = 0; k < n; ++k) {  // V P
          double const kp = v[at(k, p, n)], kq = v[at(k, q, n)];
          v[at(k, p, n)] = c * kp - sn * kq;
          v[at(k, q, n)] = sn * kp + c * kq;
        }
      }
    }
  }
  return v;
}

//! Orthonormalizes the rows of `q` ([r][d]) in place: modified Gram-Schmidt, twice ("twice is
//! enough": a row nearly inside the span of the earlier ones keeps only rounding noise after one
//! pass, which the second pass makes orthogonal). A row with nothing left becomes a unit vector
//! orthogonal to the earlier rows.
void orthonormalize_rows(Vec& q, int r, int d) {
  auto const remove_earlier = [&](double* qi, int i) {
    for (int j = 0; j < i; ++j) {
      double const* qj = &q[at(j, 0, d)];
      double const dot = std::inner_product(qi, qi + d, qj, 0.0);
      for (int k = 0; k < d; ++k) qi[k] -= dot * qj[k];
    }
  };
  for (int i = 0; i < r; ++i) {
    double* qi = &q[at(i, 0, d)];
    for (int attempt = 0; attempt <= d; ++attempt) {
      double const before = std::sqrt(std::inner_product(qi, qi + d, qi, 0.0));
      remove_earlier(qi, i);
      remove_earlier(qi, i);
      double const norm = std::sqrt(std::inner_product(qi, qi + d, qi, 0.0));
      if (norm > 1e-10 * before && norm > 0) {
        for (int k = 0; k < d; ++k) qi[k] /= norm;
        break;
      }
      std::fill(qi, qi + d, 0.0);  // nothing left: try the next unit vector
      qi[(i + attempt) % d] = 1.0;
    }
  }
}

//! b = mean(y) - A mean(x): the intercept that makes `a` exact on average over `m`.
Vec intercept(Vec const& a, Moments const& m) {
  int const d = m.d;
  Vec const mx = means(m.sx, m.n), my = means(m.sy, m.n);
  Vec b(static_cast<std::size_t>(d));
  for (int o = 0; o < d; ++o)
    b[static_cast<std::size_t>(o)] =
        my[static_cast<std::size_t>(o)] - std::inner_product(&a[at(o, 0, d)], &a[at(o, 0, d)] + d, mx.begin(), 0.0);
  return b;
}

std::vector<std::uint16_t> to_half(Vec const& v) {
  std::vector<std::uint16_t> h(v.size());
  std::transform(v.begin(), v.end(), h.begin(), [](double x) { return float_to_half(static_cast<float>(x)); });
  return h;
}

// The model as a Host that also records, for the layers asked for, each FFN's input norm(h)
// and output f into that layer's moments.
class RecordingHost {
 public:
  using Step = LlamaHost::Step;

  RecordingHost(LlamaModel const& model, ThreadPool& pool, int max_context, std::vector<Moments*> sinks)
      : model_(model),
        pool_(pool),
        host_(model, pool, 1, max_context, ActivationPrecision::kFloat32, KvCacheType::kFloat32),
        sinks_(std::move(sinks)) {}

  LlamaHost& inner() noexcept { return host_; }
  void set_sinks(std::vector<Moments*> sinks) { sinks_ = std::move(sinks); }

  int num_layers() const noexcept { return host_.num_layers(); }
  void attention_block(int layer, Step& s) { host_.attention_block(layer, s); }
  void ffn_block(int layer, Step& s, std::span<int const> rows) {
    host_.ffn_block(layer, s, rows);
    Moments* sink = sinks_[static_cast<std::size_t>(layer)];
    if (sink == nullptr) return;
    LlamaConfig const& c = model_.config();
    std::size_t const d = static_cast<std::size_t>(c.n_embd);
    normed_.resize(rows.size() * d);
    outputs_.resize(rows.size() * d);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::size_t const row = static_cast<std::size_t>(rows[i]) * d;
      rms_norm(&s.x[row], model_.layer(layer).ffn_norm.data(), &normed_[i * d], c.n_embd, c.rms_eps);
      std::copy_n(&s.f[row], d, &outputs_[i * d]);
    }
    sink->add(normed_.data(), outputs_.data(), static_cast<int>(rows.size()), pool_);
  }
  skipllm::RowView<float> residual(Step& s) const { return host_.residual(s); }
  skipllm::RowView<float const> ffn_output(Step& s) const { return host_.ffn_output(s); }

 private:
  LlamaModel const& model_;
  ThreadPool& pool_;
  LlamaHost host_;
  std::vector<Moments*> sinks_;  // [layers]; nullptr: not recorded
  std::vector<float> normed_, outputs_;
};

std::string fmt(char const* format, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, a, b, c, d);
  return buf;
}

}  // namespace

// ---- Moments ------------------------------------------------------------------------------------

Moments::Moments(int dim)
    : d(dim),
      xx(static_cast<std::size_t>(dim) * static_cast<std::size_t>(dim)),
      xy(xx.size()),
      sx(static_cast<std::size_t>(dim)),
      sy(static_cast<std::size_t>(dim)) {}

void Moments::add(float const* x, float const* y, int rows, ThreadPool& pool) {
  if (rows <= 0) return;
  // Row i of both products at once, accumulated in fp32 over the block's rows (a few hundred at
  // most) with the output index innermost, so the loops vectorize; then added in double.
  for_each_row(pool, d, [&](int i) {
    thread_local std::vector<float> acc;
    acc.assign(2 * static_cast<std::size_t>(d), 0.0f);
    float* axx = acc.data();
    float* axy = acc.data() + d;
    for (int r = 0; r < rows; ++r) {
      float const* xr = x + at(r, 0, d);
      float const* yr = y + at(r, 0, d);
      float const xi = xr[i];
      for (int j = i; j < d; ++j) axx[j] += xi * xr[j];
      for (int j = 0; j < d; ++j) axy[j] += xi * yr[j];
    }
    for (int j = i; j < d; ++j) xx[at(i, j, d)] += axx[j];
    for (int j = 0; j < d; ++j) xy[at(i, j, d)] += axy[j];
  });
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < d; ++i) {
      sx[static_cast<std::size_t>(i)] += x[at(r, i, d)];
      sy[static_cast<std::size_t>(i)] += y[at(r, i, d)];
      yy += static_cast<double>(y[at(r, i, d)]) * y[at(r, i, d)];
    }
  }
  // Only the upper triangle of xx was summed: mirror it.
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < i; ++j) xx[at(i, j, d)] = xx[at(j, i, d)];
  n += static_cast<std::uint64_t>(rows);
}

Moments& Moments::operator+=(Moments const& o) {
  for (std::size_t i = 0; i < xx.size(); ++i) {
    xx[i] += o.xx[i];
    xy[i] += o.xy[i];
  }
  for (std::size_t i = 0; i < sx.size(); ++i) {
    sx[i] += o.sx[i];
    sy[i] += o.sy[i];
  }
  yy += o.yy;
  n += o.n;
  return *this;
}

// ---- Fits -----------------------------------------------------------------------------------------

LinearMap ridge(Moments const& m, double alpha, ThreadPool& pool) {
  int const d = m.d;
  if (m.n < 2) throw std::runtime_error("standin: a ridge fit needs at least two samples");
  Vec const mx = means(m.sx, m.n), my = means(m.sy, m.n);
  Vec cxx = centred(m.xx, mx, mx, m.n, d);
  Vec w = centred(m.xy, mx, my, m.n, d);  // [in][out]; becomes the solution
  double trace = 0;
  for (int i = 0; i < d; ++i) trace += cxx[at(i, i, d)];
  double const lambda = alpha * trace / d;
  for (int i = 0; i < d; ++i) cxx[at(i, i, d)] += lambda;
  if (!cholesky(cxx, d)) {
    throw std::runtime_error("standin: the input moments are not positive definite (alpha " + std::to_string(alpha) +
                             ", " + std::to_string(m.n) + " samples for " + std::to_string(d) + " dimensions)");
  }
  cholesky_solve(cxx, w, d, d, pool);
  LinearMap map;
  map.d = d;
  map.a = transpose(w, d, d);  // [out][in]
  map.b = intercept(map.a, m);
  return map;
}

double relative_error(LinearMap const& map, Moments const& held, ThreadPool& pool) {
  int const d = map.d;
  // sum |y - Ax - b|^2 = yy - 2 tr(A XY) - 2 b.sy + tr(A XX A^T) + 2 b.(A sx) + n |b|^2
  Vec const axx = multiply(map.a, held.xx, d, d, d, pool);
  double quad = 0, cross = 0;
  for (int o = 0; o < d; ++o) {
    for (int i = 0; i < d; ++i) {
      quad += axx[at(o, i, d)] * map.a[at(o, i, d)];
      cross += map.a[at(o, i, d)] * held.xy[at(i, o, d)];
    }
  }
  double b_sy = 0, b_asx = 0, bb = 0;
  for (int o = 0; o < d; ++o) {
    double const bo = map.b[static_cast<std::size_t>(o)];
    b_sy += bo * held.sy[static_cast<std::size_t>(o)];
    b_asx += bo * std::inner_product(&map.a[at(o, 0, d)], &map.a[at(o, 0, d)] + d, held.sx.begin(), 0.0);
    bb += bo * bo;
  }
  double const err = held.yy - 2 * cross - 2 * b_sy + quad + 2 * b_asx + static_cast<double>(held.n) * bb;
  double const sy2 = std::inner_product(held.sy.begin(), held.sy.end(), held.sy.begin(), 0.0);
  double const total = held.yy - sy2 / static_cast<double>(held.n);
  return total > 0 ? err / total : 0.0;
}

std::vector<double> output_directions(LinearMap const& map, Moments const& train, int max_rank, ThreadPool& pool) {
  int const d = map.d;
  int const r = std::min(d, max_rank + 16);  // oversampled: the last directions converge slowest
  Vec const mx = means(train.sx, train.n);
  Vec const cxx = centred(train.xx, mx, mx, train.n, d);
  Vec const c = multiply(multiply(map.a, cxx, d, d, d, pool), transpose(map.a, d, d), d, d, d, pool);
  // Subspace iteration on the rows of Q^T, then Rayleigh-Ritz to order the directions.
  std::mt19937_64 rng(12345);
  std::normal_distribution<double> normal;
  Vec qt(static_cast<std::size_t>(r) * static_cast<std::size_t>(d));
  for (double& v : qt) v = normal(rng);
  orthonormalize_rows(qt, r, d);
  for (int it = 0; it < 40; ++it) {
    qt = multiply(qt, c, r, d, d, pool);  // (C Q)^T = Q^T C, C symmetric
    orthonormalize_rows(qt, r, d);
  }
  Vec s = multiply(multiply(qt, c, r, d, d, pool), transpose(qt, r, d), r, d, r, pool);
  Vec const v = jacobi_eigen(s, r);
  std::vector<int> order(static_cast<std::size_t>(r));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return s[at(a, a, r)] > s[at(b, b, r)]; });
  int const keep = std::min(max_rank, r);
  Vec dirs(static_cast<std::size_t>(keep) * static_cast<std::size_t>(d), 0.0);
  for (int k = 0; k < keep; ++k) {
    int const e = order[static_cast<std::size_t>(k)];
    for (int m = 0; m < r; ++m) {
      double const w = v[at(m, e, r)];
      for (int j = 0; j < d; ++j) dirs[at(k, j, d)] += w * qt[at(m, j, d)];
    }
  }
  return dirs;
}

LinearMap reduce_rank(LinearMap const& map, std::vector<double> const& directions, int rank, Moments const& train,
                      ThreadPool& pool) {
  int const d = map.d;
  Vec const dr(directions.begin(), directions.begin() + static_cast<std::ptrdiff_t>(at(rank, 0, d)));
  Vec const da = multiply(dr, map.a, rank, d, d, pool);  // [r][in]
  LinearMap out;
  out.d = d;
  out.a = multiply(transpose(dr, rank, d), da, d, rank, d, pool);
  out.b = intercept(out.a, train);
  return out;
}

StandInMap to_stored(LinearMap const& map, int layer, int rank, std::vector<double> const& directions) {
  int const d = map.d;
  StandInMap s;
  s.layer = layer;
  s.rank = rank;
  s.bias = to_half(map.b);
  if (rank == 0) {
    s.a = to_half(map.a);
    return s;
  }
  Vec v(static_cast<std::size_t>(rank) * static_cast<std::size_t>(d), 0.0), u(v.size());
  for (int k = 0; k < rank; ++k) {
    for (int o = 0; o < d; ++o) {
      double const dk = directions[at(k, o, d)];
      u[at(o, k, rank)] = dk;
      for (int i = 0; i < d; ++i) v[at(k, i, d)] += dk * map.a[at(o, i, d)];
    }
  }
  s.v = to_half(v);
  s.u = to_half(u);
  return s;
}

// ---- On a model ------------------------------------------------------------------------------------

std::vector<std::vector<std::int32_t>> self_generated(LlamaModel const& model, ThreadPool& pool,
                                                      std::vector<std::vector<std::int32_t>> const& prompts,
                                                      std::size_t tokens, int length, std::int32_t eos,
                                                      Progress const& progress) {
  std::vector<std::vector<std::int32_t>> out;
  if (prompts.empty() || tokens == 0) return out;
  Generator gen(model, pool, skipllm::policy::ConfigurablePolicies{}, length + 1, reference_arithmetic());  // dense
  std::size_t collected = 0;
  for (std::uint64_t round = 0; collected < tokens; ++round) {
    for (std::size_t p = 0; p < prompts.size() && collected < tokens; ++p) {
      std::vector<std::int32_t> seq = prompts[p];
      if (seq.empty() || static_cast<int>(seq.size()) >= length) continue;
      std::mt19937_64 rng(round * 1'000'003u + p);
      SamplingOptions const sampling{0.8f, 0.95f, 0};
      std::span<float const> logits = gen.prefill(seq);
      while (static_cast<int>(seq.size()) < length) {
        std::int32_t const next = sample(logits, sampling, rng);
        if (next == eos) break;
        seq.push_back(next);
        if (static_cast<int>(seq.size()) < length) logits = gen.decode(next);
      }
      collected += seq.size();
      out.push_back(std::move(seq));
      if (progress && out.size() % 8 == 0)
        progress(
            fmt("standin: generated %.0f of %.0f tokens", static_cast<double>(collected), static_cast<double>(tokens)));
    }
    if (round > 1000) break;  // prompts that cannot grow (all at full length): stop
  }
  return out;
}

FitResult fit_model(LlamaModel const& model, ThreadPool& pool, std::vector<std::vector<std::int32_t>> const& sequences,
                    FitOptions const& o, Progress const& progress) {
  LlamaConfig const& c = model.config();
  int const d = c.n_embd, layers = c.n_layers;
  std::vector<int> fit_layers = o.layers;
  if (fit_layers.empty()) {
    fit_layers.resize(static_cast<std::size_t>(layers));
    std::iota(fit_layers.begin(), fit_layers.end(), 0);
  }
  if (o.rank < 0 || o.rank >= d) throw std::invalid_argument("standin: rank must be 0 (full) or below the hidden size");
  std::vector<Moments> train, held;
  for (std::size_t i = 0; i < fit_layers.size(); ++i) {
    if (fit_layers[i] < 0 || fit_layers[i] >= layers) throw std::invalid_argument("standin: layer out of range");
    train.emplace_back(d);
    held.emplace_back(d);
  }
  auto sinks_of = [&](std::vector<Moments>& split) {
    std::vector<Moments*> sinks(static_cast<std::size_t>(layers), nullptr);
    for (std::size_t i = 0; i < fit_layers.size(); ++i) sinks[static_cast<std::size_t>(fit_layers[i])] = &split[i];
    return sinks;
  };

  int max_len = 1;
  for (auto const& s : sequences) max_len = std::max(max_len, static_cast<int>(s.size()));
  RecordingHost host(model, pool, max_len + 1, {});
  skipllm::DecoderStack<RecordingHost, skipllm::policy::DensePolicies> stack(host);
  LlamaHost::Step step = host.inner().make_step(max_len);
  FitResult result;
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    auto const& seq = sequences[s];
    if (seq.empty()) continue;
    bool const is_held =
        o.holdout_every > 1 && static_cast<int>(s % static_cast<std::size_t>(o.holdout_every)) == o.holdout_every - 1;
    host.set_sinks(sinks_of(is_held ? held : train));
    std::vector<int> positions(seq.size()), slots(seq.size(), 0);
    std::iota(positions.begin(), positions.end(), 0);
    host.inner().set_tokens(step, seq, positions, slots);
    stack.begin_sequence(0);
    stack.prefill(step);
    (is_held ? result.held_tokens : result.train_tokens) += seq.size();
    if (progress && ((s + 1) % 8 == 0 || s + 1 == sequences.size()))
      progress(fmt("standin: recorded %.0f of %.0f sequences", static_cast<double>(s + 1),
                   static_cast<double>(sequences.size())));
  }
  if (result.train_tokens < 2 || result.held_tokens < 2)
    throw std::runtime_error("standin: too little fitting text (need training and held-out sequences)");

  result.maps.hidden = d;
  result.maps.layers = layers;
  int const max_rank =
      std::max(o.rank, o.report_ranks.empty() ? 0 : *std::max_element(o.report_ranks.begin(), o.report_ranks.end()));
  for (std::size_t i = 0; i < fit_layers.size(); ++i) {
    int const layer = fit_layers[i];
    LayerReport rep;
    rep.layer = layer;
    rep.error_full = std::numeric_limits<double>::infinity();
    LinearMap best;
    for (double const alpha : o.alphas) {
      LinearMap map;
      try {
        map = ridge(train[i], alpha, pool);
      } catch (std::runtime_error const&) { continue; }  // too little regularization for the data
      double const e = relative_error(map, held[i], pool);
      if (e < rep.error_full) {
        rep.error_full = e;
        rep.alpha = alpha;
        best = std::move(map);
      }
    }
    if (best.a.empty()) throw std::runtime_error("standin: no ridge fit succeeded for layer " + std::to_string(layer));
    rep.error = rep.error_full;
    if (max_rank > 0) {
      std::vector<double> const dirs = output_directions(best, train[i], std::min(max_rank, d - 1), pool);
      for (int const r : o.report_ranks) {
        rep.error_by_rank.push_back(r < d ? relative_error(reduce_rank(best, dirs, r, train[i], pool), held[i], pool)
                                          : rep.error_full);
      }
      if (o.rank > 0) rep.error = relative_error(reduce_rank(best, dirs, o.rank, train[i], pool), held[i], pool);
    }
    // The stored map: refitted on every sequence with the chosen alpha.
    Moments all = train[i];
    all += held[i];
    LinearMap const full = ridge(all, rep.alpha, pool);
    std::vector<double> const all_dirs =
        max_rank > 0 ? output_directions(full, all, std::min(max_rank, d - 1), pool) : std::vector<double>{};
    auto const stored_at = [&](int rank) {
      return rank == 0 ? to_stored(full, layer, 0, {})
                       : to_stored(reduce_rank(full, all_dirs, rank, all, pool), layer, rank, all_dirs);
    };
    StandInMap const stored = stored_at(o.rank);
    if (o.keep_report_ranks) {
      std::vector<int> ranks = o.report_ranks;
      ranks.push_back(0);
      for (int const r : ranks) {
        if (r == o.rank || r >= d) continue;
        auto it = std::find_if(result.other_ranks.begin(), result.other_ranks.end(),
                               [&](auto const& e) { return e.first == r; });
        if (it == result.other_ranks.end()) {
          result.other_ranks.push_back({r, StandInMaps{d, layers, {}}});
          it = std::prev(result.other_ranks.end());
        }
        it->second.maps.push_back(stored_at(r));
      }
    }
    rep.bytes = stored.bytes();
    result.maps.maps.push_back(stored);
    if (progress) {
      std::string line = fmt("standin: layer %.0f alpha %g held-out 1-R^2 full %.3f", layer, rep.alpha, rep.error_full);
      for (std::size_t k = 0; k < rep.error_by_rank.size(); ++k)
        line += fmt(", r%.0f %.3f", o.report_ranks[k], rep.error_by_rank[k]);
      progress(line);
    }
    result.layers.push_back(std::move(rep));
  }
  std::sort(result.maps.maps.begin(), result.maps.maps.end(),
            [](StandInMap const& a, StandInMap const& b) { return a.layer < b.layer; });
  return result;
}

}  // namespace skipllm::engine::standin
