// The finiteness scan every forward pass makes of its input and every layer of its parameters.
#pragma once
#include <cstdint>

namespace batchcore {

class PoolView;

// Throws NonFiniteError naming the first Inf or NaN of p[0..n) (rows of `row_width`); scans on `pool` if given.
void require_finite(const float* p, int64_t n, const char* what, int64_t row_width, const PoolView* pool = nullptr);

}  // namespace batchcore
