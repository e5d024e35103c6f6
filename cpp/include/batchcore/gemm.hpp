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

struct RowLayer;  // kernels/tile_kernels.hpp

struct GemmOptions {
  Order order;
  int threads = 1;
  SimdLevel simd = SimdLevel::scalar;
  // An element-wise activation (a RowLayer of an activation function) applied to each output tile just
  // after it is written, while it is in L1: the same function on the same values as a separate pass over
  // the output (the same bits), without that pass and its wait for the threads. Null: none.
  const RowLayer* epilogue = nullptr;
};

// Per-call workspace, from the caller's tracked buffers (null where its size is 0).
struct GemmWorkspace {
  float* lanes = nullptr;  // lanes_floats(): per thread, W slots of partial sums for lanes:W
};

// The row stride, in floats, that the forward pass gives rows of `width` floats: a whole and odd number
// of 64-byte lines. The micro-kernel reads up to 12 rows at once; with an odd number of lines between
// them they fall into 12 different L1 sets (rows 4 KiB apart would all compete for one set).
int64_t row_stride(int64_t width);

// x: M rows of w.K floats, ldx apart, already rounded to w.precision. y: M rows of w.N floats, ldy apart.
void linear_forward(const float* x, int64_t ldx, int64_t M, const PackedLinear& w, float* y, int64_t ldy,
                    const GemmWorkspace& ws, const GemmOptions& opt);

// The same on the calling thread alone (for a caller that is itself one of the pool's workers): scratch is
// lanes_floats(order, 1) floats, or null unless the order is lanes:W.
void linear_forward_here(const float* x, int64_t ldx, int64_t M, const PackedLinear& w, float* y, int64_t ldy,
                         float* scratch, Order order, SimdLevel simd);

// The rows of A a GEMM tile holds for K columns (sized from the L2; a multiple of 12, 12..96).
int64_t gemm_tile_rows(int64_t K);

// Workspace size in floats for `order` (0 unless it is lanes:W).
int64_t lanes_floats(Order order, int threads);

}  // namespace batchcore
