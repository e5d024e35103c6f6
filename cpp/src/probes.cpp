#include "batchcore/probes.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <new>
#include <string>

#include "batchcore/errors.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

namespace {

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Doubles `iterations` until one run of `run(iterations)` lasts `seconds / 4`, then returns the best of
// three more runs and the iteration count they used. The first runs are the warm-up.
std::pair<double, int64_t> best_run(const std::function<void(int64_t)>& run, double seconds) {
  int64_t iterations = 1 << 12;
  double t = seconds_of([&] { run(iterations); });
  while (t < seconds / 4 && iterations < (int64_t(1) << 40)) {
    iterations *= 2;
    t = seconds_of([&] { run(iterations); });
  }
  double best = t;
  for (int i = 0; i < 3; ++i) best = std::min(best, seconds_of([&] { run(iterations); }));
  return {best, iterations};
}

// 16 dependent register-to-register adds per iteration. Not `x += 1`: some cores (Intel's Golden Cove
// family) execute chains of add-immediate at rename, several per cycle, which made this clock read
// 8-15 GHz there. A register operand the compiler cannot see through keeps one add per cycle wherever
// an integer add has one cycle of latency; where it does not, the Python layer finds the clock
// inconsistent with the fma width and reports it as unknown.
uint64_t dependent_adds(int64_t iterations) {
  uint64_t x = 0, step = 1;
  asm volatile("" : "+r"(step));
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < 16; ++k) {
#if defined(__x86_64__)
      asm volatile("addq %1, %0" : "+r"(x) : "r"(step));
#else
      x += step;
      asm volatile("" : "+r"(x));
#endif
    }
  }
  return x;
}

}  // namespace

double probe_fma_peak_gflops(int threads, SimdLevel simd, double seconds) {
  const auto fma_probe = kernels_for(simd).fma_probe;
  const PoolView pool = shared_pool(threads);
  volatile float sink = 0.0f;
  const auto [best, iterations] = best_run([&](int64_t n) {
    pool.parallel_for(threads, [&](int, int64_t, int64_t) { sink = sink + fma_probe(n); });
  }, seconds);
  return double(threads) * double(iterations) * 768.0 / best / 1e9;
}

double probe_clock_ghz(int threads, double seconds) {
  const PoolView pool = shared_pool(threads);
  volatile uint64_t sink = 0;
  const auto [best, iterations] = best_run([&](int64_t n) {
    pool.parallel_for(threads, [&](int, int64_t, int64_t) { sink = sink + dependent_adds(n); });
  }, seconds);
  return 16.0 * double(iterations) / best / 1e9;
}

TriadProbe probe_triad(int threads, SimdLevel simd, int64_t elements, int repeats) {
  if (elements < 1 || repeats < 1) throw ShapeError("probe_triad: elements and repeats must be positive");
  std::unique_ptr<float[]> a, b, c;
  try {
    a.reset(new float[elements]);
    b.reset(new float[elements]);
    c.reset(new float[elements]);
  } catch (const std::bad_alloc&) {
    throw OutOfMemoryError("probe_triad: three arrays of " + std::to_string(elements) + " floats do not fit");
  }
  const PoolView pool = shared_pool(threads);
  // The same static partition for initialisation and every pass: each thread streams the pages it touched.
  const auto over_parts = [&](const std::function<void(int64_t, int64_t)>& body) {
    pool.parallel_for(threads, [&](int, int64_t begin, int64_t end) {
      body(elements * begin / threads, elements * end / threads);
    });
  };
  over_parts([&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      a[i] = 0.0f;
      b[i] = float(i % 1024);
      c[i] = float(i % 7);
    }
  });
  const float s = 3.0f;
  float* pa = a.get();
  const float* pb = b.get();
  const float* pc = c.get();
  const auto triad = kernels_for(simd).triad;
  const auto pass = [&] { over_parts([&](int64_t i0, int64_t i1) { triad(pa + i0, pb + i0, pc + i0, s, i1 - i0); }); };
  pass();  // warm-up (page tables, pool wake-up)
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) best = std::min(best, seconds_of(pass));
  for (int64_t i = 0; i < elements; i += 4099)
    if (a[i] != float(i % 1024) + 3.0f * float(i % 7)) throw Error("probe_triad: wrong result at " + std::to_string(i));
  return {3.0 * sizeof(float) * double(elements) / best / 1e9, elements, repeats};
}

}  // namespace batchcore
