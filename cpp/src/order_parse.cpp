#include <cctype>
#include <sstream>

#include "batchcore/errors.hpp"
#include "batchcore/order.hpp"

namespace batchcore {
namespace {

std::string known_orders() {
  std::ostringstream s;
  const auto g = order_grammar();
  for (size_t i = 0; i < g.size(); ++i) s << (i ? ", " : "") << g[i];
  return s.str();
}

// Parse the positive integer after "name:"; no sign, no spaces, no trailing text.
int64_t parse_positive(const std::string& text, const std::string& name, const std::string& arg) {
  const std::string what = "order '" + text + "': " + name + " must be a positive integer";
  if (arg.empty() || arg.size() > 12) throw OrderError(what + ", got '" + arg + "'");
  for (char ch : arg)
    if (!std::isdigit(static_cast<unsigned char>(ch))) throw OrderError(what + ", got '" + arg + "'");
  const int64_t v = std::stoll(arg);
  if (v <= 0) throw OrderError(what + ", got '" + arg + "'");
  return v;
}

}  // namespace

std::vector<std::string> order_grammar() {
  return {"seq", "seq-nofma", "chunk:C", "splitk:S", "lanes:W", "pairwise", "kahan", "dot2", "f64", "exact"};
}

Order parse_order(const std::string& text) {
  const auto colon = text.find(':');
  const std::string head = text.substr(0, colon);
  const bool has_arg = colon != std::string::npos;
  const std::string arg = has_arg ? text.substr(colon + 1) : std::string();

  struct Plain { const char* name; OrderKind kind; };
  static const Plain plain[] = {{"seq", OrderKind::seq},         {"seq-nofma", OrderKind::seq_nofma},
                                {"pairwise", OrderKind::pairwise}, {"kahan", OrderKind::kahan},
                                {"dot2", OrderKind::dot2},         {"f64", OrderKind::f64},
                                {"exact", OrderKind::exact}};
  for (const auto& p : plain) {
    if (head != p.name) continue;
    if (has_arg) throw OrderError("order '" + text + "': '" + head + "' takes no parameter");
    return Order{p.kind, 0};
  }
  const auto need_arg = [&](const char* letter) {
    if (!has_arg)
      throw OrderError("order '" + text + "': '" + head + "' needs a parameter, as in " + head + ":" + letter);
  };
  if (head == "chunk") {
    need_arg("C");
    return Order{OrderKind::chunk, parse_positive(text, "C", arg)};
  }
  if (head == "splitk") {
    need_arg("S");
    return Order{OrderKind::splitk, parse_positive(text, "S", arg)};
  }
  if (head == "lanes") {
    need_arg("W");
    const int64_t w = parse_positive(text, "W", arg);
    if ((w & (w - 1)) != 0) throw OrderError("order '" + text + "': W must be a power of two");
    if (w > kMaxLanes)
      throw OrderError("order '" + text + "': W must be at most " + std::to_string(kMaxLanes));
    return Order{OrderKind::lanes, w};
  }
  throw OrderError("unknown order '" + text + "'; known orders: " + known_orders());
}

std::string format_order(Order o) {
  switch (o.kind) {
    case OrderKind::seq: return "seq";
    case OrderKind::seq_nofma: return "seq-nofma";
    case OrderKind::chunk: return "chunk:" + std::to_string(o.param);
    case OrderKind::splitk: return "splitk:" + std::to_string(o.param);
    case OrderKind::lanes: return "lanes:" + std::to_string(o.param);
    case OrderKind::pairwise: return "pairwise";
    case OrderKind::kahan: return "kahan";
    case OrderKind::dot2: return "dot2";
    case OrderKind::f64: return "f64";
    case OrderKind::exact: return "exact";
  }
  return "?";
}

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "tf32") return Precision::tf32;
  if (text == "bf16") return Precision::bf16;
  if (text == "fp16") return Precision::fp16;
  throw OrderError("unknown precision '" + text + "'; known precisions: fp32, tf32, bf16, fp16");
}

Policy parse_policy(const std::string& text) {
  if (text == "fixed") return Policy::fixed;
  if (text == "library-like") return Policy::library_like;
  throw OrderError("unknown policy '" + text + "'; known policies: fixed, library-like");
}

std::string format_policy(Policy p) { return p == Policy::fixed ? "fixed" : "library-like"; }

std::string format_precision(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
  }
  return "?";
}

}  // namespace batchcore
