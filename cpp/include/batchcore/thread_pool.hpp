// A persistent pool of worker threads with a static partition: of the A workers a call uses, worker w
// always gets tasks [n*w/A, n*(w+1)/A). The partition depends on n, the grain and the pool size only,
// never on timing. (Bits never depend on it either: each output element is computed by exactly one
// lane in its order.)
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace batchcore {

// The most threads a call may ask for. The ticket packs the active worker count in 16 bits; a limit far
// below that keeps a typo (threads=100000) from starting a hundred thousand threads.
constexpr int kMaxThreads = 1024;

// Throws ArgumentError unless 1 <= threads <= kMaxThreads.
void check_thread_count(int threads);

class ThreadPool {
 public:
  using Body = std::function<void(int worker, int64_t begin, int64_t end)>;

  // Starts threads - 1 workers (the caller is worker 0). When a worker cannot be started (pid or
  // memory limits), the ones already running are stopped and joined before OutOfMemoryError is thrown.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_.load(std::memory_order_acquire); }
  // Grows the pool to `threads` (never shrinks it). On a failed thread start the pool keeps the workers
  // it has (all usable) and OutOfMemoryError says how many; nothing waits on a worker that never started.
  void reserve(int threads);
  // Runs body on the static partition of [0, n) among at most `max_workers` workers (default: all) and
  // returns when all are done. The calling thread is worker 0. Each worker gets at least `grain` tasks
  // (fewer workers are used rather than waking one for a sliver of work). The first exception thrown by
  // any worker is rethrown here.
  void parallel_for(int64_t n, const Body& body, int64_t grain = 1, int max_workers = kMaxThreads);

 private:
  void start_workers(int threads);
  void stop_and_join();
  void worker_loop(int worker, uint64_t seen_generation);
  void run_share(int worker, int active);
  uint64_t wait_for_ticket(uint64_t seen_generation);
  void wait_until_done();

  std::atomic<int> threads_;  // written under call_mu_ only
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel_for at a time
  std::mutex mu_;       // guards the blocking waits and error_
  std::condition_variable start_cv_, done_cv_;
  // generation << 16 | active workers, published in one store so that a worker never pairs one call's
  // generation with another call's worker count.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const Body* body_ = nullptr;  // written before the ticket is published, read only by participants
  int64_t n_ = 0;
  std::exception_ptr error_;
};

// A view of the process's one shared pool that runs calls on `threads` workers at most.
class PoolView {
 public:
  PoolView(ThreadPool& pool, int threads) : pool_(&pool), threads_(threads) {}
  int size() const { return threads_; }
  void parallel_for(int64_t n, const ThreadPool::Body& body, int64_t grain = 1) const {
    pool_->parallel_for(n, body, grain, threads_);
  }

 private:
  ThreadPool* pool_;
  int threads_;
};

// The process's one pool, grown on demand to the largest thread count asked for so far (so pools are
// bounded by kMaxThreads threads in all, and reused by every thread count). ArgumentError for a count
// outside 1..kMaxThreads; OutOfMemoryError when the threads cannot be started.
PoolView shared_pool(int threads);
int default_thread_count();

}  // namespace batchcore
