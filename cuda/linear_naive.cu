// The GPU's reference linear layer: one thread per output element calling the shared BC_HD dot product.
// Slow by design; it pins the GPU's bits to the CPU definition. The tiled kernels of the CUDA issue are
// tested against it.
#include "batchcore/dot.hpp"
#include "batchcore_cuda.hpp"
#include "cuda_check.cuh"

namespace batchcore::cuda {
namespace {

__global__ void linear_reference_kernel(const float* x, const float* W, const float* b, float* y, int64_t M,
                                        int64_t N, int64_t K, Order order, Precision precision) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * N) return;
  const int64_t m = i / N, n = i % N;
  y[i] = dot_ordered(x + m * K, W + n * K, 1, K, b[n], order, precision);
}

}  // namespace

void linear_reference(const float* x, const float* W, const float* b, float* y, int64_t M, int64_t N,
                      int64_t K, Order order, Precision precision, int device) {
  if (device < 0 || device >= device_count())
    throw DeviceUnavailableError("no CUDA device " + std::to_string(device) + " is available");
  check(cudaSetDevice(device), "cudaSetDevice");
  DeviceBuffer dx(size_t(M * K) * 4), dw(size_t(N * K) * 4), db(size_t(N) * 4), dy(size_t(M * N) * 4);
  check(cudaMemcpy(dx.get(), x, size_t(M * K) * 4, cudaMemcpyHostToDevice), "copy x");
  check(cudaMemcpy(dw.get(), W, size_t(N * K) * 4, cudaMemcpyHostToDevice), "copy W");
  check(cudaMemcpy(db.get(), b, size_t(N) * 4, cudaMemcpyHostToDevice), "copy b");
  if (order.kind == OrderKind::lanes || order.kind == OrderKind::pairwise)
    check(cudaDeviceSetLimit(cudaLimitStackSize, 8192), "stack size");  // lanes' partial sums, recursion
  const int threads = 128;
  const int64_t blocks = (M * N + threads - 1) / threads;
  linear_reference_kernel<<<unsigned(blocks), threads>>>(dx.get(), dw.get(), db.get(), dy.get(), M, N, K, order,
                                                         precision);
  check(cudaGetLastError(), "launch linear_reference_kernel");
  check(cudaMemcpy(y, dy.get(), size_t(M * N) * 4, cudaMemcpyDeviceToHost), "copy y");
}

}  // namespace batchcore::cuda
