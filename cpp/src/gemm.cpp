#include "batchcore/gemm.hpp"

#include <algorithm>
#include <chrono>

#include "batchcore/dot.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

static_assert(kPanelWidth == 32, "tile_kernels.inl assumes 32-column panels");

namespace {

// Whether an order's tile kernel reads GemmTile::a_packed. (Kept out of tile_kernels.hpp: an inline
// function there would also be compiled with an instruction-set file's flags.)
bool uses_packed_a(Order o) {
  return o.kind == OrderKind::seq || o.kind == OrderKind::seq_nofma || o.kind == OrderKind::chunk ||
         o.kind == OrderKind::splitk;
}

struct Isa {
  void (*run_tile)(const GemmTile&, Order);
  int row_block;
  float (*fma_probe)(int64_t);
};

Isa isa_for(SimdLevel level) {
#if defined(BC_HAVE_X86_KERNELS)
  if (level == SimdLevel::avx512) return {isa_avx512::run_tile, isa_avx512::row_block(), isa_avx512::fma_probe};
  if (level == SimdLevel::avx2) return {isa_avx2::run_tile, isa_avx2::row_block(), isa_avx2::fma_probe};
#endif
  (void)level;
  return {isa_scalar::run_tile, isa_scalar::row_block(), isa_scalar::fma_probe};
}

// x (M x K rows) into groups of `group` rows, each group k-major: the micro-kernel then broadcasts
// consecutive floats instead of reading `group` rows that lie K floats apart (4K-aliased when K*4 is
// a multiple of 4096). Data movement only: the bits of the result do not depend on it.
void pack_a(const float* x, int64_t M, int64_t K, int group, float* out, ThreadPool& pool) {
  const int64_t groups = (M + group - 1) / group;
  pool.parallel_for(groups, [&](int, int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t r0 = g * group;
      const int n = int(M - r0 < group ? M - r0 : group);
      float* dst = out + r0 * K;
      for (int r = 0; r < n; ++r) {
        const float* src = x + (r0 + r) * K;
        for (int64_t k = 0; k < K; ++k) dst[k * n + r] = src[k];
      }
    }
  });
}

// `exact` goes through the scalar long accumulator of dot.hpp, element by element.
void exact_tile(const GemmTile& t) {
  for (int r = 0; r < t.rows; ++r)
    for (int j = 0; j < t.cols; ++j)
      t.y[r * t.ldy + j] = dot_ordered(t.a + r * t.lda, t.panel + j, kPanelWidth, t.K, t.bias[j],
                                       Order{OrderKind::exact, 0}, Precision::fp32);
}

}  // namespace

double probe_fma_peak_gflops(int threads, SimdLevel simd, double seconds) {
  const Isa isa = isa_for(simd);
  ThreadPool& pool = shared_pool(threads);
  volatile float sink = 0.0f;
  const auto run = [&](int64_t iterations) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](int, int64_t, int64_t) { sink = sink + isa.fma_probe(iterations); });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  int64_t iterations = 1 << 16;
  double t = run(iterations);  // also the warm-up
  while (t < seconds / 4) {
    iterations *= 2;
    t = run(iterations);
  }
  double best = t;
  for (int i = 0; i < 3; ++i) best = std::min(best, run(iterations));
  return double(threads) * double(iterations) * 768.0 / best / 1e9;
}

int64_t lanes_floats(Order order, int threads) {
  return order.kind == OrderKind::lanes ? int64_t(threads) * order.param * kPanelWidth : 0;
}

int64_t packed_a_floats(Order order, int64_t M, int64_t K) { return uses_packed_a(order) ? M * K : 0; }

void linear_forward(const float* x, int64_t M, const PackedLinear& w, float* y, const GemmWorkspace& ws,
                    const GemmOptions& opt) {
  const int64_t row_tiles = (M + kTileRows - 1) / kTileRows;
  const Isa isa = isa_for(opt.simd);
  ThreadPool& pool = shared_pool(opt.threads);
  const bool packed = uses_packed_a(opt.order);
  if (packed) pack_a(x, M, w.K, isa.row_block, ws.a_packed, pool);
  const bool exact = opt.order.kind == OrderKind::exact;
  const int64_t scratch_per_worker = opt.order.kind == OrderKind::lanes ? opt.order.param * kPanelWidth : 0;
  // Task = (panel, row tile), panel-major so that consecutive tasks of a worker reuse a panel in cache.
  pool.parallel_for(row_tiles * w.panels, [&](int worker, int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t p = task / row_tiles, rt = task % row_tiles;
      const int64_t m0 = rt * kTileRows, n0 = p * kPanelWidth;
      GemmTile t;
      t.a = x + m0 * w.K;
      t.lda = w.K;
      t.a_packed = packed ? ws.a_packed + m0 * w.K : nullptr;
      t.rows = int(M - m0 < kTileRows ? M - m0 : kTileRows);
      t.panel = w.panel(p);
      t.bias = w.panel_bias(p);
      t.K = w.K;
      t.y = y + m0 * w.N + n0;
      t.ldy = w.N;
      t.cols = int(w.N - n0 < kPanelWidth ? w.N - n0 : kPanelWidth);
      t.scratch = ws.lanes ? ws.lanes + worker * scratch_per_worker : nullptr;
      if (exact) exact_tile(t);
      else isa.run_tile(t, opt.order);
    }
  });
}

}  // namespace batchcore
