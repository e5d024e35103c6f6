#include "cuda_check.cuh"
#include "device_allocator.hpp"

namespace batchcore::cuda {

void* DeviceAllocator::allocate(size_t bytes) {
  const int64_t after = bytes_.reserve(bytes, "device");
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky, but leave no error behind for the next call
    bytes_.release(bytes);
    check(e, ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  }
  bytes_.commit(after);
  return p;
}

void DeviceAllocator::deallocate(void* p, size_t bytes) noexcept {
  cudaFree(p);
  bytes_.release(bytes);
}

}  // namespace batchcore::cuda
