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

// Which order a call of M rows runs. "fixed": the given order at every batch size. "library_like": the
// order depends on M, as vendor libraries choose kernels: lanes:16 at M = 1, seq for 2 <= M <= 127,
// splitk:4 from M = 128 on. It plants a batch-size variance whose boundaries are known in advance.
enum class Policy : int { fixed = 0, library_like = 1 };

inline Order resolve_order(Policy policy, Order order, int64_t M) {
  if (policy == Policy::fixed) return order;
  if (M == 1) return Order{OrderKind::lanes, 16};
  if (M <= 127) return Order{OrderKind::seq, 0};
  return Order{OrderKind::splitk, 4};
}

inline bool operator==(Order a, Order b) { return a.kind == b.kind && a.param == b.param; }

// ---- host-only: strings ------------------------------------------------------------------------
Order parse_order(const std::string& text);        // throws OrderError naming the problem
std::string format_order(Order o);
Precision parse_precision(const std::string& text);  // throws OrderError
std::string format_precision(Precision p);
std::vector<std::string> order_grammar();            // "seq", "chunk:C", ... for error messages and docs
Policy parse_policy(const std::string& text);        // "fixed" or "library-like"; throws OrderError
std::string format_policy(Policy p);

}  // namespace batchcore
