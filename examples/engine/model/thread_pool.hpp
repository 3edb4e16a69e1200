// A fixed pool of worker threads for the engine's data-parallel loops.
//
// Decode at batch 1 runs a few hundred small parallel loops per token, so dispatch must cost
// microseconds: workers spin briefly on a generation counter before sleeping, and the calling
// thread takes a share of the work itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace skipllm::engine {

class ThreadPool {
 public:
  //! `threads` includes the calling thread; 0 means one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(ThreadPool const&) = delete;
  ThreadPool& operator=(ThreadPool const&) = delete;

  int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  //! Calls body(begin, end) on disjoint chunks covering [0, n), split evenly across threads,
  //! and returns when all are done. Not reentrant.
  void parallel_for(std::int64_t n, std::function<void(std::int64_t, std::int64_t)> const& body);

 private:
  void worker_loop(int index);
  void run_share(int index);

  std::vector<std::thread> workers_;
  std::function<void(std::int64_t, std::int64_t)> const* body_ = nullptr;
  std::int64_t n_ = 0;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace skipllm::engine
