// SM 0's clock over an interval of a stream's work, as nvbench checks it: a tiny kernel at each end of
// the interval reads the SM's cycle counter and the GPU's global nanosecond timer (one block per SM, so
// one of them lands on SM 0, which alone writes). Cycles / nanoseconds over the interval is the clock
// the work ran at; a sample taken under kThrottleFraction of the default clock ran throttled (power,
// heat) and is discarded. Plain C++ (streams as void*): host-compiled bindings can hold one.
#pragma once
#include <memory>

namespace batchcore::cuda {

constexpr double kThrottleFraction = 0.75;

class SmClock {
 public:
  explicit SmClock(int device);  // DeviceUnavailableError without that device
  ~SmClock();
  SmClock(const SmClock&) = delete;
  SmClock& operator=(const SmClock&) = delete;

  void mark_start(void* stream);  // enqueue the marks on `stream` (a cudaStream_t; null: the default)
  void mark_stop(void* stream);
  // Mean SM clock in GHz between the two marks; waits for `stream` to pass the stop mark. NaN when SM 0
  // ran neither marking kernel (busy with other work): then nothing can be said.
  double ghz(void* stream);
  double default_ghz() const;  // the device's default (peak) SM clock, cudaDevAttrClockRate
  bool throttled(void* stream);  // ghz() < kThrottleFraction * default_ghz()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace batchcore::cuda
