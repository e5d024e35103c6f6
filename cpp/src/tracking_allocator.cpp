#include "batchcore/tracking_allocator.hpp"

#include <cstdlib>
#include <string>

#include "batchcore/errors.hpp"

namespace batchcore {
namespace {

size_t rounded(size_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

void* TrackingAllocator::allocate(size_t bytes) {
  const int64_t after = bytes_.reserve(bytes, "host");
  const size_t size = rounded(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(size);
    if (it != cache_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= int64_t(size);
    }
  }
  if (!p) p = std::aligned_alloc(64, size);
  if (!p) {
    release_cached();  // give cached blocks back and try once more before calling it out of memory
    p = std::aligned_alloc(64, size);
  }
  if (!p) {
    bytes_.release(bytes);
    throw OutOfMemoryError("host allocation of " + std::to_string(bytes) + " bytes failed");
  }
  bytes_.commit(after);
  return p;
}

void TrackingAllocator::deallocate(void* p, size_t bytes) noexcept {
  bytes_.release(bytes);
  const size_t size = rounded(bytes);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cached_ + int64_t(size) <= kMaxCachedBytes) {
      try {
        cache_[size].push_back(p);
        cached_ += int64_t(size);
        return;
      } catch (...) {  // no memory for the bookkeeping: free the block instead
      }
    }
  }
  std::free(p);
}

int64_t TrackingAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  return cached_;
}

void TrackingAllocator::release_cached() noexcept {
  std::lock_guard<std::mutex> lock(cache_mu_);
  for (auto& [size, blocks] : cache_)
    for (void* p : blocks) std::free(p);
  cache_.clear();
  cached_ = 0;
}

}  // namespace batchcore
