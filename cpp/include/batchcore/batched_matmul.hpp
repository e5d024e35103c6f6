// A product of two values that both depend on the input (attention's scores and values as an exported
// graph spells them): for each group g (the leading dimensions) out_g = a_g b_g, a_g m x k, b_g k x n,
// each element dot(a_g[i, :], b_g[:, j]) in the run's order through the GEMM's tiles, a (sample, group)
// per task on one worker (b_g packed as weights into a buffer the worker holds), so a sample's bits
// depend neither on the batch nor on its place in it, nor on the threads.
#pragma once
#include <cstdint>

#include "batchcore/gemm.hpp"
#include "batchcore/precision.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {

struct MatmulShape {
  int64_t groups = 1, m = 1, k = 1, n = 1;
};

// Floats of the caller's workspace: per worker, one group's a rounded when p is not fp32 (else none).
int64_t matmul_workspace_floats(const MatmulShape& s, Precision p, int threads);
// Bytes batched_matmul() allocates itself from `alloc` for the call: per worker, one group's packed b.
int64_t matmul_packed_bytes(const MatmulShape& s, int threads);

// a: samples x groups x m x k; b: samples x groups x k x n; out: samples x groups x m x n.
void batched_matmul(const float* a, const float* b, int64_t samples, const MatmulShape& s, float* out,
                    float* workspace, TrackingAllocator& alloc, const GemmWorkspace& ws, const GemmOptions& gemm,
                    Precision p);

}  // namespace batchcore
