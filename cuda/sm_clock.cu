#include <cmath>

#include "batchcore_cuda.hpp"
#include "cuda_check.cuh"
#include "sm_clock.hpp"

namespace batchcore::cuda {
namespace {

// stamp = {global ns, SM cycles, claimed}: the first block on SM 0 claims the slot and writes it.
__global__ void stamp_sm0(unsigned long long* stamp) {
  unsigned smid;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
  if (smid != 0 || atomicCAS(&stamp[2], 0ull, 1ull) != 0ull) return;
  unsigned long long ns;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  stamp[1] = static_cast<unsigned long long>(clock64());
  stamp[0] = ns;
}

}  // namespace

struct SmClock::Impl {
  int device = 0;
  int sms = 1;
  double default_ghz = 0;
  unsigned long long* host = nullptr;  // mapped pinned memory: start stamp [0..2], stop stamp [3..5]
  unsigned long long* dev = nullptr;

  void mark(void* stream, int slot) {
    unsigned long long* s = host + 3 * slot;
    s[0] = s[1] = s[2] = 0;
    stamp_sm0<<<sms, 1, 0, static_cast<cudaStream_t>(stream)>>>(dev + 3 * slot);
    check(cudaGetLastError(), "SM clock stamp");
  }
};

SmClock::SmClock(int device) : impl_(std::make_unique<Impl>()) {
  use_device(device);
  impl_->device = device;
  check(cudaDeviceGetAttribute(&impl_->sms, cudaDevAttrMultiProcessorCount, device), "SM count");
  impl_->default_ghz = default_clock_ghz(device);
  void* host = nullptr;
  check(cudaHostAlloc(&host, 6 * sizeof(unsigned long long), cudaHostAllocMapped), "cudaHostAlloc (SM clock)");
  impl_->host = static_cast<unsigned long long*>(host);
  void* dev = nullptr;
  const cudaError_t e = cudaHostGetDevicePointer(&dev, host, 0);
  if (e != cudaSuccess) {
    cudaFreeHost(host);
    check(e, "cudaHostGetDevicePointer (SM clock)");
  }
  impl_->dev = static_cast<unsigned long long*>(dev);
}

SmClock::~SmClock() { cudaFreeHost(impl_->host); }

void SmClock::mark_start(void* stream) { impl_->mark(stream, 0); }
void SmClock::mark_stop(void* stream) { impl_->mark(stream, 1); }

double SmClock::ghz(void* stream) {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "SM clock: stream synchronize");
  const volatile unsigned long long* s = impl_->host;
  if (!s[2] || !s[5] || s[3] <= s[0]) return std::nan("");
  return double(s[4] - s[1]) / double(s[3] - s[0]);
}

double SmClock::default_ghz() const { return impl_->default_ghz; }

bool SmClock::throttled(void* stream) {
  const double g = ghz(stream);
  return !std::isnan(g) && g < kThrottleFraction * impl_->default_ghz;
}

}  // namespace batchcore::cuda
