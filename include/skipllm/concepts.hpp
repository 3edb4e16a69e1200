//! @file
//! The four policy concepts, the bundle concept and the Host concept.
//!
//! Each concept is split into one small named requirement per member, so that
//! `check_*<T>()` can report exactly what a malformed type lacks with a `skipllm:` message
//! (nvcc never names a failed concept in its diagnostics; a static_assert it does print).
//! Library entry points call the matching `check_*` and guard their bodies with
//! `if constexpr`, so a bad type yields one readable error rather than a cascade.
#pragma once

#include <concepts>
#include <span>
#include <type_traits>

#include "config.hpp"
#include "row_view.hpp"
#include "skip_state.hpp"

namespace skipllm {

// ---------------------------------------------------------------------------------------------
// SimilarityMetric
//   Requires: a trivially copyable nested `Accumulator` (value-initialised = empty), and
//     static Accumulator accumulate(Accumulator, float before, float after);
//     static Accumulator combine(Accumulator, Accumulator);
//     static float finalize(Accumulator);            // NaN when undefined
//   See policy/similarity.hpp.

template <class M>
concept HasAccumulator = requires {
  typename M::Accumulator;
}
&&std::is_trivially_copyable_v<typename M::Accumulator>&& std::is_default_constructible_v<typename M::Accumulator>;

template <class M>
concept HasAccumulate = requires(typename M::Accumulator a, float v) {
  { M::accumulate(a, v, v) } -> std::same_as<typename M::Accumulator>;
};

template <class M>
concept HasCombine = requires(typename M::Accumulator a) {
  { M::combine(a, a) } -> std::same_as<typename M::Accumulator>;
};

template <class M>
concept HasFinalize = requires(typename M::Accumulator a) {
  { M::finalize(a) } -> std::same_as<float>;
};

template <class M>
concept SimilarityMetric = HasAccumulator<M> && HasAccumulate<M> && HasCombine<M> && HasFinalize<M>;

template <class M>
constexpr bool check_similarity_metric() {
  static_assert(HasAccumulator<M>,
                "skipllm: SimilarityMetric must define a trivially copyable, default-constructible "
                "nested type 'Accumulator' (see policy/similarity.hpp)");
  if constexpr (HasAccumulator<M>) {
    static_assert(HasAccumulate<M>,
                  "skipllm: SimilarityMetric must provide 'static Accumulator accumulate(Accumulator, "
                  "float before, float after)'");
    static_assert(HasCombine<M>,
                  "skipllm: SimilarityMetric must provide 'static Accumulator combine(Accumulator, "
                  "Accumulator)'");
    static_assert(HasFinalize<M>, "skipllm: SimilarityMetric must provide 'static float finalize(Accumulator)'");
  }
  return SimilarityMetric<M>;
}

// ---------------------------------------------------------------------------------------------
// ColdRegion
//   Requires: bool is_cold(int layer, int num_layers) const.   See policy/cold_region.hpp.

template <class C>
concept ColdRegion = requires(C const& c, int i) {
  { c.is_cold(i, i) } -> std::same_as<bool>;
};

template <class C>
constexpr bool check_cold_region() {
  static_assert(ColdRegion<C>,
                "skipllm: ColdRegion must provide 'bool is_cold(int layer, int num_layers) const' "
                "(see policy/cold_region.hpp)");
  return ColdRegion<C>;
}

// ---------------------------------------------------------------------------------------------
// SinkWarmup
//   Requires: bool is_dense(int decode_index) const.
//   Optional: int warmup_tokens() const (0 when absent), used only by the statistics.
//   See policy/sink_warmup.hpp.

template <class W>
concept SinkWarmup = requires(W const& w, int i) {
  { w.is_dense(i) } -> std::same_as<bool>;
};

template <class W>
constexpr bool check_sink_warmup() {
  static_assert(SinkWarmup<W>,
                "skipllm: SinkWarmup must provide 'bool is_dense(int decode_index) const' "
                "(see policy/sink_warmup.hpp)");
  return SinkWarmup<W>;
}

template <class W>
constexpr int warmup_tokens_of(W const& w) {
  if constexpr (requires {
                  { w.warmup_tokens() } -> std::convertible_to<int>;
                }) {
    return w.warmup_tokens();
  } else {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// SkipPolicy
//   Requires: bool should_skip(SkipState&, LayerContext) const.
//   Optional: void begin_token(SkipState&) const, called before the token's first layer.
//   See policy/skip_policy.hpp.

template <class P>
concept SkipPolicy = requires(P const& p, SkipState& s, LayerContext c) {
  { p.should_skip(s, c) } -> std::same_as<bool>;
};

template <class P>
constexpr bool check_skip_policy() {
  static_assert(SkipPolicy<P>,
                "skipllm: SkipPolicy must provide 'bool should_skip(SkipState&, LayerContext) const' "
                "(see policy/skip_policy.hpp)");
  return SkipPolicy<P>;
}

// ---------------------------------------------------------------------------------------------
// SkipAction
//   Requires: bool stands_in(int layer) const; bool feeds_decision() const.
//   See policy/skip_action.hpp.

template <class A>
concept SkipAction = requires(A const& a, int i) {
  { a.stands_in(i) } -> std::same_as<bool>;
  { a.feeds_decision() } -> std::same_as<bool>;
};

template <class A>
constexpr bool check_skip_action() {
  static_assert(SkipAction<A>,
                "skipllm: SkipAction must provide 'bool stands_in(int layer) const' and 'bool feeds_decision() const' "
                "(see policy/skip_action.hpp)");
  return SkipAction<A>;
}

// ---------------------------------------------------------------------------------------------
// Policy bundle: what DecoderLayer composes.

template <class B>
concept PolicyBundle = requires(B const& b) {
  typename B::metric;
  b.skip;
  b.cold;
  b.warmup;
}
&&SkipPolicy<std::remove_cvref_t<decltype(B::skip)>>&& ColdRegion<std::remove_cvref_t<decltype(B::cold)>>&&
    SinkWarmup<std::remove_cvref_t<decltype(B::warmup)>>&& SimilarityMetric<typename B::metric>;

// ---------------------------------------------------------------------------------------------
// Host: the engine skipllm drives.
//   Requires (H a host, s an H::Step, rows the rows whose FFN runs):
//     typename H::Step;                          one forward step over a batch of rows
//     int  h.num_layers() const;
//     void h.attention_block(int layer, Step&);  x += Attn(norm(x)); writes this layer's K/V
//     void h.ffn_block(int layer, Step&, std::span<int const> rows);  f = FFN(norm(x)), listed rows
//     RowView<T> h.residual(Step&);              x  [rows, hidden]
//     RowView<T or T const> h.ffn_output(Step&); f  [rows, hidden]
//   skipllm owns the residual add after the FFN (it reads both vectors to measure the
//   similarity anyway), so ffn_block must not add f into x.
//   Optional, required only by policies that stand in for skipped FFNs (a SkipAction other
//   than policy::NoStandIn):
//     void h.standin_block(int layer, Step&, std::span<int const> rows);  f = standin(x), listed rows
//   which writes the stand-in's output where ffn_block writes f, again without the residual add.

template <class H>
concept HostHasStep = requires {
  typename H::Step;
};

template <class H>
concept HostHasNumLayers = requires(H const& h) {
  { h.num_layers() } -> std::convertible_to<int>;
};

template <class H>
concept HostHasAttention = HostHasStep<H> && requires(H& h, typename H::Step& s, int layer) {
  h.attention_block(layer, s);
};

template <class H>
concept HostHasFfn = HostHasStep<H> && requires(H& h, typename H::Step& s, int layer, std::span<int const> rows) {
  h.ffn_block(layer, s, rows);
};

template <class H>
concept HostHasResidual = HostHasStep<H> && requires(H& h, typename H::Step& s) {
  requires detail::is_row_view_v<std::remove_cvref_t<decltype(h.residual(s))>>;
};

template <class H>
concept HostHasFfnOutput = HostHasStep<H> && requires(H& h, typename H::Step& s) {
  requires detail::is_row_view_v<std::remove_cvref_t<decltype(h.ffn_output(s))>>;
};

template <class H>
concept HostHasStandIn = HostHasStep<H> && requires(H& h, typename H::Step& s, int layer, std::span<int const> rows) {
  h.standin_block(layer, s, rows);
};

template <class H>
concept Host = HostHasStep<H> && HostHasNumLayers<H> && HostHasAttention<H> && HostHasFfn<H> && HostHasResidual<H> &&
    HostHasFfnOutput<H>;

template <class H>
constexpr bool check_host() {
  static_assert(HostHasStep<H>,
                "skipllm: Host must declare a nested type 'Step' (one forward step over a batch of rows)");
  static_assert(HostHasNumLayers<H>, "skipllm: Host must provide 'int num_layers() const'");
  if constexpr (HostHasStep<H>) {
    static_assert(HostHasAttention<H>,
                  "skipllm: Host must provide 'void attention_block(int layer, Step&)' "
                  "(x += Attn(norm(x)), writing this layer's K/V)");
    static_assert(HostHasFfn<H>,
                  "skipllm: Host must provide 'void ffn_block(int layer, Step&, std::span<int const> rows)' "
                  "(f = FFN(norm(x)) for the listed rows, without the residual add)");
    static_assert(HostHasResidual<H>,
                  "skipllm: Host must provide 'skipllm::RowView<T> residual(Step&)' (x, [rows, hidden])");
    static_assert(HostHasFfnOutput<H>,
                  "skipllm: Host must provide 'skipllm::RowView<T> ffn_output(Step&)' (f, [rows, hidden])");
  }
  return Host<H>;
}

//! A host driven with policies that stand in for skipped FFNs must have a stand-in block.
template <class H, bool StandsIn>
constexpr bool check_host_stand_in() {
  if constexpr (StandsIn && HostHasStep<H>) {
    static_assert(HostHasStandIn<H>,
                  "skipllm: the policies stand in for skipped FFNs (a SkipAction other than NoStandIn), so Host "
                  "must provide 'void standin_block(int layer, Step&, std::span<int const> rows)' (f = standin(x) "
                  "for the listed rows, without the residual add)");
    return HostHasStandIn<H>;
  }
  return true;
}

}  // namespace skipllm
