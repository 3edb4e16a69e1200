// The host-side parts of the CUDA backend, which run without a GPU: the row split of the
// vectorized loads, block-size choice, workspace planning, the statistics fold, the stack
// options, the CUDA Host concept. (Compiled with nvcc; labelled unit, so it always runs.)
#define BOOST_TEST_MODULE skipllm CUDA backend host side
#include <boost/test/unit_test.hpp>

#include <random>
#include <span>
#include <vector>

#include <skipllm/cuda/decoder_stack.cuh>
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
