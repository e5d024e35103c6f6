// A model as a small graph of operations over batches of N-dimensional samples (what bc.from_torch
// makes of a module torch.fx traces): linear layers over the last dimension and convolutions through the
// blocked GEMM, the rest from tensor_ops.hpp and layers.hpp. Every operation computes a sample from that
// sample alone, in a fixed order, so the graph is batch invariant by construction.
//
// Memory is a plan of buffers: each value gets a buffer when it is made and gives it back after its last
// use; a reshape is a view of its input's buffer, and an element-wise or row operation whose input dies
// there writes in place. The same schedule drives the run and plan_bytes(), and every byte goes through
// the graph's TrackingAllocator, so the peak a run measures is the plan's, exactly.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "batchcore/attention.hpp"
#include "batchcore/batched_matmul.hpp"
#include "batchcore/conv.hpp"
#include "batchcore/layers.hpp"
#include "batchcore/model.hpp"
#include "batchcore/pack_weights.hpp"
#include "batchcore/run_options.hpp"
#include "batchcore/tensor_ops.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {

class Graph {
 public:
  enum class Op {
    input, constant, linear, conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, channel_affine, activation,
    softmax, layer_norm, binary, reshape, permute, attention, embedding, log_softmax, sum, mean, concat, slice,
    matmul
  };

  explicit Graph(const Dims& input);  // the input's sample shape (value 0)

  // Each add_* checks its arguments (ShapeError, NonFiniteError) and returns the new value's id.
  int add_constant(const float* values, const Dims& dims);  // the same for every sample (broadcast)
  int add_linear(int x, const float* W, const float* b, int64_t N, int64_t K);  // over x's last dimension
  int add_conv2d(int x, const float* weight, const float* bias, const Conv2dShape& s);  // x: (C, H, W)
  int add_pool2d(int x, Op kind, const Pool2dWindow& window);                           // max or avg
  int add_adaptive_avg_pool2d(int x, int64_t out_h, int64_t out_w);
  int add_channel_affine(int x, const float* scale, const float* shift);  // per entry of x's first dimension
  int add_activation(int x, Activation a, float alpha = 0.0f);  // alpha: leaky_relu's slope, elu's alpha
  int add_softmax(int x, int64_t dim);  // dim: a dimension of the sample, 0-based
  int add_log_softmax(int x, int64_t dim);
  int add_reduce(int x, int64_t dim, bool mean);  // sum or mean over a dimension, which goes
  int add_layer_norm(int x, const float* gamma, const float* beta, float eps);  // over the last dimension
  int add_binary(int a, int b, BinaryOp op);
  int add_reshape(int x, const Dims& dims);
  int add_permute(int x, const std::vector<int64_t>& perm);
  // xs joined along sample dimension dim (copies: no arithmetic); every other dimension equal.
  int add_concat(const std::vector<int>& xs, int64_t dim);
  // x's entries start, start + step, ... (below stop) along sample dimension dim (copies: no arithmetic);
  // 0 <= start < stop <= the dimension's length, step >= 1.
  int add_slice(int x, int64_t dim, int64_t start, int64_t stop, int64_t step);
  // q (G..., Lq, d), k (G..., Lk, d), v (G..., Lk, dv) -> (G..., Lq, dv); see attention.hpp.
  int add_attention(int q, int k, int v, float scale, bool causal);
  // a (G..., m, k) times b (G..., k, n) -> (G..., m, n), both depending on the input; see batched_matmul.hpp.
  int add_matmul(int a, int b);
  // x: token ids (as float32 integers); table: rows x dim -> x's shape + (dim,).
  int add_embedding(int x, const float* table, int64_t rows, int64_t dim);
  void set_output(int value);

  const Dims& dims_of(int value) const;  // a value's sample shape (ShapeError for an unknown id)
  const Dims& input_dims() const { return nodes_.front().dims; }
  const Dims& output_dims() const { return nodes_[size_t(output_)].dims; }
  int64_t input_size() const { return element_count(input_dims()); }   // floats per input sample
  int64_t output_size() const { return element_count(output_dims()); }
  int64_t flops_per_sample() const;  // 2 x the multiply-adds of the linear layers and convolutions
  std::string describe() const;

  // y (M samples of output_dims) = the graph on x (M samples of input_dims). x must be finite.
  RunStats run(const float* x, int64_t M, float* y, const RunOptions& opt);
  void run_batched(const float* x, int64_t samples, int64_t B, float* y, const RunOptions& opt);
  int64_t plan_bytes(int64_t M, const RunOptions& opt) const;
  int64_t cold_copies(int64_t M, const RunOptions& opt) const;

  TrackingAllocator& allocator() { return alloc_; }

 private:
  struct Node {
    Op op = Op::input;
    std::vector<int> inputs;
    Dims dims;                 // the sample shape of the value this node makes
    bool batched = true;       // false: a constant
    std::vector<float> p0, p1; // linear: W, b; affine: scale, shift; layer norm: gamma, beta; constant
    std::vector<int64_t> ints; // softmax, concat: dim; slice: dim, start, step; permute: perm; adaptive pool: OH, OW
    Activation activation = Activation::relu;
    float alpha = 0.0f;        // activation: its parameter (leaky_relu, elu)
    BinaryOp binary = BinaryOp::add;
    Pool2dWindow window;
    float eps = 0.0f;
    AttentionShape attention;  // attention: its shape, scale and mask
    MatmulShape matmul;        // matmul: its shape
    std::unique_ptr<Conv2d> conv;
    int packed = -1;           // linear: index into packed_
  };
  // Where each value's floats live during a pass (see plan()).
  struct Step {
    int owner = 0;              // the value whose buffer holds this one (itself when it allocates)
    int64_t floats = 0;         // the buffer it allocates (0 for views, in-place results and value 0)
    int64_t workspace = 0;      // floats held only while this node runs
    int64_t inner_bytes = 0;    // what the operation allocates itself on top, at most, while it runs
    std::vector<int> release;   // owners whose buffers go after this node
  };

  int add_node(Node n);
  int add_softmax_node(int x, int64_t dim, Op kind);
  Node along_dimension(int x, int64_t dim, Op kind) const;  // a node of `kind` over dimension dim of x
  // a node of `kind` (channel_affine, layer_norm) with two vectors of parameters, checked finite
  Node scaled_and_shifted(int x, Op kind, const float* scale, const char* scale_name, const float* shift,
                          const char* shift_name) const;
  const Node& value(int id, const char* what) const;  // ShapeError for an unknown id or a constant input
  std::vector<Step> plan(int64_t M, const RunOptions& opt) const;
  int64_t planned_bytes(int64_t M, const RunOptions& opt, const std::vector<Step>& steps) const;  // steps' peak
  int64_t packed_bytes() const;
  void ensure_packed(Precision p);
  void execute(const Node& n, const std::vector<float*>& data, int64_t M, float* out, float* workspace,
               const GemmWorkspace& ws, const GemmOptions& gemm, Precision p);
  void forward(const float* x, int64_t M, float* y, const std::vector<Step>& steps, const GemmWorkspace& ws,
               const GemmOptions& gemm, Precision p);

  TrackingAllocator alloc_;  // first: the convolutions' packed weights go back to it when nodes_ goes
  std::vector<Node> nodes_;
  int output_ = 0;
  std::vector<PackedLinear> packed_;
  Precision packed_precision_ = Precision::fp32;
  bool packed_valid_ = false;
  std::mutex run_mu_;
};

}  // namespace batchcore
