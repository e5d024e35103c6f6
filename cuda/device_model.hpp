// A model's forward pass on a CUDA device, built from the host Model (same layers, same parameters).
// Every order and precision gives the CPU core's bits (the chain orders by tiled kernels whose tile
// configuration does not depend on M, the others element by element; row layers are the BC_HD code).
// Every device byte goes through the model's DeviceAllocator; plan_bytes predicts the peak exactly:
//   weights (per linear layer K x N packed + N bias; per layer norm / batch norm 2 x width)
//   + input (M x input width) + two activation buffers (M x widest layer) + the L2 flush buffer when cold.
// Plain C++ (the CUDA state is behind a pointer), so host-compiled bindings can hold one.
#pragma once
#include <cstdint>
#include <memory>

#include "batchcore/model.hpp"
#include "batchcore/timer.hpp"
#include "device_allocator.hpp"

namespace batchcore::cuda {

struct DeviceRunOptions {
  Order order;
  Precision precision = Precision::fp32;
  Policy policy = Policy::fixed;
  const TimerPolicy* timer = nullptr;  // when set, the pass is timed with CUDA events by this policy
  bool cold = false;                   // flush the L2 before every timed pass (its buffer is planned)
};

// The device's reading of the parsed options: order, precision and policy (threads and the SIMD level
// do not apply on a GPU).
inline DeviceRunOptions device_options(const RunOptions& o, const TimerPolicy* timer = nullptr, bool cold = false) {
  DeviceRunOptions d;
  d.order = o.order;
  d.precision = o.precision;
  d.policy = o.policy;
  d.timer = timer;
  d.cold = cold;
  return d;
}

struct DeviceRunStats {
  TimingSummary timing;  // device time of the forward pass alone (input already on the device)
  int64_t peak_bytes = 0;
  int64_t predicted_bytes = 0;
};

class DeviceModel {
 public:
  // Copies the layers of `host` to `device`; throws DeviceUnavailableError without such a device.
  DeviceModel(const Model& host, int device);
  ~DeviceModel();
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  // y (M x output width, host) = forward(x (M x input width, host)); x must be finite.
  // x == nullptr: a zero input made on the device, and y may be nullptr (nothing copied back): how the
  // search for the largest batch probes M without a host array of M rows.
  DeviceRunStats run(const float* x, int64_t M, float* y, const DeviceRunOptions& opt);
  int64_t plan_bytes(int64_t M, const DeviceRunOptions& opt) const;
  int64_t l2_flush_bytes() const;  // the cold mode's flush buffer: twice the device's L2
  int device() const;
  int64_t input_width() const;
  int64_t output_width() const;
  DeviceAllocator& allocator();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace batchcore::cuda
