// Calibration of the skip policy for one model (`skipllm calibrate`, docs/calibrate.md).
//
// Everything is measured by teacher forcing on calibration text: each sequence is fed token by
// token through the skipping decoder (prefill of its first token only, so every later token is
// a decode step where the policy acts), which gives, for any policy, the skip ratio it reaches
// on that text and the quality it keeps (next-token NLL, and agreement of the top-1 prediction
// with dense decoding at every position). The search:
//
//  1. dense profile: per-layer FFN-block cosine on the calibration text;
//  2. per-layer sensitivity (optional): the NLL increase when layer l's FFN alone is skipped at
//     every token;
//  3. cold layers: the first and last layer, layers whose mean dense cosine is below
//     `cold_min_similarity`, and (with sensitivity) layers whose NLL increase exceeds
//     `cold_sensitivity_factor` x the median; the shared ends become first/last counts;
//  4. for each candidate (span, spans per token), bisect the threshold (or, per layer, the
//     quantile q of each layer's own score distribution) on real skipping runs until the
//     achieved ratio is within `tolerance` of the target; keep the candidate with the lowest
//     calibration NLL (ties: higher agreement).
//
// The search logic (search_threshold, choose_cold_layers, pick_best) works on any evaluator, so it
// is unit-tested on synthetic data (tests/engine/eval/test_calibrate.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "format/policy_config.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::engine::calibrate {

using skipllm::policy::ConfigurablePolicies;

//! What one teacher-forced pass over the calibration text measured.
struct Measurement {
  double skip_ratio = 0;     //!< skipped FFN blocks / all FFN blocks of the decode steps
  double nll = 0;            //!< mean next-token negative log-likelihood (nats)
  double agreement = 1;      //!< share of positions whose top-1 prediction equals dense's
  std::uint64_t tokens = 0;  //!< scored positions
};

//! Per-layer dense similarity scores, [layer][sample].
using LayerScores = std::vector<std::vector<float>>;

//! Teacher-forced scoring of token sequences with one policy.
class Scorer {
 public:
  Scorer(LlamaModel const& model, ThreadPool& pool, std::vector<std::vector<std::int32_t>> sequences);

  //! Runs every sequence with `policies`. With `profile`, also returns each layer's scores
  //! (meaningful for a dense policy). The first call must be dense: it records the reference
  //! top-1 predictions the agreement of later calls is measured against.
  Measurement run(ConfigurablePolicies const& policies, LayerScores* profile = nullptr);

  int num_layers() const noexcept { return model_.config().n_layers; }
  std::uint64_t positions() const noexcept;

 private:
  LlamaModel const& model_;
  ThreadPool& pool_;
  std::vector<std::vector<std::int32_t>> sequences_;
  std::vector<std::int32_t> dense_top1_;  // per scored position, from the first run
  int max_context_ = 0;
};

//! Evaluates one candidate policy (a Scorer, or a synthetic model in the tests).
using Evaluator = std::function<Measurement(ConfigurablePolicies const&)>;

//! Progress lines ("calibrate: ..."); may be empty.
using Progress = std::function<void(std::string const&)>;

struct Options {
  double target_skip = 0.25;  //!< fraction of all FFN blocks of the decode steps
  double tolerance = 0.01;    //!< |achieved - target| accepted
  bool per_layer = false;     //!< one threshold per layer (quantiles) instead of one tau
  //! No threshold at all: skip the k least sensitive layers in every token that may skip, k
  //! growing until the target is reached (needs the sensitivity). Not adaptive: the baseline
  //! the similarity signal must beat, and on SmolLM2-135M the best rule at low skip ratios.
  bool static_layers = false;
  int max_iterations = 9;  //!< bisection steps per candidate
  int warmup_tokens = 16;
  int warmup_every = 0;
  double cold_min_similarity = 0.5;  //!< layers below this mean dense cosine are cold
  //! With sensitivity, each factor f gives one cold set (NLL increase > f x median = cold); the
  //! search tries every distinct set with every (span, spans) candidate.
  std::vector<double> cold_sensitivity_factors = {1e9, 1.0};
  bool sensitivity = true;                //!< measure the per-layer sensitivity (L extra runs)
  std::vector<double> known_sensitivity;  //!< use these instead of measuring (from an earlier run)
  //! Cold layers to use as given (no sensitivity runs, no profile rule); empty: choose them.
  std::vector<int> cold;
  //! (span, spans per token) candidates; empty: derived from the target (calibrate::candidates).
  std::vector<std::pair<int, int>> candidates;
  //! Skipped FFNs of these layers run the model's stand-in (LlamaModel::standins()) in every
  //! run of the search, sensitivity included; none by default.
  skipllm::policy::StandIn standin;
};

//! Mean of each layer's finite scores (NaN for a layer without any).
std::vector<double> layer_means(LayerScores const& scores);

//! The q-quantile (0..1, linear interpolation) of the finite values; NaN when there are none.
double quantile(std::vector<float> values, double q);

//! The cold set: layer 0, the last layer, layers with a mean below `min_similarity`, and layers
//! whose sensitivity exceeds `factor` x the median sensitivity (when sensitivities are given).
std::vector<int> choose_cold_layers(std::span<double const> means, std::span<double const> sensitivity,
                                    double min_similarity, double factor);

//! Candidate (span, spans per token) pairs able to reach `target` on `num_layers` layers with
//! `eligible` non-cold layers: spans of 1 and 2 layers (re-checked), each with enough spans per
//! token (longer spans lost on every target in our SmolLM2 runs; pass others explicitly).
std::vector<std::pair<int, int>> candidates(double target, int num_layers, int eligible);

//! Bisection of a knob `x` in [lo, hi] whose skip ratio decreases as x grows (tau, or the
//! quantile q). `make` builds the policy for x. Returns the x whose ratio is nearest the target
//! (the first within tolerance), with its measurement.
struct SearchResult {
  double x = 0;
  Measurement m;
  int runs = 0;
  bool reached = false;  //!< within tolerance
};
SearchResult search_threshold(Evaluator const& evaluate, std::function<ConfigurablePolicies(double)> const& make,
                              double lo, double hi, double target, double tolerance, int max_iterations,
                              Progress const& progress = {});

//! The policy for a uniform tau or for per-layer quantile q, given the cold set and span.
ConfigurablePolicies greedy_policy(double tau, int span, int spans, std::span<int const> cold, int num_layers,
                                   int warmup_tokens, int warmup_every);
ConfigurablePolicies quantile_policy(double q, LayerScores const& scores, int span, int spans,
                                     std::span<int const> cold, int num_layers, int warmup_tokens, int warmup_every);

//! Among results that reached the target, the lowest NLL (ties: higher agreement); if none
//! reached it, the one nearest the target. Returns the index, or -1 for an empty list.
int pick_best(std::span<SearchResult const> results, double target);

//! The whole search. `evaluate` runs a policy on the calibration text; `profile` is the dense
//! per-layer score profile; `sensitivity` the per-layer NLL increase (may be empty).
struct Result {
  PolicyConfig config;
  Measurement dense;
  Measurement achieved;
  std::vector<double> means;
  std::vector<double> sensitivity;
  std::vector<int> cold;
  std::vector<SearchResult> tried;  //!< one per candidate
  std::vector<std::pair<int, int>> tried_candidates;
  std::vector<std::vector<int>> tried_cold;
};
Result search(Evaluator const& evaluate, LayerScores const& profile, Measurement const& dense,
              std::vector<double> const& sensitivity, int num_layers, Options const& options,
              Progress const& progress = {});

//! The complete calibration on a model: dense profile, sensitivity, search.
Result calibrate_model(LlamaModel const& model, ThreadPool& pool, std::vector<std::vector<std::int32_t>> sequences,
                       Options const& options, Progress const& progress = {});

//! Per-layer NLL increase when layer l's FFN alone is skipped at every decode token.
std::vector<double> layer_sensitivity(Evaluator const& evaluate, Measurement const& dense, int num_layers,
                                      int warmup_tokens, Progress const& progress = {});

}  // namespace skipllm::engine::calibrate
