// GELU and SiLU on blocks of N vectors of 16 lanes with AVX-512 intrinsics: the same operations, in the same order, as
// gelu_lane and silu_lane of row_kernels.inl (and so as bc_gelu and bc_silu of math_fixed.hpp), with one
// difference of form: bc_exp's scaling by 2^k, (p * 2^e1) * 2^e2, is one vscalefps. That is the same value:
// p = exp(r) lies in [0.70, 1.42], so for k in [-126, 127] both are p * 2^k exactly; for k = 128 both round
// p * 2^128 once (to infinity or not); for k < -126 the definition's first product is exact and the
// second rounds p * 2^k once into the subnormals, as vscalefps does. The auto-vectorised form spends about
// a dozen integer and blend operations per exponential on it; GELU takes two exponentials per element.
// tests/test_layers.py compares every instruction set with the definition bit for bit on adversarial inputs.
// Included by kernels_avx512.cpp alone (with microkernel_avx512.hpp, the only files with intrinsics).
#pragma once
#include <immintrin.h>

namespace batchcore {
namespace isa_avx512 {

inline __m512 splat(float v) { return _mm512_set1_ps(v); }
inline __m512 negate(__m512 v) { return _mm512_xor_ps(v, splat(-0.0f)); }  // -v, as the scalar code's unary minus

// Each function below works on N independent vectors at once, every step applied to all N before the next
// (the loops over N unrolled): the N dependency chains interleave in the instruction stream, which keeps
// the vector units busy through the long serial polynomials where one vector at a time would leave them
// waiting. Lane by lane the operations are those of the definition, whatever N.
#define BC_EACH(i) _Pragma("GCC unroll 8") for (int i = 0; i < N; ++i)

// bc_exp (exp_lane), in place.
template <int N>
inline void exp_n(__m512 (&x)[N]) {
  __mmask16 nan[N];
  __m512 n[N], r[N], p[N];
  BC_EACH(i) {
    nan[i] = _mm512_cmp_ps_mask(x[i], x[i], _CMP_UNORD_Q);
    // min/max give the definition's clamp on numbers; a NaN lane computes on -104 and is replaced below.
    const __m512 xs = _mm512_min_ps(_mm512_max_ps(x[i], splat(-104.0f)), splat(89.0f));
    n[i] = _mm512_roundscale_ps(_mm512_mul_ps(xs, splat(1.44269502162933349609f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r[i] = _mm512_fnmadd_ps(n[i], splat(0.693145751953125f), xs);  // fma(-n, c, xs): negation is exact
  }
  BC_EACH(i) r[i] = _mm512_fnmadd_ps(n[i], splat(1.428606765330187045e-06f), r[i]);
  const float c[] = {2.4801587301587302e-05f, 1.9841269841269841e-04f, 1.3888888888888889e-03f,
                     8.3333333333333333e-03f, 4.1666666666666667e-02f, 1.6666666666666667e-01f,
                     0.5f, 1.0f, 1.0f};
  BC_EACH(i) p[i] = splat(c[0]);
#pragma GCC unroll 16
  for (int k = 1; k < 9; ++k) BC_EACH(i) p[i] = _mm512_fmadd_ps(p[i], r[i], splat(c[k]));
  BC_EACH(i) {
    __m512 y = _mm512_scalef_ps(p[i], n[i]);
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x[i], splat(-103.97208404541016f), _CMP_LT_OQ), y,
                             _mm512_setzero_ps());
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x[i], splat(88.72283935546875f), _CMP_GT_OQ), y,
                             splat(__builtin_inff()));
    x[i] = _mm512_mask_blend_ps(nan[i], y, x[i]);
  }
}

// bc_gelu (gelu_lane with erfc_nonnegative_lane), in place.
template <int N>
inline void gelu_n(__m512 (&x)[N]) {
  __m512 w[N], half_lo[N], t[N], poly[N], e[N];
  BC_EACH(i) {
    w[i] = _mm512_mul_ps(x[i], splat(-0.70710678118654752f));
    const __m512 x2 = _mm512_mul_ps(x[i], x[i]);
    e[i] = negate(_mm512_mul_ps(splat(0.5f), x2));  // -half_hi
    half_lo[i] = _mm512_mul_ps(splat(0.5f), _mm512_fmsub_ps(x[i], x[i], x2));
    t[i] = _mm512_div_ps(splat(1.0f), _mm512_fmadd_ps(splat(0.5f), _mm512_abs_ps(w[i]), splat(1.0f)));
  }
  const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                     -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
  BC_EACH(i) poly[i] = splat(c[0]);
#pragma GCC unroll 16
  for (int k = 1; k < 10; ++k) BC_EACH(i) poly[i] = _mm512_fmadd_ps(poly[i], t[i], splat(c[k]));
  exp_n(e);
  exp_n(poly);
  BC_EACH(i) {
    __m512 f = _mm512_mul_ps(e[i], poly[i]);
    f = _mm512_fnmadd_ps(half_lo[i], f, f);  // fma(-lo, e, e)
    f = _mm512_mul_ps(t[i], f);
    const __mmask16 upper = _mm512_cmp_ps_mask(w[i], _mm512_setzero_ps(), _CMP_GE_OQ);
    const __m512 factor = _mm512_mask_blend_ps(upper, _mm512_sub_ps(splat(2.0f), f), f);
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(splat(0.5f), x[i]), factor);
    const __m512 limit =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x[i], _mm512_setzero_ps(), _CMP_GT_OQ), splat(-0.0f), x[i]);
    const __m512 big =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(_mm512_abs_ps(x[i]), splat(1e19f), _CMP_GT_OQ), y, limit);
    x[i] = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x[i], x[i], _CMP_UNORD_Q), big, x[i]);
  }
}

// bc_silu (silu_lane), in place.
template <int N>
inline void silu_n(__m512 (&x)[N]) {
  __m512 e[N];
  BC_EACH(i) e[i] = negate(x[i]);
  exp_n(e);
  BC_EACH(i) {
    const __m512 q = _mm512_div_ps(x[i], _mm512_add_ps(splat(1.0f), e[i]));
    const __m512 y =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x[i], splat(-__builtin_inff()), _CMP_EQ_OQ), q, splat(-0.0f));
    x[i] = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x[i], x[i], _CMP_UNORD_Q), y, x[i]);
  }
}

#undef BC_EACH

}  // namespace isa_avx512
}  // namespace batchcore
