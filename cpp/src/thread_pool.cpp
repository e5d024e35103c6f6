#include "batchcore/thread_pool.hpp"

#include <chrono>
#include <map>
#include <memory>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace batchcore {
namespace {

// Subnormals are part of the contract: clear flush-to-zero and denormals-are-zero for the duration of
// a task, whatever another library set in this thread.
class StrictFloatEnv {
 public:
#if defined(__x86_64__) || defined(_M_X64)
  StrictFloatEnv() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ & ~(0x8000u | 0x0040u) & ~0x6000u); }
  ~StrictFloatEnv() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

// Waking a thread blocked on a condition variable takes tens of microseconds on a VM, longer than a
// small layer's whole GEMM, so waits spin before they block: first with pause only (a few microseconds:
// the common case of a worker already running on its own core), then yielding the core between checks,
// because when more threads are runnable than there are cores (another library's spinning workers, or
// this pool's threads sharing a core) a pure spin would hold the core that the awaited thread needs.
// A model's layers follow each other within microseconds; after the last one the workers stop spinning
// within kSpin, sooner than OpenMP runtimes give their cores back.
constexpr auto kSpinPause = std::chrono::microseconds(5);
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#endif
}

// Spins until ready() or kSpin elapsed; returns ready().
template <class Ready>
bool spin_until(Ready ready) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= kSpin) return ready();
    if (waited >= kSpinPause) std::this_thread::yield();
  }
}

constexpr uint64_t generation_of(uint64_t ticket) { return ticket >> 16; }
constexpr int active_of(uint64_t ticket) { return int(ticket & 0xffff); }

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : (threads > 0xffff ? 0xffff : threads)) {
  for (int w = 1; w < threads_; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_share(int worker, int active) {
  const int64_t begin = n_ * worker / active, end = n_ * (worker + 1) / active;
  try {
    StrictFloatEnv env;
    (*body_)(worker, begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_) error_ = std::current_exception();
  }
}

uint64_t ThreadPool::wait_for_ticket(uint64_t seen_generation) {
  const auto fresh = [&] {
    return stop_.load(std::memory_order_acquire) ||
           generation_of(ticket_.load(std::memory_order_acquire)) != seen_generation;
  };
  if (!spin_until(fresh)) {
    std::unique_lock<std::mutex> lock(mu_);
    start_cv_.wait(lock, fresh);
  }
  return ticket_.load(std::memory_order_acquire);
}

void ThreadPool::worker_loop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    const uint64_t ticket = wait_for_ticket(seen);
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_of(ticket);
    const int active = active_of(ticket);
    if (worker >= active) continue;  // not needed for this call: the caller does not wait for us
    run_share(worker, active);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // the caller is either before its check or waiting
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::wait_until_done() {
  const auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(done)) return;
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, done);
}

void ThreadPool::parallel_for(int64_t n, const Body& body, int64_t grain) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call(call_mu_);
  const int64_t by_grain = grain > 1 ? n / grain : n;
  const int active = int(by_grain < 1 ? 1 : (by_grain < threads_ ? by_grain : threads_));
  body_ = &body;
  n_ = n;
  error_ = nullptr;
  if (active > 1) {
    pending_.store(active - 1, std::memory_order_relaxed);
    const uint64_t ticket = ((generation_of(ticket_.load()) + 1) << 16) | uint64_t(active);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ticket_.store(ticket, std::memory_order_release);
    }
    start_cv_.notify_all();
  }
  run_share(0, active);
  if (active > 1) wait_until_done();
  body_ = nullptr;
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    error = error_;
  }
  if (error) std::rethrow_exception(error);
}

ThreadPool& shared_pool(int threads) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return *pool;
}

int default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

}  // namespace batchcore
