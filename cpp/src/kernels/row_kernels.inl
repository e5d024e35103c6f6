// Row layers (activations, softmax, layer norm, batch norm), written once and compiled once per
// instruction set (kernels_<isa>.cpp), vectorised across the elements of a row.
//
// The normative definitions are the BC_HD functions of math_fixed.hpp and layers.hpp (the GPU runs those).
// Here each element runs the very same operations in the same order, written without branches so that
// the compiler can vectorise a loop over elements: every path of the definition is computed and the one
// the definition would have taken is selected. A lane never runs an operation the definition skips on a
// value that could change the bits of the one it keeps; a lane whose input the definition sends down an
// early return gets that return's value. tests/test_layers.py checks vector == definition bit for bit on
// every instruction set for adversarial inputs (signed zeros, subnormals, the branch boundaries, huge
// values, infinities, NaN).
//
// Sums over a row (softmax's denominator, layer norm's mean and variance) stay sequential loops, left to
// right as defined: without -ffast-math the compiler never reassociates them.
//
// As in tile_kernels.inl, only builtins are called (no inline function of a shared header may be compiled
// with this file's instruction-set flags).
#include <cstdint>
#include <cstring>

#include "tile_kernels.hpp"

#ifndef BC_ISA_NS
#error "define BC_ISA_NS before including row_kernels.inl"
#endif

// The branch-free lanes compute operations whose results the definition would not have used (an exp of a
// clamped argument, a quotient for a lane that keeps its input): with GCC's default -ftrapping-math it then
// declines to vectorise the AVX2 loops (blends of possibly-trapping operations). Assuming no trap handler
// changes no value (the bitwise tests hold it), so these functions alone are compiled without it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

namespace batchcore {
namespace BC_ISA_NS {
namespace {

inline float fma_lane(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline float pick(bool take_a, float a, float b) { return take_a ? a : b; }

// 2^e for an integer e in [-126, 127]: pow2i of math_fixed.hpp.
inline float pow2_exact(int32_t e) {
  const int32_t bits = (e + 127) * (int32_t(1) << 23);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// bc_exp.
inline float exp_lane(float x) {
  const bool nan = x != x;
  const float xs = nan ? 0.0f : (x > 89.0f ? 89.0f : (x < -104.0f ? -104.0f : x));  // = x on the main path
  const float n = __builtin_rintf(xs * 1.44269502162933349609f);
  float r = fma_lane(-n, 0.693145751953125f, xs);
  r = fma_lane(-n, 1.428606765330187045e-06f, r);
  const float c[] = {2.4801587301587302e-05f, 1.9841269841269841e-04f, 1.3888888888888889e-03f,
                     8.3333333333333333e-03f, 4.1666666666666667e-02f, 1.6666666666666667e-01f,
                     0.5f, 1.0f, 1.0f};
  float p = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < 9; ++i) p = fma_lane(p, r, c[i]);
  // The definition's three scalings as one, (p * 2^e1) * 2^e2: k > 127: (p * 2^127) * 2^(k-127);
  // k < -126: (p * 2^(k+100)) * 2^-100; else p * 2^k, here (p * 2^k) * 1, the same value (a product
  // with 1 is exact). The clamp of xs keeps k in [-150, 128], so every exponent is in range.
  const int32_t k = int32_t(n);
  const int32_t e1 = k > 127 ? 127 : (k < -126 ? k + 100 : k);
  const int32_t e2 = k > 127 ? k - 127 : (k < -126 ? -100 : 0);
  float y = (p * pow2_exact(e1)) * pow2_exact(e2);
  y = pick(x < -103.97208404541016f, 0.0f, y);
  y = pick(x > 88.72283935546875f, __builtin_inff(), y);
  return pick(nan, x, y);
}

// erfc_nonnegative.
inline float erfc_nonnegative_lane(float z, float z2_hi, float z2_lo) {
  const float t = 1.0f / fma_lane(0.5f, z, 1.0f);
  const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                     -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
  float poly = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < 10; ++i) poly = fma_lane(poly, t, c[i]);
  float e = exp_lane(-z2_hi) * exp_lane(poly);
  e = fma_lane(-z2_lo, e, e);
  return t * e;
}

// bc_gelu.
inline float gelu_lane(float x) {
  const float w = x * -0.70710678118654752f;
  const float x2 = x * x;
  const float half_hi = 0.5f * x2, half_lo = 0.5f * fma_lane(x, x, -x2);
  const float e = erfc_nonnegative_lane(__builtin_fabsf(w), half_hi, half_lo);
  const float y = (0.5f * x) * (w >= 0.0f ? e : 2.0f - e);
  const float limit = x > 0.0f ? x : -0.0f;
  return pick(x != x, x, pick(__builtin_fabsf(x) > 1e19f, limit, y));
}

// bc_tanh: both the series (|x| < 0.3) and the exp form are computed, the definition's one is kept.
inline float tanh_lane(float x) {
  const float z = __builtin_fabsf(x);
  const float x2 = x * x;
  const float c[] = {3.5921280365724810e-03f, -8.8632355299021966e-03f, 2.1869488536155203e-02f,
                     -5.3968253968253968e-02f, 1.3333333333333333e-01f, -3.3333333333333333e-01f};
  float p = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < 6; ++i) p = fma_lane(p, x2, c[i]);
  const float series = fma_lane(x * x2, p, x);
  const float r = 1.0f - 2.0f / (exp_lane(2.0f * z) + 1.0f);
  float y = x > 0.0f ? r : -r;
  y = pick(z > 9.1f, x > 0.0f ? 1.0f : -1.0f, y);
  y = pick(z < 0.3f, series, y);
  return pick(x != x, x, y);
}

// bc_gelu_tanh.
inline float gelu_tanh_lane(float x) {
  const float cube = (x * x) * x;
  const float inner = x + 0.044715f * cube;
  const float y = pick(x == -__builtin_inff(), -0.0f, x / (1.0f + exp_lane(-1.5957691216057308f * inner)));
  return pick(x != x, x, y);
}

// activate() of layers.hpp, per function (bc_silu for silu).
inline float relu_lane(float x) { return x > 0.0f || x != x ? x : 0.0f; }
inline float silu_lane(float x) {
  const float y = pick(x == -__builtin_inff(), -0.0f, x / (1.0f + exp_lane(-x)));
  return pick(x != x, x, y);
}

// bc_sigmoid; relu6 as activate() defines it (NaN kept, -0 to +0, clamped at 6).
inline float sigmoid_lane(float x) { return pick(x != x, x, 1.0f / (1.0f + exp_lane(-x))); }
inline float relu6_lane(float x) {
  const float clamped = x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f;
  return pick(x != x, x, clamped);
}

// hardsigmoid and hardswish as activate() defines them.
inline float relu6_of_x_plus_3_lane(float x) {
  const float s = x + 3.0f;
  return s > 0.0f ? (s < 6.0f ? s : 6.0f) : 0.0f;
}
inline float hardsigmoid_lane(float x) { return pick(x != x, x, relu6_of_x_plus_3_lane(x) / 6.0f); }
inline float hardswish_lane(float x) {
  const float y = pick(x <= -3.0f, -0.0f, (x * (x + 3.0f)) / 6.0f);
  return pick(x != x || x >= 3.0f, x, y);
}

// bc_mish: the exp of x clamped to 20 (the lanes past it keep x, whose exp the definition never takes).
inline float mish_lane(float x) {
  const float e = exp_lane(x > 20.0f ? 20.0f : x);
  const float n = e * (e + 2.0f);
  const float y = pick(x == -__builtin_inff(), -0.0f, x * (n / (n + 2.0f)));
  return pick(x != x || x > 20.0f, x, y);
}

// leaky_relu; elu with bc_expm1 (both of its paths computed, the definition's kept).
inline float leaky_relu_lane(float x, float slope) { return x > 0.0f || x != x ? x : x * slope; }
inline float expm1_lane(float x) {
  const float c[] = {2.7557319223985891e-06f, 2.4801587301587302e-05f, 1.9841269841269841e-04f,
                     1.3888888888888889e-03f, 8.3333333333333333e-03f, 4.1666666666666667e-02f,
                     1.6666666666666667e-01f, 0.5f};
  const float xs = __builtin_fabsf(x) < 0.35f ? x : 0.0f;  // the series' argument on its path
  float p = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < 8; ++i) p = fma_lane(p, xs, c[i]);
  const float series = fma_lane(xs * xs, p, xs);
  const float y = pick(__builtin_fabsf(x) < 0.35f, series, exp_lane(x) - 1.0f);
  return pick(x != x || x == 0.0f, x, y);
}
inline float elu_lane(float x, float alpha) { return x >= 0.0f || x != x ? x : alpha * expm1_lane(x); }

template <class F>
void map_row(float* x, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
}

// An instruction set's hand-vectorised form of a lane function (BC_ISA_ROW_VECTORS: same bits), on 4
// vectors of 16 lanes at a time (their chains interleaved: measured on an Intel Xeon, family 6 model 167,
// GELU 1.4-1.8x faster per element than one vector at a time; 8 gained nothing more, its state spills),
// then 2 (a GEMM epilogue's 32-column tile row), then 1, the lane function on the rest.
#ifdef BC_ISA_ROW_VECTORS

template <int N, class V>
void map_vectors(float* x, V v) {
  __m512 block[N];
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) block[i] = _mm512_loadu_ps(x + 16 * i);
  v(block);
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) _mm512_storeu_ps(x + 16 * i, block[i]);
}

template <class V, class F>
void map_row_vectors(float* x, int64_t n, V v, F f) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) map_vectors<4>(x + i, v);
  if (i + 32 <= n) {
    map_vectors<2>(x + i, v);
    i += 32;
  }
  if (i + 16 <= n) {
    map_vectors<1>(x + i, v);
    i += 16;
  }
  map_row(x + i, n - i, f);
}
#define BC_MAP_ROW(x, n, vector_form, lane_form) \
  map_row_vectors(x, n, [](auto& block) { vector_form(block); }, lane_form)
#else
#define BC_MAP_ROW(x, n, vector_form, lane_form) map_row(x, n, lane_form)
#endif

// softmax_row: the maximum and the sum as defined (sequential), the exponentials and quotients per element.
void softmax_row_lanes(float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  map_row(x, n, [m](float v) { return exp_lane(v - m); });
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum = sum + x[i];
  map_row(x, n, [sum](float v) { return v / sum; });
}

// layer_norm_row.
void layer_norm_row_lanes(float* x, int64_t n, const float* gamma, const float* beta, float eps) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum = sum + x[i];
  const float mean = sum / float(n);
  float sq = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    const float d2 = d * d;
    sq = sq + d2;
  }
  const float denom = __builtin_sqrtf(sq / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float normed = (x[i] - mean) / denom;
    const float scaled = normed * gamma[i];
    x[i] = scaled + beta[i];
  }
}

// affine_row (batch norm in eval mode).
void batch_norm_row_lanes(float* x, int64_t n, const float* scale, const float* shift) {
  for (int64_t i = 0; i < n; ++i) {
    const float scaled = x[i] * scale[i];
    x[i] = scaled + shift[i];
  }
}

}  // namespace

void row_layer(const RowLayer& l, float* rows, int64_t n, int64_t ld) {
  for (int64_t r = 0; r < n; ++r) {
    float* x = rows + r * ld;
    switch (l.function) {
      // Lambdas, not function pointers: each map_row is then compiled (and vectorised) around its function.
      case RowFunction::relu: map_row(x, l.width, [](float v) { return relu_lane(v); }); break;
      case RowFunction::gelu: BC_MAP_ROW(x, l.width, gelu_n, [](float v) { return gelu_lane(v); }); break;
      case RowFunction::silu: BC_MAP_ROW(x, l.width, silu_n, [](float v) { return silu_lane(v); }); break;
      case RowFunction::tanh: map_row(x, l.width, [](float v) { return tanh_lane(v); }); break;
      case RowFunction::gelu_tanh: map_row(x, l.width, [](float v) { return gelu_tanh_lane(v); }); break;
      case RowFunction::sigmoid: map_row(x, l.width, [](float v) { return sigmoid_lane(v); }); break;
      case RowFunction::relu6: map_row(x, l.width, [](float v) { return relu6_lane(v); }); break;
      case RowFunction::hardsigmoid: map_row(x, l.width, [](float v) { return hardsigmoid_lane(v); }); break;
      case RowFunction::hardswish: map_row(x, l.width, [](float v) { return hardswish_lane(v); }); break;
      case RowFunction::mish: map_row(x, l.width, [](float v) { return mish_lane(v); }); break;
      case RowFunction::leaky_relu: {
        const float slope = l.alpha;
        map_row(x, l.width, [slope](float v) { return leaky_relu_lane(v, slope); });
        break;
      }
      case RowFunction::elu: {
        const float alpha = l.alpha;
        map_row(x, l.width, [alpha](float v) { return elu_lane(v, alpha); });
        break;
      }
      case RowFunction::softmax: softmax_row_lanes(x, l.width); break;
      case RowFunction::layer_norm: layer_norm_row_lanes(x, l.width, l.p0, l.p1, l.eps); break;
      case RowFunction::batch_norm: batch_norm_row_lanes(x, l.width, l.p0, l.p1); break;
    }
  }
}

}  // namespace BC_ISA_NS
}  // namespace batchcore

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
