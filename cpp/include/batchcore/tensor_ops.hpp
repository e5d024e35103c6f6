// The graph's non-GEMM operations over batches of N-dimensional samples (docs/orders.md, "Graph
// operations"): pooling, per-channel affine maps, softmax along any dimension, broadcasting element-wise
// arithmetic and permutations. Each output element is computed by one fixed sequence of float32
// operations that reads only its own sample, so every one is batch invariant by construction; none
// allocates. `samples` is the batch size; a sample is `dims`, row-major and contiguous.
#pragma once
#include <cstdint>
#include <vector>

namespace batchcore {

class PoolView;

using Dims = std::vector<int64_t>;  // a sample's shape: the batch dimension is never part of it

int64_t element_count(const Dims& d);  // the product of d (1 for a scalar)

// Kernel, stride and padding as (h, w), dilation for max pooling; torch's ceil_mode, count_include_pad
// and divisor_override (0: none) for average pooling.
struct Pool2dWindow {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  bool ceil_mode = false, count_include_pad = true;
  int64_t divisor_override = 0;

  int64_t out_size(int64_t in, bool rows) const;  // torch's output length along H (rows) or W
};

// Max over each window's taps inside the input, in row-major order, keeping the first of equal values
// (`v > best`): (samples, C, H, W) -> (samples, C, OH, OW).
void max_pool2d(const float* x, int64_t samples, int64_t C, int64_t H, int64_t W, const Pool2dWindow& p,
                float* y, const PoolView& pool);
// The window's taps inside the input summed left to right in row-major order from the first, then one
// division by torch's divisor (see docs): (samples, C, H, W) -> (samples, C, OH, OW).
void avg_pool2d(const float* x, int64_t samples, int64_t C, int64_t H, int64_t W, const Pool2dWindow& p,
                float* y, const PoolView& pool);
// Window i spans [floor(i H / OH), ceil((i + 1) H / OH)) (W likewise); summed as avg_pool2d, divided by
// its tap count.
void adaptive_avg_pool2d(const float* x, int64_t samples, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         float* y, const PoolView& pool);

// y = x * scale[c] + shift[c] (a multiply, then an add) with c the sample's first dimension (C of
// `inner` elements each). x may equal y.
void channel_affine(const float* x, int64_t samples, int64_t C, int64_t inner, const float* scale,
                    const float* shift, float* y, const PoolView& pool);

// Softmax (or log-softmax) along one dimension of `outer x n x inner` samples, in place: each of the
// n-element lines (stride `inner`) as layers.hpp's softmax_strided (log_softmax_strided).
void softmax_lines(float* x, int64_t samples, int64_t outer, int64_t n, int64_t inner, bool log,
                   const PoolView& pool);

// y[o, i] = the sum of the n values x[o, 0..n), i] left to right from the first (no +0 term), divided by n
// when `mean` (one division): a sum or mean over one dimension of `outer x n x inner` samples.
void reduce_lines(const float* x, int64_t samples, int64_t outer, int64_t n, int64_t inner, bool mean, float* y,
                  const PoolView& pool);

enum class BinaryOp : int { add = 0, sub, mul, div };

// out = a op b with numpy broadcasting of the sample shapes (an operand that is not batched, a constant,
// is the same for every sample). `out` may be `a` or `b` when that operand has out's shape.
struct BroadcastOperand {
  const float* data;
  Dims dims;
  bool batched;
};
void broadcast_binary(const BroadcastOperand& a, const BroadcastOperand& b, BinaryOp op, const Dims& out_dims,
                      int64_t samples, float* out, const PoolView& pool);
// The shape of `a op b` into out; false where the shapes do not broadcast.
bool broadcast_dims(const Dims& a, const Dims& b, Dims& out);

// y = the rows table[id] (dim floats each) for the `count` ids, which are float32 integers in [0, rows):
// token ids as the core receives them. ShapeError naming the first that is not.
void embedding(const float* ids, int64_t count, const float* table, int64_t rows, int64_t dim, float* y,
               const PoolView& pool);

// out = the parts joined along one dimension: per sample, per index of the `outer` dimensions before it,
// each part's lengths[j] x inner floats in turn (copies only).
void concat(const std::vector<const float*>& parts, const std::vector<int64_t>& lengths, int64_t samples, int64_t outer,
            int64_t inner, float* out, const PoolView& pool);

// out = x's entries start, start + step, ... (count of them) along one dimension of `length`: per sample, per
// index of the `outer` dimensions before it, `inner` floats each (copies only).
void slice_lines(const float* x, int64_t samples, int64_t outer, int64_t length, int64_t start, int64_t step,
                 int64_t count, int64_t inner, float* out, const PoolView& pool);

// out[..] = x permuted: out's dimension i is x's dimension perm[i].
void permute(const float* x, int64_t samples, const Dims& dims, const std::vector<int64_t>& perm, float* out,
             const PoolView& pool);

}  // namespace batchcore
