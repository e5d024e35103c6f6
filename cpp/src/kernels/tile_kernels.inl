// Tile kernels, written once and compiled once per instruction set (kernels_<isa>.cpp). Each output
// column of a panel is one vector lane, and every lane performs exactly the scalar operations of its
// order (dot.hpp), in the same sequence: a loop over the 32 columns of a panel is element-wise, so the
// compiler may vectorise it but can never reorder an element's arithmetic (-ffp-contract=off, no
// fast-math). That is why every instruction set gives the same bits, and why cache blocking over K
// (accumulators loaded and stored between K blocks) never changes them.
//
// Only builtins are used here: no inline function shared with other translation units may be compiled
// with this file's instruction-set flags (the linker could pick that copy for a generic caller).
#include <type_traits>

#include "tile_kernels.hpp"

#ifndef BC_ISA_NS
#error "define BC_ISA_NS before including tile_kernels.inl"
#endif

namespace batchcore {
namespace BC_ISA_NS {
namespace {

constexpr int NR = 32;                   // = kPanelWidth (static_assert in gemm.cpp)
constexpr int MR = BC_ISA_ROW_BLOCK;     // rows that share one load of a weight vector
static_assert(MR <= kMaxRowBlock, "the lanes:W scratch is sized for kMaxRowBlock rows");
constexpr int64_t KC = 256;              // K block: a 256 x 32 panel slice (32 KiB) stays in L1 across row blocks
constexpr int64_t kPanelInL2 = 1024;     // lanes:W takes a panel of up to this many rows (128 KiB) in one K block

inline float fmaf_(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

typedef float vec16 __attribute__((vector_size(64)));
// The portable and AVX2 builds pass vec16 in memory, which GCC warns about; it never crosses a
// translation unit (everything here is in an anonymous namespace), so the ABI does not matter.
#pragma GCC diagnostic ignored "-Wpsabi"
inline vec16 load16(const float* p) {
  vec16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// a + b and a - b, bit for bit (a*1 and b*-1 are exact, then one rounding, as in an addition), issued to
// the fma units: the compensated orders are additions almost only, and on cores with two adders and two
// fma units (Zen 4/5) the adders are their bottleneck while the fma units idle. Without hardware fma
// (the scalar build) fmaf would be a library call, so there they are plain operations.
#if defined(__FMA__)
inline float add_on_fma_unit(float a, float b) { return fmaf_(a, 1.0f, b); }
inline float sub_on_fma_unit(float a, float b) { return fmaf_(b, -1.0f, a); }
#else
inline float add_on_fma_unit(float a, float b) { return a + b; }
inline float sub_on_fma_unit(float a, float b) { return a - b; }
#endif

// acc[r][j] (at acc + r*ldacc + j) continues the seq (or seq-nofma) chain of row r, column j < 16*V over
// k = k0, k0+step, ... < k1; row r of A starts at a + r*lda. V = 1 skips the panel's upper 16 columns (a narrow last panel). An
// instruction set may supply its own register-blocked micro-kernel with the same contract
// (BC_ISA_MICROKERNEL).
template <int R, bool Fused, int V>
void accumulate_rows_lanes(const float* a, int64_t lda, const float* panel, int64_t k0, int64_t k1, int64_t step,
                           float* acc, int64_t ldacc) {
  constexpr int cols = 16 * V;
  float c[R][cols];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < cols; ++j) c[r][j] = acc[r * ldacc + j];
  for (int64_t k = k0; k < k1; k += step) {
    const float* b = panel + k * NR;
    for (int r = 0; r < R; ++r) {
      const float x = a[r * lda + k];
      for (int j = 0; j < cols; ++j) {
        if (Fused) {
          c[r][j] = fmaf_(x, b[j], c[r][j]);
        } else {
          const float p = x * b[j];
          c[r][j] = c[r][j] + p;
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < cols; ++j) acc[r * ldacc + j] = c[r][j];
}

template <int R, bool Fused, int V>
inline void accumulate_rows(const float* a, int64_t lda, const float* panel, int64_t k0, int64_t k1, int64_t step,
                            float* acc, int64_t ldacc) {
#ifdef BC_ISA_MICROKERNEL
  BC_ISA_MICROKERNEL<R, Fused, V>(a, lda, panel, k0, k1, step, acc, ldacc);
#else
  accumulate_rows_lanes<R, Fused, V>(a, lda, panel, k0, k1, step, acc, ldacc);
#endif
}

// Compile-time constants passed as arguments (a row count, a vector count), so that the per-row state
// of a block can live in registers.
template <int N>
using Int = std::integral_constant<int, N>;

// Calls body(r0, Int<n>{}) with 1 <= n <= R.
template <int R, class Body>
void with_row_count(int n, int r0, Body& body) {
  if constexpr (R > 1) {
    if (n < R) return with_row_count<R - 1>(n, r0, body);
  }
  body(r0, Int<R>{});
}

// 16-column vectors a tile needs: a last panel with <= 16 valid columns computes only those.
inline int vectors_for(const GemmTile& t) { return t.cols <= 16 ? 1 : 2; }

// Calls body(r0, Int<R>{}, Int<V>{}) for consecutive blocks of R <= RB rows of the tile, V = vectors_for.
template <int RB, class Body>
void for_row_blocks(const GemmTile& t, Body body) {
  auto with_vectors = [&](auto vectors) {
    auto block = [&](int r0, auto rows) { body(r0, rows, vectors); };
    for (int r0 = 0; r0 < t.rows; r0 += RB) with_row_count<RB>(t.rows - r0 < RB ? t.rows - r0 : RB, r0, block);
  };
  if (vectors_for(t) == 1) with_vectors(Int<1>{});
  else with_vectors(Int<2>{});
}

// accumulate_rows for a run-time row count 1 <= n <= MR and a run-time column count: 16 * v columns.
template <bool Fused>
void accumulate_n_rows(int n, int v, const float* a, int64_t lda, const float* panel, int64_t k0, int64_t k1,
                       int64_t step, float* acc, int64_t ldacc = NR) {
  auto call = [&](int, auto rows) {
    constexpr int R = rows;
    if (v == 1) accumulate_rows<R, Fused, 1>(a, lda, panel, k0, k1, step, acc, ldacc);
    else accumulate_rows<R, Fused, 2>(a, lda, panel, k0, k1, step, acc, ldacc);
  };
  with_row_count<MR>(n, 0, call);
}

// Continues every row's chain over [k0, k1) in K blocks of KC. The accumulators go back to `acc` between
// blocks, so each element remains one chain in k order: blocking changes the speed, never the bits.
template <bool Fused>
void accumulate_tile(const GemmTile& t, int64_t k0, int64_t k1, float* acc) {
  for (int64_t kb = k0; kb < k1; kb += KC) {
    const int64_t ke = kb + KC < k1 ? kb + KC : k1;
    for (int r = 0; r < t.rows; r += MR) {
      const int n = t.rows - r < MR ? t.rows - r : MR;
      accumulate_n_rows<Fused>(n, vectors_for(t), t.a + r * t.lda, t.lda, t.panel, kb, ke, 1, acc + r * NR);
    }
  }
}

void store_row(const GemmTile& t, int r, const float* sum) {
  float* y = t.y + r * t.ldy;
  for (int j = 0; j < t.cols; ++j) y[j] = sum[j] + t.bias[j];
}

void tile_seq(const GemmTile& t, bool fused) {
  float acc[kTileRows * NR] = {};
  if (fused) accumulate_tile<true>(t, 0, t.K, acc);
  else accumulate_tile<false>(t, 0, t.K, acc);
  for (int r = 0; r < t.rows; ++r) store_row(t, r, acc + r * NR);
}

void tile_chunks(const GemmTile& t, int64_t C) {
  float total[kTileRows * NR], part[kTileRows * NR];
  const int n = t.rows * NR;
  for (int64_t k0 = 0; k0 < t.K; k0 += C) {
    const int64_t k1 = k0 + C < t.K ? k0 + C : t.K;
    for (int i = 0; i < n; ++i) part[i] = 0.0f;
    accumulate_tile<true>(t, k0, k1, part);
    if (k0 == 0) {
      for (int i = 0; i < n; ++i) total[i] = part[i];
    } else {
      for (int i = 0; i < n; ++i) total[i] = total[i] + part[i];
    }
  }
  for (int r = 0; r < t.rows; ++r) store_row(t, r, total + r * NR);
}

// Asks for panel rows [k0, k1) in L2 (a 128-byte row is two cache lines).
void prefetch_panel(const float* panel, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    __builtin_prefetch(panel + k * NR, 0, 2);
    __builtin_prefetch(panel + k * NR + 16, 0, 2);
  }
}

// lanes:W on a row block: lane l of every row and column is one seq chain over k = l, l+W, ...; the
// micro-kernel runs it with step W into its own slot of the scratch, then the slots are added as a tree.
// A panel that stays in L2 across the tile's row blocks is one K block (the longest lane passes, slots
// loaded and stored once); a longer one is blocked by KC so that the lanes share a block while it is in
// L1 (measured at W = 16: 1024 x 1024, 0.47 -> 0.68 x seq; 4096 x 4096, 0.30 -> 0.40 the other way
// round). Each chain still runs in k order, continued from its slot. A lane reads every W-th panel row,
// a stride the hardware prefetchers do not follow, so the first row block asks for the next K block.
void tile_lanes(const GemmTile& t, int64_t W) {
  float* s = t.scratch;  // W slots of MR x NR
  constexpr int slot = MR * NR;
  // One block, or a multiple of W (both powers of two), so that every lane's chain continues in k order.
  const int64_t block = t.K <= kPanelInL2 ? t.K : (W > KC ? W : KC);
  for (int r0 = 0; r0 < t.rows; r0 += MR) {
    const int n = t.rows - r0 < MR ? t.rows - r0 : MR;
    for (int64_t i = 0; i < W * slot; ++i) s[i] = 0.0f;
    if (r0 == 0) prefetch_panel(t.panel, 0, block < t.K ? block : t.K);
    for (int64_t kb = 0; kb < t.K; kb += block) {
      const int64_t ke = kb + block < t.K ? kb + block : t.K;
      if (r0 == 0 && ke < t.K) prefetch_panel(t.panel, ke, ke + block < t.K ? ke + block : t.K);
      for (int64_t l = 0; l < W; ++l)
        accumulate_n_rows<true>(n, vectors_for(t), t.a + r0 * t.lda, t.lda, t.panel, kb + l, ke, W, s + l * slot);
    }
    for (int64_t h = W / 2; h >= 1; h /= 2)
      for (int64_t l = 0; l < h; ++l)
        for (int i = 0; i < n * NR; ++i) s[l * slot + i] = s[l * slot + i] + s[(l + h) * slot + i];
    for (int r = 0; r < n; ++r) store_row(t, r0 + r, s + r * NR);
  }
}

// Row-block partial sums held in vectors of GCC's vector extension: element-wise arithmetic in the
// source order (zmm registers on AVX-512, ymm pairs on AVX2, xmm on the portable build), which the
// compiler keeps in registers across a compile-time tree, where float arrays would go through memory.
template <int R, int V>
struct RowVectors {
  vec16 v[R][V];
};

template <int R, int V>
[[gnu::always_inline]] inline RowVectors<R, V> operator+(const RowVectors<R, V>& x, const RowVectors<R, V>& y) {
  RowVectors<R, V> sum;
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int h = 0; h < V; ++h) sum.v[r][h] = x.v[r][h] + y.v[r][h];
  return sum;
}

// pairwise over k in [lo, lo + N) for R rows and 16 * V columns: the tree of dot.hpp (left half
// floor(N/2)) unrolled at compile time; leaves are the rounded products. Values, not references, so
// that nothing the tree writes may alias the inputs and every node stays in registers.
template <int N, int R, int V>
[[gnu::always_inline]] inline RowVectors<R, V> pairwise_fixed(const float* a, int64_t lda, const float* panel,
                                                              int64_t lo) {
  if constexpr (N == 1) {
    RowVectors<R, V> p;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int h = 0; h < V; ++h) p.v[r][h] = a[r * lda + lo] * load16(panel + lo * NR + 16 * h);
    return p;
  } else {
    const RowVectors<R, V> left = pairwise_fixed<N / 2, R, V>(a, lda, panel, lo);
    return left + pairwise_fixed<N - N / 2, R, V>(a, lda, panel, lo + N / 2);
  }
}

constexpr int64_t kPairwiseLeaf = 16;  // subtrees of up to this many products are unrolled

template <int R, int V, int N = 1>
RowVectors<R, V> pairwise_small(int64_t n, const float* a, int64_t lda, const float* panel, int64_t lo) {
  if constexpr (N < kPairwiseLeaf) {
    if (n != N) return pairwise_small<R, V, N + 1>(n, a, lda, panel, lo);
  }
  return pairwise_fixed<N, R, V>(a, lda, panel, lo);
}

template <int R, int V>
RowVectors<R, V> pairwise_rows(const float* a, int64_t lda, const float* panel, int64_t lo, int64_t hi) {
  if (hi - lo <= kPairwiseLeaf) return pairwise_small<R, V>(hi - lo, a, lda, panel, lo);
  const int64_t m = lo + (hi - lo) / 2;
  const RowVectors<R, V> left = pairwise_rows<R, V>(a, lda, panel, lo, m);
  return left + pairwise_rows<R, V>(a, lda, panel, m, hi);
}

template <int R, int V>
void store_rows(const GemmTile& t, int r0, const RowVectors<R, V>& sum) {
  for (int r = 0; r < R; ++r) {
    float row[NR];
    __builtin_memcpy(row, &sum.v[r][0], sizeof(sum.v[r]));
    store_row(t, r0 + r, row);
  }
}

void tile_pairwise(const GemmTile& t) {
  for_row_blocks<2>(t, [&](int r0, auto rows, auto vectors) {
    store_rows(t, r0, pairwise_rows<rows, vectors>(t.a + r0 * t.lda, t.lda, t.panel, 0, t.K));
  });
}

// The compensated orders on blocks of rows: the rows of a block share each load of the panel, and every
// lane runs dot.hpp's loop for its element, operation by operation.
// kahan: Neumaier's compensation term is the exact rounding error of s + p, which either branch of
// dot.hpp's comparison computes exactly (Fast2Sum with the larger operand first). Knuth's TwoSum computes
// the same exact error without a comparison, hence the same bits, in fewer operations. (Where s + p
// overflows, both forms end in NaN.)
template <int R, int V>
void kahan_rows(const float* a, int64_t lda, const float* panel, int64_t K, float* out) {
  float s[R][NR] = {}, comp[R][NR] = {};
  for (int64_t k = 0; k < K; ++k) {
    const float* b = panel + k * NR;
    for (int r = 0; r < R; ++r) {
      const float x = a[r * lda + k];
      for (int j = 0; j < 16 * V; ++j) {
        const float p = x * b[j];
        const float sum = s[r][j] + p;
        const float z = sub_on_fma_unit(sum, s[r][j]);
        const float err = sub_on_fma_unit(s[r][j], sum - z) + (p - z);
        comp[r][j] = add_on_fma_unit(comp[r][j], err);
        s[r][j] = sum;
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 16 * V; ++j) out[r * NR + j] = s[r][j] + comp[r][j];
}

void tile_kahan(const GemmTile& t) {
  for_row_blocks<4>(t, [&](int r0, auto rows, auto vectors) {
    float sum[rows * NR];
    kahan_rows<rows, vectors>(t.a + r0 * t.lda, t.lda, t.panel, t.K, sum);
    for (int r = 0; r < rows; ++r) store_row(t, r0 + r, sum + r * NR);
  });
}

template <int R, int V>
void dot2_rows(const float* a, int64_t lda, const float* panel, int64_t K, float* out) {
  float p[R][NR], s[R][NR];
  for (int r = 0; r < R; ++r) {
    const float x = a[r * lda];
    for (int j = 0; j < 16 * V; ++j) {
      p[r][j] = x * panel[j];
      s[r][j] = fmaf_(x, panel[j], -p[r][j]);
    }
  }
  for (int64_t k = 1; k < K; ++k) {
    const float* b = panel + k * NR;
    for (int r = 0; r < R; ++r) {
      const float x = a[r * lda + k];
      for (int j = 0; j < 16 * V; ++j) {
        const float h = x * b[j];
        const float err = fmaf_(x, b[j], -h);
        const float sum = p[r][j] + h;
        const float z = sub_on_fma_unit(sum, p[r][j]);
        const float q = sub_on_fma_unit(p[r][j], sum - z) + (h - z);
        p[r][j] = sum;
        s[r][j] = add_on_fma_unit(s[r][j], q + err);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 16 * V; ++j) out[r * NR + j] = p[r][j] + s[r][j];
}

void tile_dot2(const GemmTile& t) {
  for_row_blocks<3>(t, [&](int r0, auto rows, auto vectors) {
    float sum[rows * NR];
    dot2_rows<rows, vectors>(t.a + r0 * t.lda, t.lda, t.panel, t.K, sum);
    for (int r = 0; r < rows; ++r) store_row(t, r0 + r, sum + r * NR);
  });
}

// f64: s = s + double(a)*double(b) per dot.hpp. The product of two floats is exact in double (48 of 53
// bits), so fma(a, b, s), which rounds once after the exact product, gives the same bits in one operation.
// acc: R rows of 32 doubles, continued over k in [0, K) for the first 16 * V columns.
template <int R, int V>
void accumulate_rows_f64_lanes(const float* a, int64_t lda, const float* panel, int64_t K, double* acc) {
  for (int64_t k = 0; k < K; ++k) {
    const float* b = panel + k * NR;
    for (int r = 0; r < R; ++r) {
      const double x = a[r * lda + k];
      for (int j = 0; j < 16 * V; ++j) acc[r * NR + j] = __builtin_fma(x, double(b[j]), acc[r * NR + j]);
    }
  }
}

void tile_f64(const GemmTile& t) {
  for_row_blocks<BC_ISA_F64_ROWS>(t, [&](int r0, auto rows, auto vectors) {
    const float* a = t.a + r0 * t.lda;
    double s[rows * NR] = {};
#ifdef BC_ISA_F64_MICROKERNEL
    BC_ISA_F64_MICROKERNEL<rows, vectors>(a, t.lda, t.panel, t.K, s);
#else
    accumulate_rows_f64_lanes<rows, vectors>(a, t.lda, t.panel, t.K, s);
#endif
    for (int r = 0; r < rows; ++r) {
      float* y = t.y + (r0 + r) * t.ldy;
      for (int j = 0; j < t.cols; ++j) y[j] = float(s[r * NR + j] + double(t.bias[j]));
    }
  });
}

}  // namespace

// The bandwidth probe's loop, vectorised by the compiler at this file's instruction set (the baseline
// build's 128-bit vectors would cap the cache-resident triad below what the caches deliver).
void triad(float* a, const float* b, const float* c, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

// dst[i] = src[index[i]]: the convolution's im2col row of an output position whose window lies inside the
// input (a copy, so every level gives the same bits). With AVX-512 the compiler's vector gathers are
// faster than scalar loads (measured: the ResNet block's convolution 1.25x); with AVX2 they were slower.
void gather(float* dst, const float* src, const int32_t* index, int64_t n) {
#if defined(__AVX512F__)
  float* __restrict out = dst;
  const float* __restrict in = src;
  const int32_t* __restrict at = index;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) out[i] = in[at[i]];
#else
  for (int64_t i = 0; i < n; ++i) dst[i] = src[index[i]];
#endif
}

// The peak probe: 24 independent fma chains of 16 lanes each (768 flops per iteration), small enough to
// stay in registers, long enough to hide fma latency. Returns a sum so that nothing is optimised away.
float fma_probe(int64_t iterations) {
  float acc[24][16];
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 16; ++j) acc[i][j] = float(i + j);
  const float x = 0.99999994f, y = 1e-7f;
  for (int64_t n = 0; n < iterations; ++n) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) {
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[i][j] = fmaf_(acc[i][j], x, y);
    }
  }
  float sum = 0.0f;
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 16; ++j) sum = sum + acc[i][j];
  return sum;
}

// gemm.cpp's K-outer schedule (seq and seq-nofma): the chains live in y itself between K blocks, in
// BLIS's loop order: each row block's slice of A (MR x (k1 - k0)) stays in L1 while the block's panels pass.
// A float stored and loaded is the same float, so the bits are those of tile_seq.
template <bool Fused>
void seq_on_output(const OutputBlock& b) {
  const int64_t cols = int64_t(b.panels) * NR;
  for (int64_t r0 = 0; r0 < b.rows; r0 += MR) {
    const int n = b.rows - r0 < MR ? int(b.rows - r0) : MR;
    float* y = b.y + r0 * b.ldy;
    if (b.first)
      for (int r = 0; r < n; ++r)
        for (int64_t j = 0; j < cols; ++j) y[r * b.ldy + j] = 0.0f;
    for (int g = 0; g < b.panels; ++g)
      accumulate_n_rows<Fused>(n, 2, b.a + r0 * b.lda, b.lda, b.panel + g * b.panel_stride, b.k0, b.k1, 1,
                               y + g * NR, b.ldy);
    if (!b.last) continue;
    for (int r = 0; r < n; ++r)
      for (int64_t j = 0; j < cols; ++j) y[r * b.ldy + j] = y[r * b.ldy + j] + b.bias[j];
    if (b.epilogue) {
      RowLayer part = *b.epilogue;
      part.width = cols;
      row_layer(part, y, n, b.ldy);
    }
  }
}

void run_output_block(const OutputBlock& b) {
  if (b.fused) seq_on_output<true>(b);
  else seq_on_output<false>(b);
}

void run_tile(const GemmTile& t, Order o) {
  switch (o.kind) {
    case OrderKind::seq: return tile_seq(t, true);
    case OrderKind::seq_nofma: return tile_seq(t, false);
    case OrderKind::chunk: return tile_chunks(t, o.param);
    case OrderKind::splitk: return tile_chunks(t, (t.K + o.param - 1) / o.param);
    case OrderKind::lanes: return tile_lanes(t, o.param);
    case OrderKind::pairwise: return tile_pairwise(t);
    case OrderKind::kahan: return tile_kahan(t);
    case OrderKind::dot2: return tile_dot2(t);
    case OrderKind::f64: return tile_f64(t);
    case OrderKind::exact: break;  // handled by the driver
  }
}

}  // namespace BC_ISA_NS
}  // namespace batchcore
