#include "batchcore/gemm.hpp"

#include <algorithm>

#include "batchcore/cache_sizes.hpp"
#include "batchcore/dot.hpp"
#include "batchcore/gemm_tuning.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

static_assert(kPanelWidth == 32, "tile_kernels.inl assumes 32-column panels");

namespace {

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows per tile: as many as keep the tile's A (rows x K floats) within the tuned share of the core's L2
// (gemm_tuning.hpp: 3/8 by default, the best measured on AMD Zen 4 and 5's 1 MiB L2), so that it stays
// there beside the weight panel streaming past it (K x 32 floats) and the output tile; a multiple of 12
// (the AVX-512 row block).
int64_t tile_rows_for(int64_t K) {
  const int64_t budget = cache_sizes().blocking_l2_bytes * gemm_tuning().tile_l2_eighths / 8;
  const int64_t rows = budget / (K * int64_t(sizeof(float))) / 12 * 12;
  return std::clamp<int64_t>(rows, 12, kTileRows);
}


// `exact` goes through the scalar long accumulator of dot.hpp, element by element.
void exact_tile(const GemmTile& t) {
  for (int r = 0; r < t.rows; ++r)
    for (int j = 0; j < t.cols; ++j)
      t.y[r * t.ldy + j] = dot_ordered(t.a + r * t.lda, t.panel + j, kPanelWidth, t.K, t.bias[j],
                                       Order{OrderKind::exact, 0}, Precision::fp32);
}

}  // namespace

int64_t lanes_floats(Order order, int threads) {
  return order.kind == OrderKind::lanes ? int64_t(threads) * order.param * kMaxRowBlock * kPanelWidth : 0;
}

int64_t row_stride(int64_t width) {
  constexpr int64_t line = 16;  // floats per 64-byte line
  const int64_t lines = (width + line - 1) / line;
  return (lines % 2 == 1 ? lines : lines + 1) * line;
}

namespace {

// The tile (row tile rt, panel p) of y = x W^T + b: one task of linear_forward, on the calling thread.
void run_task(const float* x, int64_t ldx, int64_t M, const PackedLinear& w, float* y, int64_t ldy, int64_t tile_rows,
              int64_t rt, int64_t p, float* scratch, Order order, const IsaKernels& kernels,
              const RowLayer* epilogue = nullptr) {
  const int64_t m0 = rt * tile_rows, n0 = p * kPanelWidth;
  GemmTile t;
  t.a = x + m0 * ldx;
  t.lda = ldx;
  t.rows = int(M - m0 < tile_rows ? M - m0 : tile_rows);
  t.panel = w.panel(p);
  t.bias = w.panel_bias(p);
  t.K = w.K;
  t.y = y + m0 * ldy + n0;
  t.ldy = ldy;
  t.cols = int(w.N - n0 < kPanelWidth ? w.N - n0 : kPanelWidth);
  t.scratch = scratch;
  if (order.kind == OrderKind::exact) exact_tile(t);
  else kernels.run_tile(t, order);
  if (epilogue) {
    RowLayer tile_part = *epilogue;
    tile_part.width = t.cols;
    kernels.row_layer(tile_part, t.y, t.rows, t.ldy);
  }
}

}  // namespace

int64_t gemm_tile_rows(int64_t K) { return tile_rows_for(K); }

namespace {

constexpr int64_t kOutputKBlock = 256;  // K block of the K-outer schedule: A's row-block slice, 12 KiB, in L1
constexpr int64_t kMaxGroupPanels = 16;
// From this many rows on, seq and seq-nofma take the K-outer schedule. Measured on an Intel Xeon (family 6
// model 167, 2 threads) against the tile schedule: B = 16 0.84-0.96x, B = 64 0.97-1.03x, B = 256 1.10-1.12x,
// B = 1024 1.02x (1024 x 1024) and 1.13-1.15x (4096 x 4096).
constexpr int64_t kKOuterFromRows = 128;

// The K-outer schedule of seq and seq-nofma (BLIS's loop order): per K block, each worker takes its part
// of the rows and passes each of its row blocks by every group of whole panels (a group's slices fill the
// tuned share of the L2), the A slice in L1; the chains live in y between K blocks. The weights are read
// once per thread, A once per group and K block, y once per K block. A last narrow panel (N not a
// multiple of 32) goes through the tile path afterwards.
void linear_forward_k_outer(const float* x, int64_t ldx, int64_t M, const PackedLinear& w, float* y, int64_t ldy,
                            const GemmOptions& opt, const GemmTuning& tuning) {
  const IsaKernels& kernels = kernels_for(opt.simd);
  const PoolView pool = shared_pool(opt.threads);
  const int64_t full = w.N / kPanelWidth;
  const int64_t slice_bytes = kOutputKBlock * kPanelWidth * int64_t(sizeof(float));
  const int64_t budget = cache_sizes().blocking_l2_bytes * tuning.tile_l2_eighths / 8;
  // As many panels as the L2 share holds, at most a (2 x threads)-th of them: the split when the threads
  // took groups; with the rows split below, groups of 4 to 32 panels measured alike (Intel Xeon 167).
  const int64_t most = std::clamp<int64_t>(budget / slice_bytes, 1, kMaxGroupPanels);
  const int64_t group = std::clamp<int64_t>(full / (2 * int64_t(pool.size())), 1, most);
  const int64_t groups = ceil_div(full, group);
  // The threads split the rows (one part of whole row blocks, at least 48 rows, per thread), each passing
  // its part by every group: measured on an Intel Xeon (family 6 model 167, 2 threads) against splitting the
  // groups, 1024 x 1024 at B = 1024 1.10-1.18x and at B = 256 1.02-1.35x, 4096 x 4096 the same; and a narrow
  // layer (512 -> 32: one group) keeps every thread busy. Rows are independent: the split changes no bit.
  const int64_t parts = std::clamp<int64_t>(pool.size(), 1, std::max<int64_t>(1, M / 48));
  const int64_t part_rows = ceil_div(ceil_div(M, parts), 12) * 12;
  const bool fused = opt.order.kind == OrderKind::seq;
  pool.parallel_for(groups * parts, [&](int, int64_t t0, int64_t t1) {
    for (int64_t kb = 0; kb < w.K; kb += kOutputKBlock)
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t p = t % groups * group, r0 = t / groups * part_rows;
        if (r0 >= M) continue;
        const OutputBlock b{x + r0 * ldx, ldx, std::min(part_rows, M - r0), w.panel(p), w.K * kPanelWidth,
                            int(std::min(group, full - p)), w.panel_bias(p), kb, std::min(w.K, kb + kOutputKBlock),
                            kb == 0, kb + kOutputKBlock >= w.K, fused, y + r0 * ldy + p * kPanelWidth, ldy,
                            opt.epilogue};
        kernels.run_output_block(b);
      }
  }, 1);
  if (full == w.panels) return;
  const int64_t tile_rows = tile_rows_for(w.K);
  pool.parallel_for(ceil_div(M, tile_rows), [&](int, int64_t begin, int64_t end) {
    for (int64_t rt = begin; rt < end; ++rt)
      run_task(x, ldx, M, w, y, ldy, tile_rows, rt, full, nullptr, opt.order, kernels, opt.epilogue);
  }, 1);
}

}  // namespace

void linear_forward(const float* x, int64_t ldx, int64_t M, const PackedLinear& w, float* y, int64_t ldy,
                    const GemmWorkspace& ws, const GemmOptions& opt) {
  const GemmTuning tuning = gemm_tuning();
  if ((opt.order.kind == OrderKind::seq || opt.order.kind == OrderKind::seq_nofma) && M >= kKOuterFromRows &&
      w.N >= kPanelWidth) {
    return linear_forward_k_outer(x, ldx, M, w, y, ldy, opt, tuning);
  }
  // Rows per tile: at most what the L2 holds (tile_rows_for), spread evenly over the row tiles that takes
  // (a multiple of 12, the row block): 64 rows in tiles of at most 48 are two of 36 and 28, not 48 and 16,
  // so that workers that take one row tile each get like amounts of work.
  const int64_t max_rows = tile_rows_for(w.K);
  const int64_t tile_rows = std::min(max_rows, ceil_div(ceil_div(M, ceil_div(M, max_rows)), 12) * 12);
  const int64_t row_tiles = ceil_div(M, tile_rows);
  const IsaKernels& kernels = kernels_for(opt.simd);
  const PoolView pool = shared_pool(opt.threads);
  const int64_t scratch_per_worker = lanes_floats(opt.order, 1);
  // Task = (row tile, panel). Row-tile-major: a worker keeps its tile of A (tile_rows_for) in L2 while the
  // packed panels stream past it: A is read once, the weights once per row tile. Panel-major: a worker
  // keeps one panel (K x 32) while the row tiles stream past it: the weights are read once, A once per
  // panel. Per row of A, the first reads K x N / tile_rows weights, the second K x N / 32 inputs: panel-
  // major reads less when a tile has fewer rows than a panel has columns (long K), and whichever the
  // caches, the counts decide (unless the tuning, measured on this machine, says otherwise). The order of
  // independent tiles never changes a bit.
  const bool panel_major = row_tiles > 1 && (tuning.traversal == Traversal::panels ||
                                             (tuning.traversal == Traversal::by_reads && max_rows < kPanelWidth));
  // Below this much work per worker, waking another thread costs more than it saves (tuned).
  const int64_t min_flops_per_worker = int64_t(1) << tuning.min_work_log2;
  pool.parallel_for(row_tiles * w.panels, [&](int worker, int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t rt = panel_major ? task % row_tiles : task / w.panels;
      const int64_t p = panel_major ? task / row_tiles : task % w.panels;
      run_task(x, ldx, M, w, y, ldy, tile_rows, rt, p, ws.lanes ? ws.lanes + worker * scratch_per_worker : nullptr,
               opt.order, kernels, opt.epilogue);
    }
  }, ceil_div(min_flops_per_worker, 2 * std::min(M, tile_rows) * w.K * kPanelWidth));
}

void linear_forward_here(const float* x, int64_t ldx, int64_t M, const PackedLinear& w, float* y, int64_t ldy,
                         float* scratch, Order order, SimdLevel simd) {
  const int64_t tile_rows = tile_rows_for(w.K);
  const IsaKernels& kernels = kernels_for(simd);
  for (int64_t rt = 0; rt * tile_rows < M; ++rt)
    for (int64_t p = 0; p < w.panels; ++p) run_task(x, ldx, M, w, y, ldy, tile_rows, rt, p, scratch, order, kernels);
}

}  // namespace batchcore
