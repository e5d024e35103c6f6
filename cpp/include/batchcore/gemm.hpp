// Batched linear layer y = x W^T + b in a named order: the blocking and threading driver around the
// tile kernels. Threads split rows and output panels, never K, so each element stays one computation in
// its order: the result is bitwise independent of M, of a row's position, of the thread count and of the
// instruction set.
#pragma once
#include <cstdint>

#include "batchcore/cpu_features.hpp"
#include "batchcore/order.hpp"
#include "batchcore/pack_weights.hpp"

namespace batchcore {

struct GemmOptions {
  Order order;
  int threads = 1;
  SimdLevel simd = SimdLevel::scalar;
};

// x: M x K row-major, already rounded to w.precision. y: M x N row-major. scratch: scratch_floats()
// floats (may be null when that is 0).
void linear_forward(const float* x, int64_t M, const PackedLinear& w, float* y, float* scratch,
                    const GemmOptions& opt);

// Per-call workspace the driver needs for `order` with `threads` threads, in floats.
int64_t scratch_floats(Order order, int threads);

}  // namespace batchcore
