#include "batchcore/batched_matmul.hpp"

#include <vector>

#include "batchcore/pack_weights.hpp"
#include "batchcore/thread_pool.hpp"

namespace batchcore {

int64_t matmul_workspace_floats(const MatmulShape& s, Precision p, int threads) {
  return p == Precision::fp32 ? 0 : threads * s.m * s.k;
}

int64_t matmul_packed_bytes(const MatmulShape& s, int threads) { return threads * PackedLinear::bytes_for(s.n, s.k); }

void batched_matmul(const float* a, const float* b, int64_t samples, const MatmulShape& s, float* out,
                    float* workspace, TrackingAllocator& alloc, const GemmWorkspace& ws, const GemmOptions& gemm,
                    Precision p) {
  const int64_t lanes_per_worker = lanes_floats(gemm.order, 1);
  // Every worker's packing buffer, made before the work is shared out: the bytes held never depend on
  // which workers take part.
  std::vector<PackedLinear> packed;
  for (int w = 0; w < gemm.threads; ++w) packed.push_back(allocate_packed(s.n, s.k, p, alloc));
  shared_pool(gemm.threads).parallel_for(samples * s.groups, [&](int worker, int64_t g0, int64_t g1) {
    float* rounded_a = workspace ? workspace + worker * s.m * s.k : nullptr;
    float* scratch = ws.lanes ? ws.lanes + worker * lanes_per_worker : nullptr;
    for (int64_t g = g0; g < g1; ++g) {
      const float* ag = a + g * s.m * s.k;
      if (p != Precision::fp32) {
        for (int64_t i = 0; i < s.m * s.k; ++i) rounded_a[i] = round_to(ag[i], p);
        ag = rounded_a;
      }
      // b_g (k x n) as the weights of a linear layer of n outputs: weight (j, t) = b_g[t, j].
      fill_packed(packed[size_t(worker)], b + g * s.k * s.n, 1, s.n, nullptr);
      linear_forward_here(ag, s.k, s.m, packed[size_t(worker)], out + g * s.m * s.n, s.n, scratch, gemm.order,
                          gemm.simd);
    }
  });
}

}  // namespace batchcore
