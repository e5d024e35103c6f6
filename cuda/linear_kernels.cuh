// The CUDA core's linear layers: y (M x N) = x (M x K) w + bias in a named order. Device pointers,
// rows dense (x rows K floats apart, y rows N apart). Inputs are already rounded to the run's precision.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "batchcore/order.hpp"

namespace batchcore::cuda {

// Weights packed k-major: wt[k * N + n] = W[n][k], so that a warp's threads (consecutive n) read
// consecutive words. Every order: seq, seq-nofma, chunk and splitk by the chain kernels, the others
// by one thread per element calling dot_ordered().
void launch_linear(const float* x, int64_t M, int64_t K, const float* wt, const float* bias, int64_t N, float* y,
                   Order order, cudaStream_t stream);

// One thread per output element: y[m][n] = dot_ordered(x row m, w + n * w_step_n with stride w_step_k).
// The reference (W as given: step_n = K, step_k = 1) and the fallback for the non-chain orders
// (packed: step_n = 1, step_k = N). Rounds its inputs to `precision` itself.
void launch_linear_per_element(const float* x, const float* w, int64_t w_step_n, int64_t w_step_k,
                               const float* bias, float* y, int64_t M, int64_t N, int64_t K, Order order,
                               Precision precision, cudaStream_t stream);

// Whether an order needs a deep per-thread stack on the device (pairwise recursion, lanes' W sums).
inline bool needs_device_stack(Order o) { return o.kind == OrderKind::lanes || o.kind == OrderKind::pairwise; }
constexpr size_t kDeviceStackBytes = 8192;

}  // namespace batchcore::cuda
