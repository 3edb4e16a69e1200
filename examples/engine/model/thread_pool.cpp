#include "model/thread_pool.hpp"

#include <algorithm>
#include <chrono>

namespace skipllm::engine {

namespace {

// Tells the core this is a spin loop: on x86 the pause yields to the sibling hyperthread and
// avoids the memory-order flush when the awaited value arrives.
inline void cpu_relax() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#endif
}

// Waits until done(): spins for up to kSpinMicroseconds, then sleeps on `word` (which must
// change whenever done() may turn true) until done().
template <class Done>
void wait_until(std::atomic<std::uint32_t>& word, Done const& done) {
  auto const deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicroseconds);
  for (unsigned i = 1; !done(); ++i) {
    cpu_relax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) {
      for (std::uint32_t v = word.load(std::memory_order_acquire); !done(); v = word.load(std::memory_order_acquire))
        word.wait(v, std::memory_order_acquire);
      return;
    }
  }
}

// True when generation a comes after b (modulo 2^32).
bool newer(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) > 0; }

}  // namespace

ThreadPool::ThreadPool(int threads) {
  int const total = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  shares_ = std::make_unique<Share[]>(static_cast<std::size_t>(total));
  for (int i = 1; i < total; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

bool ThreadPool::claim(int index, std::uint32_t generation) {
  std::atomic<std::uint32_t>& claimed = shares_[static_cast<std::size_t>(index)].claimed;
  std::uint32_t seen = claimed.load(std::memory_order_relaxed);
  while (newer(generation, seen)) {
    if (claimed.compare_exchange_weak(seen, generation, std::memory_order_acq_rel)) return true;
  }
  return false;  // taken for this loop already (or a stale worker's look at a finished loop)
}

void ThreadPool::run_share(int index, std::uint32_t generation) {
  std::int64_t const threads = size();
  std::int64_t const begin = n_ * index / threads;
  std::int64_t const end = n_ * (index + 1) / threads;
  if (begin < end) (*body_)(begin, end);
  Share& share = shares_[static_cast<std::size_t>(index)];
  share.finished.store(generation, std::memory_order_release);
  share.finished.notify_one();  // no system call unless the caller sleeps on it
}

void ThreadPool::parallel_for(std::int64_t n, std::function<void(std::int64_t, std::int64_t)> const& body) {
  if (workers_.empty() || n < 2) {
    if (n > 0) body(0, n);
    return;
  }
  body_ = &body;
  n_ = n;
  std::uint32_t const generation = generation_.load(std::memory_order_relaxed) + 1;
  generation_.store(generation, std::memory_order_release);  // publishes body_ and n_
  generation_.notify_all();                                  // no system call when no worker sleeps
  for (int i = 0; i < size(); ++i)
    if (claim(i, generation)) run_share(i, generation);
  // Every share is claimed now; wait for the ones workers took. A loop cannot end while a worker
  // still holds one of its shares, so body_ and n_ stay valid for it.
  for (int i = 1; i < size(); ++i) {
    std::atomic<std::uint32_t>& finished = shares_[static_cast<std::size_t>(i)].finished;
    wait_until(finished, [&] { return finished.load(std::memory_order_acquire) == generation; });
  }
}

void ThreadPool::worker_loop(int index) {
  std::uint32_t seen = 0;
  while (true) {
    wait_until(generation_, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    if (claim(index, seen)) run_share(index, seen);
  }
}

}  // namespace skipllm::engine
