#include "batchcore/graph.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "batchcore/errors.hpp"
#include "batchcore/gemm.hpp"
#include "batchcore/passes.hpp"
#include "batchcore/precision.hpp"
#include "batchcore/thread_pool.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {
namespace {

// Element-wise row functions (the activations) run over a buffer in pieces of this many floats, a
// multiple of every vector width; an element's value never depends on the split.
constexpr int64_t kSegmentFloats = 4096;
constexpr int64_t kMinElementsPerWorker = 16384;

// A row function (layers.hpp) on `rows` rows of `width` floats, in place, by the SIMD level's kernels.
void apply_rows(const RowLayer& layer, float* data, int64_t rows, const GemmOptions& gemm) {
  const IsaKernels& kernels = kernels_for(gemm.simd);
  shared_pool(gemm.threads).parallel_for(rows, [&](int, int64_t r0, int64_t r1) {
    kernels.row_layer(layer, data + r0 * layer.width, r1 - r0, layer.width);
  }, std::max<int64_t>(1, kMinElementsPerWorker / layer.width));
}

}  // namespace

// ---- the plan -----------------------------------------------------------------------------------

std::vector<Graph::Step> Graph::plan(int64_t M, const RunOptions& opt) const {
  const Precision p = opt.precision;
  const size_t count = nodes_.size();
  std::vector<int64_t> last_use(count, -1);
  for (size_t i = 0; i < count; ++i)
    for (int in : nodes_[i].inputs) last_use[size_t(in)] = int64_t(i);
  last_use[size_t(output_)] = int64_t(count);  // the output lives to the end of the pass
  std::vector<Step> steps(count);
  std::vector<int64_t> owner_last(count, -1);  // the last use of any value in an owner's buffer
  for (size_t i = 0; i < count; ++i) {
    const Node& n = nodes_[i];
    Step& s = steps[i];
    s.owner = int(i);
    const auto writable_dying = [&](int in) {  // an input whose buffer this node may overwrite
      const int owner = steps[size_t(in)].owner;
      const Op kind = nodes_[size_t(owner)].op;
      return kind != Op::input && kind != Op::constant && nodes_[size_t(in)].dims == n.dims &&
             owner_last[size_t(owner)] == int64_t(i);
    };
    if (n.op == Op::reshape) {
      s.owner = steps[size_t(n.inputs[0])].owner;
    } else if (n.op == Op::activation || n.op == Op::channel_affine || n.op == Op::softmax ||
               n.op == Op::log_softmax || n.op == Op::layer_norm || n.op == Op::binary) {
      for (int in : n.inputs) {
        const bool shared = n.inputs.size() == 2 && steps[size_t(n.inputs[0])].owner == steps[size_t(n.inputs[1])].owner;
        if (!shared && writable_dying(in)) {
          s.owner = steps[size_t(in)].owner;
          break;
        }
      }
    }
    if (s.owner == int(i) && n.op != Op::input && n.op != Op::constant) s.floats = M * element_count(n.dims);
    if (n.op == Op::linear && p != Precision::fp32) s.workspace = M * element_count(nodes_[size_t(n.inputs[0])].dims);
    if (n.op == Op::conv2d) s.workspace = n.conv->workspace_floats(opt.threads);
    if (n.op == Op::attention) {
      s.workspace = attention_workspace_floats(n.attention, p, opt.threads);
      s.inner_bytes = attention_packed_bytes(n.attention, opt.threads);
    }
    if (n.op == Op::matmul) {
      s.workspace = matmul_workspace_floats(n.matmul, p, opt.threads);
      s.inner_bytes = matmul_packed_bytes(n.matmul, opt.threads);
    }
    int64_t& last = owner_last[size_t(s.owner)];
    last = std::max({last, int64_t(i), last_use[i]});
  }
  for (size_t o = 0; o < count; ++o)
    if (steps[o].floats > 0 && owner_last[o] < int64_t(count)) steps[size_t(owner_last[o])].release.push_back(int(o));
  return steps;
}

int64_t Graph::packed_bytes() const {
  int64_t bytes = 0;
  for (const Node& n : nodes_) {
    if (n.op == Op::linear) bytes += PackedLinear::bytes_for(int64_t(n.p1.size()), int64_t(n.p0.size() / n.p1.size()));
    if (n.op == Op::conv2d) bytes += n.conv->packed_bytes();
  }
  return bytes;
}

int64_t Graph::cold_copies(int64_t M, const RunOptions& opt) const {
  return batchcore::cold_copies(M * input_size() * int64_t(sizeof(float)), opt);
}

int64_t Graph::plan_bytes(int64_t M, const RunOptions& opt) const { return planned_bytes(M, opt, plan(M, opt)); }

int64_t Graph::planned_bytes(int64_t M, const RunOptions& opt, const std::vector<Step>& steps) const {
  const Order order = resolve_order(opt.policy, opt.order, M);
  int64_t base = packed_bytes() + lanes_floats(order, opt.threads) * 4 + cold_copies(M, opt) * M * input_size() * 4;
  int64_t live = 0, peak = 0;
  for (const Step& s : steps) {
    live += s.floats * 4;
    peak = std::max(peak, live + s.workspace * 4 + s.inner_bytes);
    for (int o : s.release) live -= steps[size_t(o)].floats * 4;
  }
  return base + peak;
}

void Graph::ensure_packed(Precision p) {
  if (packed_valid_ && packed_precision_ == p) return;
  packed_.clear();  // the previous precision's panels go first: only one set is ever resident
  for (Node& n : nodes_) {
    if (n.op == Op::linear) {
      const int64_t N = int64_t(n.p1.size()), K = int64_t(n.p0.size()) / N;
      n.packed = int(packed_.size());
      packed_.push_back(pack_weights(n.p0.data(), n.p1.data(), N, K, p, alloc_));
    }
    if (n.op == Op::conv2d) n.conv->ensure_packed(p);
  }
  packed_precision_ = p;
  packed_valid_ = true;
}

// ---- a pass -------------------------------------------------------------------------------------

void Graph::execute(const Node& n, const std::vector<float*>& data, int64_t M, float* out, float* workspace,
                    const GemmWorkspace& ws, const GemmOptions& gemm, Precision p) {
  const PoolView pool = shared_pool(gemm.threads);
  const float* in = n.inputs.empty() ? nullptr : data[size_t(n.inputs[0])];
  const Dims& in_dims = n.inputs.empty() ? n.dims : nodes_[size_t(n.inputs[0])].dims;
  const int64_t in_count = M * element_count(in_dims);
  const auto copy_in = [&] { if (out != in) std::memcpy(out, in, size_t(in_count) * sizeof(float)); };
  switch (n.op) {
    case Op::input:
    case Op::constant:
    case Op::reshape:
      return;
    case Op::linear: {
      const int64_t K = in_dims.back(), rows = in_count / K;
      if (p != Precision::fp32) {
        for (int64_t i = 0; i < in_count; ++i) workspace[i] = round_to(in[i], p);
        in = workspace;
      }
      linear_forward(in, K, rows, packed_[size_t(n.packed)], out, n.dims.back(), ws, gemm);
      return;
    }
    case Op::conv2d: n.conv->forward(in, M, out, workspace, ws, gemm, p); return;
    case Op::max_pool2d: max_pool2d(in, M, in_dims[0], in_dims[1], in_dims[2], n.window, out, pool); return;
    case Op::avg_pool2d: avg_pool2d(in, M, in_dims[0], in_dims[1], in_dims[2], n.window, out, pool); return;
    case Op::adaptive_avg_pool2d:
      adaptive_avg_pool2d(in, M, in_dims[0], in_dims[1], in_dims[2], n.ints[0], n.ints[1], out, pool);
      return;
    case Op::channel_affine:
      channel_affine(in, M, in_dims[0], element_count(in_dims) / in_dims[0], n.p0.data(), n.p1.data(), out, pool);
      return;
    case Op::activation: {
      copy_in();
      RowLayer layer{RowFunction(int(n.activation)), std::min(kSegmentFloats, in_count)};
      layer.alpha = n.alpha;
      const int64_t whole = in_count / layer.width, tail = in_count - whole * layer.width;
      apply_rows(layer, out, whole, gemm);
      layer.width = tail;
      if (tail) kernels_for(gemm.simd).row_layer(layer, out + whole * kSegmentFloats, 1, tail);
      return;
    }
    case Op::softmax:
    case Op::log_softmax: {
      copy_in();
      const size_t d = size_t(n.ints[0]);
      const int64_t len = in_dims[d], inner = element_count(Dims(in_dims.begin() + long(d) + 1, in_dims.end()));
      const int64_t outer = element_count(Dims(in_dims.begin(), in_dims.begin() + long(d)));
      if (inner == 1 && n.op == Op::softmax) {  // rows: the vectorised kernels
        apply_rows(RowLayer{RowFunction::softmax, len}, out, in_count / len, gemm);
      } else {
        softmax_lines(out, M, outer, len, inner, n.op == Op::log_softmax, pool);
      }
      return;
    }
    case Op::layer_norm: {
      copy_in();
      RowLayer layer{RowFunction::layer_norm, in_dims.back(), n.p0.data(), n.p1.data(), n.eps};
      apply_rows(layer, out, in_count / layer.width, gemm);
      return;
    }
    case Op::binary: {
      const Node &a = nodes_[size_t(n.inputs[0])], &b = nodes_[size_t(n.inputs[1])];
      broadcast_binary({data[size_t(n.inputs[0])], a.dims, a.batched}, {data[size_t(n.inputs[1])], b.dims, b.batched},
                       n.binary, n.dims, M, out, pool);
      return;
    }
    case Op::permute: permute(in, M, in_dims, n.ints, out, pool); return;
    case Op::concat: {
      const size_t d = size_t(n.ints[0]);
      std::vector<const float*> parts;
      std::vector<int64_t> lengths;
      for (int x : n.inputs) {
        parts.push_back(data[size_t(x)]);
        lengths.push_back(nodes_[size_t(x)].dims[d]);
      }
      concat(parts, lengths, M, element_count(Dims(n.dims.begin(), n.dims.begin() + long(d))),
             element_count(Dims(n.dims.begin() + long(d) + 1, n.dims.end())), out, pool);
      return;
    }
    case Op::slice: {
      const size_t d = size_t(n.ints[0]);
      slice_lines(in, M, element_count(Dims(in_dims.begin(), in_dims.begin() + long(d))), in_dims[d], n.ints[1],
                  n.ints[2], n.dims[d], element_count(Dims(in_dims.begin() + long(d) + 1, in_dims.end())), out, pool);
      return;
    }
    case Op::sum:
    case Op::mean: {
      const size_t d = size_t(n.ints[0]);
      reduce_lines(in, M, element_count(Dims(in_dims.begin(), in_dims.begin() + long(d))), in_dims[d],
                   element_count(Dims(in_dims.begin() + long(d) + 1, in_dims.end())), n.op == Op::mean, out, pool);
      return;
    }
    case Op::attention:
      attention(in, data[size_t(n.inputs[1])], data[size_t(n.inputs[2])], M, n.attention, out, workspace,
                alloc_, ws, gemm, p);
      return;
    case Op::matmul:
      batched_matmul(in, data[size_t(n.inputs[1])], M, n.matmul, out, workspace, alloc_, ws, gemm, p);
      return;
    case Op::embedding:
      embedding(in, in_count, n.p0.data(), int64_t(n.p0.size()) / n.dims.back(), n.dims.back(), out, pool);
      return;
  }
}

void Graph::forward(const float* x, int64_t M, float* y, const std::vector<Step>& steps, const GemmWorkspace& ws,
                    const GemmOptions& gemm, Precision p) {
  std::vector<TrackedBuffer> buffers(nodes_.size());
  std::vector<float*> data(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    const Step& s = steps[i];
    if (n.op == Op::input) {
      data[i] = const_cast<float*>(x);  // read only: no step writes in place into value 0
    } else if (n.op == Op::constant) {
      data[i] = const_cast<float*>(n.p0.data());  // likewise never written
    } else if (s.floats > 0) {
      buffers[i] = TrackedBuffer(alloc_, s.floats);
      data[i] = buffers[i].data();
    } else {
      data[i] = data[size_t(s.owner)];
    }
    {
      TrackedBuffer workspace(alloc_, s.workspace);
      execute(n, data, M, data[i], workspace.data(), ws, gemm, p);
    }
    for (int o : s.release) buffers[size_t(o)] = TrackedBuffer();
  }
  std::memcpy(y, data[size_t(output_)], size_t(M * output_size()) * sizeof(float));
}

RunStats Graph::run(const float* x, int64_t M, float* y, const RunOptions& opt) {
  if (M <= 0) throw ShapeError("empty batch: a forward pass needs at least one sample");
  const PoolView pool = shared_pool(opt.threads);
  require_finite(x, M * input_size(), "input", input_size(), &pool);
  std::lock_guard<std::mutex> lock(run_mu_);
  ensure_packed(opt.precision);
  alloc_.reset_peak();
  RunStats stats;
  const Order order = resolve_order(opt.policy, opt.order, M);  // once per run: every pass runs this order
  const GemmOptions gemm{order, opt.threads, opt.simd};
  const std::vector<Step> steps = plan(M, opt);
  {
    TrackedBuffer lanes(alloc_, lanes_floats(order, opt.threads));
    const GemmWorkspace ws{lanes.data()};
    stats.timing = run_passes(x, M * input_size(), alloc_, opt, [&](const float* source) {
      forward(source, M, y, steps, ws, gemm, opt.precision);
    });
  }
  stats.peak_bytes = alloc_.peak_bytes();
  stats.predicted_bytes = planned_bytes(M, opt, steps);  // the schedule the run followed
  return stats;
}

void Graph::run_batched(const float* x, int64_t samples, int64_t B, float* y, const RunOptions& opt) {
  in_batches(samples, B, opt, [&](int64_t first, int64_t count, const RunOptions& once) {
    run(x + first * input_size(), count, y + first * output_size(), once);
  });
}

}  // namespace batchcore
