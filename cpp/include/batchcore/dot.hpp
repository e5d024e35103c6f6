// One dot product y = dot(a, b) + c in a named order: the scalar definition of every order, written
// operation by operation as docs/orders.md states it. The CPU GEMM kernels are vectorised re-statements of
// these loops and are tested bit for bit against them; CUDA kernels call these functions directly.
// b is read with a stride so that packed weight panels can be used without copies.
#pragma once
#include <cmath>

#include "batchcore/exact.hpp"
#include "batchcore/order.hpp"
#include "batchcore/precision.hpp"

#if defined(__CUDACC__)
#define BC_HD_RECURSIVE __host__ __device__
#else
#define BC_HD_RECURSIVE inline
#endif

namespace batchcore {

struct DotInput {
  const float* a;
  const float* b;
  int64_t b_stride;
  int64_t K;
  Precision precision;
  BC_HD float av(int64_t k) const { return round_to(a[k], precision); }
  BC_HD float bv(int64_t k) const { return round_to(b[k * b_stride], precision); }
};

BC_HD float accumulate_seq(const DotInput& in, int64_t k0, int64_t k1) {
  float s = 0.0f;
  for (int64_t k = k0; k < k1; ++k) s = fmaf(in.av(k), in.bv(k), s);
  return s;
}

BC_HD float accumulate_seq_nofma(const DotInput& in) {
  float s = 0.0f;
  for (int64_t k = 0; k < in.K; ++k) {
    const float p = in.av(k) * in.bv(k);
    s = s + p;
  }
  return s;
}

BC_HD float accumulate_chunks(const DotInput& in, int64_t C) {
  float total = accumulate_seq(in, 0, C < in.K ? C : in.K);
  for (int64_t k0 = C; k0 < in.K; k0 += C) {
    const int64_t k1 = k0 + C < in.K ? k0 + C : in.K;
    total = total + accumulate_seq(in, k0, k1);
  }
  return total;
}

BC_HD float accumulate_lanes(const DotInput& in, int64_t W) {
  float s[kMaxLanes];
  for (int64_t l = 0; l < W; ++l) s[l] = 0.0f;
  for (int64_t k = 0; k < in.K; ++k) s[k & (W - 1)] = fmaf(in.av(k), in.bv(k), s[k & (W - 1)]);
  for (int64_t h = W / 2; h >= 1; h /= 2)
    for (int64_t l = 0; l < h; ++l) s[l] = s[l] + s[l + h];
  return s[0];
}

BC_HD_RECURSIVE float accumulate_pairwise(const DotInput& in, int64_t lo, int64_t hi) {
  if (hi - lo == 1) return in.av(lo) * in.bv(lo);
  const int64_t m = lo + (hi - lo) / 2;
  const float left = accumulate_pairwise(in, lo, m);
  const float right = accumulate_pairwise(in, m, hi);
  return left + right;
}

// Neumaier's variant of Kahan summation over the rounded products.
BC_HD float accumulate_kahan(const DotInput& in) {
  float s = 0.0f, comp = 0.0f;
  for (int64_t k = 0; k < in.K; ++k) {
    const float p = in.av(k) * in.bv(k);
    const float t = s + p;
    if (fabsf(s) >= fabsf(p)) comp = comp + ((s - t) + p);
    else comp = comp + ((p - t) + s);
    s = t;
  }
  return s + comp;
}

// Ogita-Rump-Oishi Dot2: error-free products (fma) and sums, errors summed in float32.
BC_HD float accumulate_dot2(const DotInput& in) {
  float x = in.av(0), y = in.bv(0);
  float p = x * y;
  float s = fmaf(x, y, -p);
  for (int64_t k = 1; k < in.K; ++k) {
    x = in.av(k);
    y = in.bv(k);
    const float h = x * y;
    const float r = fmaf(x, y, -h);
    const float sum = p + h;
    const float z = sum - p;
    const float q = (p - (sum - z)) + (h - z);
    p = sum;
    s = s + (q + r);
  }
  return p + s;
}

BC_HD double accumulate_f64(const DotInput& in) {
  double s = 0.0;
  for (int64_t k = 0; k < in.K; ++k) s = s + double(in.av(k)) * double(in.bv(k));
  return s;
}

// y = dot(a, b) + c in order `o`, inputs first rounded to precision `p`. K >= 1.
BC_HD float dot_ordered(const float* a, const float* b, int64_t b_stride, int64_t K, float c, Order o,
                        Precision p) {
  const DotInput in{a, b, b_stride, K, p};
  switch (o.kind) {
    case OrderKind::seq: return accumulate_seq(in, 0, K) + c;
    case OrderKind::seq_nofma: return accumulate_seq_nofma(in) + c;
    case OrderKind::chunk:
    case OrderKind::splitk: return accumulate_chunks(in, chunk_length(o, K)) + c;
    case OrderKind::lanes: return accumulate_lanes(in, o.param) + c;
    case OrderKind::pairwise: return accumulate_pairwise(in, 0, K) + c;
    case OrderKind::kahan: return accumulate_kahan(in) + c;
    case OrderKind::dot2: return accumulate_dot2(in) + c;
    case OrderKind::f64: return float(accumulate_f64(in) + double(c));
    case OrderKind::exact: {
      LongAccumulator acc;
      for (int64_t k = 0; k < K; ++k) acc.add_product(in.av(k), in.bv(k));
      acc.add(c);
      return acc.round_to_float();
    }
  }
  return NAN;
}

}  // namespace batchcore

namespace batchcore {
// The checked host entry point: K >= 1, finite inputs (throws ShapeError / NonFiniteError otherwise).
float checked_dot(const float* a, const float* b, int64_t K, float c, Order o, Precision p);
}  // namespace batchcore
