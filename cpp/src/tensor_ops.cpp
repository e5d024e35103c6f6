#include "batchcore/tensor_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "batchcore/errors.hpp"

#include "batchcore/layers.hpp"
#include "batchcore/thread_pool.hpp"

namespace batchcore {
namespace {

// Below this many output elements per worker a second thread costs more than it saves.
constexpr int64_t kMinElementsPerWorker = 16384;

int64_t grain_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, kMinElementsPerWorker / std::max<int64_t>(1, elements_per_item));
}

// value(plane, oh, ow) for every output position of every (sample, channel) plane, planes in parallel:
// the loop every 2-D pooling shares.
template <class Value>
void each_pooled_output(const float* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        int64_t work_per_plane, float* y, const PoolView& pool, const Value& value) {
  pool.parallel_for(planes, [&](int, int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) y[(q * OH + oh) * OW + ow] = value(x + q * H * W, oh, ow);
  }, grain_for(work_per_plane));
}

// Strides of `dims` (row-major) read through a broadcast to `out` (right-aligned; 0 where broadcast).
std::vector<int64_t> broadcast_strides(const Dims& dims, const Dims& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const size_t d = dims.size() - 1 - i, o = out.size() - 1 - i;
    strides[o] = dims[d] == 1 ? 0 : stride;
    stride *= dims[d];
  }
  return strides;
}

float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return NAN;
}

// The sum of the in-bounds taps of a window [h0, h1) x [w0, w1), left to right in row-major order from
// the first tap (no +0 term: a window of -0 sums to -0).
float window_sum(const float* plane, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
  float s = plane[h0 * W + w0];
  bool first = true;
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t w = w0; w < w1; ++w) {
      if (first) {
        first = false;
        continue;
      }
      s = s + plane[h * W + w];
    }
  return s;
}

}  // namespace

int64_t element_count(const Dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

int64_t Pool2dWindow::out_size(int64_t in, bool rows) const {
  const int64_t k = rows ? kernel_h : kernel_w, s = rows ? stride_h : stride_w, p = rows ? pad_h : pad_w;
  const int64_t d = rows ? dilation_h : dilation_w;
  const int64_t span = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  if (span < 0) return 0;
  int64_t out = span / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;  // the last window must start inside the input or left padding
  return out;
}

void max_pool2d(const float* x, int64_t samples, int64_t C, int64_t H, int64_t W, const Pool2dWindow& p, float* y,
                const PoolView& pool) {
  const int64_t OH = p.out_size(H, true), OW = p.out_size(W, false);
  each_pooled_output(x, samples * C, H, W, OH, OW, OH * OW * p.kernel_h * p.kernel_w, y, pool,
                     [&](const float* plane, int64_t oh, int64_t ow) {
    float best = -INFINITY;
    bool any = false;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
      const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
      if (ih < 0 || ih >= H) continue;
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
        const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
        if (iw < 0 || iw >= W) continue;
        const float v = plane[ih * W + iw];
        if (!any || v > best) best = v;  // the first of equal values stays (-0 before +0 stays -0)
        any = true;
      }
    }
    return best;
  });
}

void avg_pool2d(const float* x, int64_t samples, int64_t C, int64_t H, int64_t W, const Pool2dWindow& p, float* y,
                const PoolView& pool) {
  const int64_t OH = p.out_size(H, true), OW = p.out_size(W, false);
  each_pooled_output(x, samples * C, H, W, OH, OW, OH * OW * p.kernel_h * p.kernel_w, y, pool,
                     [&](const float* plane, int64_t oh, int64_t ow) {
    int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
    int64_t h1 = std::min(h0 + p.kernel_h, H + p.pad_h), w1 = std::min(w0 + p.kernel_w, W + p.pad_w);
    const int64_t padded_taps = (h1 - h0) * (w1 - w0);
    h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
    h1 = std::min(h1, H), w1 = std::min(w1, W);
    if (h0 >= h1 || w0 >= w1) return 0.0f;  // a window wholly in the padding (ceil_mode): torch gives +0
    const int64_t divisor = p.divisor_override ? p.divisor_override
                            : p.count_include_pad ? padded_taps
                                                  : (h1 - h0) * (w1 - w0);
    return window_sum(plane, W, h0, h1, w0, w1) / float(divisor);
  });
}

void adaptive_avg_pool2d(const float* x, int64_t samples, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         float* y, const PoolView& pool) {
  each_pooled_output(x, samples * C, H, W, OH, OW, H * W, y, pool, [&](const float* plane, int64_t oh, int64_t ow) {
    const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
    const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
    return window_sum(plane, W, h0, h1, w0, w1) / float((h1 - h0) * (w1 - w0));
  });
}

void channel_affine(const float* x, int64_t samples, int64_t C, int64_t inner, const float* scale, const float* shift,
                    float* y, const PoolView& pool) {
  pool.parallel_for(samples * C, [&](int, int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float s = scale[q % C], t = shift[q % C];
      const float* in = x + q * inner;
      float* out = y + q * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const float scaled = in[i] * s;
        out[i] = scaled + t;
      }
    }
  }, grain_for(inner));
}

void softmax_lines(float* x, int64_t samples, int64_t outer, int64_t n, int64_t inner, bool log,
                   const PoolView& pool) {
  pool.parallel_for(samples * outer * inner, [&](int, int64_t l0, int64_t l1) {
    for (int64_t l = l0; l < l1; ++l) {
      float* line = x + l / inner * n * inner + l % inner;
      if (log) log_softmax_strided(line, n, inner);
      else softmax_strided(line, n, inner);
    }
  }, grain_for(n));
}

void reduce_lines(const float* x, int64_t samples, int64_t outer, int64_t n, int64_t inner, bool mean, float* y,
                  const PoolView& pool) {
  pool.parallel_for(samples * outer, [&](int, int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* block = x + b * n * inner;
      float* out = y + b * inner;
      for (int64_t i = 0; i < inner; ++i) out[i] = block[i];
      for (int64_t j = 1; j < n; ++j)
        for (int64_t i = 0; i < inner; ++i) out[i] = out[i] + block[j * inner + i];
      if (mean)
        for (int64_t i = 0; i < inner; ++i) out[i] = out[i] / float(n);
    }
  }, grain_for(n * inner));
}

bool broadcast_dims(const Dims& a, const Dims& b, Dims& out) {
  const size_t rank = std::max(a.size(), b.size());
  out.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) return false;
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return true;
}

void broadcast_binary(const BroadcastOperand& a, const BroadcastOperand& b, BinaryOp op, const Dims& out_dims,
                      int64_t samples, float* out, const PoolView& pool) {
  const int64_t n = element_count(out_dims);
  const int64_t a_step = a.batched ? element_count(a.dims) : 0, b_step = b.batched ? element_count(b.dims) : 0;
  const bool same = a.dims == out_dims && b.dims == out_dims;
  const std::vector<int64_t> sa = broadcast_strides(a.dims, out_dims), sb = broadcast_strides(b.dims, out_dims);
  pool.parallel_for(samples, [&](int, int64_t m0, int64_t m1) {
    std::vector<int64_t> index(out_dims.size());
    for (int64_t m = m0; m < m1; ++m) {
      const float* pa = a.data + m * a_step;
      const float* pb = b.data + m * b_step;
      float* po = out + m * n;
      if (same) {
        for (int64_t i = 0; i < n; ++i) po[i] = apply(op, pa[i], pb[i]);
        continue;
      }
      std::fill(index.begin(), index.end(), 0);
      int64_t ia = 0, ib = 0;
      for (int64_t i = 0; i < n; ++i) {
        po[i] = apply(op, pa[ia], pb[ib]);
        for (size_t d = out_dims.size(); d-- > 0;) {  // the next index, as an odometer
          ia += sa[d], ib += sb[d];
          if (++index[d] < out_dims[d]) break;
          ia -= sa[d] * out_dims[d], ib -= sb[d] * out_dims[d];
          index[d] = 0;
        }
      }
    }
  }, grain_for(n));
}

void embedding(const float* ids, int64_t count, const float* table, int64_t rows, int64_t dim, float* y,
                const PoolView& pool) {
  for (int64_t i = 0; i < count; ++i)
    if (!(ids[i] >= 0.0f && ids[i] < float(rows)) || ids[i] != std::floor(ids[i]))
    {
      std::ostringstream what;
      what << "embedding: token id " << ids[i] << " (entry " << i << ") is not a row of the " << rows << "-row table";
      throw ShapeError(what.str());
    }
  pool.parallel_for(count, [&](int, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(y + i * dim, table + int64_t(ids[i]) * dim, size_t(dim) * sizeof(float));
  }, grain_for(dim));
}

void concat(const std::vector<const float*>& parts, const std::vector<int64_t>& lengths, int64_t samples, int64_t outer,
            int64_t inner, float* out, const PoolView& pool) {
  int64_t joined = 0;
  for (int64_t len : lengths) joined += len;
  const int64_t per_sample = outer * joined * inner;
  pool.parallel_for(samples, [&](int, int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      float* dst = out + m * per_sample;
      for (int64_t o = 0; o < outer; ++o)
        for (size_t j = 0; j < parts.size(); ++j) {
          const int64_t block = lengths[j] * inner;
          std::memcpy(dst, parts[j] + (m * outer + o) * block, size_t(block) * sizeof(float));
          dst += block;
        }
    }
  }, grain_for(per_sample));
}

void slice_lines(const float* x, int64_t samples, int64_t outer, int64_t length, int64_t start, int64_t step,
                 int64_t count, int64_t inner, float* out, const PoolView& pool) {
  const int64_t per_sample = outer * count * inner;
  pool.parallel_for(samples, [&](int, int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m)
      for (int64_t o = 0; o < outer; ++o) {
        const float* src = x + ((m * outer + o) * length + start) * inner;
        float* dst = out + (m * outer + o) * count * inner;
        for (int64_t j = 0; j < count; ++j)
          std::memcpy(dst + j * inner, src + j * step * inner, size_t(inner) * sizeof(float));
      }
  }, grain_for(per_sample));
}

void permute(const float* x, int64_t samples, const Dims& dims, const std::vector<int64_t>& perm, float* out,
             const PoolView& pool) {
  const size_t rank = dims.size();
  const int64_t n = element_count(dims);
  std::vector<int64_t> in_strides(rank, 1), out_dims(rank), strides(rank);
  for (size_t d = rank; d-- > 1;) in_strides[d - 1] = in_strides[d] * dims[d];
  for (size_t i = 0; i < rank; ++i) {
    out_dims[i] = dims[size_t(perm[i])];
    strides[i] = in_strides[size_t(perm[i])];
  }
  pool.parallel_for(samples, [&](int, int64_t m0, int64_t m1) {
    std::vector<int64_t> index(rank);
    for (int64_t m = m0; m < m1; ++m) {
      const float* src = x + m * n;
      float* dst = out + m * n;
      std::fill(index.begin(), index.end(), 0);
      int64_t at = 0;
      for (int64_t i = 0; i < n; ++i) {
        dst[i] = src[at];
        for (size_t d = rank; d-- > 0;) {
          at += strides[d];
          if (++index[d] < out_dims[d]) break;
          at -= strides[d] * out_dims[d];
          index[d] = 0;
        }
      }
    }
  }, grain_for(n));
}

}  // namespace batchcore
