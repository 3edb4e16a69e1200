//! @file
//! DecoderLayer<Host, Policies...>: one transformer layer with an adaptive FFN, for any host.
//!
//! For each row of a decode step: the host's attention block always runs (so every layer
//! writes its K/V and the cache stays complete); the policies decide whether the FFN runs;
//! the host's FFN block runs for the rows that need it, and only if any do; skipllm adds the
//! FFN output into the residual stream and measures the similarity in the same pass, then
//! updates the row's skip state. A skipped row keeps x = h, unless the policies' SkipAction
//! stands in for that layer: then the host's stand-in block runs for those rows, x = h + g,
//! and its score feeds the next decision only when the action says so (policy/skip_action.hpp).
//!
//! Policies are given as
//!   DecoderLayer<Host, Skip, Cold, Warmup, Metric>   the primary, fully spelled-out form,
//!   DecoderLayer<Host, Policies<...>>                a ready bundle,
//!   DecoderLayer<Host>                               policy::PaperPolicies.
#pragma once

#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "concepts.hpp"
#include "cpu/residual_similarity.hpp"
#include "decision.hpp"
#include "detail/dependent_false.hpp"
#include "policy/bundle.hpp"

namespace skipllm {

namespace detail {

//! Always true; naming `checks_ran<expr>` forces `expr` (a chain of check_* calls, each with
//! its own static_assert message) to be evaluated where a class template is instantiated.
template <bool>
inline constexpr bool checks_ran = true;

template <class... P>
struct resolve_policies {
  static_assert(dependent_false_v<resolve_policies>,
                "skipllm: DecoderLayer takes no policies (the paper's defaults), one Policies<...> "
                "bundle, or four policies in the order SkipPolicy, ColdRegion, SinkWarmup, SimilarityMetric");
  using type = policy::DensePolicies;  // keeps later errors from piling up
};
template <>
struct resolve_policies<> {
  using type = policy::PaperPolicies;
};
template <class S, class C, class W, class M, class A>
struct resolve_policies<Policies<S, C, W, M, A>> {
  using type = Policies<S, C, W, M, A>;
};
template <class S, class C, class W, class M>
struct resolve_policies<S, C, W, M> {
  using type = Policies<S, C, W, M>;
};

//! The host's Step, or a placeholder when it has none (check_host reports that).
template <class H>
struct step_of {
  struct missing {};
  using type = missing;
};
template <HostHasStep H>
struct step_of<H> {
  using type = typename H::Step;
};

}  // namespace detail

template <class Host, class... P>
class DecoderLayer {
 public:
  using host_type = Host;
  using policies_type = typename detail::resolve_policies<P...>::type;
  using metric = typename policies_type::metric;
  using step_type = typename detail::step_of<Host>::type;

  static constexpr bool valid =
      check_host<Host>() && policies_type::valid && check_host_stand_in<Host, policies_type::may_stand_in>();
  static_assert(detail::checks_ran<valid>);  // report a bad host or policy as soon as the type is named

  //! `max_rows`: the most rows a step will carry; the row list is allocated here, once.
  DecoderLayer(Host& host, policies_type const& policies = {}, int max_rows = 1)
      : host_(&host),
        policies_(policies),
        run_rows_(static_cast<std::size_t>(max_rows > 0 ? max_rows : 1)),
        standin_rows_(run_rows_.size()) {}

  Host& host() const noexcept { return *host_; }
  policies_type const& policies() const noexcept { return policies_; }
  int max_rows() const noexcept { return static_cast<int>(run_rows_.size()); }

  //! One decode step of `layer`. Row r belongs to the sequence whose state is
  //! `states[slots[r]]`; its decision and score land in `decisions[r]` and `scores[r]`
  //! (score NaN when the FFN was skipped; a stand-in's score when one ran instead).
  void decode(int layer, step_type& step, std::span<int const> slots, std::span<SkipState> states,
              std::span<FfnDecision> decisions, std::span<float> scores) {
    if constexpr (valid) {
      host_->attention_block(layer, step);
      int const num_layers = static_cast<int>(host_->num_layers());
      bool const stands_in = policies_.action.stands_in(layer);
      std::size_t num_run = 0;
      std::size_t num_standin = 0;
      for (std::size_t r = 0; r < slots.size(); ++r) {
        SkipState& state = states[static_cast<std::size_t>(slots[r])];
        decisions[r] = skipllm::decide(policies_, state, layer, num_layers, slots[r]);
        scores[r] = detail::quiet_nan();
        if (runs_ffn(decisions[r])) {
          run_rows_[num_run++] = static_cast<int>(r);
        } else if (stands_in) {
          decisions[r] = FfnDecision::kStandIn;
          standin_rows_[num_standin++] = static_cast<int>(r);
        }
      }
      if (num_run != 0) {  // when every row skips, the FFN weights are not touched
        std::span<int const> const rows(run_rows_.data(), num_run);
        host_->ffn_block(layer, step, rows);
        add_and_score(step, rows, slots, states, scores, true);
      }
      if constexpr (policies_type::may_stand_in) {
        if (num_standin != 0) {
          std::span<int const> const rows(standin_rows_.data(), num_standin);
          host_->standin_block(layer, step, rows);
          add_and_score(step, rows, slots, states, scores, policies_.action.feeds_decision());
        }
      }
    }
  }

  //! Dense step of `layer` over every row of `step` (prefill): no decisions, no scores.
  void prefill(int layer, step_type& step) {
    if constexpr (valid) {
      host_->attention_block(layer, step);
      auto const x = host_->residual(step);
      if (x.rows > max_rows()) grow_rows(x.rows);
      for (std::int64_t r = 0; r < x.rows; ++r) run_rows_[static_cast<std::size_t>(r)] = static_cast<int>(r);
      host_->ffn_block(layer, step, std::span<int const>(run_rows_.data(), static_cast<std::size_t>(x.rows)));
      auto const f = host_->ffn_output(step);
      for (std::int64_t r = 0; r < x.rows; ++r) cpu::residual_add(x.row(r), f.row(r), x.cols);
    }
  }

 private:
  // x += f for `rows` with their scores; `observe`: the scores feed the rows' next decisions.
  void add_and_score(step_type& step, std::span<int const> rows, std::span<int const> slots,
                     std::span<SkipState> states, std::span<float> scores, bool observe) {
    auto const x = host_->residual(step);
    auto const f = host_->ffn_output(step);
    for (int const r : rows) {
      float const score = cpu::residual_add_similarity<metric>(x.row(r), f.row(r), x.cols);
      scores[static_cast<std::size_t>(r)] = score;
      if (observe) skipllm::observe(states[static_cast<std::size_t>(slots[static_cast<std::size_t>(r)])], score);
    }
  }

  // Prefill chunks may be longer than a decode batch; grow once, outside the decode path.
  void grow_rows(std::int64_t rows) {
    run_rows_.resize(static_cast<std::size_t>(rows));
    standin_rows_.resize(static_cast<std::size_t>(rows));
  }

  Host* host_;
  policies_type policies_;
  std::vector<int> run_rows_;      // rows whose FFN runs this step
  std::vector<int> standin_rows_;  // rows whose stand-in runs this step
};

}  // namespace skipllm
