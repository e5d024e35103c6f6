// Timing inside the core on a monotonic clock: `warmup` untimed calls, then `repeats` timed ones.
// (The measurement issue replaces this simple policy with a stopping rule; what is timed stays apart.)
#pragma once
#include <chrono>
#include <vector>

namespace batchcore {

template <class Fn>
std::vector<double> time_calls_ns(Fn&& fn, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> samples;
  samples.reserve(repeats > 0 ? repeats : 0);
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  return samples;
}

}  // namespace batchcore
