#include "batchcore/conv.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "batchcore/errors.hpp"
#include "batchcore/gemm.hpp"
#include "batchcore/model.hpp"
#include "batchcore/precision.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

Conv2dShape conv2d_shape(const std::array<int64_t, 4>& weight_dims, int64_t height, int64_t width,
                         std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                         std::array<int64_t, 2> dilation, int64_t groups, std::array<int64_t, 2> input_dilation,
                         std::array<int64_t, 2> extra_padding) {
  if (groups < 1) throw ShapeError("conv2d: groups must be positive, got " + std::to_string(groups));
  Conv2dShape s;
  s.out_channels = weight_dims[0], s.in_channels = weight_dims[1] * groups;
  s.kernel_h = weight_dims[2], s.kernel_w = weight_dims[3];
  s.height = height, s.width = width;
  s.stride_h = stride[0], s.stride_w = stride[1];
  s.pad_h = padding[0], s.pad_w = padding[1];
  s.dilation_h = dilation[0], s.dilation_w = dilation[1];
  s.groups = groups;
  s.input_dilation_h = input_dilation[0], s.input_dilation_w = input_dilation[1];
  s.extra_pad_h = extra_padding[0], s.extra_pad_w = extra_padding[1];
  check_conv2d_shape(s);
  return s;
}

void check_conv2d_shape(const Conv2dShape& s) {
  const auto positive = [](int64_t v, const char* what) {
    if (v <= 0) throw ShapeError(std::string("conv2d: ") + what + " must be positive, got " + std::to_string(v));
  };
  positive(s.in_channels, "in_channels");
  positive(s.height, "height");
  positive(s.width, "width");
  positive(s.out_channels, "out_channels");
  positive(s.kernel_h, "kernel height");
  positive(s.kernel_w, "kernel width");
  positive(s.stride_h, "stride");
  positive(s.stride_w, "stride");
  positive(s.dilation_h, "dilation");
  positive(s.dilation_w, "dilation");
  positive(s.groups, "groups");
  positive(s.input_dilation_h, "input dilation");
  positive(s.input_dilation_w, "input dilation");
  if (s.pad_h < 0 || s.pad_w < 0 || s.extra_pad_h < 0 || s.extra_pad_w < 0)
    throw ShapeError("conv2d: padding must not be negative");
  if (s.in_channels % s.groups || s.out_channels % s.groups)
    throw ShapeError("conv2d: in_channels (" + std::to_string(s.in_channels) + ") and out_channels (" +
                     std::to_string(s.out_channels) + ") must be divisible by groups (" + std::to_string(s.groups) + ")");
  if (s.out_height() < 1 || s.out_width() < 1)
    throw ShapeError("conv2d: the dilated kernel is larger than the padded input (" + std::to_string(s.height) + " x " +
                     std::to_string(s.width) + ")");
}

Conv2d::Conv2d(const float* weight, const float* bias, const Conv2dShape& shape, TrackingAllocator& alloc)
    : shape_(shape), alloc_(alloc) {
  check_conv2d_shape(shape);
  const int64_t n = shape.out_channels * shape.taps();
  weight_.assign(weight, weight + n);
  if (bias) bias_.assign(bias, bias + shape.out_channels);
  require_finite(weight_.data(), n, "conv2d weight", shape.taps());
  const bool dense_input = shape.input_dilation_h == 1 && shape.input_dilation_w == 1;
  if (dense_input && shape.in_channels / shape.groups * shape.height * shape.width < (int64_t(1) << 31))
    for (int64_t ci = 0; ci < shape.in_channels / shape.groups; ++ci)
      for (int64_t kh = 0; kh < shape.kernel_h; ++kh)
        for (int64_t kw = 0; kw < shape.kernel_w; ++kw)
          tap_offsets_.push_back(
              int32_t((ci * shape.height + kh * shape.dilation_h) * shape.width + kw * shape.dilation_w));
  if (bias) require_finite(bias_.data(), shape.out_channels, "conv2d bias", shape.out_channels);
}

void Conv2d::ensure_packed(Precision p) {
  if (packed_valid_ && packed_precision_ == p) return;
  packed_.clear();
  const int64_t per_group = shape_.out_channels / shape_.groups, K = shape_.taps();
  for (int64_t g = 0; g < shape_.groups; ++g)
    packed_.push_back(pack_weights(weight_.data() + g * per_group * K,
                                   bias_.empty() ? nullptr : bias_.data() + g * per_group, per_group, K, p, alloc_));
  packed_precision_ = p;
  packed_valid_ = true;
}

void Conv2d::im2col(const float* sample, int64_t group, int64_t first, int64_t count, float* rows, int64_t ld,
                    Precision p, SimdLevel simd) const {
  const Conv2dShape& s = shape_;
  const int64_t cg = s.in_channels / s.groups, OW = s.out_width();
  const bool fast_path = p == Precision::fp32 && !tap_offsets_.empty();
  const auto gather = kernels_for(simd).gather;
  for (int64_t pos = first; pos < first + count; ++pos) {
    const int64_t oh = pos / OW, ow = pos % OW;
    float* row = rows + (pos - first) * ld;
    const int64_t iw0 = ow * s.stride_w - s.pad_w, iw_last = iw0 + (s.kernel_w - 1) * s.dilation_w;
    const int64_t ih0 = oh * s.stride_h - s.pad_h, ih_last = ih0 + (s.kernel_h - 1) * s.dilation_h;
    const bool columns_inside = iw0 >= 0 && iw_last < s.width;
    if (fast_path && columns_inside && ih0 >= 0 && ih_last < s.height) {  // the window wholly inside
      gather(row, sample + group * cg * s.height * s.width + ih0 * s.width + iw0, tap_offsets_.data(), s.taps());
      continue;
    }
    // A position of the dilated input: its row or column of the input, or -1 (padding, or a zero the
    // dilation put between two neighbours: a +0 term either way).
    const auto source = [](int64_t at, int64_t dilated, int64_t step) {
      return at < 0 || at >= dilated || at % step ? int64_t(-1) : at / step;
    };
    const bool dense_columns = columns_inside && s.input_dilation_w == 1 && p == Precision::fp32;
    for (int64_t ci = 0; ci < cg; ++ci) {
      const float* plane = sample + (group * cg + ci) * s.height * s.width;
      for (int64_t kh = 0; kh < s.kernel_h; ++kh, row += s.kernel_w) {
        const int64_t ih = source(ih0 + kh * s.dilation_h, s.dilated_height(), s.input_dilation_h);
        if (ih < 0) {  // a row of padded taps: +0 terms
          for (int64_t kw = 0; kw < s.kernel_w; ++kw) row[kw] = 0.0f;
          continue;
        }
        const float* line = plane + ih * s.width;
        if (dense_columns) {
          for (int64_t kw = 0; kw < s.kernel_w; ++kw) row[kw] = line[iw0 + kw * s.dilation_w];
          continue;
        }
        for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
          const int64_t iw = source(iw0 + kw * s.dilation_w, s.dilated_width(), s.input_dilation_w);
          row[kw] = iw >= 0 ? round_to(line[iw], p) : 0.0f;  // a padded tap: a +0 term
        }
      }
    }
  }
}

// Half a GEMM tile of rows: more, smaller tasks share out evenly over the threads (a 32x32 output's 1,024
// positions in 22 chunks instead of 11: 11 each on 2 threads; measured 8 % faster at B = 2 and 8).
int64_t Conv2d::chunk_positions() const {
  return std::min(shape_.out_height() * shape_.out_width(), std::max<int64_t>(12, gemm_tile_rows(shape_.taps()) / 2));
}

int64_t Conv2d::packed_bytes() const {
  return shape_.groups * PackedLinear::bytes_for(shape_.out_channels / shape_.groups, shape_.taps());
}

int64_t Conv2d::workspace_floats(int threads) const {
  return threads * chunk_positions() * (row_stride(shape_.taps()) + row_stride(shape_.out_channels / shape_.groups));
}

void Conv2d::forward(const float* x, int64_t N, float* y, float* workspace, const GemmWorkspace& ws,
                     const GemmOptions& gemm, Precision p) const {
  const Conv2dShape& s = shape_;
  const int64_t sample_in = s.in_channels * s.height * s.width;
  const int64_t positions = s.out_height() * s.out_width(), per_group = s.out_channels / s.groups;
  const int64_t ld_in = row_stride(s.taps()), ld_out = row_stride(per_group);
  const int64_t chunk = chunk_positions(), chunks = (positions + chunk - 1) / chunk;
  const int64_t per_worker = chunk * (ld_in + ld_out), lanes_per_worker = lanes_floats(gemm.order, 1);
  // Task = (sample, group, chunk of positions): the worker writes the chunk's im2col rows, multiplies them
  // by the group's packed weights on its own thread, and scatters the outputs to channel-major order.
  shared_pool(gemm.threads).parallel_for(N * s.groups * chunks, [&](int worker, int64_t t0, int64_t t1) {
    float* rows = workspace + worker * per_worker;
    float* out = rows + chunk * ld_in;
    float* scratch = ws.lanes ? ws.lanes + worker * lanes_per_worker : nullptr;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / (s.groups * chunks), g = t / chunks % s.groups, first = t % chunks * chunk;
      const int64_t count = std::min(chunk, positions - first);
      im2col(x + n * sample_in, g, first, count, rows, ld_in, p, gemm.simd);
      linear_forward_here(rows, ld_in, count, packed_[size_t(g)], out, ld_out, scratch, gemm.order, gemm.simd);
      float* dst = y + (n * s.out_channels + g * per_group) * positions + first;
      for (int64_t co = 0; co < per_group; ++co)
        for (int64_t i = 0; i < count; ++i) dst[co * positions + i] = out[i * ld_out + co];
    }
  });
}

void Conv2d::run(const float* x, int64_t N, float* y, const RunOptions& opt) {
  if (N <= 0) throw ShapeError("empty batch: a convolution needs at least one sample");
  const Conv2dShape& s = shape_;
  const int64_t sample_in = s.in_channels * s.height * s.width;
  const PoolView pool = shared_pool(opt.threads);
  require_finite(x, N * sample_in, "input", sample_in, &pool);
  std::lock_guard<std::mutex> lock(run_mu_);
  ensure_packed(opt.precision);
  const GemmOptions gemm{resolve_order(opt.policy, opt.order, N), opt.threads, opt.simd};
  TrackedBuffer workspace(alloc_, workspace_floats(opt.threads));
  TrackedBuffer lanes(alloc_, lanes_floats(gemm.order, opt.threads));
  forward(x, N, y, workspace.data(), GemmWorkspace{lanes.data()}, gemm, opt.precision);
}

}  // namespace batchcore
