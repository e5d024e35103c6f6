// Every buffer the native backend allocates goes through one TrackingAllocator, so the peak it reports
// is exact in bytes (requested bytes, 64-byte aligned blocks) and can be checked against the planner.
//
// Freed blocks are kept for reuse by a later request of the same size (as PyTorch's caching allocator
// does): a forward pass called again with the same batch size then touches no fresh pages, which would
// otherwise page-fault on every call and cost more than the arithmetic. current/peak count live bytes
// only; cached_bytes() says what is held for reuse, and release_cached() gives it back.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace batchcore {

class TrackingAllocator {
 public:
  // limit_bytes < 0: no limit. Past the limit allocate() throws OutOfMemoryError, as a real OOM does.
  explicit TrackingAllocator(int64_t limit_bytes = -1) : limit_(limit_bytes) {}
  ~TrackingAllocator() { release_cached(); }
  TrackingAllocator(const TrackingAllocator&) = delete;
  TrackingAllocator& operator=(const TrackingAllocator&) = delete;

  void* allocate(size_t bytes);  // throws OutOfMemoryError; never returns null
  void deallocate(void* p, size_t bytes) noexcept;

  int64_t current_bytes() const { return current_.load(); }
  int64_t peak_bytes() const { return peak_.load(); }
  void reset_peak() { peak_.store(current_.load()); }
  void set_limit(int64_t limit_bytes) { limit_ = limit_bytes; }
  int64_t limit() const { return limit_; }
  int64_t cached_bytes() const;
  void release_cached() noexcept;

  static constexpr int64_t kMaxCachedBytes = int64_t(1) << 30;

 private:
  std::atomic<int64_t> current_{0}, peak_{0};
  int64_t limit_;
  mutable std::mutex cache_mu_;
  std::map<size_t, std::vector<void*>> cache_;  // rounded size -> free blocks
  int64_t cached_ = 0;
};

// An owning float buffer from a TrackingAllocator (RAII: freed and untracked when it goes away).
class TrackedBuffer {
 public:
  TrackedBuffer() = default;
  TrackedBuffer(TrackingAllocator& alloc, int64_t count)
      : alloc_(&alloc), count_(count),
        data_(count > 0 ? static_cast<float*>(alloc.allocate(size_t(count) * sizeof(float))) : nullptr) {}
  TrackedBuffer(TrackedBuffer&& o) noexcept { swap(o); }
  TrackedBuffer& operator=(TrackedBuffer&& o) noexcept {
    TrackedBuffer tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~TrackedBuffer() {
    if (data_) alloc_->deallocate(data_, size_t(count_) * sizeof(float));
  }
  float* data() const { return data_; }
  int64_t size() const { return count_; }
  int64_t bytes() const { return count_ * int64_t(sizeof(float)); }

 private:
  void swap(TrackedBuffer& o) noexcept {
    std::swap(alloc_, o.alloc_);
    std::swap(count_, o.count_);
    std::swap(data_, o.data_);
  }
  TrackingAllocator* alloc_ = nullptr;
  int64_t count_ = 0;
  float* data_ = nullptr;
};

}  // namespace batchcore
