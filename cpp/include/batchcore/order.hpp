// An accumulation order: exactly how the K products of one output element are combined.
// The normative definitions are in docs/orders.md; dot.hpp implements them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "batchcore/precision.hpp"

namespace batchcore {

enum class OrderKind : int {
  seq = 0,
  seq_nofma,
  chunk,     // param = C, the chunk length
  splitk,    // param = S, the number of splits: chunk:ceil(K/S)
  lanes,     // param = W, a power of two
  pairwise,
  kahan,
  dot2,
  f64,
  exact,
};

struct Order {
  OrderKind kind = OrderKind::seq;
  int64_t param = 0;
};

// The chunk length that `chunk:C` or `splitk:S` uses for a dot product of length K.
BC_HD int64_t chunk_length(Order o, int64_t K) {
  if (o.kind == OrderKind::splitk) return (K + o.param - 1) / o.param;
  return o.param;
}

constexpr int64_t kMaxLanes = 1024;  // lanes:W stores W partial sums per output element

// ---- host-only: strings ------------------------------------------------------------------------
Order parse_order(const std::string& text);        // throws OrderError naming the problem
std::string format_order(Order o);
Precision parse_precision(const std::string& text);  // throws OrderError
std::string format_precision(Precision p);
std::vector<std::string> order_grammar();            // "seq", "chunk:C", ... for error messages and docs

}  // namespace batchcore
