// Compile-only check: the shared decision protocol and metrics instantiate in device code for
// compile-time and runtime policy bundles (AnySkip included), and for every storage type.
#include <skipllm/decision.hpp>
#include <skipllm/policy/bundle.hpp>

namespace kernel_check {

template <class Policies>
__global__ void decide_all_layers(Policies policies, skipllm::SkipState* state, skipllm::FfnDecision* out,
                                  float const* scores, int num_layers) {
  skipllm::begin_token(policies, *state);
  for (int l = 0; l < num_layers; ++l) {
    out[l] = skipllm::decide(policies, *state, l, num_layers, 0);
    if (skipllm::runs_ffn(out[l])) skipllm::observe(*state, scores[l]);
  }
  skipllm::end_token(*state);
}

template <class Metric, class T>
__global__ void score_row(T const* before, T const* after, int n, float* out) {
  typename Metric::Accumulator acc{};
  for (int i = 0; i < n; ++i) acc = Metric::accumulate(acc, skipllm::to_float(before[i]), skipllm::to_float(after[i]));
  *out = Metric::finalize(acc);
}

}  // namespace kernel_check

template __global__ void kernel_check::decide_all_layers(skipllm::policy::PaperPolicies, skipllm::SkipState*,
                                                         skipllm::FfnDecision*, float const*, int);
template __global__ void kernel_check::decide_all_layers(skipllm::policy::RuntimePolicies, skipllm::SkipState*,
                                                         skipllm::FfnDecision*, float const*, int);
// AnySkip: any runtime skip policy (a 1 KiB parameter when it holds LayerThresholds).
template __global__ void kernel_check::decide_all_layers(skipllm::policy::ConfigurablePolicies, skipllm::SkipState*,
                                                         skipllm::FfnDecision*, float const*, int);
template __global__ void kernel_check::score_row<skipllm::policy::Cosine>(float const*, float const*, int, float*);
template __global__ void kernel_check::score_row<skipllm::policy::Cosine>(skipllm::half_t const*,
                                                                          skipllm::half_t const*, int, float*);
template __global__ void kernel_check::score_row<skipllm::policy::RelativeUpdate>(skipllm::bfloat16_t const*,
                                                                                  skipllm::bfloat16_t const*, int,
                                                                                  float*);
