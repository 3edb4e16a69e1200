// Tests of the thread pool (model/thread_pool): every index runs exactly once per loop, the split
// depends only on n and the pool size, and many back-to-back loops (a decode step's pattern) and
// loops after the workers have gone to sleep all complete.
#define BOOST_TEST_MODULE engine_thread_pool
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "model/thread_pool.hpp"

namespace eng = skipllm::engine;

namespace {

// The chunks body(begin, end) was called with, in one loop.
std::set<std::pair<std::int64_t, std::int64_t>> chunks_of(eng::ThreadPool& pool, std::int64_t n) {
  std::mutex m;
  std::set<std::pair<std::int64_t, std::int64_t>> chunks;
  pool.parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
    std::lock_guard lock(m);
    chunks.emplace(begin, end);
  });
  return chunks;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_index_runs_once) {
  for (int threads : {1, 2, 3, 5}) {
    eng::ThreadPool pool(threads);
    BOOST_TEST(pool.size() == threads);
    for (std::int64_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      pool.parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
      });
      for (std::int64_t i = 0; i < n; ++i)
        BOOST_TEST(hits[static_cast<std::size_t>(i)].load() == 1, threads << " threads, n " << n << ", index " << i);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_split_depends_only_on_n_and_the_pool_size) {
  eng::ThreadPool pool(3);
  auto const expected = std::set<std::pair<std::int64_t, std::int64_t>>{{0, 33}, {33, 66}, {66, 100}};
  for (int round = 0; round < 50; ++round) BOOST_TEST((chunks_of(pool, 100) == expected), "round " << round);
}

BOOST_AUTO_TEST_CASE(back_to_back_loops_and_loops_after_sleep_complete) {
  eng::ThreadPool pool(2);
  std::atomic<std::int64_t> total{0};
  auto const add = [&](std::int64_t begin, std::int64_t end) { total.fetch_add(end - begin); };
  for (int i = 0; i < 20000; ++i) pool.parallel_for(10, add);
  BOOST_TEST(total.load() == 200000);
  // Long enough for the worker to stop spinning and sleep on the futex; then it must wake.
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(20 * eng::ThreadPool::kSpinMicroseconds));
    pool.parallel_for(10, add);
  }
  BOOST_TEST(total.load() == 200050);
}
