// How a model's forward passes run under RunOptions (a Model and a Graph alike): once, or as the timer
// policy asks; in cold mode (opt.cold_bytes > 0) each pass reads the next of cold_copies() copies of the
// input, allocated (and so planned and tracked) here.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "batchcore/errors.hpp"
#include "batchcore/run_options.hpp"
#include "batchcore/timer.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {

// Copies of an input of `input_bytes` that together hold opt.cold_bytes, at least 2 (0 when warm).
inline int64_t cold_copies(int64_t input_bytes, const RunOptions& opt) {
  if (opt.cold_bytes <= 0) return 0;
  return std::max<int64_t>(2, (opt.cold_bytes + input_bytes - 1) / input_bytes);
}

// pass(source) once, or timed by *opt.timer; source is x, or in cold mode the next copy of x.
template <class Pass>
TimingSummary run_passes(const float* x, int64_t input_floats, TrackingAllocator& alloc, const RunOptions& opt,
                         const Pass& pass) {
  const int64_t copies = cold_copies(input_floats * int64_t(sizeof(float)), opt);
  TrackedBuffer rotation(alloc, copies * input_floats);
  for (int64_t c = 0; c < copies; ++c)
    std::memcpy(rotation.data() + c * input_floats, x, size_t(input_floats) * sizeof(float));
  int64_t next_copy = 0;
  const auto one = [&] {
    const float* source = x;
    if (copies) {
      source = rotation.data() + next_copy * input_floats;
      next_copy = (next_copy + 1) % copies;
    }
    pass(source);
  };
  if (!opt.timer) {
    one();
    return TimingSummary{};
  }
  SteadyClock clock;
  return time_on_clock(*opt.timer, clock, one);
}

// run(first sample, count) over consecutive batches of B of `samples` (the last one shorter), untimed: an
// evaluation loop, as run_batched runs it.
template <class RunBatch>
void in_batches(int64_t samples, int64_t B, const RunOptions& opt, const RunBatch& run) {
  if (B <= 0) throw ShapeError("batch size must be positive, got " + std::to_string(B));
  if (samples <= 0) throw ShapeError("empty input: nothing to run");
  RunOptions once = opt;
  once.timer = nullptr;
  for (int64_t s0 = 0; s0 < samples; s0 += B) run(s0, std::min(B, samples - s0), once);
}

}  // namespace batchcore
