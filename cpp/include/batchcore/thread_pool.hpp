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

class ThreadPool {
 public:
  using Body = std::function<void(int worker, int64_t begin, int64_t end)>;

  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }
  // Runs body on the static partition of [0, n) and returns when all workers are done. The calling
  // thread is worker 0. Each worker gets at least `grain` tasks (fewer workers are used rather than
  // waking one for a sliver of work). The first exception thrown by any worker is rethrown here.
  void parallel_for(int64_t n, const Body& body, int64_t grain = 1);

 private:
  void worker_loop(int worker);
  void run_share(int worker, int active);
  uint64_t wait_for_ticket(uint64_t seen_generation);
  void wait_until_done();

  int threads_;
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

// One pool per thread count, created on first use and kept for the life of the process.
ThreadPool& shared_pool(int threads);
int default_thread_count();

}  // namespace batchcore
