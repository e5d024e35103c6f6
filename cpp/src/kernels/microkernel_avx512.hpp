// The AVX-512 micro-kernel of the seq-family orders: R rows x 32 columns held in 2R zmm accumulators
// (R <= 12: 24 accumulators, 2 weight vectors, 1 broadcast, of 32 registers); with V = 1 only the
// first 16 columns (a last panel with <= 16 valid columns: half the work). Per k it loads the two
// weight vectors of the packed panel once and broadcasts each row's a_k (rows lda floats apart); the
// accumulators' rows are ldacc floats apart.
// Every lane does exactly acc = fma(a_k, w_k, acc) (or acc + a_k*w_k) for k = k0, k0+step, ... < k1,
// in that order, as dot.hpp defines (step 1: seq; step W: one lane of lanes:W).
// The only file with intrinsics; included by kernels_avx512.cpp alone.
#pragma once
#include <immintrin.h>

#include <cstdint>

// GCC 12 flags _mm512_cvtps_pd's deliberately undefined pass-through operand.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace batchcore {
namespace isa_avx512 {

// Panel rows asked for ahead of use (into L2): measured on an Intel Xeon (family 6 model 167), a single
// row streaming a 4096 x 4096 layer's panels read 17 GB/s without and 27 with it on one core (37 -> 47 on
// two), and 96-row tiles gained 7-9 % at K = 4096; at K = 1024 it changed nothing. A prefetch past the
// panel's end is harmless (it never faults) and never changes a bit.
constexpr int64_t kPanelPrefetchRows = 64;

template <int R, bool Fused, int V>
inline void accumulate_rows_avx512(const float* a, int64_t lda, const float* panel, int64_t k0, int64_t k1,
                                   int64_t step, float* acc, int64_t ldacc) {
  static_assert(R >= 1 && R <= 12, "24 accumulators at most");
  static_assert(V == 1 || V == 2, "V: the panel's first 16 columns only (a narrow last panel), or all 32");
  __m512 lo[R], hi[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    lo[r] = _mm512_loadu_ps(acc + r * ldacc);
    if constexpr (V == 2) hi[r] = _mm512_loadu_ps(acc + r * ldacc + 16);
  }
  for (int64_t k = k0; k < k1; k += step) {
    _mm_prefetch(reinterpret_cast<const char*>(panel + (k + kPanelPrefetchRows) * 32), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(panel + (k + kPanelPrefetchRows) * 32 + 16), _MM_HINT_T1);
    const __m512 w_lo = _mm512_load_ps(panel + k * 32);  // panels are 64-byte aligned
    const __m512 w_hi = V == 2 ? _mm512_load_ps(panel + k * 32 + 16) : w_lo;
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + k]);
      if constexpr (Fused) {
        lo[r] = _mm512_fmadd_ps(x, w_lo, lo[r]);
        if constexpr (V == 2) hi[r] = _mm512_fmadd_ps(x, w_hi, hi[r]);
      } else {
        lo[r] = _mm512_add_ps(lo[r], _mm512_mul_ps(x, w_lo));
        if constexpr (V == 2) hi[r] = _mm512_add_ps(hi[r], _mm512_mul_ps(x, w_hi));
      }
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(acc + r * ldacc, lo[r]);
    if constexpr (V == 2) _mm512_storeu_ps(acc + r * ldacc + 16, hi[r]);
  }
}

// The f64 order on R rows x 16 V columns: acc[r][j] (doubles, row stride 32) continues
// s = fma(double(a_k), double(w_k), s) for k in [0, K) -- one rounding after the exact product, the same
// bits as dot.hpp's s + double(a)*double(b) since a float product is exact in double. The float weights
// and a_k are widened in registers (vcvtps2pd), the rows share each widened weight vector.
template <int R, int V>
inline void accumulate_rows_f64_avx512(const float* a, int64_t lda, const float* panel, int64_t K, double* acc) {
  static_assert(R >= 1 && R <= 6, "24 accumulators at most");
  constexpr int Q = 2 * V;  // 8-double vectors per row
  __m512d s[R][Q];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) s[r][q] = _mm512_loadu_pd(acc + r * 32 + 8 * q);
  for (int64_t k = 0; k < K; ++k) {
    __m512d w[Q];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) w[q] = _mm512_cvtps_pd(_mm256_load_ps(panel + k * 32 + 8 * q));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512d x = _mm512_cvtps_pd(_mm256_broadcast_ss(a + r * lda + k));
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) s[r][q] = _mm512_fmadd_pd(x, w[q], s[r][q]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) _mm512_storeu_pd(acc + r * 32 + 8 * q, s[r][q]);
}

}  // namespace isa_avx512
}  // namespace batchcore
