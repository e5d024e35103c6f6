// A long accumulator: the exact real value of sum_k a_k*b_k + c for float32 inputs, held as a
// fixed-point integer, then rounded once to float32 (to nearest, ties to even).
//
// Every float32 is m * 2^e with integer m < 2^24 and e >= -149, so a product is an integer below 2^48
// times 2^e with e >= -298, and the largest finite product is below 2^256. Bit i of the accumulator
// has weight 2^(i - kOffset); 20 digits of 32 bits cover 2^-300 .. 2^340, room for 2^30 terms of
// carries between normalisations. Digits are int64 so that carries are deferred (carry-save).
#pragma once
#include <cmath>

#include "batchcore/bc_hd.hpp"

namespace batchcore {

class LongAccumulator {
 public:
  static constexpr int kDigits = 20;
  static constexpr int kOffset = 300;

  BC_HD LongAccumulator() {
    for (int i = 0; i < kDigits; ++i) digit_[i] = 0;
  }

  BC_HD void add_product(float a, float b) {
    const uint32_t ua = float_bits(a), ub = float_bits(b);
    const bool negative = ((ua ^ ub) >> 31) != 0;
    if (!is_finite(ua) || !is_finite(ub)) {
      const bool zero = (ua & 0x7fffffffu) == 0 || (ub & 0x7fffffffu) == 0;
      if (is_nan(ua) || is_nan(ub) || zero) nan_ = true;  // NaN, or Inf * 0
      else if (negative) neg_inf_ = true;
      else pos_inf_ = true;
      return;
    }
    int ea = 0, eb = 0;
    const uint64_t m = uint64_t(mantissa(ua, &ea)) * mantissa(ub, &eb);
    add_scaled(m, ea + eb, negative);
  }

  BC_HD void add(float c) {
    const uint32_t u = float_bits(c);
    if (!is_finite(u)) {
      if (is_nan(u)) nan_ = true;
      else if (u >> 31) neg_inf_ = true;
      else pos_inf_ = true;
      return;
    }
    int e = 0;
    const uint32_t m = mantissa(u, &e);  // sets e: must run before e is read
    add_scaled(m, e, (u >> 31) != 0);
  }

  // The correctly rounded float32 of the accumulated value. An exact zero is +0.
  BC_HD float round_to_float() {
    if (nan_ || (pos_inf_ && neg_inf_)) return NAN;
    if (pos_inf_) return INFINITY;
    if (neg_inf_) return -INFINITY;
    normalize();
    const bool negative = digit_[kDigits - 1] < 0;
    if (negative) negate();
    int top = kDigits - 1;
    while (top >= 0 && digit_[top] == 0) --top;
    if (top < 0) return 0.0f;
    int msb = top * 32 + 31;
    while (!bit(msb)) --msb;
    // 24 significant bits, but never below 2^-149 (subnormals keep a fixed quantum).
    const int subnormal_lsb = kOffset - 149;
    const int lsb = (msb - 23 > subnormal_lsb) ? msb - 23 : subnormal_lsb;
    uint64_t m = 0;
    for (int i = msb; i >= lsb; --i) m = (m << 1) | uint64_t(bit(i));
    const bool round = bit(lsb - 1);
    const bool sticky = any_below(lsb - 1);
    if (round && (sticky || (m & 1))) ++m;
    // m <= 2^24 and the scale is a power of two: the double is exact and its conversion to float
    // either is exact or overflows to Inf, as RNE demands.
    const double magnitude = ldexp(double(m), lsb - kOffset);
    const float r = float(magnitude);
    return negative ? -r : r;
  }

 private:
  BC_HD static bool is_finite(uint32_t u) { return (u & 0x7f800000u) != 0x7f800000u; }
  BC_HD static bool is_nan(uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }

  // |x| = mantissa * 2^e for a finite float32.
  BC_HD static uint32_t mantissa(uint32_t u, int* e) {
    const uint32_t biased = (u >> 23) & 0xffu, frac = u & 0x7fffffu;
    if (biased == 0) {
      *e = -149;
      return frac;
    }
    *e = int(biased) - 150;
    return frac | 0x800000u;
  }

  BC_HD void add_scaled(uint64_t m, int e, bool negative) {
    if (m == 0) return;
    const int pos = e + kOffset;  // >= 2
    const int d = pos >> 5, sh = pos & 31;
    const uint64_t lo = (m << sh) & 0xffffffffu;
    const uint64_t mid = (sh == 0 ? m >> 32 : (m >> (32 - sh))) & 0xffffffffu;
    const uint64_t hi = sh == 0 ? 0 : (m >> (64 - sh));
    const int64_t s = negative ? -1 : 1;
    digit_[d] += s * int64_t(lo);
    digit_[d + 1] += s * int64_t(mid);
    digit_[d + 2] += s * int64_t(hi);
    if (++pending_ == (1u << 30)) normalize();
  }

  // Afterwards digits 0..kDigits-2 lie in [0, 2^32) and the top digit carries the sign.
  BC_HD void normalize() {
    for (int i = 0; i < kDigits - 1; ++i) {
      const int64_t carry = digit_[i] >> 32;  // arithmetic shift: floor division
      digit_[i] -= carry * (int64_t(1) << 32);
      digit_[i + 1] += carry;
    }
    pending_ = 0;
  }

  BC_HD void negate() {
    for (int i = 0; i < kDigits; ++i) digit_[i] = -digit_[i];
    normalize();
  }

  BC_HD bool bit(int i) const { return i >= 0 && ((digit_[i >> 5] >> (i & 31)) & 1) != 0; }

  BC_HD bool any_below(int i) const {  // any bit strictly below bit i set?
    if (i <= 0) return false;
    const int d = i >> 5;
    for (int j = 0; j < d; ++j)
      if (digit_[j] != 0) return true;
    const int64_t mask = (int64_t(1) << (i & 31)) - 1;
    return (digit_[d] & mask) != 0;
  }

  int64_t digit_[kDigits];
  uint32_t pending_ = 0;
  bool nan_ = false, pos_inf_ = false, neg_inf_ = false;
};

}  // namespace batchcore
