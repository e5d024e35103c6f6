// A TimingSummary as a Python dict, shared by the binding files (_core and _cuda); durations in
// nanoseconds per call.
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "batchcore/timer.hpp"

namespace batchcore {

inline pybind11::dict summary_dict(const TimingSummary& s) {
  pybind11::dict d;
  d["samples_ns"] = s.samples_ns;
  d["calls_per_sample"] = s.calls_per_sample;
  d["discarded"] = s.discarded;
  d["target_met"] = s.target_met;
  d["timed_out"] = s.timed_out;
  d["warmup_s"] = s.warmup_s;
  d["sampling_s"] = s.sampling_s;
  d["clock_overhead_ns"] = s.clock_overhead_ns;
  d["median_ns"] = s.median;
  d["mean_ns"] = s.mean;
  d["min_ns"] = s.min;
  d["max_ns"] = s.max;
  d["q1_ns"] = s.q1;
  d["q3_ns"] = s.q3;
  d["p90_ns"] = s.p90;
  d["p99_ns"] = s.p99;
  d["ci_low_ns"] = s.ci.low;
  d["ci_high_ns"] = s.ci.high;
  d["ci_rel_halfwidth"] = s.ci.rel_halfwidth;
  return d;
}

}  // namespace batchcore
