// Every device buffer of the CUDA core goes through one DeviceAllocator, so its peak is exact in bytes
// (requested bytes; the same ByteCounter rule as the host allocator) and equals the planner's prediction.
// A failed cudaMalloc becomes OutOfMemoryError with the runtime's error cleared and nothing counted; a
// budget (set_limit) plants the same error earlier, so the search for the largest batch can be tested.
// Plain C++: no CUDA types, so host-compiled code can hold one.
#pragma once
#include <cstddef>
#include <cstdint>

#include "batchcore/byte_counter.hpp"

namespace batchcore::cuda {

class DeviceAllocator {
 public:
  explicit DeviceAllocator(int device, int64_t limit_bytes = -1) : device_(device), bytes_(limit_bytes) {}
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  void* allocate(size_t bytes);                    // on device_; throws OutOfMemoryError, never returns null
  void deallocate(void* p, size_t bytes) noexcept;

  int device() const { return device_; }
  int64_t current_bytes() const { return bytes_.current_bytes(); }
  int64_t peak_bytes() const { return bytes_.peak_bytes(); }
  void reset_peak() { bytes_.reset_peak(); }
  void set_limit(int64_t limit_bytes) { bytes_.set_limit(limit_bytes); }
  int64_t limit() const { return bytes_.limit(); }

 private:
  int device_;
  ByteCounter bytes_;
};

using DeviceTrackedBuffer = BasicTrackedBuffer<DeviceAllocator>;

}  // namespace batchcore::cuda
