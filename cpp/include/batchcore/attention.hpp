// Scaled dot-product attention with named orders (docs/orders.md, "Graph operations"): for each group
// g (heads, or any leading dimensions) and query i,
//   s_ij = dot(q_i, k_j) in the run's order, times `scale` (one multiply),
//   p_i  = the row softmax of s_i (j <= i only when causal; the masked p_ij are +0),
//   o_i  = dot(p_i, v[:, c]) over the key positions j in the run's order, for each value column c.
// Both products run through the GEMM's tiles, a (sample, group) per task on one worker (its keys and values
// packed as weights into buffers the worker holds), so a sample's bits depend neither on the batch nor on
// its place in it, nor on the threads.
#pragma once
#include <cstdint>

#include "batchcore/gemm.hpp"
#include "batchcore/precision.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {

struct AttentionShape {
  int64_t groups = 1, q_len = 1, kv_len = 1, head_dim = 1, value_dim = 1;
  float scale = 1.0f;
  bool causal = false;
};

// Floats of the caller's workspace: per worker, the scores of one group, and its queries rounded when p
// is not fp32.
int64_t attention_workspace_floats(const AttentionShape& s, Precision p, int threads);
// Bytes attention() allocates itself from `alloc` for the call: per worker, one group's packed keys and
// values.
int64_t attention_packed_bytes(const AttentionShape& s, int threads);

// q: samples x groups x q_len x head_dim; k: ... x kv_len x head_dim; v: ... x kv_len x value_dim;
// out: samples x groups x q_len x value_dim.
void attention(const float* q, const float* k, const float* v, int64_t samples, const AttentionShape& s, float* out,
               float* workspace, TrackingAllocator& alloc, const GemmWorkspace& ws, const GemmOptions& gemm,
               Precision p);

}  // namespace batchcore
