// Every buffer the native backend allocates goes through one TrackingAllocator, so the peak it reports
// is exact in bytes (requested bytes, 64-byte aligned blocks) and can be checked against the planner.
//
// Freed blocks are kept for reuse by a later request of the same size (as PyTorch's caching allocator
// does): a forward pass called again with the same batch size then touches no fresh pages, which would
// otherwise page-fault on every call and cost more than the arithmetic. current/peak count live bytes
// only; cached_bytes() says what is held for reuse, and release_cached() gives it back.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "batchcore/byte_counter.hpp"

namespace batchcore {

class TrackingAllocator {
 public:
  // limit_bytes < 0: no limit. Past the limit allocate() throws OutOfMemoryError, as a real OOM does.
  explicit TrackingAllocator(int64_t limit_bytes = -1) : bytes_(limit_bytes) {}
  ~TrackingAllocator() { release_cached(); }
  TrackingAllocator(const TrackingAllocator&) = delete;
  TrackingAllocator& operator=(const TrackingAllocator&) = delete;

  void* allocate(size_t bytes);  // throws OutOfMemoryError; never returns null
  void deallocate(void* p, size_t bytes) noexcept;

  int64_t current_bytes() const { return bytes_.current_bytes(); }
  int64_t peak_bytes() const { return bytes_.peak_bytes(); }
  void reset_peak() { bytes_.reset_peak(); }
  void set_limit(int64_t limit_bytes) { bytes_.set_limit(limit_bytes); }
  int64_t limit() const { return bytes_.limit(); }
  int64_t cached_bytes() const;
  void release_cached() noexcept;

  static constexpr int64_t kMaxCachedBytes = int64_t(1) << 30;

 private:
  ByteCounter bytes_;
  mutable std::mutex cache_mu_;
  std::map<size_t, std::vector<void*>> cache_;  // rounded size -> free blocks
  int64_t cached_ = 0;
};

using TrackedBuffer = BasicTrackedBuffer<TrackingAllocator>;

}  // namespace batchcore
