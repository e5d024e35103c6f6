#include "batchcore/dot.hpp"

#include <string>

#include "batchcore/errors.hpp"

namespace batchcore {

float checked_dot(const float* a, const float* b, int64_t K, float c, Order o, Precision p) {
  if (K <= 0) throw ShapeError("dot product of length K=" + std::to_string(K) + ": K must be at least 1");
  for (int64_t k = 0; k < K; ++k)
    if (!std::isfinite(a[k]) || !std::isfinite(b[k]))
      throw NonFiniteError("dot product input contains NaN or Inf at k=" + std::to_string(k));
  if (!std::isfinite(c)) throw NonFiniteError("dot product bias c is NaN or Inf");
  return dot_ordered(a, b, 1, K, c, o, p);
}

}  // namespace batchcore
