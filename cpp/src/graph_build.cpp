// Building a Graph: each add_* checks its arguments and appends a node (graph.cpp plans and runs them).
#include <algorithm>
#include <cmath>
#include <sstream>

#include "batchcore/errors.hpp"
#include "batchcore/graph.hpp"
#include "batchcore/model.hpp"

namespace batchcore {
namespace {

const char* op_name(Graph::Op op) {
  static const char* names[] = {"input", "constant", "linear", "conv2d", "max_pool2d", "avg_pool2d",
                                "adaptive_avg_pool2d", "channel_affine", "activation", "softmax", "layer_norm",
                                "binary", "reshape", "permute", "attention", "embedding", "log_softmax", "sum", "mean",
                                "concat", "slice", "matmul"};
  return names[int(op)];
}

std::string dims_text(const Dims& d) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < d.size(); ++i) s << (i ? ", " : "") << d[i];
  s << (d.size() == 1 ? ",)" : ")");
  return s.str();
}

[[noreturn]] void shape_error(size_t node, const char* op, const std::string& what) {
  throw ShapeError("graph node " + std::to_string(node) + " (" + op + "): " + what);
}

}  // namespace

Graph::Graph(const Dims& input) {
  Node n;
  n.dims = input;
  if (input.empty() || element_count(input) <= 0 ||
      std::any_of(input.begin(), input.end(), [](int64_t d) { return d <= 0; }))
    throw ShapeError("a graph's input sample shape must have positive dimensions, got " + dims_text(input));
  nodes_.push_back(std::move(n));
}

int Graph::add_node(Node n) {
  nodes_.push_back(std::move(n));
  packed_valid_ = packed_valid_ && nodes_.back().op != Op::linear && nodes_.back().op != Op::conv2d;
  return int(nodes_.size()) - 1;
}

const Graph::Node& Graph::value(int id, const char* what) const {
  if (id < 0 || size_t(id) >= nodes_.size())
    shape_error(nodes_.size(), what, "input value " + std::to_string(id) + " does not exist");
  const Node& n = nodes_[size_t(id)];
  if (!n.batched) shape_error(nodes_.size(), what, "its input must depend on the model's input, not be a constant");
  return n;
}

int Graph::add_constant(const float* values, const Dims& dims) {
  Node n;
  n.op = Op::constant;
  n.dims = dims;
  n.batched = false;
  if (std::any_of(dims.begin(), dims.end(), [](int64_t d) { return d <= 0; }))
    shape_error(nodes_.size(), "constant", "dimensions must be positive, got " + dims_text(dims));
  const int64_t count = element_count(dims);
  require_finite(values, count, "constant", count);
  n.p0.assign(values, values + count);
  return add_node(std::move(n));
}

int Graph::add_linear(int x, const float* W, const float* b, int64_t N, int64_t K) {
  const Node& in = value(x, "linear");
  if (N <= 0 || K <= 0) shape_error(nodes_.size(), "linear", "needs N >= 1 and K >= 1");
  if (in.dims.back() != K)
    shape_error(nodes_.size(), "linear", "takes " + std::to_string(K) + " features, its input is " + dims_text(in.dims));
  require_finite(W, N * K, "linear weight", K);
  if (b) require_finite(b, N, "linear bias", N);
  Node n;
  n.op = Op::linear;
  n.inputs = {x};
  n.dims = in.dims;
  n.dims.back() = N;
  n.p0.assign(W, W + N * K);
  n.p1 = b ? std::vector<float>(b, b + N) : std::vector<float>(size_t(N), 0.0f);
  return add_node(std::move(n));
}

int Graph::add_conv2d(int x, const float* weight, const float* bias, const Conv2dShape& s) {
  const Node& in = value(x, "conv2d");
  if (in.dims != Dims{s.in_channels, s.height, s.width})
    shape_error(nodes_.size(), "conv2d", "takes samples of " + dims_text({s.in_channels, s.height, s.width}) +
                                          ", its input is " + dims_text(in.dims));
  Node n;
  n.op = Op::conv2d;
  n.inputs = {x};
  n.conv = std::make_unique<Conv2d>(weight, bias, s, alloc_);
  n.dims = {s.out_channels, s.out_height(), s.out_width()};
  return add_node(std::move(n));
}

int Graph::add_pool2d(int x, Op kind, const Pool2dWindow& w) {
  if (kind != Op::max_pool2d && kind != Op::avg_pool2d) shape_error(nodes_.size(), "pool2d", "is max or avg");
  const char* name = op_name(kind);
  const Node& in = value(x, name);
  if (in.dims.size() != 3) shape_error(nodes_.size(), name, "takes (C, H, W) samples, got " + dims_text(in.dims));
  if (w.kernel_h <= 0 || w.kernel_w <= 0 || w.stride_h <= 0 || w.stride_w <= 0 || w.dilation_h <= 0 ||
      w.dilation_w <= 0 || w.pad_h < 0 || w.pad_w < 0 || w.divisor_override < 0)
    shape_error(nodes_.size(), name, "kernel, stride and dilation must be positive and padding >= 0");
  if (2 * w.pad_h > w.kernel_h || 2 * w.pad_w > w.kernel_w)
    shape_error(nodes_.size(), name, "padding must be at most half the kernel (as torch requires)");
  Node n;
  n.op = kind;
  n.inputs = {x};
  n.window = w;
  n.dims = {in.dims[0], w.out_size(in.dims[1], true), w.out_size(in.dims[2], false)};
  if (n.dims[1] < 1 || n.dims[2] < 1) shape_error(nodes_.size(), name, "the window is larger than the padded input");
  return add_node(std::move(n));
}

int Graph::add_adaptive_avg_pool2d(int x, int64_t out_h, int64_t out_w) {
  const Node& in = value(x, "adaptive_avg_pool2d");
  if (in.dims.size() != 3)
    shape_error(nodes_.size(), "adaptive_avg_pool2d", "takes (C, H, W) samples, got " + dims_text(in.dims));
  if (out_h <= 0 || out_w <= 0) shape_error(nodes_.size(), "adaptive_avg_pool2d", "output size must be positive");
  Node n;
  n.op = Op::adaptive_avg_pool2d;
  n.inputs = {x};
  n.ints = {out_h, out_w};
  n.dims = {in.dims[0], out_h, out_w};
  return add_node(std::move(n));
}

int Graph::add_channel_affine(int x, const float* scale, const float* shift) {
  return add_node(scaled_and_shifted(x, Op::channel_affine, scale, "batch norm scale", shift, "batch norm shift"));
}

int Graph::add_activation(int x, Activation a, float alpha) {
  Node n;
  n.op = Op::activation;
  n.inputs = {x};
  n.dims = value(x, "activation").dims;
  n.activation = a;
  n.alpha = alpha;
  return add_node(std::move(n));
}

int Graph::add_softmax(int x, int64_t dim) { return add_softmax_node(x, dim, Op::softmax); }

int Graph::add_log_softmax(int x, int64_t dim) { return add_softmax_node(x, dim, Op::log_softmax); }

int Graph::add_reduce(int x, int64_t dim, bool mean) {
  Node n = along_dimension(x, dim, mean ? Op::mean : Op::sum);
  n.dims.erase(n.dims.begin() + long(dim));
  if (n.dims.empty()) n.dims = {1};
  return add_node(std::move(n));
}

int Graph::add_softmax_node(int x, int64_t dim, Op kind) { return add_node(along_dimension(x, dim, kind)); }

Graph::Node Graph::along_dimension(int x, int64_t dim, Op kind) const {
  const Node& in = value(x, op_name(kind));
  if (dim < 0 || dim >= int64_t(in.dims.size()))
    shape_error(nodes_.size(), op_name(kind), "dimension " + std::to_string(dim) + " is not one of " + dims_text(in.dims));
  Node n;
  n.op = kind;
  n.inputs = {x};
  n.dims = in.dims;
  n.ints = {dim};
  return n;
}

int Graph::add_layer_norm(int x, const float* gamma, const float* beta, float eps) {
  Node n = scaled_and_shifted(x, Op::layer_norm, gamma, "layer norm weight", beta, "layer norm bias");
  if (!(eps >= 0.0f) || !std::isfinite(eps)) throw NonFiniteError("layer norm eps must be finite and >= 0");
  n.eps = eps;
  return add_node(std::move(n));
}

Graph::Node Graph::scaled_and_shifted(int x, Op kind, const float* scale, const char* scale_name, const float* shift,
                                      const char* shift_name) const {
  const Node& in = value(x, op_name(kind));
  // batch norm's parameters are per channel (the first sample dimension), layer norm's per last element
  const int64_t count = kind == Op::channel_affine ? in.dims[0] : in.dims.back();
  require_finite(scale, count, scale_name, count);
  require_finite(shift, count, shift_name, count);
  Node n;
  n.op = kind;
  n.inputs = {x};
  n.dims = in.dims;
  n.p0.assign(scale, scale + count);
  n.p1.assign(shift, shift + count);
  return n;
}

int Graph::add_binary(int a, int b, BinaryOp op) {
  for (int id : {a, b})
    if (id < 0 || size_t(id) >= nodes_.size()) shape_error(nodes_.size(), "binary", "input value does not exist");
  const Node &na = nodes_[size_t(a)], &nb = nodes_[size_t(b)];
  if (!na.batched && !nb.batched) shape_error(nodes_.size(), "binary", "one operand must depend on the model's input");
  Node n;
  n.op = Op::binary;
  n.inputs = {a, b};
  n.binary = op;
  if (!broadcast_dims(na.dims, nb.dims, n.dims))
    shape_error(nodes_.size(), "binary", "shapes " + dims_text(na.dims) + " and " + dims_text(nb.dims) +
                                          " do not broadcast");
  return add_node(std::move(n));
}

int Graph::add_reshape(int x, const Dims& dims) {
  const Node& in = value(x, "reshape");
  if (dims.empty() || std::any_of(dims.begin(), dims.end(), [](int64_t d) { return d <= 0; }) ||
      element_count(dims) != element_count(in.dims))
    shape_error(nodes_.size(), "reshape", "cannot make " + dims_text(dims) + " of " + dims_text(in.dims));
  Node n;
  n.op = Op::reshape;
  n.inputs = {x};
  n.dims = dims;
  return add_node(std::move(n));
}

int Graph::add_permute(int x, const std::vector<int64_t>& perm) {
  const Node& in = value(x, "permute");
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != int64_t(i) || sorted.size() != in.dims.size())
      shape_error(nodes_.size(), "permute", "needs a permutation of the " + std::to_string(in.dims.size()) +
                                            " sample dimensions");
  Node n;
  n.op = Op::permute;
  n.inputs = {x};
  n.ints = perm;
  for (int64_t d : perm) n.dims.push_back(in.dims[size_t(d)]);
  return add_node(std::move(n));
}

int Graph::add_concat(const std::vector<int>& xs, int64_t dim) {
  if (xs.size() < 2) shape_error(nodes_.size(), "concat", "joins at least two values");
  const Dims& first = value(xs[0], "concat").dims;
  if (dim < 0 || dim >= int64_t(first.size()))
    shape_error(nodes_.size(), "concat", "dimension " + std::to_string(dim) + " is not one of the sample's " +
                                         std::to_string(first.size()));
  Node n;
  n.op = Op::concat;
  n.inputs = xs;
  n.ints = {dim};
  n.dims = first;
  n.dims[size_t(dim)] = 0;
  for (int x : xs) {
    const Dims& d = value(x, "concat").dims;
    bool same = d.size() == first.size();
    for (size_t i = 0; same && i < d.size(); ++i) same = int64_t(i) == dim || d[i] == first[i];
    if (!same)
      shape_error(nodes_.size(), "concat", "cannot join " + dims_text(d) + " to " + dims_text(first) + " along dimension " +
                                           std::to_string(dim));
    n.dims[size_t(dim)] += d[size_t(dim)];
  }
  return add_node(std::move(n));
}

int Graph::add_slice(int x, int64_t dim, int64_t start, int64_t stop, int64_t step) {
  const Dims& in = value(x, "slice").dims;
  if (dim < 0 || dim >= int64_t(in.size()))
    shape_error(nodes_.size(), "slice", "dimension " + std::to_string(dim) + " is not one of the sample's " +
                                        std::to_string(in.size()));
  const int64_t length = in[size_t(dim)];
  if (step < 1 || start < 0 || start >= stop || stop > length)
    shape_error(nodes_.size(), "slice", "needs 0 <= start < stop <= " + std::to_string(length) + " and step >= 1, got " +
                                        std::to_string(start) + ":" + std::to_string(stop) + ":" + std::to_string(step));
  Node n;
  n.op = Op::slice;
  n.inputs = {x};
  n.ints = {dim, start, step};
  n.dims = in;
  n.dims[size_t(dim)] = (stop - start + step - 1) / step;
  return add_node(std::move(n));
}

int Graph::add_attention(int q, int k, int v, float scale, bool causal) {
  const Dims &dq = value(q, "attention").dims, &dk = value(k, "attention").dims, &dv = value(v, "attention").dims;
  const size_t rank = dq.size();
  if (rank < 2 || dk.size() != rank || dv.size() != rank || !std::equal(dq.begin(), dq.end() - 2, dk.begin()) ||
      !std::equal(dq.begin(), dq.end() - 2, dv.begin()) || dq.back() != dk.back() || dk[rank - 2] != dv[rank - 2])
    shape_error(nodes_.size(), "attention", "needs q (..., Lq, d), k (..., Lk, d) and v (..., Lk, dv) with the same "
                                            "leading dimensions, got " + dims_text(dq) + ", " + dims_text(dk) + ", " +
                                            dims_text(dv));
  if (!std::isfinite(scale)) throw NonFiniteError("attention scale must be finite");
  Node n;
  n.op = Op::attention;
  n.inputs = {q, k, v};
  n.dims = dq;
  n.dims.back() = dv.back();
  n.attention.groups = element_count(Dims(dq.begin(), dq.end() - 2));
  n.attention.q_len = dq[rank - 2];
  n.attention.kv_len = dk[rank - 2];
  n.attention.head_dim = dq.back();
  n.attention.value_dim = dv.back();
  n.attention.scale = scale;
  n.attention.causal = causal;
  return add_node(std::move(n));
}

int Graph::add_matmul(int a, int b) {
  const Dims &da = value(a, "matmul").dims, &db = value(b, "matmul").dims;
  const size_t rank = da.size();
  if (rank < 2 || db.size() != rank || !std::equal(da.begin(), da.end() - 2, db.begin()) || da.back() != db[rank - 2])
    shape_error(nodes_.size(), "matmul", "needs a (..., m, k) and b (..., k, n) with the same leading dimensions, got " +
                                             dims_text(da) + " and " + dims_text(db));
  Node n;
  n.op = Op::matmul;
  n.inputs = {a, b};
  n.dims = da;
  n.dims.back() = db.back();
  n.matmul = MatmulShape{element_count(Dims(da.begin(), da.end() - 2)), da[rank - 2], da.back(), db.back()};
  return add_node(std::move(n));
}

int Graph::add_embedding(int x, const float* table, int64_t rows, int64_t dim) {
  const Node& in = value(x, "embedding");
  if (rows <= 0 || dim <= 0) shape_error(nodes_.size(), "embedding", "the table must not be empty");
  require_finite(table, rows * dim, "embedding table", dim);
  Node n;
  n.op = Op::embedding;
  n.inputs = {x};
  n.dims = in.dims;
  n.dims.push_back(dim);
  n.p0.assign(table, table + rows * dim);
  return add_node(std::move(n));
}

void Graph::set_output(int id) {
  value(id, "output");  // checks that it exists and is not a constant
  output_ = id;
}

const Dims& Graph::dims_of(int id) const {
  if (id < 0 || size_t(id) >= nodes_.size()) throw ShapeError("graph value " + std::to_string(id) + " does not exist");
  return nodes_[size_t(id)].dims;
}

int64_t Graph::flops_per_sample() const {
  int64_t f = 0;
  for (const Node& n : nodes_) {
    if (n.op == Op::linear) f += 2 * element_count(n.dims) * int64_t(n.p0.size() / n.p1.size());
    if (n.op == Op::conv2d) f += 2 * element_count(n.dims) * n.conv->shape().taps();
    if (n.op == Op::attention)  // the scores' dots and the values' dots, per group
      f += 2 * n.attention.groups * n.attention.q_len * n.attention.kv_len * (n.attention.head_dim + n.attention.value_dim);
    if (n.op == Op::matmul) f += 2 * n.matmul.groups * n.matmul.m * n.matmul.k * n.matmul.n;
  }
  return f;
}

std::string Graph::describe() const {
  std::ostringstream s;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    s << (i ? "; " : "") << "%" << i << " = " << op_name(n.op);
    for (size_t j = 0; j < n.inputs.size(); ++j) s << (j ? ", %" : " %") << n.inputs[j];
    s << " -> " << dims_text(n.dims);
  }
  s << "; output %" << output_;
  return s.str();
}

}  // namespace batchcore
