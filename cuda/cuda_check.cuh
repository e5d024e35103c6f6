// Turn CUDA runtime errors into batchcore exceptions, freeing nothing twice.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "batchcore/errors.hpp"
#include "batchcore_cuda.hpp"

namespace batchcore::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  const std::string msg = std::string(what) + ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice)
    throw DeviceUnavailableError(msg);
  throw Error(msg);
}

// Makes `device` current; DeviceUnavailableError when there is no such device (or no GPU at all).
inline void use_device(int device) {
  const int n = device_count();
  if (device < 0 || device >= n)
    throw DeviceUnavailableError("no CUDA device " + std::to_string(device) + " is available (found " +
                                 std::to_string(n) + ")");
  check(cudaSetDevice(device), "cudaSetDevice");
}

// An owning device buffer; freed on every path out of a scope.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { check(cudaMalloc(&p_, bytes ? bytes : 1), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* get() const { return static_cast<float*>(p_); }

 private:
  void* p_ = nullptr;
};

// An owning non-blocking CUDA stream (it never waits on the legacy default stream).
class Stream {
 public:
  Stream() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  operator cudaStream_t() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// An owning CUDA event (timing enabled); destroyed on every path out of a scope.
class Event {
 public:
  Event() { check(cudaEventCreate(&e_), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace batchcore::cuda
