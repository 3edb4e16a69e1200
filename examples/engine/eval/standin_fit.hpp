// Fitting stand-ins for skipped FFNs (`skipllm calibrate --standin`, docs/standin.md).
//
// For each layer l, a linear map g = A n + b of the FFN's input n = norm(h) that predicts the
// FFN's output f, by ridge least squares on dense activations of calibration text:
//
//   A = Cyx (Cxx + lambda I)^-1,  b = mean(f) - A mean(n),   lambda = alpha * trace(Cxx) / hidden
//
// (Cxx, Cyx the centred second moments), solved by Cholesky in double precision. alpha is chosen
// per layer from a small grid by the error on held-out calibration sequences. A rank-r map keeps
// the r output directions that carry most of the fitted outputs' variance (reduced-rank
// regression): A_r = P_r A with P_r the projection on the top r eigenvectors of A Cxx A^T,
// stored as U = V_r (hidden x r) and V = V_r^T A (r x hidden), the bias kept in full.
//
// Only sufficient statistics are kept (per layer: sums of n n^T, n f^T, n, f, |f|^2), so the
// number of fitting tokens costs time, not memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/standin_file.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::engine::standin {

//! Sums over samples (x, y) of one layer: what a ridge fit and its error need.
struct Moments {
  int d = 0;
  std::uint64_t n = 0;
  std::vector<double> xx;  //!< [d][d] sum of x x^T
  std::vector<double> xy;  //!< [d][d] sum of x y^T (row: input feature, column: output)
  std::vector<double> sx;  //!< [d]
  std::vector<double> sy;  //!< [d]
  double yy = 0;           //!< sum of |y|^2

  explicit Moments(int dim = 0);
  //! Adds `rows` samples, x and y row-major [rows][d]; the products run on `pool`.
  void add(float const* x, float const* y, int rows, ThreadPool& pool);
  Moments& operator+=(Moments const& o);
};

//! A fitted map g = A x + b, in double: A [d_out][d_in], b [d].
struct LinearMap {
  int d = 0;
  std::vector<double> a;
  std::vector<double> b;
};

//! The ridge fit on `m` (at least two samples) with lambda = alpha * trace(Cxx) / d. Throws
//! std::runtime_error when the regularized moment matrix is not positive definite (alpha = 0
//! with fewer samples than dimensions).
LinearMap ridge(Moments const& m, double alpha, ThreadPool& pool);

//! Sum over the samples of `held` of |y - (A x + b)|^2, divided by their total variance
//! (1 - R^2; 0 is a perfect fit, 1 no better than the mean).
double relative_error(LinearMap const& map, Moments const& held, ThreadPool& pool);

//! The top `max_rank` eigenvectors of A Cxx A^T (the fitted outputs' covariance on `train`), as
//! [max_rank][d], largest first; a rank-r map uses the first r.
std::vector<double> output_directions(LinearMap const& map, Moments const& train, int max_rank, ThreadPool& pool);

//! The rank-r reduction of `map` on the first r of `directions` (A_r = V_r V_r^T A), its bias
//! refitted to the means of `train`.
LinearMap reduce_rank(LinearMap const& map, std::vector<double> const& directions, int rank, Moments const& train,
                      ThreadPool& pool);

//! The stored form of `map`: full (rank 0) or rank r on `directions`, binary16.
StandInMap to_stored(LinearMap const& map, int layer, int rank, std::vector<double> const& directions);

// ---- On a model -------------------------------------------------------------------------------

struct FitOptions {
  std::vector<int> layers;                                     //!< layers to fit (empty: every layer)
  int rank = 0;                                                //!< 0: full
  std::vector<double> alphas = {1e-3, 1e-2, 1e-1, 1.0, 10.0};  //!< ridge grid, chosen per layer on held-out data
  int holdout_every = 5;                                       //!< every k-th sequence is held out to choose alpha
  std::vector<int> report_ranks = {16, 32, 64, 128};           //!< held-out error printed for these ranks too
  bool keep_report_ranks = false;                              //!< also store maps at every report rank and full
};

struct LayerReport {
  int layer = 0;
  double alpha = 0;
  double error_full = 0;              //!< held-out 1 - R^2 of the full-rank map
  std::vector<double> error_by_rank;  //!< [FitOptions::report_ranks]
  double error = 0;                   //!< of the stored map
  std::size_t bytes = 0;              //!< of the stored map
};

struct FitResult {
  StandInMaps maps;                                      //!< at FitOptions::rank
  std::vector<std::pair<int, StandInMaps>> other_ranks;  //!< with keep_report_ranks: (rank, maps), 0 = full
  std::vector<LayerReport> layers;
  std::uint64_t train_tokens = 0, held_tokens = 0;
};

using Progress = std::function<void(std::string const&)>;

//! Text the model writes itself, to fit on more tokens than the calibration text has: for each
//! prompt in turn (cycling, with a new seed each round), a dense sampled continuation
//! (temperature 0.8, top-p 0.95) to `length` tokens including the prompt, stopping early at
//! `eos`, until `tokens` tokens are collected. Each sequence starts with its prompt.
std::vector<std::vector<std::int32_t>> self_generated(LlamaModel const& model, ThreadPool& pool,
                                                      std::vector<std::vector<std::int32_t>> const& prompts,
                                                      std::size_t tokens, int length, std::int32_t eos,
                                                      Progress const& progress = {});

//! Dense prefill of `sequences` (each a fresh sequence) recording every layer's FFN input
//! norm(h) and output f; fits the maps as above. The held-out sequences choose alpha; the maps
//! are then refitted on all sequences.
FitResult fit_model(LlamaModel const& model, ThreadPool& pool, std::vector<std::vector<std::int32_t>> const& sequences,
                    FitOptions const& options, Progress const& progress = {});

}  // namespace skipllm::engine::standin
