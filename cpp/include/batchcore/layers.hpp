// Row-wise non-linear layers with a fixed operation sequence (BC_HD): the same bits on CPU and GPU.
// Sums over a row run left to right; no fma is used unless written. An activation returns a NaN argument
// itself (payload and all) and makes no NaN of a number.
#pragma once
#include <cmath>
#include <cstdint>

#include "batchcore/math_fixed.hpp"

namespace batchcore {

enum class Activation : int {
  relu = 0, gelu, silu, tanh, gelu_tanh, sigmoid, relu6, hardsigmoid, hardswish, mish, leaky_relu, elu
};

// True for the activations that take a parameter (`alpha` below): leaky_relu's negative slope, elu's alpha.
BC_HD bool has_parameter(Activation a) { return a == Activation::leaky_relu || a == Activation::elu; }

// min(max(x + 3, 0), 6): hardsigmoid's and hardswish's clamp (NaN handled by the callers).
BC_HD float relu6_of_x_plus_3(float x) {
  const float s = x + 3.0f;
  return s > 0.0f ? (s < 6.0f ? s : 6.0f) : 0.0f;
}

BC_HD float activate(float x, Activation a, float alpha = 0.0f) {
  switch (a) {
    case Activation::relu: return x > 0.0f || x != x ? x : 0.0f;  // NaN stays NaN; -0 becomes +0
    case Activation::gelu: return bc_gelu(x);
    case Activation::silu: return bc_silu(x);
    case Activation::tanh: return bc_tanh(x);
    case Activation::gelu_tanh: return bc_gelu_tanh(x);
    case Activation::sigmoid: return bc_sigmoid(x);
    case Activation::relu6: return x != x ? x : (x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f);  // -0 becomes +0
    case Activation::hardsigmoid: return x != x ? x : relu6_of_x_plus_3(x) / 6.0f;
    // torch's (x * min(max(x + 3, 0), 6)) / 6 between -3 and 3; the exact values outside, x and -0 (the
    // product would overflow past 5.6e37 and give NaN at -inf)
    case Activation::hardswish: return x != x || x >= 3.0f ? x : (x <= -3.0f ? -0.0f : (x * (x + 3.0f)) / 6.0f);
    case Activation::mish: return bc_mish(x);
    case Activation::leaky_relu: return x > 0.0f || x != x ? x : x * alpha;
    case Activation::elu: return x >= 0.0f || x != x ? x : alpha * bc_expm1(x);  // -0 stays -0
  }
  return NAN;
}

// Softmax of the n values x[0], x[stride], ..., x[(n - 1) stride], in place.
BC_HD void softmax_strided(float* x, int64_t n, int64_t stride) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i * stride] > m ? x[i * stride] : m;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i * stride] = bc_exp(x[i * stride] - m);
    sum = sum + x[i * stride];
  }
  for (int64_t i = 0; i < n; ++i) x[i * stride] = x[i * stride] / sum;
}

BC_HD void softmax_row(float* x, int64_t n) { softmax_strided(x, n, 1); }

// Log-softmax of n values `stride` apart, in place: m = the maximum, s = sum of exp(x_i - m) left to
// right, y_i = (x_i - m) - log s.
BC_HD void log_softmax_strided(float* x, int64_t n, int64_t stride) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i * stride] > m ? x[i * stride] : m;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum = sum + bc_exp(x[i * stride] - m);
  const float log_sum = bc_log(sum);
  for (int64_t i = 0; i < n; ++i) x[i * stride] = (x[i * stride] - m) - log_sum;
}

// Two-pass layer norm: mean, then the mean of squared deviations; (x - mean) / sqrt(var + eps) * g + b.
BC_HD void layer_norm_row(float* x, int64_t n, const float* gamma, const float* beta, float eps) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum = sum + x[i];
  const float mean = sum / float(n);
  float sq = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    const float d2 = d * d;
    sq = sq + d2;
  }
  const float denom = sqrtf(sq / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float normed = (x[i] - mean) / denom;
    const float scaled = normed * gamma[i];
    x[i] = scaled + beta[i];
  }
}

// Batch norm in eval mode folded to y = x * scale + shift (one multiply, one add).
BC_HD void affine_row(float* x, int64_t n, const float* scale, const float* shift) {
  for (int64_t i = 0; i < n; ++i) {
    const float scaled = x[i] * scale[i];
    x[i] = scaled + shift[i];
  }
}

}  // namespace batchcore
