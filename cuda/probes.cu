// The GPU's ceilings for peak and roofline fractions: a register-resident fma kernel (fp32, no memory
// traffic) and a device-to-device copy over buffers several times the L2. Each is timed with CUDA events,
// best of several runs after a warm-up.
#include <algorithm>
#include <functional>

#include "batchcore_cuda.hpp"
#include "cuda_check.cuh"

namespace batchcore::cuda {
namespace {

constexpr int kChains = 16;           // independent fma chains per thread: covers the fma latency
constexpr int kThreadsPerBlock = 256;
constexpr int kBlocksPerSm = 8;

__global__ void fma_loop(float* out, int64_t iterations, int write) {
  float acc[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) acc[c] = float(threadIdx.x + c);
  const float a = 0.99999994f, b = 1e-7f;
  for (int64_t i = 0; i < iterations; ++i) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) acc[c] = fmaf(acc[c], a, b);
  }
  float sum = 0.0f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) sum = sum + acc[c];
  if (write) out[blockIdx.x * blockDim.x + threadIdx.x] = sum;  // never taken, never provable: keeps the loop
}

// Best of `runs` event-timed calls of `enqueue` (after one untimed call), in seconds.
double best_seconds(const std::function<void()>& enqueue, int runs) {
  Event start, stop;
  enqueue();
  check(cudaDeviceSynchronize(), "probe warm-up");
  double best = 1e300;
  for (int r = 0; r < runs; ++r) {
    check(cudaEventRecord(start.get()), "cudaEventRecord");
    enqueue();
    check(cudaEventRecord(stop.get()), "cudaEventRecord");
    check(cudaEventSynchronize(stop.get()), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
    best = std::min(best, double(ms) * 1e-3);
  }
  return best;
}

}  // namespace

int64_t l2_cache_bytes(int device) {
  use_device(device);
  int l2 = 0;
  check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "L2 size");
  return l2;
}

double default_clock_ghz(int device) {
  use_device(device);
  int khz = 0;
  check(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device), "clock rate");
  return khz / 1e6;
}

double probe_fma_peak_gflops(int device) {
  use_device(device);
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "SM count");
  const int blocks = sms * kBlocksPerSm;
  DeviceBuffer out(size_t(blocks) * kThreadsPerBlock * sizeof(float));
  int64_t iterations = 1 << 10;
  const auto launch = [&] {
    fma_loop<<<blocks, kThreadsPerBlock>>>(out.get(), iterations, 0);
    check(cudaGetLastError(), "fma probe launch");
  };
  while (best_seconds(launch, 1) < 0.02 && iterations < (int64_t(1) << 30)) iterations *= 2;
  const double seconds = best_seconds(launch, 3);
  return 2.0 * kChains * double(iterations) * blocks * kThreadsPerBlock / seconds / 1e9;
}

double probe_copy_gbytes_per_s(int device) {
  const size_t bytes = std::max<size_t>(size_t(8) * size_t(l2_cache_bytes(device)), size_t(256) << 20);
  DeviceBuffer src(bytes), dst(bytes);
  check(cudaMemset(src.get(), 1, bytes), "copy probe init");
  const double seconds = best_seconds([&] {
    check(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice), "copy probe");
  }, 10);
  return 2.0 * double(bytes) / seconds / 1e9;  // each byte read once and written once
}

}  // namespace batchcore::cuda
