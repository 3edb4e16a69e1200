// The gate kernel against the CPU: for random per-slot states, batches of 1 to 300 rows (more
// rows than threads: a multi-pass scan), padding rows, layer 0 (begin_token) and later layers,
// runtime, compile-time and mask policies, every decision, every state written back, the step
// record, the row flags, the compacted row list (ascending rows, -1 past the count), the count,
// and the gathered FFN input (the running rows' residual rows, bit for bit; zero rows after).
// The CPU side calls the same skipllm::begin_token / decide, so everything must match exactly.
#define BOOST_TEST_MODULE skipllm CUDA gate kernel
#include "device_test_support.cuh"

#include <boost/mpl/list.hpp>

#include <skipllm/cuda/gate_kernel.cuh>
#include <skipllm/cuda/workspace.cuh>
#include <skipllm/policy/bundle.hpp>

namespace cu = skipllm::cuda;
namespace p = skipllm::policy;

namespace {

using MaskPolicies = skipllm::Policies<p::StaticMask, p::ColdMask, p::NoWarmup, p::Cosine>;

template <class Policies>
Policies make_policies();
template <>
p::RuntimePolicies make_policies<p::RuntimePolicies>() {
  return {p::Greedy{0.95f, 3, 2}, p::ColdLayers{1, 2}, p::Warmup{4, 5}};
}
template <>
p::PaperPolicies make_policies<p::PaperPolicies>() {
  return {};
}
template <>
MaskPolicies make_policies<MaskPolicies>() {
  MaskPolicies m;
  for (int l : {2, 3, 5}) m.skip.layers.insert(l);
  for (int l : {0, 5}) m.cold.layers.insert(l);
  return m;
}

std::vector<skipllm::SkipState> random_states(int n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<skipllm::SkipState> s(static_cast<std::size_t>(n));
  for (auto& st : s) {
    st.decode_index = static_cast<int>(gen() % 40);
    st.span_left = static_cast<int>(gen() % 4);
    st.spans_left = static_cast<int>(gen() % 3);
    st.prev_similarity = gen() % 4 == 0 ? skipllm::detail::quiet_nan() : 0.9f + 0.1f * float(gen() % 1000) / 1000.0f;
    st.dense_token = gen() % 6 == 0;
    st.scratch = 0;
  }
  return s;
}

bool same_state(skipllm::SkipState const& a, skipllm::SkipState const& b) {
  bool const sim =
      (std::isnan(a.prev_similarity) && std::isnan(b.prev_similarity)) || a.prev_similarity == b.prev_similarity;
  return a.decode_index == b.decode_index && a.span_left == b.span_left && a.spans_left == b.spans_left && sim &&
         a.dense_token == b.dense_token && a.scratch == b.scratch;
}

template <class Policies, class T>
// Returns the rows the gate decided to skip (the test must reach the skip path).
int check_gate(int rows, int layer, int num_layers, bool gather, std::uint32_t seed) {
  using D = cu::device_storage_t<T>;
  constexpr std::int64_t kHidden = 37;  // odd: misaligned rows, head and tail
  int const slots = rows + 3;
  Policies const policies = make_policies<Policies>();

  cu::WorkspaceShape shape;
  shape.num_layers = num_layers;
  shape.max_sequences = slots;
  shape.max_rows = rows;
  shape.hidden = kHidden;
  shape.elem_bytes = sizeof(D);
  shape.policies_bytes = sizeof(Policies);
  test::DeviceBuffer<unsigned char> ws(cu::workspace_bytes(shape));
  auto const b = cu::carve_workspace<Policies, D>(shape, ws.get(), ws.size());

  // Rows: distinct slots in shuffled order, every 5th row padding.
  std::mt19937 gen(seed);
  std::vector<int> row_slots(static_cast<std::size_t>(slots));
  for (int i = 0; i < slots; ++i) row_slots[static_cast<std::size_t>(i)] = i;
  std::shuffle(row_slots.begin(), row_slots.end(), gen);
  row_slots.resize(static_cast<std::size_t>(rows));
  for (int r = 4; r < rows; r += 5) row_slots[static_cast<std::size_t>(r)] = -1;
  auto const states_in = random_states(slots, seed + 1);
  std::int64_t const stride = kHidden + 2;
  auto const xs = test::to_storage<T>(test::gaussian(static_cast<std::size_t>(rows * stride), seed + 2));
  test::DeviceBuffer<T> x(xs);

  TEST_CUDA(cudaMemcpy(b.policies, &policies, sizeof policies, cudaMemcpyHostToDevice));
  TEST_CUDA(cudaMemcpy(b.states[layer & 1], states_in.data(), sizeof(skipllm::SkipState) * states_in.size(),
                       cudaMemcpyHostToDevice));
  TEST_CUDA(cudaMemset(b.states[(layer + 1) & 1], 0x5a, sizeof(skipllm::SkipState) * states_in.size()));
  TEST_CUDA(cudaMemcpy(b.row_slots, row_slots.data(), sizeof(int) * row_slots.size(), cudaMemcpyHostToDevice));
  if (gather)
    TEST_CUDA(cudaMemset(b.ffn_input.data, 0x33, sizeof(D) * static_cast<std::size_t>(rows * b.ffn_input.stride)));

  cu::GateParams<Policies, D> g;
  g.gate = {b.policies,
            b.states[layer & 1],
            b.states[(layer + 1) & 1],
            b.row_slots,
            slots,
            rows,
            layer,
            num_layers,
            b.row_runs,
            b.run_rows,
            b.num_run_rows,
            b.decisions,
            b.scores};
  g.residual = skipllm::RowView<D const>{cu::device_pointer(x.get()), rows, kHidden, stride};
  if (gather) g.ffn_input = skipllm::RowView<D>{b.ffn_input.data, rows, kHidden, b.ffn_input.stride};
  cu::launch_gate(g, gather ? rows : 1, nullptr);
  TEST_CUDA(cudaDeviceSynchronize());

  // Download.
  std::vector<skipllm::SkipState> states_out(static_cast<std::size_t>(slots));
  TEST_CUDA(cudaMemcpy(states_out.data(), b.states[(layer + 1) & 1], sizeof(skipllm::SkipState) * states_out.size(),
                       cudaMemcpyDeviceToHost));
  std::vector<skipllm::FfnDecision> decisions(static_cast<std::size_t>(rows));
  std::vector<float> scores(static_cast<std::size_t>(rows));
  std::vector<unsigned char> row_runs(static_cast<std::size_t>(rows));
  std::vector<int> run_rows(static_cast<std::size_t>(rows));
  int num_run = -1;
  TEST_CUDA(cudaMemcpy(decisions.data(), b.decisions, decisions.size(), cudaMemcpyDeviceToHost));
  TEST_CUDA(cudaMemcpy(scores.data(), b.scores, sizeof(float) * scores.size(), cudaMemcpyDeviceToHost));
  TEST_CUDA(cudaMemcpy(row_runs.data(), b.row_runs, row_runs.size(), cudaMemcpyDeviceToHost));
  TEST_CUDA(cudaMemcpy(run_rows.data(), b.run_rows, sizeof(int) * run_rows.size(), cudaMemcpyDeviceToHost));
  TEST_CUDA(cudaMemcpy(&num_run, b.num_run_rows, sizeof(int), cudaMemcpyDeviceToHost));

  // The CPU: the same protocol on the same states.
  std::vector<int> expected_rows;
  int skipped = 0;
  std::vector<bool> in_batch(static_cast<std::size_t>(slots), false);
  for (int r = 0; r < rows; ++r) {
    auto const ru = static_cast<std::size_t>(r);
    int const slot = row_slots[ru];
    if (slot < 0) {
      BOOST_TEST(row_runs[ru] == 0, "padding row " << r);
      continue;
    }
    in_batch[static_cast<std::size_t>(slot)] = true;
    skipllm::SkipState s = states_in[static_cast<std::size_t>(slot)];
    if (layer == 0) skipllm::begin_token(policies, s);
    skipllm::FfnDecision const d = skipllm::decide(policies, s, layer, num_layers, slot);
    BOOST_TEST(static_cast<int>(decisions[ru]) == static_cast<int>(d), "row " << r);
    BOOST_TEST(std::isnan(scores[ru]));
    BOOST_TEST(row_runs[ru] == (skipllm::runs_ffn(d) ? 1 : 0), "row " << r);
    BOOST_TEST(same_state(states_out[static_cast<std::size_t>(slot)], s), "slot " << slot);
    if (skipllm::runs_ffn(d)) expected_rows.push_back(r);
    skipped += d == skipllm::FfnDecision::kSkip ? 1 : 0;
  }
  // Slots outside the batch were not written.
  skipllm::SkipState sentinel;
  std::memset(static_cast<void*>(&sentinel), 0x5a, sizeof sentinel);
  for (int s = 0; s < slots; ++s) {
    if (!in_batch[static_cast<std::size_t>(s)]) {
      BOOST_TEST(std::memcmp(&states_out[static_cast<std::size_t>(s)], &sentinel, sizeof sentinel) == 0, "slot " << s);
    }
  }
  BOOST_TEST_REQUIRE(num_run == static_cast<int>(expected_rows.size()));
  for (int i = 0; i < rows; ++i) {
    int const want = i < num_run ? expected_rows[static_cast<std::size_t>(i)] : -1;
    BOOST_TEST(run_rows[static_cast<std::size_t>(i)] == want, "batch row " << i);
  }
  if (gather) {
    std::vector<T> in(static_cast<std::size_t>(rows * b.ffn_input.stride));
    TEST_CUDA(cudaMemcpy(in.data(), b.ffn_input.data, sizeof(T) * in.size(), cudaMemcpyDeviceToHost));
    for (int i = 0; i < rows; ++i) {
      for (std::int64_t k = 0; k < kHidden; ++k) {
        T const got = in[static_cast<std::size_t>(i * b.ffn_input.stride + k)];
        T const want = i < num_run
                           ? xs[static_cast<std::size_t>(expected_rows[static_cast<std::size_t>(i)] * stride + k)]
                           : skipllm::from_float<T>(0.0f);
        BOOST_TEST(std::memcmp(&got, &want, sizeof(T)) == 0, "batch row " << i << " element " << k);
      }
    }
  }
  return skipped;
}

using Bundles = boost::mpl::list<p::RuntimePolicies, p::PaperPolicies, MaskPolicies>;

}  // namespace

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE_TEMPLATE(gate_matches_the_cpu_protocol, P, Bundles) {
  // 24 layers: PaperPolicies keeps 5 cold layers at each end, so layers 5..18 reach its greedy
  // skip path (at 10 layers every layer was cold and nothing was ever skipped).
  std::uint32_t seed = 1;
  int skipped = 0;
  for (int rows : {1, 2, 7, 64, 129, 300}) {
    for (int layer : {0, 1, 3, 5, 8, 12, 18, 23}) {
      skipped += check_gate<P, skipllm::bfloat16_t>(rows, layer, 24, rows > 1, seed++);
    }
  }
  BOOST_TEST(skipped > 0);
}

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(gate_without_gather_and_other_storage) {
  check_gate<p::RuntimePolicies, skipllm::bfloat16_t>(9, 2, 10, false, 77);
  check_gate<p::RuntimePolicies, float>(9, 2, 10, true, 78);
  check_gate<p::RuntimePolicies, skipllm::half_t>(33, 0, 10, true, 79);
}
