// One thread per output element calling the shared BC_HD dot product: the CPU definition compiled for
// the GPU, slow by design. It pins the GPU's bits to the CPU's, and runs the orders whose definition is
// not a single chain (lanes, pairwise, kahan, dot2, f64, exact).
#include "batchcore/dot.hpp"
#include "cuda_check.cuh"
#include "linear_kernels.cuh"

namespace batchcore::cuda {
namespace {

__global__ void linear_per_element_kernel(const float* x, const float* w, int64_t w_step_n, int64_t w_step_k,
                                          const float* bias, float* y, int64_t M, int64_t N, int64_t K,
                                          Order order, Precision precision) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * N) return;
  const int64_t m = i / N, n = i % N;  // consecutive threads: consecutive n, the same input row
  y[i] = dot_ordered(x + m * K, w + n * w_step_n, w_step_k, K, bias[n], order, precision);
}

}  // namespace

void launch_linear_per_element(const float* x, const float* w, int64_t w_step_n, int64_t w_step_k,
                               const float* bias, float* y, int64_t M, int64_t N, int64_t K, Order order,
                               Precision precision, cudaStream_t stream) {
  constexpr int kThreads = 128;
  const int64_t blocks = (M * N + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) throw ShapeError("too many output elements for one launch");
  linear_per_element_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(x, w, w_step_n, w_step_k, bias, y, M, N,
                                                                      K, order, precision);
  check(cudaGetLastError(), "launch linear_per_element_kernel");
}

}  // namespace batchcore::cuda
