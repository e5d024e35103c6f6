#include "cuda_check.cuh"
#include "event_timer.cuh"

namespace batchcore::cuda {
namespace {

double elapsed_ns(const Event& a, const Event& b) {
  check(cudaEventSynchronize(b.get()), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a.get(), b.get()), "cudaEventElapsedTime");
  return double(ms) * 1e6;
}

}  // namespace

TimingSummary time_with_events(const TimerPolicy& policy, cudaStream_t stream, const std::function<void()>& pass,
                               void* flush, size_t flush_bytes, SmClock* sm_clock) {
  Event start, stop;
  int flushes = 0;
  const auto evict_l2 = [&] {
    // A different byte each time, so no layer of the memory system can treat the write as redundant.
    check(cudaMemsetAsync(flush, ++flushes & 0xff, flush_bytes, stream), "L2 flush");
  };
  const auto call = [&] {
    if (flush) evict_l2();
    pass();
    check(cudaStreamSynchronize(stream), "forward pass");
  };
  const auto sample = [&](int64_t calls) {
    double ns = 0;
    if (sm_clock) sm_clock->mark_start(stream);
    if (flush) {
      for (int64_t i = 0; i < calls; ++i) {
        evict_l2();
        check(cudaEventRecord(start.get(), stream), "cudaEventRecord");
        pass();
        check(cudaEventRecord(stop.get(), stream), "cudaEventRecord");
        ns += elapsed_ns(start, stop);
      }
    } else {
      check(cudaEventRecord(start.get(), stream), "cudaEventRecord");
      for (int64_t i = 0; i < calls; ++i) pass();
      check(cudaEventRecord(stop.get(), stream), "cudaEventRecord");
      ns = elapsed_ns(start, stop);
    }
    if (sm_clock) sm_clock->mark_stop(stream);
    return Sample{ns, sm_clock != nullptr && sm_clock->throttled(stream)};
  };
  SteadyClock host_clock;
  return run_timer(policy, host_clock, call, sample);
}

}  // namespace batchcore::cuda
