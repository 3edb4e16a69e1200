#include "model/generator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

namespace skipllm::engine {

namespace {

std::string describe(float x) { return std::isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf"; }

std::string number(float x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// Refuses logits no distribution can come from: a NaN or +Inf anywhere, or no finite value. A
// -Inf logit alone is a token masked out, and is kept.
void check_logits(std::span<float const> logits) {
  bool any_finite = false;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    float const x = logits[i];
    if (std::isnan(x) || (std::isinf(x) && x > 0)) {
      throw NonFiniteError("engine: the logit of token " + std::to_string(i) + " is " + describe(x) +
                           "; no token was sampled");
    }
    any_finite = any_finite || std::isfinite(x);
  }
  if (!any_finite) throw NonFiniteError("engine: every logit is -Inf; no token was sampled");
}

}  // namespace

void validate(SamplingOptions const& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0.0f) {
    throw std::invalid_argument("engine: temperature must be finite and >= 0 (0 = greedy), got " +
                                number(o.temperature));
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {  // written so that NaN fails too
    throw std::invalid_argument("engine: top_p must be in (0, 1], got " + number(o.top_p));
  }
}

std::int32_t sample(std::span<float const> logits, SamplingOptions const& o, std::mt19937_64& rng) {
  validate(o);
  if (logits.empty()) throw std::invalid_argument("engine: no logits to sample from");
  check_logits(logits);
  if (o.temperature == 0.0f) {
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Softmax at the temperature, then the smallest set of tokens holding top_p of the mass.
  float const max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<std::pair<float, std::int32_t>> probs(logits.size());
  double total = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    float const p = std::exp((logits[i] - max_logit) / o.temperature);
    probs[i] = {p, static_cast<std::int32_t>(i)};
    total += p;
  }
  std::sort(probs.begin(), probs.end(), [](auto const& a, auto const& b) { return a.first > b.first; });
  double kept = 0;
  std::size_t n = 0;
  while (n < probs.size() && (n == 0 || kept < o.top_p * total)) kept += probs[n++].first;
  double pick = std::uniform_real_distribution<double>(0.0, kept)(rng);
  for (std::size_t i = 0; i < n; ++i) {
    pick -= probs[i].first;
    if (pick <= 0) return probs[i].second;
  }
  return probs[n - 1].second;
}

Generator::Generator(LlamaModel const& model, ThreadPool& pool, skipllm::policy::ConfigurablePolicies const& policies,
                     int max_context, GeneratorOptions const& options)
    : host_(model, pool, 1, max_context, options.precision, options.kv_cache),
      stack_(host_, policies, {.max_sequences = 1, .record_trace = options.record_trace}),
      prefill_step_(host_.make_step(kPrefillChunk)),
      decode_step_(host_.make_step(1)),
      logits_(static_cast<std::size_t>(model.config().vocab)) {
  if (char const* why = skipllm::policy::invalid_reason(policies))
    throw std::invalid_argument(std::string("engine: invalid policy: ") + why);
  host_.set_layer_skip(options.skip_attention);
}

std::span<float const> Generator::prefill(std::span<std::int32_t const> prompt) {
  if (prompt.empty()) throw std::invalid_argument("engine: empty prompt");
  if (prompt.size() >= static_cast<std::size_t>(max_context())) {
    throw std::invalid_argument("engine: prompt of " + std::to_string(prompt.size()) +
                                " tokens does not fit the context of " + std::to_string(max_context()));
  }
  stack_.begin_sequence(0);
  position_ = 0;
  std::vector<int> positions(kPrefillChunk), slots(kPrefillChunk, 0);
  for (std::size_t begin = 0; begin < prompt.size(); begin += kPrefillChunk) {
    std::size_t const n = std::min<std::size_t>(kPrefillChunk, prompt.size() - begin);
    std::iota(positions.begin(), positions.begin() + static_cast<std::ptrdiff_t>(n), position_);
    host_.set_tokens(prefill_step_, prompt.subspan(begin, n), std::span<int const>(positions.data(), n),
                     std::span<int const>(slots.data(), n));
    stack_.prefill(prefill_step_);
    position_ += static_cast<int>(n);
    check_finite(prefill_step_);
  }
  host_.logits(prefill_step_, prefill_step_.rows - 1, logits_);
  last_step_ = &prefill_step_;
  return logits_;
}

std::span<float const> Generator::decode(std::int32_t token) {
  if (position_ >= max_context())
    throw std::length_error("engine: context of " + std::to_string(max_context()) + " tokens is full");
  int const slot = 0;
  host_.set_tokens(decode_step_, std::span<std::int32_t const>(&token, 1), std::span<int const>(&position_, 1),
                   std::span<int const>(&slot, 1));
  stack_.decode(decode_step_);
  ++position_;
  check_finite(decode_step_);
  host_.logits(decode_step_, 0, logits_);
  last_step_ = &decode_step_;
  return logits_;
}

void Generator::check_finite(LlamaHost::Step const& step) const {
  std::size_t const d = static_cast<std::size_t>(host_.model().config().n_embd);
  for (std::size_t r = 0; r < static_cast<std::size_t>(step.rows); ++r) {
    std::span<float const> const row = std::span<float const>(step.x).subspan(r * d, d);
    auto const bad = std::find_if(row.begin(), row.end(), [](float x) { return !std::isfinite(x); });
    if (bad != row.end()) {
      throw NonFiniteError("engine: the hidden state of the token at position " + std::to_string(step.positions[r]) +
                           " is " + describe(*bad) + " after the last layer (corrupt weights or an overflow)");
    }
  }
}

std::span<float const> Generator::last_residual() const {
  if (last_step_ == nullptr) return {};
  std::size_t const d = static_cast<std::size_t>(host_.model().config().n_embd);
  return std::span<float const>(last_step_->x).subspan(static_cast<std::size_t>(last_step_->rows - 1) * d, d);
}

}  // namespace skipllm::engine
