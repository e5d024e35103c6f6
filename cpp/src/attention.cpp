#include "batchcore/attention.hpp"

#include <vector>

#include "batchcore/pack_weights.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

namespace {

int64_t worker_floats(const AttentionShape& s, Precision p) {
  return s.q_len * row_stride(s.kv_len) + (p == Precision::fp32 ? 0 : s.q_len * s.head_dim);
}

}  // namespace

int64_t attention_workspace_floats(const AttentionShape& s, Precision p, int threads) {
  return threads * worker_floats(s, p);
}

int64_t attention_packed_bytes(const AttentionShape& s, int threads) {
  return threads * (PackedLinear::bytes_for(s.kv_len, s.head_dim) + PackedLinear::bytes_for(s.value_dim, s.kv_len));
}

void attention(const float* q, const float* k, const float* v, int64_t samples, const AttentionShape& s, float* out,
               float* workspace, TrackingAllocator& alloc, const GemmWorkspace& ws, const GemmOptions& gemm,
               Precision p) {
  const int64_t ld_scores = row_stride(s.kv_len), per_worker = worker_floats(s, p);
  const int64_t lanes_per_worker = lanes_floats(gemm.order, 1);
  // Every worker's packing buffers, made before the work is shared out: the bytes held never depend on
  // which workers take part.
  std::vector<PackedLinear> keys, values;
  for (int w = 0; w < gemm.threads; ++w) {
    keys.push_back(allocate_packed(s.kv_len, s.head_dim, p, alloc));
    values.push_back(allocate_packed(s.value_dim, s.kv_len, p, alloc));
  }
  const IsaKernels& kernels = kernels_for(gemm.simd);
  shared_pool(gemm.threads).parallel_for(samples * s.groups, [&](int worker, int64_t g0, int64_t g1) {
    float* scores = workspace + worker * per_worker;
    float* rounded_q = scores + s.q_len * ld_scores;
    float* scratch = ws.lanes ? ws.lanes + worker * lanes_per_worker : nullptr;
    for (int64_t g = g0; g < g1; ++g) {
      const float* qg = q + g * s.q_len * s.head_dim;
      const float* kg = k + g * s.kv_len * s.head_dim;
      const float* vg = v + g * s.kv_len * s.value_dim;
      if (p != Precision::fp32) {
        for (int64_t i = 0; i < s.q_len * s.head_dim; ++i) rounded_q[i] = round_to(qg[i], p);
        qg = rounded_q;
      }
      // The keys as the weights of a linear layer (one output per key), the values transposed likewise.
      fill_packed(keys[size_t(worker)], kg, s.head_dim, 1, nullptr);
      linear_forward_here(qg, s.head_dim, s.q_len, keys[size_t(worker)], scores, ld_scores, scratch, gemm.order,
                          gemm.simd);
      for (int64_t i = 0; i < s.q_len; ++i) {
        float* row = scores + i * ld_scores;
        const int64_t seen = s.causal ? (i + 1 < s.kv_len ? i + 1 : s.kv_len) : s.kv_len;
        for (int64_t j = 0; j < seen; ++j) row[j] = row[j] * s.scale;
        kernels.row_layer(RowLayer{RowFunction::softmax, seen}, row, 1, ld_scores);
        for (int64_t j = seen; j < s.kv_len; ++j) row[j] = 0.0f;  // masked: a +0 term of the values' dot
        if (p != Precision::fp32)
          for (int64_t j = 0; j < seen; ++j) row[j] = round_to(row[j], p);
      }
      fill_packed(values[size_t(worker)], vg, 1, s.value_dim, nullptr);
      linear_forward_here(scores, ld_scores, s.q_len, values[size_t(worker)], out + g * s.q_len * s.value_dim,
                          s.value_dim, scratch, gemm.order, gemm.simd);
    }
  });
}

}  // namespace batchcore
