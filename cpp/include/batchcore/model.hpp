// A feed-forward model (a sequence of linear and row-wise layers) and its forward pass on the CPU.
// Weights are packed once per input precision; every byte of a run goes through the model's
// TrackingAllocator, and the planner (plan_bytes) predicts the peak exactly:
//   packed weights + input copy (M rows of row_stride(K0), only where copies_input()) + two activation
//   buffers (M rows of row_stride(widest layer)) + workspace (lanes:W: threads x W x 12 x 32 partial sums).
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "batchcore/cpu_features.hpp"
#include "batchcore/gemm.hpp"
#include "batchcore/layers.hpp"
#include "batchcore/finite.hpp"
#include "batchcore/order.hpp"
#include "batchcore/pack_weights.hpp"
#include "batchcore/run_options.hpp"
#include "batchcore/timer.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace batchcore {


struct RunStats {
  TimingSummary timing;          // RunOptions::timer's result
  int64_t peak_bytes = 0;        // tracked peak during the call, packed weights included
  int64_t predicted_bytes = 0;   // plan_bytes(M, options)
};

class Model {
 public:
  explicit Model(int64_t input_width);

  void add_linear(const float* W, const float* b, int64_t N, int64_t K);  // W: N x K, b: N or null
  void add_activation(Activation a, float alpha = 0.0f);  // alpha: leaky_relu's slope, elu's alpha
  void add_softmax();
  void add_layer_norm(const float* gamma, const float* beta, int64_t n, float eps);
  // Batch norm in eval mode, folded to x * scale + shift per feature.
  void add_batch_norm(const float* scale, const float* shift, int64_t n);

  int64_t input_width() const { return input_width_; }
  int64_t output_width() const { return width_; }
  int64_t flops_per_row() const;  // 2 * sum over linear layers of K * N
  std::string describe() const;

  // y (M x output_width) = forward(x (M x input_width)). x must be finite.
  RunStats run(const float* x, int64_t M, float* y, const RunOptions& opt);
  // Consecutive batches of B rows (the last one shorter), as an evaluation loop runs them.
  void run_batched(const float* x, int64_t rows, int64_t B, float* y, const RunOptions& opt);
  int64_t plan_bytes(int64_t M, const RunOptions& opt) const;
  // Input copies a cold run of M rows rotates through: enough to hold opt.cold_bytes, at least 2 (0 when hot).
  int64_t cold_copies(int64_t M, const RunOptions& opt) const;

  TrackingAllocator& allocator() { return alloc_; }

  // The layers as built (the CUDA core reads them to build its device copy).
  enum class Kind { linear, activation, softmax, layer_norm, batch_norm };
  struct Layer {
    Kind kind;
    int64_t in = 0, out = 0;
    Activation activation = Activation::relu;
    float alpha = 0.0f;         // the activation's parameter (leaky_relu, elu)
    std::vector<float> p0, p1;  // linear: W (out x in), b; layer norm: gamma, beta; batch norm: scale, shift
    float eps = 0.0f;
  };
  const std::vector<Layer>& layers() const { return layers_; }
  int64_t widest_activation() const;  // the widest layer output: the activation buffers' row width

 private:
  static Layer make_layer(Kind kind, int64_t in, int64_t out) {
    Layer l;
    l.kind = kind;
    l.in = in;
    l.out = out;
    return l;
  }
  void require_width(int64_t n, const char* what) const;
  void ensure_packed(Precision p);
  // Whether a run copies its input into a padded buffer: when it must be rounded or changed in place,
  // or when its rows lie a multiple of 2 KiB apart. Otherwise the first linear layer reads x directly.
  bool copies_input(Precision p) const;
  // One pass; `gemm` carries the order already resolved for M (once per run, not per pass).
  void forward(const float* x, int64_t M, float* y, float* in, float* act0, float* act1,
               const GemmWorkspace& ws, const GemmOptions& gemm, Precision precision);
  int64_t planned_bytes(int64_t M, Order resolved, const RunOptions& opt) const;

  int64_t input_width_, width_;
  std::vector<Layer> layers_;
  TrackingAllocator alloc_;
  std::vector<PackedLinear> packed_;  // one per linear layer, for packed_precision_
  Precision packed_precision_ = Precision::fp32;
  bool packed_valid_ = false;
  std::mutex run_mu_;  // one forward pass at a time per model (buffers and peak are per call)
};

}  // namespace batchcore
