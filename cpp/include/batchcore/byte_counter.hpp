// Live and peak byte counts with an optional budget: the accounting that the host and the device
// tracking allocators share, so both report peaks by the same rule (requested bytes, counted when the
// allocation succeeds) and refuse past a budget the same way a real out-of-memory does.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "batchcore/errors.hpp"

namespace batchcore {

class ByteCounter {
 public:
  explicit ByteCounter(int64_t limit_bytes = -1) : limit_(limit_bytes) {}

  // Counts `bytes` as live; throws OutOfMemoryError (counting nothing) past the budget. The caller
  // allocates next and calls commit() on success or release() on failure.
  int64_t reserve(size_t bytes, const char* where) {
    const int64_t after = current_.fetch_add(int64_t(bytes)) + int64_t(bytes);
    if (limit_ >= 0 && after > limit_) {
      current_.fetch_sub(int64_t(bytes));
      throw OutOfMemoryError(std::string(where) + " allocation of " + std::to_string(bytes) +
                             " bytes would exceed the budget of " + std::to_string(limit_) + " bytes");
    }
    return after;
  }
  // The reservation's allocation succeeded: it may set a new peak.
  void commit(int64_t after) {
    int64_t seen = peak_.load();
    while (after > seen && !peak_.compare_exchange_weak(seen, after)) {
    }
  }
  void release(size_t bytes) noexcept { current_.fetch_sub(int64_t(bytes)); }

  int64_t current_bytes() const { return current_.load(); }
  int64_t peak_bytes() const { return peak_.load(); }
  void reset_peak() { peak_.store(current_.load()); }
  void set_limit(int64_t limit_bytes) { limit_ = limit_bytes; }  // < 0: no budget
  int64_t limit() const { return limit_; }

 private:
  std::atomic<int64_t> current_{0}, peak_{0};
  std::atomic<int64_t> limit_;
};

// An owning float buffer from a tracking allocator (host or device: anything with allocate(bytes) and
// deallocate(p, bytes)); freed and untracked when it goes away.
template <class Allocator>
class BasicTrackedBuffer {
 public:
  BasicTrackedBuffer() = default;
  BasicTrackedBuffer(Allocator& alloc, int64_t count)
      : alloc_(&alloc), count_(count),
        data_(count > 0 ? static_cast<float*>(alloc.allocate(size_t(count) * sizeof(float))) : nullptr) {}
  BasicTrackedBuffer(BasicTrackedBuffer&& o) noexcept { swap(o); }
  BasicTrackedBuffer& operator=(BasicTrackedBuffer&& o) noexcept {
    BasicTrackedBuffer tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~BasicTrackedBuffer() {
    if (data_) alloc_->deallocate(data_, size_t(count_) * sizeof(float));
  }
  float* data() const { return data_; }
  int64_t size() const { return count_; }
  int64_t bytes() const { return count_ * int64_t(sizeof(float)); }

 private:
  void swap(BasicTrackedBuffer& o) noexcept {
    std::swap(alloc_, o.alloc_);
    std::swap(count_, o.count_);
    std::swap(data_, o.data_);
  }
  Allocator* alloc_ = nullptr;
  int64_t count_ = 0;
  float* data_ = nullptr;
};

}  // namespace batchcore
