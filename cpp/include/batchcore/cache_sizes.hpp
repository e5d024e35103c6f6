// The CPU's cache sizes, read from the operating system once per process, for the GEMM's blocking.
// Blocking decides only which worker computes which tile and when; the bits never depend on it.
#pragma once
#include <cstdint>
#include <string>

namespace batchcore {

struct CacheSizes {
  int64_t l1d_bytes;      // one core's L1 data cache
  int64_t l2_bytes;       // one core's L2 (what a worker's tile of A must stay within)
  int64_t l3_bytes;       // one L3 instance as the OS reports it (0: none reported); informational only
  int64_t blocking_l2_bytes;  // l2_bytes bounded to [kMinBlockingL2, kMaxBlockingL2], or the override
  std::string source;     // "sysfs", "sysconf", "default", or "BATCHCORE_L2_BYTES" for an override
};

// Per-core L2 sizes of x86-64 server and desktop cores lie between these; a figure outside (a VM that
// reports a host-wide or a zero cache) is clamped into the range before it sizes a tile.
constexpr int64_t kMinBlockingL2 = int64_t(256) << 10;
constexpr int64_t kMaxBlockingL2 = int64_t(4) << 20;

// Read once: Linux's sysfs for cpu0 (level, type, size of each cache index), else glibc's sysconf
// (cpuid), else 48 KiB / 1 MiB. The environment variable BATCHCORE_L2_BYTES, when set to a positive
// byte count (K and M suffixes allowed), replaces the L2 the blocking uses (unbounded: for experiments and for the tests that show the
// bits do not depend on it); anything else there is ignored and the OS's figure used.
const CacheSizes& cache_sizes();

}  // namespace batchcore
