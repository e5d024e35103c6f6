// How a forward pass runs, parsed once from its spelling (the Python layer builds one per backend and
// hands the same object to every call): what fixes the bits (order, precision, policy) and, on the CPU,
// what never changes them (threads, SIMD level). The CUDA core reads the first three.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "batchcore/cpu_features.hpp"
#include "batchcore/order.hpp"
#include "batchcore/timer.hpp"

namespace batchcore {

struct RunOptions {
  Order order;
  Precision precision = Precision::fp32;
  Policy policy = Policy::fixed;
  int threads = 1;
  SimdLevel simd = SimdLevel::scalar;
  // Per call, never part of a parsed spelling:
  const TimerPolicy* timer = nullptr;  // when set, the pass is timed by this policy; else run once
  // Cold mode (> 0): every pass reads its input from the next of Model::cold_copies() copies of x,
  // which together hold at least this many bytes (the caller passes >= 2x the last-level cache), so no
  // pass finds its input in a cache. The copies are tracked and planned.
  int64_t cold_bytes = 0;
};

// Every field from its spelling (the order already parsed); no thread count means all cores, simd "auto"
// the best level. Throws the error of the first bad field: OrderError (order, precision, policy),
// ArgumentError (threads outside 1..kMaxThreads), DeviceUnavailableError (a SIMD level this CPU lacks or
// that does not exist).
RunOptions parse_run_options(Order order, const std::string& precision, const std::string& policy,
                             std::optional<int> threads, const std::string& simd);

}  // namespace batchcore
