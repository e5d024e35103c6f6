#include "batchcore/model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <sstream>

#include "batchcore/errors.hpp"
#include "batchcore/gemm.hpp"
#include "batchcore/passes.hpp"
#include "batchcore/thread_pool.hpp"
#include "layer_names.hpp"
#include "batchcore/timer.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {
namespace {

// Row-wise layers: below this many elements per worker, waking another thread costs more than it saves.
constexpr int64_t kMinElementsPerWorker = 16384;
// Element-wise layers (the activations) are also split across each row's columns, in segments of this
// many (a multiple of every vector width), so that a batch of a few wide rows still spreads over the
// threads. An element's value never depends on the split.
constexpr int64_t kSegmentColumns = 256;

// A row layer as the per-instruction-set kernels take it.
RowLayer row_layer_of(const Model::Layer& l) {
  RowLayer r{RowFunction::relu, l.in};
  switch (l.kind) {
    case Model::Kind::activation: r.function = RowFunction(int(l.activation)); break;  // numbered alike
    case Model::Kind::softmax: r.function = RowFunction::softmax; break;
    case Model::Kind::layer_norm: r.function = RowFunction::layer_norm; break;
    case Model::Kind::batch_norm: r.function = RowFunction::batch_norm; break;
    case Model::Kind::linear: break;  // never a row layer
  }
  r.p0 = l.p0.data();
  r.p1 = l.p1.data();
  r.eps = l.eps;
  r.alpha = l.alpha;
  return r;
}

}  // namespace

Model::Model(int64_t input_width) : input_width_(input_width), width_(input_width) {
  if (input_width <= 0) throw ShapeError("a model's input width must be positive, got " + std::to_string(input_width));
}

void Model::require_width(int64_t n, const char* what) const {
  if (n != width_) {
    std::ostringstream s;
    s << what << " expects width " << n << " but the previous layer produces " << width_;
    throw ShapeError(s.str());
  }
}

void Model::add_linear(const float* W, const float* b, int64_t N, int64_t K) {
  if (N <= 0 || K <= 0) throw ShapeError("a linear layer needs N >= 1 and K >= 1, got N=" + std::to_string(N) +
                                         ", K=" + std::to_string(K));
  require_width(K, "linear layer");
  require_finite(W, N * K, "linear weight", K);
  if (b) require_finite(b, N, "linear bias", N);
  Layer l = make_layer(Kind::linear, K, N);
  l.p0.assign(W, W + N * K);
  l.p1 = b ? std::vector<float>(b, b + N) : std::vector<float>(size_t(N), 0.0f);
  layers_.push_back(std::move(l));
  width_ = N;
  packed_valid_ = false;
}

void Model::add_activation(Activation a, float alpha) {
  Layer l = make_layer(Kind::activation, width_, width_);
  l.activation = a;
  l.alpha = alpha;
  layers_.push_back(std::move(l));
}

void Model::add_softmax() { layers_.push_back(make_layer(Kind::softmax, width_, width_)); }

void Model::add_layer_norm(const float* gamma, const float* beta, int64_t n, float eps) {
  require_width(n, "layer norm");
  require_finite(gamma, n, "layer norm weight", n);
  require_finite(beta, n, "layer norm bias", n);
  if (!(eps >= 0.0f) || !std::isfinite(eps)) throw NonFiniteError("layer norm eps must be finite and >= 0");
  Layer l = make_layer(Kind::layer_norm, n, n);
  l.p0.assign(gamma, gamma + n);
  l.p1.assign(beta, beta + n);
  l.eps = eps;
  layers_.push_back(std::move(l));
}

void Model::add_batch_norm(const float* scale, const float* shift, int64_t n) {
  require_width(n, "batch norm");
  require_finite(scale, n, "batch norm scale", n);
  require_finite(shift, n, "batch norm shift", n);
  Layer l = make_layer(Kind::batch_norm, n, n);
  l.p0.assign(scale, scale + n);
  l.p1.assign(shift, shift + n);
  layers_.push_back(std::move(l));
}

int64_t Model::flops_per_row() const {
  int64_t f = 0;
  for (const auto& l : layers_)
    if (l.kind == Kind::linear) f += 2 * l.in * l.out;
  return f;
}

std::string Model::describe() const {
  std::ostringstream s;
  s << input_width_;
  for (const auto& l : layers_) {
    switch (l.kind) {
      case Kind::linear: s << " -> linear " << l.out; break;
      case Kind::activation:
        s << " -> " << activation_name(l.activation);
        if (has_parameter(l.activation)) s << "(" << l.alpha << ")";
        break;
      case Kind::softmax: s << " -> softmax"; break;
      case Kind::layer_norm: s << " -> layer_norm"; break;
      case Kind::batch_norm: s << " -> batch_norm"; break;
    }
  }
  return s.str();
}

int64_t Model::widest_activation() const {
  int64_t w = 0;
  for (const auto& l : layers_) w = std::max(w, l.out);
  return w;
}

void Model::ensure_packed(Precision p) {
  if (packed_valid_ && packed_precision_ == p) return;
  packed_.clear();  // frees the previous precision's panels first: only one set is ever resident
  for (const auto& l : layers_)
    if (l.kind == Kind::linear) packed_.push_back(pack_weights(l.p0.data(), l.p1.data(), l.out, l.in, p, alloc_));
  packed_precision_ = p;
  packed_valid_ = true;
}

bool Model::copies_input(Precision p) const {
  if (p != Precision::fp32) return true;  // rounded in place before the first linear layer
  if (!layers_.empty() && layers_.front().kind != Kind::linear) return true;  // a row layer writes in place
  return input_width_ % 512 == 0;  // rows 2 KiB apart: 6 of a micro-kernel's 12 rows would share an L1 set
}

int64_t Model::plan_bytes(int64_t M, const RunOptions& opt) const {
  return planned_bytes(M, resolve_order(opt.policy, opt.order, M), opt);
}

int64_t Model::planned_bytes(int64_t M, Order order, const RunOptions& opt) const {
  int64_t bytes = 0;
  for (const auto& l : layers_)
    if (l.kind == Kind::linear) bytes += PackedLinear::bytes_for(l.out, l.in);
  if (copies_input(opt.precision)) bytes += M * row_stride(input_width_) * 4;  // input copy
  bytes += 2 * M * row_stride(widest_activation()) * 4;  // two activation buffers
  bytes += lanes_floats(order, opt.threads) * 4;      // workspace: lanes:W partial sums
  bytes += cold_copies(M, opt) * M * input_width_ * 4;  // cold mode's rotating input copies
  return bytes;
}

int64_t Model::cold_copies(int64_t M, const RunOptions& opt) const {
  return batchcore::cold_copies(M * input_width_ * int64_t(sizeof(float)), opt);
}

void Model::forward(const float* x, int64_t M, float* y, float* in, float* act0, float* act1,
                    const GemmWorkspace& ws, const GemmOptions& gemm, Precision precision) {
  // Rows live row_stride(width) floats apart in the run's buffers (see gemm.hpp).
  const auto copy_rows = [M](const float* src, int64_t ld_src, float* dst, int64_t ld_dst, int64_t width) {
    for (int64_t r = 0; r < M; ++r) std::memcpy(dst + r * ld_dst, src + r * ld_src, size_t(width) * sizeof(float));
  };
  // Without a copy (see copies_input) the first layer is linear and the caller's x is only read.
  float* cur = in ? in : const_cast<float*>(x);
  int64_t ld = in ? row_stride(input_width_) : input_width_;
  if (in) copy_rows(x, input_width_, in, ld, input_width_);
  const PoolView pool = shared_pool(gemm.threads);
  size_t linear_index = 0;
  for (size_t i_layer = 0; i_layer < layers_.size(); ++i_layer) {
    const Layer& l = layers_[i_layer];
    const int64_t w = l.in;
    switch (l.kind) {
      case Kind::linear: {
        if (precision != Precision::fp32)
          for (int64_t r = 0; r < M; ++r)
            for (int64_t i = 0; i < w; ++i) cur[r * ld + i] = round_to(cur[r * ld + i], precision);
        // An activation right after the layer is applied to each output tile as the GEMM writes it.
        const bool fused = i_layer + 1 < layers_.size() && layers_[i_layer + 1].kind == Kind::activation;
        const RowLayer activation = fused ? row_layer_of(layers_[i_layer + 1]) : RowLayer{};
        GemmOptions with_epilogue = gemm;
        if (fused) with_epilogue.epilogue = &activation;
        i_layer += fused;
        // The last layer writes the caller's y itself (rows width_ apart: only read back by the caller);
        // the others an activation buffer, rows an odd number of lines apart for the next layer's kernel.
        const bool last = i_layer + 1 == layers_.size();
        float* next = last ? y : cur == act0 ? act1 : act0;
        const int64_t ld_next = last ? width_ : row_stride(l.out);
        linear_forward(cur, ld, M, packed_[linear_index++], next, ld_next, ws, with_epilogue);
        cur = next;
        ld = ld_next;
        break;
      }
      default: {
        // Vectorised across each row's elements, every element as layers.hpp defines it (row_kernels.inl).
        const RowLayer row = row_layer_of(l);
        const IsaKernels& kernels = kernels_for(gemm.simd);
        if (l.kind != Kind::activation) {  // softmax and the norms need whole rows
          pool.parallel_for(M, [&](int, int64_t r0, int64_t r1) {
            kernels.row_layer(row, cur + r0 * ld, r1 - r0, ld);
          }, std::max<int64_t>(1, kMinElementsPerWorker / w));
          break;
        }
        const int64_t segments = (w + kSegmentColumns - 1) / kSegmentColumns;
        pool.parallel_for(M * segments, [&](int, int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t r = t / segments, c0 = t % segments * kSegmentColumns;
            RowLayer part = row;
            part.width = std::min(kSegmentColumns, w - c0);
            kernels.row_layer(part, cur + r * ld + c0, 1, ld);
          }
        }, std::max<int64_t>(1, kMinElementsPerWorker / std::min(kSegmentColumns, w)));
        break;
      }
    }
  }
  if (cur != y) copy_rows(cur, ld, y, width_, width_);
}

RunStats Model::run(const float* x, int64_t M, float* y, const RunOptions& opt) {
  if (M <= 0) throw ShapeError("empty batch: a forward pass needs at least one row");
  const PoolView pool = shared_pool(opt.threads);
  require_finite(x, M * input_width_, "input", input_width_, &pool);
  std::lock_guard<std::mutex> lock(run_mu_);
  ensure_packed(opt.precision);
  alloc_.reset_peak();
  RunStats stats;
  const Order order = resolve_order(opt.policy, opt.order, M);  // once per run: every pass runs this order
  const GemmOptions gemm{order, opt.threads, opt.simd};
  {
    TrackedBuffer in(alloc_, copies_input(opt.precision) ? M * row_stride(input_width_) : 0);
    const int64_t act_floats = M * row_stride(widest_activation());
    TrackedBuffer act0(alloc_, act_floats), act1(alloc_, act_floats);
    TrackedBuffer lanes(alloc_, lanes_floats(order, opt.threads));
    const GemmWorkspace ws{lanes.data()};
    stats.timing = run_passes(x, M * input_width_, alloc_, opt, [&](const float* source) {
      forward(source, M, y, in.data(), act0.data(), act1.data(), ws, gemm, opt.precision);
    });
  }
  stats.peak_bytes = alloc_.peak_bytes();
  stats.predicted_bytes = planned_bytes(M, order, opt);
  return stats;
}

void Model::run_batched(const float* x, int64_t rows, int64_t B, float* y, const RunOptions& opt) {
  in_batches(rows, B, opt, [&](int64_t first, int64_t count, const RunOptions& once) {
    run(x + first * input_width_, count, y + first * width_, once);
  });
}

}  // namespace batchcore
