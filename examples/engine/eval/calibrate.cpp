#include "eval/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "eval/reference_arithmetic.hpp"
#include "model/generator.hpp"

namespace skipllm::engine::calibrate {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double log_prob(std::span<float const> logits, std::int32_t token) {
  double max_logit = -std::numeric_limits<double>::infinity();
  for (float const v : logits) max_logit = std::max(max_logit, static_cast<double>(v));
  double sum = 0;
  for (float const v : logits) sum += std::exp(static_cast<double>(v) - max_logit);
  return static_cast<double>(logits[static_cast<std::size_t>(token)]) - max_logit - std::log(sum);
}

std::int32_t argmax(std::span<float const> logits) {
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::string fmt(char const* format, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, a, b, c, d);
  return buf;
}

void say(Progress const& p, std::string const& s) {
  if (p) p(s);
}

ConfigurablePolicies base_policy(std::span<int const> cold, int num_layers, int warmup_tokens, int warmup_every) {
  ConfigurablePolicies p;
  p.warmup = {warmup_tokens, warmup_every};
  // The contiguous ends become counts, the rest an explicit set (the same layers either way).
  int first = 0;
  while (first < num_layers && std::find(cold.begin(), cold.end(), first) != cold.end()) ++first;
  int last = 0;
  while (last < num_layers - first && std::find(cold.begin(), cold.end(), num_layers - 1 - last) != cold.end()) ++last;
  p.cold = {first, last, {}};
  for (int const l : cold) {
    if (l >= first && l < num_layers - last) p.cold.layers.insert(l);
  }
  return p;
}

//! What every calibrated config records besides its skip rule: warm-up, cold layers, depth,
//! target, and the quality reached against dense.
void record_outcome(PolicyConfig& c, ConfigurablePolicies const& p, int num_layers, Options const& o,
                    SearchResult const& best, Measurement const& dense) {
  c.warmup_tokens = o.warmup_tokens;
  c.warmup_every = o.warmup_every;
  c.cold_first = p.cold.first;
  c.cold_last = p.cold.last;
  for (int l = 0; l < num_layers; ++l) {
    if (p.cold.layers.contains(l)) c.cold_layers.push_back(l);
  }
  c.model_layers = num_layers;
  c.target_skip = o.target_skip;
  c.achieved_skip = best.m.skip_ratio;
  c.perplexity_dense = std::exp(dense.nll);
  c.perplexity = std::exp(best.m.nll);
}

//! The end of every config's notes: agreement with dense, whether the target was reached, and
//! the per-layer sensitivity when it was measured.
std::string outcome_notes(SearchResult const& best, std::span<double const> sensitivity) {
  std::string notes = fmt("calibration top-1 agreement with dense %.4f over %.0f positions", best.m.agreement,
                          static_cast<double>(best.m.tokens)) +
                      std::string(best.reached ? "" : "; TARGET NOT REACHED within tolerance");
  if (!sensitivity.empty()) {
    notes += "; per-layer sensitivity (calibration NLL increase when the layer's FFN alone is always skipped):";
    for (double const v : sensitivity) notes += fmt(" %.3f", v);
  }
  return notes;
}

}  // namespace

// ---- Scorer ---------------------------------------------------------------------------------------

Scorer::Scorer(LlamaModel const& model, ThreadPool& pool, std::vector<std::vector<std::int32_t>> sequences)
    : model_(model), pool_(pool) {
  for (auto& s : sequences) {
    if (s.size() >= 2) sequences_.push_back(std::move(s));
  }
  if (sequences_.empty()) throw std::invalid_argument("calibrate: no calibration sequence has two tokens or more");
  for (auto const& s : sequences_) max_context_ = std::max(max_context_, static_cast<int>(s.size()) + 1);
}

std::uint64_t Scorer::positions() const noexcept {
  std::uint64_t n = 0;
  for (auto const& s : sequences_) n += s.size() - 1;
  return n;
}

Measurement Scorer::run(ConfigurablePolicies const& policies, LayerScores* profile) {
  bool const reference = dense_top1_.empty();
  Generator gen(model_, pool_, policies, max_context_, reference_arithmetic({.record_trace = profile != nullptr}));
  if (profile != nullptr) gen.stack().trace().reserve(static_cast<std::size_t>(positions()));
  double nll = 0;
  std::uint64_t n = 0, agree = 0;
  for (auto const& seq : sequences_) {
    std::span<float const> logits = gen.prefill(std::span<std::int32_t const>(seq.data(), 1));
    for (std::size_t i = 1; i < seq.size(); ++i) {
      nll -= log_prob(logits, seq[i]);
      std::int32_t const top = argmax(logits);
      if (reference) dense_top1_.push_back(top);
      agree += dense_top1_[n] == top ? 1u : 0u;
      ++n;
      if (i + 1 < seq.size()) logits = gen.decode(seq[i]);
    }
  }
  Measurement m;
  m.skip_ratio = gen.stack().statistics().skip_ratio();
  m.nll = n ? nll / static_cast<double>(n) : kNaN;
  m.agreement = n ? static_cast<double>(agree) / static_cast<double>(n) : kNaN;
  m.tokens = n;
  if (profile != nullptr) {
    auto const& trace = gen.stack().trace();
    profile->assign(static_cast<std::size_t>(num_layers()), {});
    for (std::size_t t = 0; t < trace.size(); ++t) {
      auto const scores = trace.scores(t);
      for (std::size_t l = 0; l < scores.size(); ++l) {
        if (std::isfinite(scores[l])) (*profile)[l].push_back(scores[l]);
      }
    }
  }
  return m;
}

// ---- Search pieces ----------------------------------------------------------------------------------

std::vector<double> layer_means(LayerScores const& scores) {
  std::vector<double> out;
  for (auto const& layer : scores) {
    double sum = 0;
    std::size_t n = 0;
    for (float const v : layer) {
      if (std::isfinite(v)) sum += v, ++n;
    }
    out.push_back(n ? sum / static_cast<double>(n) : kNaN);
  }
  return out;
}

double quantile(std::vector<float> values, double q) {
  std::erase_if(values, [](float v) { return !std::isfinite(v); });
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  double const pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  std::size_t const i = static_cast<std::size_t>(pos);
  if (i + 1 >= values.size()) return values.back();
  double const frac = pos - static_cast<double>(i);
  return values[i] + frac * (static_cast<double>(values[i + 1]) - values[i]);
}

std::vector<int> choose_cold_layers(std::span<double const> means, std::span<double const> sensitivity,
                                    double min_similarity, double factor) {
  int const n = static_cast<int>(means.size());
  std::vector<int> cold;
  if (n == 0) return cold;
  double median = kNaN;
  if (!sensitivity.empty()) {
    std::vector<double> s(sensitivity.begin(), sensitivity.end());
    std::erase_if(s, [](double v) { return !std::isfinite(v); });
    if (!s.empty()) {
      std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2), s.end());
      median = s[s.size() / 2];
    }
  }
  for (int l = 0; l < n; ++l) {
    auto const lu = static_cast<std::size_t>(l);
    bool c = l == 0 || l == n - 1;
    c = c || !(means[lu] >= min_similarity);  // NaN (never ran) is cold too
    if (std::isfinite(median) && lu < sensitivity.size()) {
      c = c || !(sensitivity[lu] <= factor * std::max(median, 1e-6));
    }
    if (c) cold.push_back(l);
  }
  return cold;
}

std::vector<std::pair<int, int>> candidates(double target, int num_layers, int eligible) {
  std::vector<std::pair<int, int>> out;
  // Blocks a non-dense token must skip on average, with some slack for tokens that never trigger.
  double const blocks = target * num_layers * 1.15;
  for (int const span : {1, 2}) {
    if (span > eligible) break;
    int const max_spans = std::max(1, (eligible + 1) / (span + 1));  // a span, then one measured layer
    int const spans = std::min(max_spans, static_cast<int>(std::ceil(blocks / span)) + 1);
    if (span * max_spans < blocks * 0.9) continue;  // cannot reach the target
    out.emplace_back(span, spans);
  }
  if (out.empty()) out.emplace_back(skipllm::policy::kToColdRegion, 1);
  return out;
}

SearchResult search_threshold(Evaluator const& evaluate, std::function<ConfigurablePolicies(double)> const& make,
                              double lo, double hi, double target, double tolerance, int max_iterations,
                              Progress const& progress) {
  SearchResult best;
  double best_gap = std::numeric_limits<double>::infinity();
  for (int it = 0; it < max_iterations; ++it) {
    double const x = 0.5 * (lo + hi);
    Measurement const m = evaluate(make(x));
    ++best.runs;
    double const gap = std::abs(m.skip_ratio - target);
    say(progress, fmt("    x=%.5f  skip %.3f  nll %.4f  agreement %.3f", x, m.skip_ratio, m.nll, m.agreement));
    if (gap < best_gap) {
      best_gap = gap;
      best.x = x;
      best.m = m;
    }
    if (gap <= tolerance) {
      best.reached = true;
      break;
    }
    if (m.skip_ratio > target)
      lo = x;
    else
      hi = x;
  }
  return best;
}

ConfigurablePolicies greedy_policy(double tau, int span, int spans, std::span<int const> cold, int num_layers,
                                   int warmup_tokens, int warmup_every) {
  ConfigurablePolicies p = base_policy(cold, num_layers, warmup_tokens, warmup_every);
  p.skip = skipllm::policy::Greedy{static_cast<float>(tau), span, spans};
  return p;
}

ConfigurablePolicies quantile_policy(double q, LayerScores const& scores, int span, int spans,
                                     std::span<int const> cold, int num_layers, int warmup_tokens, int warmup_every) {
  ConfigurablePolicies p = base_policy(cold, num_layers, warmup_tokens, warmup_every);
  auto thresholds = skipllm::policy::LayerThresholds::never(span, spans);
  // The last layer's score decides nothing (there is no next layer).
  for (int l = 0; l + 1 < num_layers && static_cast<std::size_t>(l) < scores.size(); ++l) {
    double const t = quantile(scores[static_cast<std::size_t>(l)], q);
    if (std::isfinite(t)) thresholds.tau[l] = static_cast<float>(t);
  }
  p.skip = thresholds;
  return p;
}

int pick_best(std::span<SearchResult const> results, double target) {
  int best = -1;
  for (std::size_t i = 0; i < results.size(); ++i) {
    SearchResult const& r = results[i];
    if (best < 0) {
      best = static_cast<int>(i);
      continue;
    }
    SearchResult const& b = results[static_cast<std::size_t>(best)];
    bool better;
    if (r.reached != b.reached) {
      better = r.reached;
    } else if (r.reached) {
      better = r.m.nll < b.m.nll - 1e-12 || (std::abs(r.m.nll - b.m.nll) <= 1e-12 && r.m.agreement > b.m.agreement);
    } else {
      better = std::abs(r.m.skip_ratio - target) < std::abs(b.m.skip_ratio - target);
    }
    if (better) best = static_cast<int>(i);
  }
  return best;
}

std::vector<double> layer_sensitivity(Evaluator const& evaluate, Measurement const& dense, int num_layers,
                                      int warmup_tokens, Progress const& progress) {
  std::vector<double> out;
  for (int l = 0; l < num_layers; ++l) {
    ConfigurablePolicies p;
    p.cold = {0, 0, {}};
    p.warmup = {warmup_tokens, 0};
    p.skip = skipllm::policy::RandomWindow{1.0f, l, l + 1, 0};  // a window of one layer, always the same: layer l
    Measurement const m = evaluate(p);
    out.push_back(m.nll - dense.nll);
    say(progress, fmt("  sensitivity: layer %2.0f  NLL %+.4f  agreement %.3f", l, m.nll - dense.nll, m.agreement));
  }
  return out;
}

namespace {

// The static variant: the k least sensitive eligible layers are skipped in every non-dense token.
Result search_static(Evaluator const& evaluate, Measurement const& dense, Result r, int num_layers, Options const& o,
                     Progress const& progress) {
  if (r.sensitivity.size() != static_cast<std::size_t>(num_layers)) {
    throw std::invalid_argument("calibrate: the static rule needs the per-layer sensitivity");
  }
  std::vector<int> const cold = o.cold.empty() ? choose_cold_layers(r.means, {}, o.cold_min_similarity, 1e9) : o.cold;
  std::vector<int> order;
  for (int l = 0; l < num_layers; ++l) {
    if (std::find(cold.begin(), cold.end(), l) == cold.end()) order.push_back(l);
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return r.sensitivity[static_cast<std::size_t>(a)] < r.sensitivity[static_cast<std::size_t>(b)];
  });
  ConfigurablePolicies best_p;
  skipllm::policy::StaticMask best_mask;
  SearchResult best;
  double best_gap = std::numeric_limits<double>::infinity();
  for (std::size_t k = 1; k <= order.size(); ++k) {
    ConfigurablePolicies p = base_policy(cold, num_layers, o.warmup_tokens, o.warmup_every);
    skipllm::policy::StaticMask mask;
    for (std::size_t i = 0; i < k; ++i) mask.layers.insert(order[i]);
    p.skip = mask;
    Measurement const m = evaluate(p);
    ++best.runs;
    say(progress, fmt("  static: %2.0f cheapest layers (adding layer %2.0f)  skip %.3f  nll %.4f",
                      static_cast<double>(k), order[k - 1], m.skip_ratio, m.nll) +
                      fmt("  agreement %.3f", m.agreement));
    double const gap = std::abs(m.skip_ratio - o.target_skip);
    if (gap < best_gap) best_gap = gap, best.m = m, best.x = static_cast<double>(k), best_p = p, best_mask = mask;
    if (m.skip_ratio >= o.target_skip - o.tolerance) break;
  }
  best.reached = best_gap <= o.tolerance;
  r.tried.push_back(best);
  r.tried_candidates.emplace_back(0, 0);
  r.tried_cold.push_back(cold);
  r.cold = cold;
  r.achieved = best.m;
  PolicyConfig& c = r.config;
  c.kind = PolicyConfig::Kind::static_layers;
  for (int l = 0; l < num_layers; ++l) {
    if (best_mask.layers.contains(l)) c.static_layers.push_back(l);
  }
  record_outcome(c, best_p, num_layers, o, best, dense);
  c.notes = fmt("static rule: the %.0f least sensitive layers skipped in every non-dense token; ", best.x) +
            outcome_notes(best, r.sensitivity);
  return r;
}

}  // namespace

Result search(Evaluator const& evaluate, LayerScores const& profile, Measurement const& dense,
              std::vector<double> const& sensitivity, int num_layers, Options const& o, Progress const& progress) {
  Result r;
  r.dense = dense;
  r.means = layer_means(profile);
  r.means.resize(static_cast<std::size_t>(num_layers), kNaN);
  r.sensitivity = sensitivity;
  if (o.static_layers) return search_static(evaluate, dense, r, num_layers, o, progress);
  std::vector<std::vector<int>> cold_sets;
  if (!o.cold.empty()) {
    cold_sets.push_back(o.cold);
  } else if (sensitivity.empty()) {
    cold_sets.push_back(choose_cold_layers(r.means, sensitivity, o.cold_min_similarity, 1e9));
  } else {
    for (double const f : o.cold_sensitivity_factors) {
      auto set = choose_cold_layers(r.means, sensitivity, o.cold_min_similarity, f);
      if (std::find(cold_sets.begin(), cold_sets.end(), set) == cold_sets.end()) cold_sets.push_back(std::move(set));
    }
  }
  for (auto const& cold : cold_sets) {
    std::string s = "  cold layers:";
    for (int const l : cold) s.append(" ").append(std::to_string(l));
    say(progress, s);
    int const eligible = num_layers - static_cast<int>(cold.size());
    if (eligible < 1 || eligible < o.target_skip * num_layers) {
      say(progress, "    too few eligible layers for the target: skipped");
      continue;
    }
    auto const cands = o.candidates.empty() ? candidates(o.target_skip, num_layers, eligible) : o.candidates;
    for (auto const& [span, spans] : cands) {
      std::string line = "  candidate: span ";  // appended: g++ 12 warns falsely on "lit" + string&&
      line.append(span >= skipllm::policy::kToColdRegion ? std::string("all") : std::to_string(span));
      line.append(", spans per token ").append(std::to_string(spans));
      line.append(o.per_layer ? " (per-layer quantile q)" : " (tau)");
      say(progress, line);
      std::function<ConfigurablePolicies(double)> make;
      double lo, hi;
      if (o.per_layer) {
        make = [&, span = span, spans = spans](double q) {
          return quantile_policy(q, profile, span, spans, cold, num_layers, o.warmup_tokens, o.warmup_every);
        };
        lo = 0.0, hi = 1.0;
      } else {
        make = [&, span = span, spans = spans](double tau) {
          return greedy_policy(tau, span, spans, cold, num_layers, o.warmup_tokens, o.warmup_every);
        };
        lo = 0.80, hi = 1.0;
      }
      r.tried.push_back(
          search_threshold(evaluate, make, lo, hi, o.target_skip, o.tolerance, o.max_iterations, progress));
      r.tried_candidates.emplace_back(span, spans);
      r.tried_cold.push_back(cold);
    }
  }
  int const best = pick_best(r.tried, o.target_skip);
  if (best < 0) throw std::runtime_error("calibrate: no candidate policy");
  auto const [span, spans] = r.tried_candidates[static_cast<std::size_t>(best)];
  SearchResult const& b = r.tried[static_cast<std::size_t>(best)];
  r.achieved = b.m;
  r.cold = r.tried_cold[static_cast<std::size_t>(best)];

  ConfigurablePolicies const p =
      o.per_layer ? quantile_policy(b.x, profile, span, spans, r.cold, num_layers, o.warmup_tokens, o.warmup_every)
                  : greedy_policy(b.x, span, spans, r.cold, num_layers, o.warmup_tokens, o.warmup_every);
  PolicyConfig& c = r.config;
  c.kind = o.per_layer ? PolicyConfig::Kind::layer_greedy : PolicyConfig::Kind::greedy;
  if (auto const* g = p.skip.greedy()) c.threshold = g->tau;
  if (auto const* t = p.skip.layer_thresholds()) {
    for (int l = 0; l < num_layers; ++l) {
      c.layer_thresholds.push_back(std::isfinite(t->tau[l]) ? std::optional<float>(t->tau[l]) : std::nullopt);
    }
  }
  c.span = span;
  c.spans_per_token = spans;
  record_outcome(c, p, num_layers, o, b, dense);
  c.notes = fmt(o.per_layer ? "per-layer thresholds at quantile q=%.4f of each layer's dense scores; "
                            : "uniform threshold %.5f; ",
                b.x) +
            outcome_notes(b, sensitivity);
  return r;
}

Result calibrate_model(LlamaModel const& model, ThreadPool& pool, std::vector<std::vector<std::int32_t>> sequences,
                       Options const& o, Progress const& progress) {
  Scorer scorer(model, pool, std::move(sequences));
  int const L = model.config().n_layers;
  std::string head = "calibrate: ";
  head.append(std::to_string(scorer.positions())).append(" positions; dense profile");
  say(progress, head);
  ConfigurablePolicies dense_policy;  // skips nothing (policy::Dense); cold layers as the default
  dense_policy.warmup = {o.warmup_tokens, o.warmup_every};
  LayerScores profile;
  Measurement const dense = scorer.run(dense_policy, &profile);
  {
    std::string s = "  dense: nll ";
    s.append(fmt("%.4f (perplexity %.3f)", dense.nll, std::exp(dense.nll))).append("; mean cosine per layer:");
    for (double const m : layer_means(profile)) s += fmt(" %.3f", m);
    say(progress, s);
  }
  // Every candidate stands in where the options say (the model holds the maps): the search then
  // calibrates for skipping with stand-ins.
  Evaluator const evaluate = [&](ConfigurablePolicies const& p) {
    ConfigurablePolicies with_standin = p;
    with_standin.action = o.standin;
    return scorer.run(with_standin);
  };
  std::vector<double> sens;
  if (!o.known_sensitivity.empty() && o.cold.empty()) {
    if (o.known_sensitivity.size() != static_cast<std::size_t>(L)) {
      throw std::invalid_argument("calibrate: " + std::to_string(o.known_sensitivity.size()) +
                                  " sensitivities given for a " + std::to_string(L) + "-layer model");
    }
    sens = o.known_sensitivity;
  } else if (o.sensitivity && o.cold.empty()) {
    std::string line = "calibrate: per-layer sensitivity (";
    line.append(std::to_string(L)).append(" runs)");
    say(progress, line);
    sens = layer_sensitivity(evaluate, dense, L, o.warmup_tokens, progress);
  }
  say(progress, "calibrate: threshold search");
  return search(evaluate, profile, dense, sens, L, o, progress);
}

}  // namespace skipllm::engine::calibrate
