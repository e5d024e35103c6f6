#include "cuda_check.cuh"
#include "row_kernels.cuh"

namespace batchcore::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t count) { return unsigned((count + kThreads - 1) / kThreads); }

__global__ void activation_kernel(float* x, int64_t count, Activation a, float alpha) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < count) x[i] = activate(x[i], a, alpha);
}

// A row's sums run left to right in one thread, as on the CPU (a parallel reduction would change them).
__global__ void row_op_kernel(float* x, int64_t rows, int64_t width, RowOp op, const float* p0, const float* p1,
                              float eps) {
  const int64_t r = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= rows) return;
  float* row = x + r * width;
  switch (op) {
    case RowOp::softmax: softmax_row(row, width); break;
    case RowOp::layer_norm: layer_norm_row(row, width, p0, p1, eps); break;
    case RowOp::affine: affine_row(row, width, p0, p1); break;
  }
}

__global__ void round_kernel(float* x, int64_t count, Precision p) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < count) x[i] = round_to(x[i], p);
}

}  // namespace

void launch_activation(float* x, int64_t count, Activation a, float alpha, cudaStream_t stream) {
  activation_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, count, a, alpha);
  check(cudaGetLastError(), "launch activation_kernel");
}

void launch_row_op(float* x, int64_t rows, int64_t width, RowOp op, const float* p0, const float* p1, float eps,
                   cudaStream_t stream) {
  row_op_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(x, rows, width, op, p0, p1, eps);
  check(cudaGetLastError(), "launch row_op_kernel");
}

void launch_round(float* x, int64_t count, Precision p, cudaStream_t stream) {
  round_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, count, p);
  check(cudaGetLastError(), "launch round_kernel");
}

}  // namespace batchcore::cuda
