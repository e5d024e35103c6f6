// The GPU's reference linear layer on host arrays: upload, one thread per element (dot_ordered), download.
// The tiled kernels and the device model are tested against it and against the CPU.
#include "batchcore_cuda.hpp"
#include "cuda_check.cuh"
#include "linear_kernels.cuh"

namespace batchcore::cuda {

void linear_reference(const float* x, const float* W, const float* b, float* y, int64_t M, int64_t N,
                      int64_t K, Order order, Precision precision, int device) {
  use_device(device);
  DeviceBuffer dx(size_t(M * K) * 4), dw(size_t(N * K) * 4), db(size_t(N) * 4), dy(size_t(M * N) * 4);
  check(cudaMemcpy(dx.get(), x, size_t(M * K) * 4, cudaMemcpyHostToDevice), "copy x");
  check(cudaMemcpy(dw.get(), W, size_t(N * K) * 4, cudaMemcpyHostToDevice), "copy W");
  check(cudaMemcpy(db.get(), b, size_t(N) * 4, cudaMemcpyHostToDevice), "copy b");
  if (needs_device_stack(order)) check(cudaDeviceSetLimit(cudaLimitStackSize, kDeviceStackBytes), "stack size");
  launch_linear_per_element(dx.get(), dw.get(), K, 1, db.get(), dy.get(), M, N, K, order, precision, nullptr);
  check(cudaMemcpy(y, dy.get(), size_t(M * N) * 4, cudaMemcpyDeviceToHost), "copy y");
}

}  // namespace batchcore::cuda
