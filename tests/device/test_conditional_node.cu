// The graph helpers on their own: an IF node built inside a stream capture runs its body exactly
// on the launches whose condition a kernel set to 1, the capture continues after it, the
// default value applies when nobody sets the condition, several IF nodes coexist, and misuse
// is reported.
#define BOOST_TEST_MODULE skipllm CUDA conditional nodes
#include "device_test_support.cuh"

#include <skipllm/cuda/conditional_node.cuh>
#include <skipllm/cuda/graph.cuh>

namespace cu = skipllm::cuda;

namespace kernels {

__global__ void set_from_flag(cudaGraphConditionalHandle handle, int const* flag) {
  if (threadIdx.x == 0 && blockIdx.x == 0) cu::set_condition(handle, *flag != 0);
}
__global__ void add_one(int* counter) { atomicAdd(counter, 1); }
__global__ void record_order(int* log, int* next, int tag) { log[atomicAdd(next, 1)] = tag; }

}  // namespace kernels

namespace {

// A blocking stream: it orders with the legacy stream the tests' cudaMemcpy/cudaMemset use
// (a pageable cudaMemcpy may return before its DMA lands).
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { TEST_CUDA(cudaStreamCreate(&s)); }
  ~Stream() { (void)cudaStreamDestroy(s); }
};

}  // namespace

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(if_body_runs_exactly_when_the_kernel_says_so) {
  Stream main, body;
  test::DeviceBuffer<int> flag(1), counter(1), after(1);
  counter.zero();
  after.zero();
  cu::Graph graph = cu::capture_graph(main.s, [&](cudaStream_t s) {
    cudaGraphConditionalHandle const h = cu::make_conditional_handle(s, 1u);
    kernels::set_from_flag<<<1, 32, 0, s>>>(h, flag.get());
    cu::capture_if(s, h, body.s, [&](cudaStream_t b) {
      kernels::add_one<<<1, 1, 0, b>>>(counter.get());
      kernels::add_one<<<1, 1, 0, b>>>(counter.get());  // two kernels in the body
    });
    kernels::add_one<<<1, 1, 0, s>>>(after.get());
  });
  BOOST_TEST(graph.num_nodes() == 3u);  // setter, IF node, kernel after it
  int const pattern[] = {1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1};
  int ones = 0;
  for (int const f : pattern) {
    flag.upload({f});
    graph.launch(main.s);
    TEST_CUDA(cudaStreamSynchronize(main.s));
    ones += f;
    BOOST_TEST(counter.download()[0] == 2 * ones);
  }
  BOOST_TEST(after.download()[0] == static_cast<int>(std::size(pattern)));
}

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(default_value_applies_when_nothing_sets_the_condition) {
  Stream main, body;
  test::DeviceBuffer<int> on(1), off(1);
  on.zero();
  off.zero();
  cu::Graph graph = cu::capture_graph(main.s, [&](cudaStream_t s) {
    cu::capture_if(s, cu::make_conditional_handle(s, 1u), body.s,
                   [&](cudaStream_t b) { kernels::add_one<<<1, 1, 0, b>>>(on.get()); });
    cu::capture_if(s, cu::make_conditional_handle(s, 0u), body.s,
                   [&](cudaStream_t b) { kernels::add_one<<<1, 1, 0, b>>>(off.get()); });
  });
  for (int i = 0; i < 5; ++i) graph.launch(main.s);
  TEST_CUDA(cudaStreamSynchronize(main.s));
  BOOST_TEST(on.download()[0] == 5);
  BOOST_TEST(off.download()[0] == 0);
}

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(capture_continues_after_the_if_node_in_order) {
  Stream main, body;
  test::DeviceBuffer<int> log(8), next(1), flag(1);
  int const one = 1;
  flag.upload({one});
  next.zero();
  cu::Graph graph = cu::capture_graph(main.s, [&](cudaStream_t s) {
    kernels::record_order<<<1, 1, 0, s>>>(log.get(), next.get(), 1);
    cudaGraphConditionalHandle const h = cu::make_conditional_handle(s);
    kernels::set_from_flag<<<1, 1, 0, s>>>(h, flag.get());
    cu::capture_if(s, h, body.s,
                   [&](cudaStream_t b) { kernels::record_order<<<1, 1, 0, b>>>(log.get(), next.get(), 2); });
    kernels::record_order<<<1, 1, 0, s>>>(log.get(), next.get(), 3);
  });
  graph.launch(main.s);
  TEST_CUDA(cudaStreamSynchronize(main.s));
  auto const l = log.download();
  BOOST_TEST(next.download()[0] == 3);
  BOOST_TEST(l[0] == 1);
  BOOST_TEST(l[1] == 2);
  BOOST_TEST(l[2] == 3);
}

BOOST_TEST_DECORATOR(*test::gpu())
BOOST_AUTO_TEST_CASE(misuse_is_reported) {
  Stream main, body;
  BOOST_TEST(!cu::is_capturing(main.s));
  BOOST_CHECK_THROW(cu::make_conditional_handle(main.s), cu::Error);
  BOOST_CHECK_THROW(cu::capture_if(main.s, 0, body.s, [](cudaStream_t) {}), cu::Error);
  // A body that throws leaves both streams usable.
  BOOST_CHECK_THROW(cu::capture_graph(main.s,
                                      [&](cudaStream_t s) {
                                        cu::capture_if(s, cu::make_conditional_handle(s), body.s,
                                                       [](cudaStream_t) { throw std::runtime_error("body"); });
                                      }),
                    std::runtime_error);
  BOOST_TEST(!cu::is_capturing(main.s));
  BOOST_TEST(!cu::is_capturing(body.s));
  cu::Graph moved = cu::capture_graph(main.s, [&](cudaStream_t s) {
    cu::capture_if(s, cu::make_conditional_handle(s, 0u), body.s, [](cudaStream_t b) {
      kernels::add_one<<<1, 1, 0, b>>>(nullptr);  // never runs: the condition stays 0
    });
  });
  cu::Graph other = std::move(moved);
  BOOST_TEST(!moved);
  BOOST_TEST(static_cast<bool>(other));
  other.launch(main.s);
  TEST_CUDA(cudaStreamSynchronize(main.s));
}
