// The host-side parts of the CUDA backend, which run without a GPU: the row split of the
// vectorized loads, block-size choice, workspace planning, the statistics fold, the stack
// options, the CUDA Host concept. (Compiled with nvcc; labelled unit, so it always runs.)
#define BOOST_TEST_MODULE skipllm CUDA backend host side
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <skipllm/cpu/residual_similarity.hpp>
#include <skipllm/cuda/decoder_stack.cuh>
#include <skipllm/cuda/device_probe.cuh>
#include <skipllm/cuda/next_norm.cuh>
#include <skipllm/cuda/residual_similarity_kernel.cuh>
#include <skipllm/policy/bundle.hpp>

namespace cu = skipllm::cuda;

namespace {

// Every element index is visited exactly once, in range, and vector starts are 16-byte aligned
// on both rows.
void check_split_covers(std::uintptr_t a, std::uintptr_t b, std::int64_t n, int elem) {
  cu::RowSplit const s = cu::split_row(a, b, n, elem);
  std::vector<int> seen(static_cast<std::size_t>(n), 0);
  if (!s.vectorized) {
    for (auto& x : seen) ++x;
  } else {
    int const width = 16 / elem;
    BOOST_TEST(s.head < width);
    BOOST_TEST(s.tail < width);
    for (int i = 0; i < s.head; ++i) ++seen[static_cast<std::size_t>(i)];
    for (std::int64_t v = 0; v < s.vectors; ++v) {
      std::int64_t const start = s.head + v * width;
      BOOST_TEST((a + static_cast<std::uintptr_t>(start * elem)) % 16 == 0u);
      BOOST_TEST((b + static_cast<std::uintptr_t>(start * elem)) % 16 == 0u);
      for (int j = 0; j < width; ++j) ++seen[static_cast<std::size_t>(start + j)];
    }
    for (int i = 0; i < s.tail; ++i) ++seen[static_cast<std::size_t>(s.head + s.vectors * width + i)];
  }
  for (std::size_t i = 0; i < seen.size(); ++i) BOOST_TEST(seen[i] == 1, "n=" << n << " i=" << i);
}

}  // namespace

BOOST_AUTO_TEST_CASE(row_split_covers_every_element_once) {
  for (int elem : {2, 4}) {
    for (std::int64_t n : {1, 2, 7, 8, 9, 17, 97, 576, 4095, 4096, 4099}) {
      for (std::uintptr_t offset : {0u, 2u, 4u, 6u, 8u, 12u, 14u}) {
        if (offset % static_cast<std::uintptr_t>(elem) != 0) continue;
        check_split_covers(4096 + offset, 8192 + offset, n, elem);       // same misalignment: vectorized
        check_split_covers(4096 + offset, 8192 + 16 - offset, n, elem);  // may differ: scalar when so
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(row_split_cases) {
  // Aligned rows of a multiple of the width: all vectors.
  cu::RowSplit s = cu::split_row(0x1000, 0x2000, 4096, 2);
  BOOST_TEST(s.vectorized);
  BOOST_TEST(s.head == 0);
  BOOST_TEST(s.vectors == 512);
  BOOST_TEST(s.tail == 0);
  // bf16 row starting 2 elements past a boundary, 17 elements: 6 head, 1 vector, 3 tail.
  s = cu::split_row(0x1004, 0x2004, 17, 2);
  BOOST_TEST(s.vectorized);
  BOOST_TEST(s.head == 6);
  BOOST_TEST(s.vectors == 1);
  BOOST_TEST(s.tail == 3);
  // Different offsets: scalar.
  s = cu::split_row(0x1004, 0x2000, 4096, 2);
  BOOST_TEST(!s.vectorized);
  // A row shorter than its head.
  s = cu::split_row(0x1002, 0x2002, 1, 2);
  BOOST_TEST(s.vectorized);
  BOOST_TEST(s.head == 1);
  BOOST_TEST(s.vectors == 0);
  BOOST_TEST(s.tail == 0);
  // Empty.
  s = cu::split_row(0x1000, 0x1000, 0, 4);
  BOOST_TEST(s.head + s.vectors + s.tail == 0);
}

BOOST_AUTO_TEST_CASE(block_size_comes_from_the_closed_list) {
  BOOST_TEST(cu::residual_block_threads(576, 2) == cu::kResidualThreadsSmall);
  BOOST_TEST(cu::residual_block_threads(2048, 2) == cu::kResidualThreadsSmall);
  BOOST_TEST(cu::residual_block_threads(2049, 2) == cu::kResidualThreadsLarge);
  BOOST_TEST(cu::residual_block_threads(4096, 2) == cu::kResidualThreadsLarge);
  BOOST_TEST(cu::residual_block_threads(1, 4) == cu::kResidualThreadsSmall);
  BOOST_TEST(cu::residual_block_threads(8192, 4) == cu::kResidualThreadsLarge);
}

BOOST_AUTO_TEST_CASE(workspace_layout_is_aligned_and_disjoint) {
  cu::WorkspaceShape s;
  s.num_layers = 30;
  s.max_sequences = 5;
  s.max_rows = 7;
  s.max_prefill_rows = 33;
  s.hidden = 577;
  s.trace_capacity = 11;
  s.elem_bytes = 2;
  s.policies_bytes = 40;
  cu::WorkspaceLayout const w = cu::plan_workspace(s);
  BOOST_TEST(w.gather);
  BOOST_TEST(w.batch_rows == 33);
  BOOST_TEST(w.row_stride == 584);  // 577 rounded up to whole 8-element vectors
  std::vector<std::size_t> offsets = {w.policies,
                                      w.states0,
                                      w.states1,
                                      w.row_slots,
                                      w.row_runs,
                                      w.run_rows,
                                      w.num_run_rows,
                                      w.decisions,
                                      w.scores,
                                      w.layer_counts,
                                      w.totals,
                                      w.trace_slots,
                                      w.trace_decode_indices,
                                      w.trace_decisions,
                                      w.trace_scores,
                                      w.ffn_input,
                                      w.ffn_output};
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    BOOST_TEST(offsets[i] % cu::kWorkspaceAlignment == 0u);
    if (i > 0) BOOST_TEST(offsets[i] > offsets[i - 1]);
  }
  BOOST_TEST(w.ffn_output + 33u * 584u * 2u <= w.bytes);
  BOOST_TEST(w.trace_scores + 11u * 30u * 4u <= w.ffn_input);
  BOOST_TEST(cu::workspace_bytes(s) == w.bytes);

  s.max_rows = 1;
  s.max_prefill_rows = 0;
  cu::WorkspaceLayout const single = cu::plan_workspace(s);
  BOOST_TEST(!single.gather);
  BOOST_TEST(single.batch_rows == 1);
  BOOST_TEST(single.bytes < w.bytes);
}

BOOST_AUTO_TEST_CASE(bad_workspace_shapes_are_rejected) {
  cu::WorkspaceShape s;
  s.num_layers = 4;
  s.hidden = 64;
  BOOST_CHECK_NO_THROW(cu::plan_workspace(s));
  auto bad = s;
  bad.hidden = 0;
  BOOST_CHECK_THROW(cu::plan_workspace(bad), std::invalid_argument);
  bad = s;
  bad.num_layers = 0;
  BOOST_CHECK_THROW(cu::plan_workspace(bad), std::invalid_argument);
  bad = s;
  bad.max_rows = 0;
  BOOST_CHECK_THROW(cu::plan_workspace(bad), std::invalid_argument);
  bad = s;
  bad.elem_bytes = 8;
  BOOST_CHECK_THROW(cu::plan_workspace(bad), std::invalid_argument);
  // Too small, and misaligned, caller buffers (host memory is fine here: nothing is touched).
  std::vector<unsigned char> small(64);
  BOOST_CHECK_THROW((cu::carve_workspace<skipllm::policy::RuntimePolicies, float>(s, small.data(), small.size())),
                    std::invalid_argument);
  std::size_t const need = cu::workspace_bytes([&] {
    auto t = s;
    t.elem_bytes = 4;
    t.policies_bytes = sizeof(skipllm::policy::RuntimePolicies);
    return t;
  }());
  std::vector<unsigned char> big(need + 512);
  auto* aligned = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(big.data()) + 255) / 256 * 256);
  BOOST_CHECK_NO_THROW((cu::carve_workspace<skipllm::policy::RuntimePolicies, float>(s, aligned, need)));
  BOOST_CHECK_THROW((cu::carve_workspace<skipllm::policy::RuntimePolicies, float>(s, aligned + 4, need)),
                    std::invalid_argument);
}

namespace hosts {

// A minimal CUDA host, and broken ones (named namespace: nvcc warns about unused members of
// unnamed-namespace classes).
struct GoodHost {
  struct Step {};
  int num_layers() const { return 2; }
  void attention_block(int, Step&, cudaStream_t) {}
  void ffn_block(int, Step&, cu::FfnBatch<skipllm::bfloat16_t> const&, cudaStream_t) {}
  skipllm::RowView<skipllm::bfloat16_t> residual(Step&) { return {}; }
};
struct CpuStyleHost {  // a CPU host is not a CUDA host
  struct Step {};
  int num_layers() const { return 2; }
  void attention_block(int, Step&) {}
  void ffn_block(int, Step&, std::span<int const>) {}
  skipllm::RowView<float> residual(Step&) { return {}; }
};
struct DoubleHost {
  struct Step {};
  int num_layers() const { return 2; }
  void attention_block(int, Step&, cudaStream_t) {}
  void ffn_block(int, Step&, cu::FfnBatch<double> const&, cudaStream_t) {}
  skipllm::RowView<double> residual(Step&) { return {}; }
};

// GoodHost plus the next-RMSNorm hook (next_norm.cuh), and one whose hook has the wrong type.
struct NormFusingHost : GoodHost {
  double* residual_sum_squares(Step&) { return nullptr; }
};
struct FloatSquaresHost : GoodHost {
  float* residual_sum_squares(Step&) { return nullptr; }
};

}  // namespace hosts

using hosts::CpuStyleHost;
using hosts::DoubleHost;
using hosts::GoodHost;

BOOST_AUTO_TEST_CASE(cuda_host_concept) {
  static_assert(cu::Host<GoodHost>);
  static_assert(!cu::Host<CpuStyleHost>);
  static_assert(cu::CudaHostHasResidual<CpuStyleHost> && !cu::CudaHostHasAttention<CpuStyleHost>);
  static_assert(!cu::Host<DoubleHost>);
  static_assert(!cu::CudaHostResidualIsStorage<DoubleHost>);
  using Layer = cu::DecoderLayer<GoodHost, skipllm::policy::RuntimePolicies>;
  static_assert(std::is_same_v<Layer::device_type, __nv_bfloat16>);
  static_assert(std::is_same_v<Layer::value_type, skipllm::bfloat16_t>);
  static_assert(std::is_same_v<cu::DecoderLayer<GoodHost>::policies_type, skipllm::policy::PaperPolicies>);
  BOOST_TEST(true);
}

BOOST_AUTO_TEST_CASE(device_counts_fold_into_the_same_statistics) {
  constexpr int kLayers = 9;
  constexpr int kWarmup = 3;
  std::mt19937 gen(7);
  skipllm::SkipStatistics direct(kLayers, kWarmup);
  // What the token-end kernel adds up: [layer][decision] counts and the tokens past the warm-up.
  std::vector<unsigned long long> counters(cu::layer_counter_count(kLayers), 0);
  BOOST_TEST(counters.size() == static_cast<std::size_t>(kLayers * skipllm::kNumFfnDecisions));
  unsigned long long after = 0;
  for (int t = 0; t < 200; ++t) {
    int const index = static_cast<int>(gen() % 12);
    bool const dense = index < kWarmup || gen() % 5 == 0;
    std::vector<skipllm::FfnDecision> d(kLayers);
    for (std::size_t l = 0; l < d.size(); ++l) {
      d[l] = dense ? skipllm::FfnDecision::kRunDense : static_cast<skipllm::FfnDecision>(gen() % 3);  // R, S or C
      ++counters[l * skipllm::kNumFfnDecisions + static_cast<std::size_t>(d[l])];
    }
    if (index >= kWarmup) ++after;
    direct.record_token(index, d);
  }
  std::vector<skipllm::LayerCounts> const layers = cu::to_layer_counts(counters);
  BOOST_TEST_REQUIRE(layers.size() == static_cast<std::size_t>(kLayers));
  skipllm::SkipStatistics folded(kLayers, kWarmup);
  folded.add_counts(layers, after);
  BOOST_TEST(folded.tokens() == direct.tokens());
  BOOST_TEST(folded.tokens_after_warmup() == direct.tokens_after_warmup());
  BOOST_TEST(folded.dense_tokens() == direct.dense_tokens());
  BOOST_TEST(folded.skip_ratio() == direct.skip_ratio());
  BOOST_TEST(folded.skip_ratio_after_warmup() == direct.skip_ratio_after_warmup());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    auto const& a = folded.layers()[l];
    auto const& b = direct.layers()[l];
    BOOST_TEST(a.ran == b.ran);
    BOOST_TEST(a.skipped == b.skipped);
    BOOST_TEST(a.ran_cold == b.ran_cold);
    BOOST_TEST(a.ran_dense == b.ran_dense);
  }
}

BOOST_AUTO_TEST_CASE(options_shared_with_the_cpu_stack_plan_the_workspace) {
  using Stack = cu::DecoderStack<GoodHost, skipllm::policy::RuntimePolicies>;
  cu::WorkspaceShape const s = Stack::shape_for({.stack = {.max_sequences = 3}, .hidden = 8, .trace_capacity = 5}, 4);
  BOOST_TEST(s.max_sequences == 3);
  BOOST_TEST(s.max_rows == 3);  // 0 rows per step: one per sequence, as on the CPU
  BOOST_TEST(s.trace_capacity == 5);
  BOOST_TEST(Stack::shape_for({.stack = {.max_sequences = 3, .max_rows = 7}, .hidden = 8}, 4).max_rows == 7);
  // Recording the trace needs room for it on the device.
  BOOST_CHECK_THROW(Stack::shape_for({.stack = {.record_trace = true}, .hidden = 8}, 4), std::invalid_argument);
  BOOST_CHECK_NO_THROW(Stack::shape_for({.stack = {.record_trace = true}, .hidden = 8, .trace_capacity = 1}, 4));
}

// ---------------------------------------------------------------------------------------------
// Hazards the backend guards against, decided by host logic.

BOOST_AUTO_TEST_CASE(device_probe_skips_only_when_there_is_nothing_to_run_on) {
  using S = cu::DeviceStatus;
  // No driver installed (this machine, CI): the runtime says "insufficient driver" and the
  // driver version is 0. Skip.
  BOOST_TEST((cu::classify_device(0, cudaErrorInsufficientDriver, 0) == S::kNoDriver));
  BOOST_TEST((cu::classify_device(0, cudaErrorNoDevice, 0) == S::kNoDriver));
  // A driver, no device. Skip.
  BOOST_TEST((cu::classify_device(12080, cudaErrorNoDevice, 0) == S::kNoDevice));
  BOOST_TEST((cu::classify_device(13000, cudaSuccess, 0) == S::kNoDevice));
  // A driver too old for this runtime, or otherwise broken: an error, never a skip.
  BOOST_TEST((cu::classify_device(12020, cudaErrorInsufficientDriver, 0) == S::kUnusable));
  BOOST_TEST((cu::classify_device(13000, cudaErrorSystemDriverMismatch, 0) == S::kUnusable));
  BOOST_TEST((cu::classify_device(13000, cudaErrorInitializationError, 0) == S::kUnusable));
  BOOST_TEST((cu::classify_device(13000, cudaSuccess, 2) == S::kUsable));
  // What this machine reports: whatever it is, the probe's message names it.
  cu::DeviceProbe const probe = cu::probe_device();
  BOOST_TEST(!probe.message.empty());
  BOOST_TEST_MESSAGE("this machine: " << probe.message);
}

BOOST_AUTO_TEST_CASE(if_capture_problems_are_named) {
  // A body with nodes, the outer capture continuing after the node alone: fine.
  BOOST_TEST(cu::if_capture_problem(3, 1, true) == nullptr);
  // The body enqueued on another stream: nothing in the node.
  char const* const empty = cu::if_capture_problem(0, 1, true);
  BOOST_TEST_REQUIRE(empty != nullptr);
  BOOST_TEST(std::string(empty).find("nothing on the stream it was given") != std::string::npos);
  // The body enqueued on the capturing stream: the frontier moved past the node.
  char const* const outer = cu::if_capture_problem(1, 1, false);
  BOOST_TEST_REQUIRE(outer != nullptr);
  BOOST_TEST(std::string(outer).find("capturing stream") != std::string::npos);
  BOOST_TEST(cu::if_capture_problem(1, 2, true) != nullptr);
  // The layer's own check: an FFN that left no node in its body (the residual kernel the layer
  // adds after it would otherwise hide that) is an error naming the layer.
  using Layer = cu::DecoderLayer<GoodHost, skipllm::policy::RuntimePolicies>;
  BOOST_CHECK_NO_THROW(Layer::check_ffn_captured(4, 2));
  BOOST_CHECK_EXCEPTION(Layer::check_ffn_captured(4, 0), std::logic_error, [](std::logic_error const& e) {
    return std::string(e.what()).find("ffn_block of layer 4") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(policy_updates_keep_the_warmup_length) {
  BOOST_CHECK_NO_THROW(cu::check_same_warmup(6, 6));
  BOOST_CHECK_THROW(cu::check_same_warmup(6, 0), std::invalid_argument);
  BOOST_CHECK_THROW(cu::check_same_warmup(0, 16), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(rows_written_on_the_device_are_validated) {
  constexpr int kSlots = 4;
  std::vector<int> const rows = {2, -1, 0, 2, 7, -1, 3, 0};
  std::vector<bool> bad;
  for (int r = 0; r < static_cast<int>(rows.size()); ++r) bad.push_back(cu::row_slot_is_bad(rows.data(), r, kSlots));
  // 2 (first), padding, 0, 2 again, out of range, padding, 3, 0 again.
  std::vector<bool> const expected = {false, false, false, true, true, false, false, true};
  BOOST_TEST(bad == expected, boost::test_tools::per_element());
  BOOST_CHECK_NO_THROW(cu::check_no_bad_rows(0));
  BOOST_CHECK_THROW(cu::check_no_bad_rows(3), std::runtime_error);
}

// The GPU's summation order, replicated on the host, stays within the stated bound of the CPU
// backend's score, for both metrics, both block sizes and both chunk widths, on rows built to
// score near a threshold. The bound must also be tight enough to matter (well below the gaps
// between thresholds a calibration tries).
template <class Metric>
void check_gpu_order_within_bound(std::int64_t n, int elem_bytes, float update_scale, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> before(static_cast<std::size_t>(n)), f(before.size()), after(before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    before[i] = d(gen) * (i % 7 == 0 ? 40.0f : 1.0f);  // outliers, as real residual streams have
    f[i] = update_scale * d(gen);
    after[i] = before[i] + f[i];
  }
  std::vector<float> x = before;
  float const cpu = skipllm::cpu::residual_add_similarity<Metric>(x.data(), f.data(), n);
  int const threads = cu::residual_block_threads(n, elem_bytes);
  float const gpu = Metric::finalize(
      cu::gpu_order_aggregate<Metric>(before.data(), after.data(), n, threads, cu::row_chunk_width(elem_bytes)));
  double const bound = cu::residual_score_bound<Metric>(cpu, n, elem_bytes);
  BOOST_TEST(std::fabs(static_cast<double>(gpu) - cpu) <= bound,
             "n=" << n << " elem=" << elem_bytes << " cpu=" << cpu << " gpu=" << gpu << " bound=" << bound);
  BOOST_TEST(bound < 5e-4, "n=" << n << " bound=" << bound);
}

BOOST_AUTO_TEST_CASE(gpu_order_scores_within_the_stated_bound) {
  std::uint32_t seed = 1;
  for (std::int64_t n : {1, 7, 64, 576, 577, 2048, 4096, 5120, 8192}) {
    for (int elem : {2, 4}) {
      for (float scale : {0.01f, 0.3f, 1.0f}) {
        check_gpu_order_within_bound<skipllm::policy::Cosine>(n, elem, scale, seed++);
        check_gpu_order_within_bound<skipllm::policy::RelativeUpdate>(n, elem, scale, seed++);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gpu_order_is_a_fixed_tree) {
  // Four threads, chunks of two: thread t folds elements {2t, 2t+1} then {2t+8, 2t+9}; the tree
  // combines (0+2) with (1+3). Integers keep every sum exact, so the expected value is plain.
  using M = skipllm::policy::RelativeUpdate;
  std::vector<float> before(12, 1.0f), after(12);
  for (std::size_t i = 0; i < after.size(); ++i) after[i] = 1.0f + static_cast<float>(i);
  M::Accumulator const a = cu::gpu_order_aggregate<M>(before.data(), after.data(), 12, 4, 2);
  BOOST_TEST(a.before_sq == 12.0f);
  BOOST_TEST(a.update_sq == 506.0f);  // sum of i^2 for i < 12
  // The stated depth of the GPU sum: 2 chunks of 2 per thread for 16 elements, then 2 levels.
  BOOST_TEST(cu::detail::gpu_sum_depth(16, 4, 2) == 6.0);
  BOOST_TEST(cu::detail::cpu_sum_depth(16) == 5.0);
}

// The next-RMSNorm hook: taken by a host that declares `double* residual_sum_squares(Step&)`,
// and then the residual kernel's metric is WithRowSquares of the policy's (one kernel either way).
BOOST_AUTO_TEST_CASE(next_norm_hook_is_chosen_by_the_host) {
  using hosts::FloatSquaresHost;
  using hosts::NormFusingHost;
  using Cosine = skipllm::policy::Cosine;
  static_assert(cu::Host<NormFusingHost> && cu::CudaHostFusesNextNorm<NormFusingHost>);
  static_assert(!cu::CudaHostFusesNextNorm<GoodHost>);
  static_assert(!cu::CudaHostFusesNextNorm<FloatSquaresHost>);  // double, as the squares are summed
  static_assert(std::is_same_v<cu::residual_metric_t<NormFusingHost, Cosine>, cu::WithRowSquares<Cosine>>);
  static_assert(std::is_same_v<cu::residual_metric_t<GoodHost, Cosine>, Cosine>);
  static_assert(std::is_same_v<cu::DecoderLayer<NormFusingHost>::residual_metric, cu::WithRowSquares<Cosine>>);
  static_assert(std::is_same_v<cu::DecoderLayer<GoodHost>::residual_metric, Cosine>);
  static_assert(skipllm::check_similarity_metric<cu::WithRowSquares<Cosine>>());
  static_assert(cu::sums_row_squares_v<cu::WithRowSquares<Cosine>> && !cu::sums_row_squares_v<Cosine>);
  BOOST_TEST(true);
}

// WithRowSquares in the GPU's order (its host replica): the metric's score unchanged, bit for
// bit, and the sum of squares of the new row as the CPU engine's RMSNorm sums it (sequentially in
// double) to within double rounding; small integers make both exact.
template <class Metric>
void check_row_squares(std::int64_t n, int elem_bytes, std::uint32_t seed) {
  using W = cu::WithRowSquares<Metric>;
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> before(static_cast<std::size_t>(n)), after(before.size());
  double sequential = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    before[i] = d(gen) * (i % 7 == 0 ? 40.0f : 1.0f);
    after[i] = before[i] + 0.3f * d(gen);
    sequential += static_cast<double>(after[i]) * after[i];
  }
  int const threads = cu::residual_block_threads(n, elem_bytes);
  int const width = cu::row_chunk_width(elem_bytes);
  typename W::Accumulator const w = cu::gpu_order_aggregate<W>(before.data(), after.data(), n, threads, width);
  float const plain = Metric::finalize(cu::gpu_order_aggregate<Metric>(before.data(), after.data(), n, threads, width));
  float const fused = W::finalize(w);
  BOOST_TEST((std::isnan(plain) ? std::isnan(fused) : fused == plain), "n=" << n);
  BOOST_TEST(std::fabs(w.squares - sequential) <= 1e-12 * sequential, "n=" << n);
  // The RMSNorm scale the engine forms from it is the CPU's (float of the double mean).
  BOOST_TEST(
      static_cast<float>(w.squares / static_cast<double>(n)) == static_cast<float>(sequential / static_cast<double>(n)),
      "n=" << n);
}

BOOST_AUTO_TEST_CASE(row_squares_ride_along_the_metric) {
  std::uint32_t seed = 11;
  for (std::int64_t n : {1, 7, 64, 576, 577, 2048, 4096, 8192}) {
    for (int elem : {2, 4}) {
      check_row_squares<skipllm::policy::Cosine>(n, elem, seed++);
      check_row_squares<skipllm::policy::RelativeUpdate>(n, elem, seed++);
    }
  }
  using W = cu::WithRowSquares<skipllm::policy::RelativeUpdate>;
  std::vector<float> before(12, 1.0f), after(12);
  for (std::size_t i = 0; i < after.size(); ++i) after[i] = 1.0f + static_cast<float>(i);
  BOOST_TEST(cu::gpu_order_aggregate<W>(before.data(), after.data(), 12, 4, 2).squares == 650.0);  // 1^2 + .. + 12^2
}
