// A persistent pool of worker threads with a static partition: worker w of T always gets tasks
// [n*w/T, n*(w+1)/T). The partition depends on n and T only, never on timing. (Bits never depend on
// it either: each output element is computed by exactly one lane in its order.)
#pragma once
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
  // thread is worker 0. The first exception thrown by any worker is rethrown here.
  void parallel_for(int64_t n, const Body& body);

 private:
  void worker_loop(int worker);
  void run_share(int worker);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel_for at a time
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  const Body* body_ = nullptr;
  int64_t n_ = 0;
  std::exception_ptr error_;
};

// One pool per thread count, created on first use and kept for the life of the process.
ThreadPool& shared_pool(int threads);
int default_thread_count();

}  // namespace batchcore
