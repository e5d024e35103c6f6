// A 2-D convolution whose every output element is one dot product in a named order (docs/orders.md,
// "Convolution"): y[n, co, oh, ow] = dot over k = (ci, kh, kw), in the row-major order of torch's
// weight layout (C_out, C_in / groups, KH, KW), of x at the tap's position and w[co, ci, kh, kw], plus
// b[co]. A tap that falls in the padding is a term whose input is +0 (so every element of a layer has
// the same K and the same order tree). It runs as im2col (one row of K values per output position, the
// padding written as +0) through the blocked GEMM, a chunk of a sample's positions per task, each worker
// writing its chunk's rows and multiplying them while they are in its L2, so a sample's bits depend
// neither on the batch nor on its place in it, nor on the threads.
//
// A transposed convolution (torch's ConvTranspose2d) is this convolution over its input dilated by its
// stride (input_dilation: s - 1 zeros between neighbours, +0 terms like the padding's), padded by
// d (k - 1) - p on each side and by output_padding more at the end, with the kernel flipped and its
// channel axes swapped (the caller's, frontends/conv_transpose.py): each output element is then one dot
// over every tap, the dilation's and the padding's taps +0 terms.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "batchcore/cpu_features.hpp"
#include "batchcore/gemm.hpp"
#include "batchcore/pack_weights.hpp"
#include "batchcore/run_options.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {

class PoolView;

struct Conv2dShape {
  int64_t in_channels = 0, height = 0, width = 0, out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1, groups = 1;
  int64_t input_dilation_h = 1, input_dilation_w = 1;  // the input's neighbours this far apart (zeros between)
  int64_t extra_pad_h = 0, extra_pad_w = 0;            // padding at the end only, beyond pad_h and pad_w

  int64_t dilated_height() const { return (height - 1) * input_dilation_h + 1; }
  int64_t dilated_width() const { return (width - 1) * input_dilation_w + 1; }
  int64_t out_height() const {
    return (dilated_height() + 2 * pad_h + extra_pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_width() const {
    return (dilated_width() + 2 * pad_w + extra_pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
  int64_t taps() const { return in_channels / groups * kernel_h * kernel_w; }  // K of every output element
};

// ShapeError naming the first impossible setting (non-positive sizes, channels not divisible by groups,
// a kernel larger than the padded input).
void check_conv2d_shape(const Conv2dShape& s);

// The checked shape of a convolution whose weight is (out_channels, in_channels / groups, kernel_h,
// kernel_w) over samples of height x width: every caller (a graph, the bound layer) builds it here.
Conv2dShape conv2d_shape(const std::array<int64_t, 4>& weight_dims, int64_t height, int64_t width,
                         std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                         std::array<int64_t, 2> dilation, int64_t groups,
                         std::array<int64_t, 2> input_dilation = {1, 1}, std::array<int64_t, 2> extra_padding = {0, 0});

class Conv2d {
 public:
  // weight: out_channels x (in_channels / groups) x kernel_h x kernel_w; bias: out_channels or null (+0).
  // Packed weights and every run's workspace come from `alloc` (the owner's: a graph's, or its own).
  Conv2d(const float* weight, const float* bias, const Conv2dShape& shape, TrackingAllocator& alloc);

  const Conv2dShape& shape() const { return shape_; }
  // y (N x out_channels x out_height x out_width) = conv(x (N x in_channels x height x width)). x finite.
  void run(const float* x, int64_t N, float* y, const RunOptions& opt);

  // The parts a graph runs (one pass at a time, under the graph's own lock):
  void ensure_packed(Precision p);
  int64_t packed_bytes() const;     // what ensure_packed holds: one packed panel set per group
  // forward()'s workspace: per worker, a chunk of output positions' im2col rows and their GEMM output.
  int64_t workspace_floats(int threads) const;
  void forward(const float* x, int64_t N, float* y, float* workspace, const GemmWorkspace& ws,
               const GemmOptions& gemm, Precision p) const;

 private:
  int64_t chunk_positions() const;  // output positions a worker takes at once (its rows fit the L2)
  // Output positions [first, first + count) of one sample as rows of K taps (ld floats apart), rounded to
  // `p`; padding is +0.
  void im2col(const float* sample, int64_t group, int64_t first, int64_t count, float* rows, int64_t ld,
              Precision p, SimdLevel simd) const;

  Conv2dShape shape_;
  std::vector<float> weight_, bias_;
  // Where tap k of an output position lies relative to the position's first tap, within one group's
  // channels: (ci * H + kh * dilation_h) * W + kw * dilation_w. An output position whose window lies
  // wholly inside the input copies its row as x[first + tap_offsets_[k]] (im2col's fast path).
  // Empty where a group's channels span 2^31 floats or more (the fast path then stays unused).
  std::vector<int32_t> tap_offsets_;
  TrackingAllocator& alloc_;
  std::vector<PackedLinear> packed_;  // one per group
  Precision packed_precision_ = Precision::fp32;
  bool packed_valid_ = false;
  std::mutex run_mu_;
};

}  // namespace batchcore
