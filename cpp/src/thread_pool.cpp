#include "batchcore/thread_pool.hpp"

#include <chrono>
#include <string>

#include "batchcore/errors.hpp"

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

void check_thread_count(int threads) {
  if (threads < 1 || threads > kMaxThreads)
    throw ArgumentError("threads must lie in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
}

ThreadPool::ThreadPool(int threads) : threads_(1) {
  check_thread_count(threads);
  try {
    start_workers(threads);
  } catch (...) {
    stop_and_join();  // the workers that did start wait on this object's condition variables
    throw;
  }
}

ThreadPool::~ThreadPool() { stop_and_join(); }

void ThreadPool::stop_and_join() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

// Called with no call in flight (the constructor, or reserve() under call_mu_): a new worker starts at
// the current generation, so it never mistakes the last call's ticket for a new one.
void ThreadPool::start_workers(int threads) {
  const uint64_t generation = generation_of(ticket_.load(std::memory_order_acquire));
  workers_.reserve(size_t(threads));
  while (threads_.load(std::memory_order_relaxed) < threads) {
    const int w = threads_.load(std::memory_order_relaxed);
    try {
      workers_.emplace_back([this, w, generation] { worker_loop(w, generation); });
    } catch (const std::exception& e) {  // std::system_error (EAGAIN: pid or memory limits), bad_alloc
      throw OutOfMemoryError("could not start worker thread " + std::to_string(w + 1) + " of " +
                             std::to_string(threads) + " (" + e.what() + "); " + std::to_string(w) +
                             " thread(s) are running; ask for fewer threads");
    }
    threads_.store(w + 1, std::memory_order_release);
  }
}

void ThreadPool::reserve(int threads) {
  check_thread_count(threads);
  if (threads <= threads_.load(std::memory_order_acquire)) return;  // no lock: callable from inside a body
  std::lock_guard<std::mutex> call(call_mu_);
  if (threads > threads_.load(std::memory_order_relaxed)) start_workers(threads);
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

void ThreadPool::worker_loop(int worker, uint64_t seen_generation) {
  uint64_t seen = seen_generation;
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

void ThreadPool::parallel_for(int64_t n, const Body& body, int64_t grain, int max_workers) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call(call_mu_);
  const int64_t by_grain = grain > 1 ? n / grain : n;
  const int size = threads_.load(std::memory_order_relaxed);
  const int most = max_workers < size ? (max_workers < 1 ? 1 : max_workers) : size;
  const int active = int(by_grain < 1 ? 1 : (by_grain < most ? by_grain : most));
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

PoolView shared_pool(int threads) {
  check_thread_count(threads);
  // Created on first use and never destroyed before exit; grown, never replaced, so a reference held by
  // a call in flight on another thread stays valid.
  static ThreadPool pool(1);
  pool.reserve(threads);
  return PoolView(pool, threads);
}

int default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : (n > unsigned(kMaxThreads) ? kMaxThreads : int(n));
}

}  // namespace batchcore
