// The timer policy (timer.hpp) run with CUDA events: the same warm-up, block sizing and stopping rule
// as the CPU path; a sample is the device time between two events on the core's own stream.
//  - hot: one event pair around a block of back-to-back launches (the GPU never idles in between);
//  - cold (flush != null): before every call, a write of `flush_bytes` (>= 2x L2) evicts the L2, and
//    each call is timed by its own event pair, so the flush is never part of a sample.
// With a clock, SM 0's clock is read at both ends of every sample and a throttled sample is discarded
// (counted in TimingSummary::discarded), as nvbench does.
#pragma once
#include <cuda_runtime.h>

#include <functional>

#include "batchcore/timer.hpp"
#include "sm_clock.hpp"

namespace batchcore::cuda {

// `pass` enqueues one forward pass on `stream` (no synchronisation).
TimingSummary time_with_events(const TimerPolicy& policy, cudaStream_t stream, const std::function<void()>& pass,
                               void* flush, size_t flush_bytes, SmClock* sm_clock);

}  // namespace batchcore::cuda
