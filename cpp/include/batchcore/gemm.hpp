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

// Per-call workspace, from the caller's tracked buffers (either may be null where its size is 0).
struct GemmWorkspace {
  float* lanes = nullptr;     // lanes_floats(): threads x W x 32 partial sums for lanes:W
  float* a_packed = nullptr;  // packed_a_floats(): x repacked k-major in row groups (BLIS's packed A)
};

// x: M x K row-major, already rounded to w.precision. y: M x N row-major.
void linear_forward(const float* x, int64_t M, const PackedLinear& w, float* y, const GemmWorkspace& ws,
                    const GemmOptions& opt);

// The machine's fma peak as this build reaches it: every thread runs a register-resident fma loop for
// about `seconds`; returns GFLOP/s summed over threads.
double probe_fma_peak_gflops(int threads, SimdLevel simd, double seconds);

// Workspace sizes in floats for `order`.
int64_t lanes_floats(Order order, int threads);
int64_t packed_a_floats(Order order, int64_t M, int64_t K);

}  // namespace batchcore
