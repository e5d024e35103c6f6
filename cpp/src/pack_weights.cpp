#include "batchcore/pack_weights.hpp"

namespace batchcore {

int64_t PackedLinear::bytes_for(int64_t N, int64_t K) {
  const int64_t panels = (N + kPanelWidth - 1) / kPanelWidth;
  return panels * (K + 1) * kPanelWidth * int64_t(sizeof(float));
}

PackedLinear pack_weights(const float* W, const float* b, int64_t N, int64_t K, Precision p,
                          TrackingAllocator& alloc) {
  return pack_weights_strided(W, K, 1, b, N, K, p, alloc);
}

PackedLinear allocate_packed(int64_t N, int64_t K, Precision p, TrackingAllocator& alloc) {
  PackedLinear out;
  out.N = N;
  out.K = K;
  out.panels = (N + kPanelWidth - 1) / kPanelWidth;
  out.precision = p;
  out.panel_data = TrackedBuffer(alloc, out.panels * K * kPanelWidth);
  out.bias = TrackedBuffer(alloc, out.panels * kPanelWidth);
  return out;
}

void fill_packed(PackedLinear& out, const float* W, int64_t n_stride, int64_t k_stride, const float* b) {
  const int64_t N = out.N, K = out.K;
  for (int64_t panel = 0; panel < out.panels; ++panel) {
    float* dst = out.panel_data.data() + panel * K * kPanelWidth;
    for (int j = 0; j < kPanelWidth; ++j) {
      const int64_t n = panel * kPanelWidth + j;
      const float* src = n < N ? W + n * n_stride : nullptr;
      for (int64_t k = 0; k < K; ++k) dst[k * kPanelWidth + j] = src ? round_to(src[k * k_stride], out.precision) : 0.0f;
    }
  }
  for (int64_t n = 0; n < out.panels * kPanelWidth; ++n) out.bias.data()[n] = (b && n < N) ? b[n] : 0.0f;
}

PackedLinear pack_weights_strided(const float* W, int64_t n_stride, int64_t k_stride, const float* b, int64_t N,
                                  int64_t K, Precision p, TrackingAllocator& alloc) {
  PackedLinear out = allocate_packed(N, K, p, alloc);
  fill_packed(out, W, n_stride, k_stride, b);
  return out;
}

}  // namespace batchcore
