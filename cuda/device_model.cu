#include <cmath>
#include <mutex>
#include <vector>

#include "cuda_check.cuh"
#include "device_model.hpp"
#include "event_timer.cuh"
#include "linear_kernels.cuh"
#include "row_kernels.cuh"

namespace batchcore::cuda {
namespace {

using Kind = Model::Kind;

void upload(const DeviceTrackedBuffer& dst, const float* src, cudaStream_t stream) {
  check(cudaMemcpyAsync(dst.data(), src, size_t(dst.bytes()), cudaMemcpyHostToDevice, stream), "upload");
}

// A layer's device parameters: linear: p0 = weights packed k-major (K x N) in the run's precision,
// p1 = bias; layer norm: gamma, beta; batch norm: scale, shift.
struct DeviceLayer {
  const Model::Layer* host;
  DeviceTrackedBuffer p0, p1;
};

}  // namespace

struct DeviceModel::Impl {
  int device;
  DeviceAllocator alloc;
  Stream stream;  // created after select() made the device current
  int64_t input_width, output_width, widest, l2_bytes = 0;
  std::vector<Model::Layer> host_layers;  // a copy: the host model may change or go away
  std::vector<DeviceLayer> layers;
  Precision packed = Precision::fp32;
  bool needs_stack = false;
  std::mutex run_mu;

  Impl(const Model& host, int dev) : device(select(dev)), alloc(dev) {
    input_width = host.input_width();
    output_width = host.output_width();
    widest = host.widest_activation();
    host_layers = host.layers();
    int l2 = 0;
    check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "L2 size");
    l2_bytes = l2;
    for (const auto& l : host_layers) {
      DeviceLayer d{&l, {}, {}};
      if (l.kind != Kind::activation && l.kind != Kind::softmax) {
        d.p0 = DeviceTrackedBuffer(alloc, int64_t(l.p0.size()));
        d.p1 = DeviceTrackedBuffer(alloc, int64_t(l.p1.size()));
        if (l.kind != Kind::linear) upload(d.p0, l.p0.data(), stream);
        upload(d.p1, l.p1.data(), stream);
      }
      layers.push_back(std::move(d));
    }
    pack(Precision::fp32);
  }

  static int select(int dev) {
    use_device(dev);
    return dev;
  }

  // Linear weights rounded to `p` and transposed on the host, then uploaded into the existing buffers.
  void pack(Precision p) {
    for (auto& d : layers) {
      if (d.host->kind != Kind::linear) continue;
      const int64_t N = d.host->out, K = d.host->in;
      std::vector<float> wt(size_t(N * K));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) wt[size_t(k * N + n)] = round_to(d.host->p0[size_t(n * K + k)], p);
      upload(d.p0, wt.data(), stream);
      check(cudaStreamSynchronize(stream), "weight upload");  // wt is freed at the end of this iteration
    }
    packed = p;
  }

  // Enqueues one forward pass from `in` (M x input width); returns the buffer holding the output.
  float* forward(float* in, float* act0, float* act1, int64_t M, Order order, Precision precision) {
    float* cur = in;
    int64_t w = input_width;
    for (const auto& d : layers) {
      const Model::Layer& l = *d.host;
      if (l.kind == Kind::linear) {
        // Rounding in place is idempotent, so the input buffer survives repeated passes unchanged.
        if (precision != Precision::fp32) launch_round(cur, M * w, precision, stream);
        float* next = cur == act0 ? act1 : act0;
        launch_linear(cur, M, w, d.p0.data(), d.p1.data(), l.out, next, order, stream);
        cur = next;
        w = l.out;
        continue;
      }
      if (cur == in) {  // row layers work in place: never on the input, which later passes read again
        check(cudaMemcpyAsync(act0, in, size_t(M * w) * 4, cudaMemcpyDeviceToDevice, stream), "copy input");
        cur = act0;
      }
      switch (l.kind) {
        case Kind::activation: launch_activation(cur, M * w, l.activation, l.alpha, stream); break;
        case Kind::softmax: launch_row_op(cur, M, w, RowOp::softmax, nullptr, nullptr, 0.0f, stream); break;
        case Kind::layer_norm:
          launch_row_op(cur, M, w, RowOp::layer_norm, d.p0.data(), d.p1.data(), l.eps, stream);
          break;
        case Kind::batch_norm: launch_row_op(cur, M, w, RowOp::affine, d.p0.data(), d.p1.data(), 0.0f, stream); break;
        case Kind::linear: break;
      }
    }
    return cur;
  }
};

DeviceModel::DeviceModel(const Model& host, int device) : impl_(std::make_unique<Impl>(host, device)) {}
DeviceModel::~DeviceModel() = default;

int DeviceModel::device() const { return impl_->device; }
int64_t DeviceModel::input_width() const { return impl_->input_width; }
int64_t DeviceModel::output_width() const { return impl_->output_width; }
DeviceAllocator& DeviceModel::allocator() { return impl_->alloc; }
int64_t DeviceModel::l2_flush_bytes() const { return 2 * impl_->l2_bytes; }

int64_t DeviceModel::plan_bytes(int64_t M, const DeviceRunOptions& opt) const {
  int64_t bytes = 0;
  for (const auto& l : impl_->host_layers) bytes += int64_t(l.p0.size() + l.p1.size()) * 4;  // empty for row-only
  bytes += M * impl_->input_width * 4;
  bytes += 2 * M * impl_->widest * 4;
  if (opt.cold) bytes += l2_flush_bytes();
  return bytes;
}

DeviceRunStats DeviceModel::run(const float* x, int64_t M, float* y, const DeviceRunOptions& opt) {
  Impl& m = *impl_;
  if (M <= 0) throw ShapeError("empty batch: a forward pass needs at least one row");
  if (x) require_finite(x, M * m.input_width, "input", m.input_width);
  std::lock_guard<std::mutex> lock(m.run_mu);
  use_device(m.device);
  const Order order = resolve_order(opt.policy, opt.order, M);
  if (needs_device_stack(order) && !m.needs_stack) {
    check(cudaDeviceSetLimit(cudaLimitStackSize, kDeviceStackBytes), "stack size");
    m.needs_stack = true;
  }
  if (m.packed != opt.precision) m.pack(opt.precision);
  m.alloc.reset_peak();
  DeviceRunStats stats;
  {
    DeviceTrackedBuffer in(m.alloc, M * m.input_width);
    DeviceTrackedBuffer act0(m.alloc, M * m.widest), act1(m.alloc, M * m.widest);
    DeviceTrackedBuffer flush(m.alloc, opt.cold ? l2_flush_bytes() / 4 : 0);
    if (x) check(cudaMemcpyAsync(in.data(), x, size_t(in.bytes()), cudaMemcpyHostToDevice, m.stream), "copy x");
    else check(cudaMemsetAsync(in.data(), 0, size_t(in.bytes()), m.stream), "zero x");
    float* out = nullptr;
    const auto pass = [&] { out = m.forward(in.data(), act0.data(), act1.data(), M, order, opt.precision); };
    if (opt.timer) {
      SmClock clock(m.device);
      stats.timing = time_with_events(*opt.timer, m.stream, pass, flush.data(), size_t(flush.bytes()), &clock);
    } else {
      pass();
    }
    if (y) check(cudaMemcpyAsync(y, out, size_t(M * m.output_width) * 4, cudaMemcpyDeviceToHost, m.stream), "copy y");
    check(cudaStreamSynchronize(m.stream), "forward pass");
  }
  stats.peak_bytes = m.alloc.peak_bytes();
  stats.predicted_bytes = plan_bytes(M, opt);
  return stats;
}

}  // namespace batchcore::cuda
