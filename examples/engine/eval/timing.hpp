// Wall-clock timing of runs: the eval tasks' run times and the CLI's load, prefill and decode
// times. Here, in the lowest room that times anything, so eval/ and cli/ share one definition.
#pragma once

#include <chrono>

namespace skipllm::engine::eval {

//! The clock every timing uses: steady, so a clock adjustment mid-run cannot skew a duration.
using Clock = std::chrono::steady_clock;

//! Seconds elapsed since `start`.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace skipllm::engine::eval
