// The AVX-512 micro-kernel of the seq and seq-nofma orders: R rows x 32 columns held in 2R zmm
// accumulators (R <= 12: 24 accumulators, 2 weight vectors, 1 broadcast, of 32 registers). Per k it
// loads the two weight vectors of the packed panel once and broadcasts each row's a_k from the packed A.
// Every lane does exactly acc = fma(a_k, w_k, acc) (or acc + a_k*w_k) in k order, as dot.hpp defines.
// The only file with intrinsics; included by kernels_avx512.cpp alone.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace batchcore {
namespace isa_avx512 {

template <int R, bool Fused>
inline void accumulate_rows_avx512(const float* a, const float* panel, int64_t k0, int64_t k1, float* acc) {
  static_assert(R >= 1 && R <= 12, "24 accumulators at most");
  __m512 lo[R], hi[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    lo[r] = _mm512_loadu_ps(acc + r * 32);
    hi[r] = _mm512_loadu_ps(acc + r * 32 + 16);
  }
  for (int64_t k = k0; k < k1; ++k) {
    const __m512 w_lo = _mm512_load_ps(panel + k * 32);  // panels are 64-byte aligned
    const __m512 w_hi = _mm512_load_ps(panel + k * 32 + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[k * R + r]);  // A packed k-major: one line holds all R rows
      if constexpr (Fused) {
        lo[r] = _mm512_fmadd_ps(x, w_lo, lo[r]);
        hi[r] = _mm512_fmadd_ps(x, w_hi, hi[r]);
      } else {
        lo[r] = _mm512_add_ps(lo[r], _mm512_mul_ps(x, w_lo));
        hi[r] = _mm512_add_ps(hi[r], _mm512_mul_ps(x, w_hi));
      }
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(acc + r * 32, lo[r]);
    _mm512_storeu_ps(acc + r * 32 + 16, hi[r]);
  }
}

}  // namespace isa_avx512
}  // namespace batchcore
