#include "batchcore/attention.hpp"

#include "batchcore/pack_weights.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

int64_t attention_workspace_floats(const AttentionShape& s, Precision p) {
  return s.q_len * row_stride(s.kv_len) + (p == Precision::fp32 ? 0 : s.q_len * s.head_dim);
}

int64_t attention_packed_bytes(const AttentionShape& s) {
  return PackedLinear::bytes_for(s.kv_len, s.head_dim) + PackedLinear::bytes_for(s.value_dim, s.kv_len);
}

void attention(const float* q, const float* k, const float* v, int64_t samples, const AttentionShape& s, float* out,
               float* workspace, TrackingAllocator& alloc, const GemmWorkspace& ws, const GemmOptions& gemm,
               Precision p) {
  const int64_t ld_scores = row_stride(s.kv_len);
  float* scores = workspace;
  float* rounded_q = workspace + s.q_len * ld_scores;
  const IsaKernels& kernels = kernels_for(gemm.simd);
  for (int64_t g = 0; g < samples * s.groups; ++g) {
    const float* qg = q + g * s.q_len * s.head_dim;
    const float* kg = k + g * s.kv_len * s.head_dim;
    const float* vg = v + g * s.kv_len * s.value_dim;
    if (p != Precision::fp32) {
      for (int64_t i = 0; i < s.q_len * s.head_dim; ++i) rounded_q[i] = round_to(qg[i], p);
      qg = rounded_q;
    }
    // The keys as the weights of a linear layer (one output per key), the values transposed likewise.
    const PackedLinear keys = pack_weights(kg, nullptr, s.kv_len, s.head_dim, p, alloc);
    linear_forward(qg, s.head_dim, s.q_len, keys, scores, ld_scores, ws, gemm);
    for (int64_t i = 0; i < s.q_len; ++i) {
      float* row = scores + i * ld_scores;
      const int64_t seen = s.causal ? (i + 1 < s.kv_len ? i + 1 : s.kv_len) : s.kv_len;
      for (int64_t j = 0; j < seen; ++j) row[j] = row[j] * s.scale;
      kernels.row_layer(RowLayer{RowFunction::softmax, seen}, row, 1, ld_scores);
      for (int64_t j = seen; j < s.kv_len; ++j) row[j] = 0.0f;  // masked: a +0 term of the values' dot
      if (p != Precision::fp32)
        for (int64_t j = 0; j < seen; ++j) row[j] = round_to(row[j], p);
    }
    const PackedLinear values = pack_weights_strided(vg, 1, s.value_dim, nullptr, s.value_dim, s.kv_len, p, alloc);
    linear_forward(scores, ld_scores, s.q_len, values, out + g * s.q_len * s.value_dim, s.value_dim, ws, gemm);
  }
}

}  // namespace batchcore
