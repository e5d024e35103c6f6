// exp, erfc, erf and tanh as fixed operation sequences (explicit fma, no libm, no intrinsics), so the
// CPU and the GPU compute the same bits. Accuracy: a few float32 ULPs (tests/test_layers.py checks it
// against float64 libm); determinism, not the last ULP, is what these are for.
#pragma once
#include <cmath>

#include "batchcore/bc_hd.hpp"

namespace batchcore {

// 2^n for integer n in [-126, 127], exactly.
BC_HD float pow2i(int n) { return bits_float(uint32_t(n + 127) << 23); }

// c[0] x^(N-1) + ... + c[N-1] by Horner's rule, one explicit fma per step, highest degree first.
template <int N>
BC_HD float horner(float x, const float (&c)[N]) {
  float p = c[0];
  for (int i = 1; i < N; ++i) p = fmaf(p, x, c[i]);
  return p;
}

BC_HD float bc_exp(float x) {
  if (x != x) return x;
  if (x > 88.72283935546875f) return INFINITY;
  if (x < -103.97208404541016f) return 0.0f;
  const float n = rintf(x * 1.44269502162933349609f);
  // Cody-Waite reduction: r = x - n*ln2 with ln2 split in two; each step is one fma.
  float r = fmaf(-n, 0.693145751953125f, x);
  r = fmaf(-n, 1.428606765330187045e-06f, r);
  // Taylor polynomial of degree 8 for |r| <= ln2/2, Horner with explicit fma.
  // 1/8!, ..., 1/2, 1, 1
  const float c[] = {2.4801587301587302e-05f, 1.9841269841269841e-04f, 1.3888888888888889e-03f,
                     8.3333333333333333e-03f, 4.1666666666666667e-02f, 1.6666666666666667e-01f,
                     0.5f, 1.0f, 1.0f};
  float p = horner(r, c);
  const int k = int(n);
  if (k > 127) return (p * pow2i(127)) * pow2i(k - 127);
  if (k < -126) return (p * pow2i(k + 100)) * pow2i(-100);  // exact, then one rounding to subnormal
  return p * pow2i(k);
}

// erfc(z) for z >= 0 with relative error about 1e-7 (Chebyshev fit of Numerical Recipes, erfcc), given z
// and z^2 = z2_hi + z2_lo exactly, so that large arguments keep their accuracy: exp(-z^2) amplifies an
// error in z^2 by z^2.
BC_HD float erfc_nonnegative(float z, float z2_hi, float z2_lo) {
  const float t = 1.0f / fmaf(0.5f, z, 1.0f);
  const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                     -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
  float poly = horner(t, c);
  // exp(poly - z^2) as exp(-z2_hi) * exp(poly): the sum poly - z2_hi would round away bits.
  float e = bc_exp(-z2_hi) * bc_exp(poly);
  e = fmaf(-z2_lo, e, e);  // exp(-z2_lo) ~ 1 - z2_lo
  return t * e;
}

BC_HD float bc_erfc(float x) {
  if (x != x) return x;
  const float z = fabsf(x);
  const float z2 = z * z;
  const float ans = erfc_nonnegative(z, z2, fmaf(z, z, -z2));
  return x >= 0.0f ? ans : 2.0f - ans;
}

// GELU(x) = x * Phi(x) = 0.5 x erfc(-x / sqrt 2). The square (x/sqrt 2)^2 is taken as x*x/2, exactly,
// instead of squaring the rounded quotient. Past |x| = 1e19 (where x*x would overflow into inf - inf) the
// limits: x itself, and -0 (the values the formula gives from |x| = 15 up to there).
BC_HD float bc_gelu(float x) {
  if (x != x) return x;
  if (fabsf(x) > 1e19f) return x > 0.0f ? x : -0.0f;
  const float w = x * -0.70710678118654752f;
  const float x2 = x * x;
  const float half_hi = 0.5f * x2, half_lo = 0.5f * fmaf(x, x, -x2);  // exact halvings (no underflow here)
  const float e = erfc_nonnegative(fabsf(w), half_hi, half_lo);
  return (0.5f * x) * (w >= 0.0f ? e : 2.0f - e);
}

// SiLU(x) = x / (1 + exp(-x)). At x = -inf the quotient would be -inf / inf: the limit -0 instead (what
// every finite x below -89 gives).
BC_HD float bc_silu(float x) {
  if (x != x) return x;
  if (x == -INFINITY) return -0.0f;
  return x / (1.0f + bc_exp(-x));
}

// The logistic function 1 / (1 + exp(-x)): exp's argument exact, one addition, one division. At x = -inf
// exp gives +inf and the quotient +0 (the limit); NaN stays NaN.
BC_HD float bc_sigmoid(float x) {
  if (x != x) return x;
  return 1.0f / (1.0f + bc_exp(-x));
}

BC_HD float bc_erf(float x) {
  if (x != x) return x;
  const float z = fabsf(x);
  if (z < 0.5f) {
    // 2/sqrt(pi) * x * sum_n (-1)^n x^(2n) / (n! (2n+1)), up to n = 6.
    const float x2 = x * x;
    // 1/9360 ... 1: Taylor terms of erf / (2x/sqrt(pi))
    const float c[] = {1.0683760683760684e-04f, -7.5757575757575758e-04f, 4.6296296296296296e-03f,
                       -2.3809523809523810e-02f, 1.0000000000000000e-01f, -3.3333333333333333e-01f,
                       1.0f};
    float p = horner(x2, c);
    return (x * 1.1283791670955126f) * p;
  }
  const float r = 1.0f - bc_erfc(z);
  return x >= 0.0f ? r : -r;
}

BC_HD float bc_tanh(float x) {
  if (x != x) return x;
  const float z = fabsf(x);
  if (z < 0.3f) {
    const float x2 = x * x;
    // 21844/6081075 ... -1/3: Taylor terms of (tanh x - x) / x^3
    const float c[] = {3.5921280365724810e-03f, -8.8632355299021966e-03f, 2.1869488536155203e-02f,
                       -5.3968253968253968e-02f, 1.3333333333333333e-01f, -3.3333333333333333e-01f};
    float p = horner(x2, c);
    return fmaf(x * x2, p, x);
  }
  if (z > 9.1f) return x > 0.0f ? 1.0f : -1.0f;
  const float r = 1.0f - 2.0f / (bc_exp(2.0f * z) + 1.0f);
  return x > 0.0f ? r : -r;
}

// exp(x) - 1 without the cancellation near 0 (ELU's negative side): for |x| < 0.35 (ln2/2 ~ 0.347) the
// series x + x^2 (1/2! + x/3! + ... + x^7/9!), the square rounded once and one explicit fma; elsewhere
// exp(x) - 1. -0 for -0 (the series would give +0); NaN stays NaN.
BC_HD float bc_expm1(float x) {
  if (x != x || x == 0.0f) return x;
  if (fabsf(x) < 0.35f) {
    // 1/9! ... 1/2!: Taylor terms of (expm1 x - x) / x^2
    const float c[] = {2.7557319223985891e-06f, 2.4801587301587302e-05f, 1.9841269841269841e-04f,
                       1.3888888888888889e-03f, 8.3333333333333333e-03f, 4.1666666666666667e-02f,
                       1.6666666666666667e-01f, 0.5f};
    return fmaf(x * x, horner(x, c), x);
  }
  return bc_exp(x) - 1.0f;
}

// Mish(x) = x tanh(softplus(x)) = x n / (n + 2), n = e (e + 2), e = exp(x) (tanh(log(1 + e)) in closed
// form: one exp, no log, no cancellation as x goes to -inf, where Mish(x) ~ x e). Computed x * (n / (n + 2));
// past x = 20 the quotient is 1 in float32 and n would overflow further on: x itself. -0 at x = -inf.
BC_HD float bc_mish(float x) {
  if (x != x || x > 20.0f) return x;
  if (x == -INFINITY) return -0.0f;
  const float e = bc_exp(x);
  const float n = e * (e + 2.0f);
  return x * (n / (n + 2.0f));
}

// GELU's tanh form (torch's approximate='tanh'): 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
// computed as the equal x / (1 + exp(-2u)), which has no cancellation where tanh(u) nears -1 (the tanh
// form in float32 loses every digit there). The cube is (x x) x; at x = -inf the quotient would be
// -inf / inf: the limit -0 instead (what every x below about -10 gives).
BC_HD float bc_gelu_tanh(float x) {
  if (x != x) return x;
  if (x == -INFINITY) return -0.0f;
  const float cube = (x * x) * x;
  const float inner = x + 0.044715f * cube;
  return x / (1.0f + bc_exp(-1.5957691216057308f * inner));
}

// Natural logarithm (log-softmax's denominator): x = m 2^e with m in [sqrt(1/2), sqrt 2), m - 1 exact,
// s = (m - 1) / (m + 1), log m = 2 atanh s = 2s + 2s s^2 (1/3 + s^2/5 + ... + s^10/13), log x = e ln2 + log m
// with ln2 split in two (e * the high part is exact). NaN stays NaN; log 0 = -inf; negative x gives NaN.
BC_HD float bc_log(float x) {
  if (x != x) return x;
  if (x < 0.0f) return NAN;
  if (x == 0.0f) return -INFINITY;
  if (x == INFINITY) return x;
  int e = 0;
  if (x < 1.17549435e-38f) {  // subnormal: scale into the normal range first (exact)
    x = x * 8388608.0f;
    e = -23;
  }
  const uint32_t bits = float_bits(x);
  e += int((bits >> 23) & 0xffu) - 127;
  float m = bits_float((bits & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  if (m > 1.41421356f) {
    m = 0.5f * m;  // exact
    e += 1;
  }
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  const float c[] = {7.6923076923076923e-02f, 9.0909090909090909e-02f, 1.1111111111111111e-01f,
                     1.4285714285714286e-01f, 2.0000000000000000e-01f, 3.3333333333333333e-01f};
  const float p = horner(s2, c);
  const float t = 2.0f * s;
  const float log_m = fmaf(t * s2, p, t);
  const float fe = float(e);
  return fmaf(fe, 0.693145751953125f, fmaf(fe, 1.428606765330187045e-06f, log_m));
}

}  // namespace batchcore
