// What this machine can do at most, measured rather than looked up: the ceilings that a sweep's GFLOP/s
// are put in proportion to (peak and roofline fractions). Each probe runs on `threads` workers of the
// shared pool at once, as a forward pass does, and reports its best of several timed runs.
#pragma once
#include <cstdint>

#include "batchcore/cpu_features.hpp"

namespace batchcore {

// FMA peak in GFLOP/s summed over threads: every thread runs a register-resident loop of independent
// fma chains (no memory traffic) with the kernels of `simd`, for about `seconds` in all.
double probe_fma_peak_gflops(int threads, SimdLevel simd, double seconds);

// Effective core clock in GHz while `threads` threads are busy: a chain of dependent integer adds, each
// one cycle of latency on every x86 and Arm core (throughput cannot hide a dependency), so adds/second
// is cycles/second. Turbo, power limits and a hypervisor's share are all in it.
double probe_clock_ghz(int threads, double seconds);

struct TriadProbe {
  double gbytes_per_s;   // best run: 3 x 4 bytes per element (two reads, one write; STREAM's count)
  int64_t elements;      // per array
  int repeats;           // timed runs after one untimed pass
};

// STREAM's triad a[i] = b[i] + s * c[i] over three arrays of `elements` floats, split statically over
// `threads` (each thread first touches the part it later streams), vectorised at `simd`. Arrays much
// larger than the last-level cache measure the memory's bandwidth; arrays that fit in it, the cache's. Throws OutOfMemoryError when the arrays do not fit,
// Error when a result is wrong.
TriadProbe probe_triad(int threads, SimdLevel simd, int64_t elements, int repeats);

}  // namespace batchcore
