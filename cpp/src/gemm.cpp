#include "batchcore/gemm.hpp"

#include "batchcore/dot.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

static_assert(kPanelWidth == 32, "tile_kernels.inl assumes 32-column panels");

namespace {

using TileFn = void (*)(const GemmTile&, Order);

TileFn tile_kernel(SimdLevel level) {
#if defined(BC_HAVE_X86_KERNELS)
  if (level == SimdLevel::avx512) return isa_avx512::run_tile;
  if (level == SimdLevel::avx2) return isa_avx2::run_tile;
#endif
  (void)level;
  return isa_scalar::run_tile;
}

// `exact` goes through the scalar long accumulator of dot.hpp, element by element.
void exact_tile(const GemmTile& t) {
  for (int r = 0; r < t.rows; ++r)
    for (int j = 0; j < t.cols; ++j)
      t.y[r * t.ldy + j] = dot_ordered(t.a + r * t.lda, t.panel + j, kPanelWidth, t.K, t.bias[j],
                                       Order{OrderKind::exact, 0}, Precision::fp32);
}

}  // namespace

int64_t scratch_floats(Order order, int threads) {
  return order.kind == OrderKind::lanes ? int64_t(threads) * order.param * kPanelWidth : 0;
}

void linear_forward(const float* x, int64_t M, const PackedLinear& w, float* y, float* scratch,
                    const GemmOptions& opt) {
  const int64_t row_tiles = (M + kTileRows - 1) / kTileRows;
  const TileFn kernel = tile_kernel(opt.simd);
  const bool exact = opt.order.kind == OrderKind::exact;
  const int64_t scratch_per_worker = opt.order.kind == OrderKind::lanes ? opt.order.param * kPanelWidth : 0;
  // Task = (panel, row tile), panel-major so that consecutive tasks of a worker reuse a panel in cache.
  shared_pool(opt.threads).parallel_for(row_tiles * w.panels, [&](int worker, int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / row_tiles, rt = task % row_tiles;
      const int64_t m0 = rt * kTileRows, n0 = p * kPanelWidth;
      GemmTile t;
      t.a = x + m0 * w.K;
      t.lda = w.K;
      t.rows = int(M - m0 < kTileRows ? M - m0 : kTileRows);
      t.panel = w.panel(p);
      t.bias = w.panel_bias(p);
      t.K = w.K;
      t.y = y + m0 * w.N + n0;
      t.ldy = w.N;
      t.cols = int(w.N - n0 < kPanelWidth ? w.N - n0 : kPanelWidth);
      t.scratch = scratch ? scratch + worker * scratch_per_worker : nullptr;
      if (exact) exact_tile(t);
      else kernel(t, opt.order);
    }
  });
}

}  // namespace batchcore
