// Input precisions: each a_k, b_k is first rounded (to nearest, ties to even) to the format, and the
// order then runs in float32. tf32 and bf16 keep float32's exponent range; fp16 has its own.
#pragma once
#include <cmath>

#include "batchcore/bc_hd.hpp"

namespace batchcore {

enum class Precision : int { fp32 = 0, tf32 = 1, bf16 = 2, fp16 = 3 };

// Round a float32 to `drop` fewer fraction bits, ties to even. Works unchanged for subnormals (the
// quantum stays fixed there) and overflows to Inf through the carry into the exponent field.
BC_HD float round_fraction_bits(float x, int drop) {
  uint32_t u = float_bits(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;  // Inf and NaN pass through
  const uint32_t half = (1u << (drop - 1)) - 1u;
  const uint32_t lsb = (u >> drop) & 1u;
  u += half + lsb;
  u &= ~((1u << drop) - 1u);
  return bits_float(u);
}

BC_HD float round_to_fp16(float x) {
  const float ax = fabsf(x);
  if (!(ax < INFINITY)) return x;
  if (ax >= 65520.0f) return x > 0 ? INFINITY : -INFINITY;  // past the midpoint of 65504 and 2^16
  if (ax >= 6.103515625e-05f) return round_fraction_bits(x, 13);  // normal fp16: 10 fraction bits
  // Subnormal fp16: multiples of 2^-24. The scalings are exact (powers of two, no overflow).
  return rintf(x * 16777216.0f) * 5.9604644775390625e-08f;
}

BC_HD float round_to(float x, Precision p) {
  switch (p) {
    case Precision::tf32: return round_fraction_bits(x, 13);
    case Precision::bf16: return round_fraction_bits(x, 16);
    case Precision::fp16: return round_to_fp16(x);
    default: return x;
  }
}

}  // namespace batchcore
