#include "batchcore/tracking_allocator.hpp"

#include <cstdlib>
#include <string>

#include "batchcore/errors.hpp"

namespace batchcore {

void* TrackingAllocator::allocate(size_t bytes) {
  const int64_t after = current_.fetch_add(int64_t(bytes)) + int64_t(bytes);
  if (limit_ >= 0 && after > limit_) {
    current_.fetch_sub(int64_t(bytes));
    throw OutOfMemoryError("allocation of " + std::to_string(bytes) + " bytes would exceed the budget of " +
                           std::to_string(limit_) + " bytes");
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) {
    current_.fetch_sub(int64_t(bytes));
    throw OutOfMemoryError("host allocation of " + std::to_string(bytes) + " bytes failed");
  }
  int64_t seen = peak_.load();
  while (after > seen && !peak_.compare_exchange_weak(seen, after)) {
  }
  return p;
}

void TrackingAllocator::deallocate(void* p, size_t bytes) noexcept {
  std::free(p);
  current_.fetch_sub(int64_t(bytes));
}

}  // namespace batchcore
