// A fixed pool of worker threads for the engine's data-parallel loops.
//
// Decode at batch 1 runs a few hundred small parallel loops per token, so dispatch must cost
// microseconds, and on a shared machine it must not stall on a worker the scheduler has not run:
//  - The range is cut into one share per thread, always the same way for the same n and pool
//    size, so results never depend on which thread ran a share.
//  - Each share is claimed before it runs. The calling thread runs its own share, then claims and
//    runs every share no worker has claimed yet: a descheduled worker costs no waiting, only the
//    parallelism it would have added.
//  - A waiting thread spins briefly (with a pause instruction, at most kSpinMicroseconds), then
//    sleeps on a futex (std::atomic::wait), so an idle pool gives the cores back at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace skipllm::engine {

class ThreadPool {
 public:
  //! How long a waiting thread spins before it sleeps: longer than the serial gap between two
  //! parallel loops of a decode step (so a busy pool does not sleep between them), far shorter
  //! than a scheduler time slice (so an idle one does not keep the cores).
  static constexpr int kSpinMicroseconds = 50;

  //! `threads` includes the calling thread; 0 means one per hardware thread.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(ThreadPool const&) = delete;
  ThreadPool& operator=(ThreadPool const&) = delete;

  int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  //! Calls body(begin, end) on disjoint chunks covering [0, n), one per thread of the pool (the
  //! split depends only on n and size()), and returns when all are done. Not reentrant.
  void parallel_for(std::int64_t n, std::function<void(std::int64_t, std::int64_t)> const& body);

 private:
  // One thread's share of the current loop. Both fields hold the generation of the loop they last
  // saw: claimed once a thread has taken the share, finished once it is done.
  struct alignas(64) Share {
    std::atomic<std::uint32_t> claimed{0};
    std::atomic<std::uint32_t> finished{0};
  };

  void worker_loop(int index);
  bool claim(int index, std::uint32_t generation);
  void run_share(int index, std::uint32_t generation);

  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> shares_;
  std::function<void(std::int64_t, std::int64_t)> const* body_ = nullptr;
  std::int64_t n_ = 0;
  // 32-bit counters: the width std::atomic::wait maps onto a futex directly.
  std::atomic<std::uint32_t> generation_{0};  // bumped once per parallel_for (and at shutdown)
  std::atomic<bool> stop_{false};
};

}  // namespace skipllm::engine
