// Weights packed once per model (and precision) into K-major panels of kPanelWidth output columns:
// panel p holds, for k = 0..K-1, the kPanelWidth values W[p*kPanelWidth + j][k] contiguously, rounded
// to the input precision; columns past N are zero. A kernel then reads one vector per k.
#pragma once
#include <cstdint>

#include "batchcore/precision.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {

constexpr int kPanelWidth = 32;

struct PackedLinear {
  int64_t N = 0, K = 0, panels = 0;
  Precision precision = Precision::fp32;
  TrackedBuffer panel_data;  // panels * K * kPanelWidth floats
  TrackedBuffer bias;        // panels * kPanelWidth floats, zero past N

  const float* panel(int64_t p) const { return panel_data.data() + p * K * kPanelWidth; }
  const float* panel_bias(int64_t p) const { return bias.data() + p * kPanelWidth; }
  static int64_t bytes_for(int64_t N, int64_t K);  // what packing N x K weights allocates
};

// W is N x K row-major (torch's Linear.weight), b has N entries (nullptr: zero bias, +0).
PackedLinear pack_weights(const float* W, const float* b, int64_t N, int64_t K, Precision p,
                          TrackingAllocator& alloc);
// Buffers for N x K weights in precision p, to be filled by fill_packed (attention packs each sample's
// keys and values into buffers its workers hold for the whole call).
PackedLinear allocate_packed(int64_t N, int64_t K, Precision p, TrackingAllocator& alloc);
// Packs W[n][k] = W[n * n_stride + k * k_stride] and b (null: +0) into `out` (allocated for these N, K).
void fill_packed(PackedLinear& out, const float* W, int64_t n_stride, int64_t k_stride, const float* b);

// W[n][k] at W[n * n_stride + k * k_stride]: a slice or a transpose packed without a copy (attention's
// keys of one head, and its values transposed).
PackedLinear pack_weights_strided(const float* W, int64_t n_stride, int64_t k_stride, const float* b, int64_t N,
                                  int64_t K, Precision p, TrackingAllocator& alloc);

}  // namespace batchcore
