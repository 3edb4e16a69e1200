//! @file
//! SimilarityMetric policies: how alike the residual stream is before and after an FFN block.
//!
//! *What it decides.* One fp32 score per token (per row), higher meaning "this FFN changed the
//! hidden state less". The skip policy compares it with its threshold. Scores are computed in
//! one streaming pass over the hidden dimension with fp32 accumulators, whatever the storage
//! type, so a backend can fuse the pass into the residual add that reads both vectors anyway.
//!
//! *When to use which.* `Cosine` is the paper's metric (cos(h, h + f)). `RelativeUpdate`
//! scores 1 - |f| / |h|, which also notices an FFN that rescales h without turning it.
//!
//! *Rounding.* Products and sums go through `detail::mul_rn`/`detail::add_rn`, which round each
//! operation on its own on host and device alike (no FMA contraction, IEEE sqrt and division even under --use_fast_math), so the CPU and GPU
//! backends form identical per-element terms and differ only in summation order
//! (cuda/row_reduction.cuh states and tests the bound).
//!
//! *What it costs.* Three (or two) multiply-adds per element on data already in
//! registers; a block reduction of a small aggregate on the GPU.
//!
//! A metric is a stateless type with a trivially copyable `Accumulator` and three static
//! functions (see `SimilarityMetric` in concepts.hpp). `finalize` returns NaN when the score
//! is undefined (a zero-norm vector, a non-finite input, an overflowing sum); NaN compares
//! false with every threshold, so an undefined score never causes a skip.
#pragma once

#include "../config.hpp"
#include "../detail/math.hpp"
#include "../numeric.hpp"

namespace skipllm::policy {

//! cos(h, x) between the FFN block's input residual h and its output residual x = h + f.
struct Cosine {
  struct Accumulator {
    float dot = 0.0f;        //!< sum h_i * x_i
    float before_sq = 0.0f;  //!< sum h_i^2
    float after_sq = 0.0f;   //!< sum x_i^2
  };

  SKIPLLM_HOST_DEVICE static Accumulator accumulate(Accumulator a, float before, float after) noexcept {
    using skipllm::detail::add_rn, skipllm::detail::mul_rn;
    return {add_rn(a.dot, mul_rn(before, after)), add_rn(a.before_sq, mul_rn(before, before)),
            add_rn(a.after_sq, mul_rn(after, after))};
  }

  SKIPLLM_HOST_DEVICE static Accumulator combine(Accumulator a, Accumulator b) noexcept {
    using skipllm::detail::add_rn;
    return {add_rn(a.dot, b.dot), add_rn(a.before_sq, b.before_sq), add_rn(a.after_sq, b.after_sq)};
  }

  SKIPLLM_HOST_DEVICE static float finalize(Accumulator a) noexcept {
    // Non-finite sums mean a NaN/Inf input or an overflow; a zero norm has no direction.
    if (!is_finite(a.dot) || !is_finite(a.before_sq) || !is_finite(a.after_sq)) { return skipllm::detail::quiet_nan(); }
    if (a.before_sq <= 0.0f || a.after_sq <= 0.0f) return skipllm::detail::quiet_nan();
    // sqrt each norm separately: the product before_sq * after_sq overflows far sooner.
    using skipllm::detail::div_rn, skipllm::detail::mul_rn, skipllm::detail::sqrt;
    return div_rn(a.dot, mul_rn(sqrt(a.before_sq), sqrt(a.after_sq)));
  }
};

//! 1 - |f| / |h| with f = x - h: 1 when the FFN adds nothing, <= 0 once its update is as
//! large as the residual stream itself.
struct RelativeUpdate {
  struct Accumulator {
    float update_sq = 0.0f;  //!< sum (x_i - h_i)^2
    float before_sq = 0.0f;  //!< sum h_i^2
  };

  SKIPLLM_HOST_DEVICE static Accumulator accumulate(Accumulator a, float before, float after) noexcept {
    using skipllm::detail::add_rn, skipllm::detail::mul_rn;
    float const update = after - before;
    return {add_rn(a.update_sq, mul_rn(update, update)), add_rn(a.before_sq, mul_rn(before, before))};
  }

  SKIPLLM_HOST_DEVICE static Accumulator combine(Accumulator a, Accumulator b) noexcept {
    using skipllm::detail::add_rn;
    return {add_rn(a.update_sq, b.update_sq), add_rn(a.before_sq, b.before_sq)};
  }

  SKIPLLM_HOST_DEVICE static float finalize(Accumulator a) noexcept {
    if (!is_finite(a.update_sq) || !is_finite(a.before_sq) || a.before_sq <= 0.0f) {
      return skipllm::detail::quiet_nan();
    }
    using skipllm::detail::add_rn, skipllm::detail::div_rn, skipllm::detail::sqrt;
    return add_rn(1.0f, -div_rn(sqrt(a.update_sq), sqrt(a.before_sq)));
  }
};

}  // namespace skipllm::policy
