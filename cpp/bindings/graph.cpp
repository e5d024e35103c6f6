// batchcore::Graph, a graph of operations over batches of N-D samples, and its forward passes.
#include "bindings.hpp"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "forward_bindings.hpp"
#include "layer_names.hpp"
#include "batchcore/conv.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/graph.hpp"
#include "batchcore/thread_pool.hpp"

namespace py = pybind11;

namespace batchcore {
namespace {

using Pair = std::array<int64_t, 2>;

// A float32 C-contiguous array of any rank >= min_ndim (a constant may be a scalar: rank 0).
py::array f32_any(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj)) return f32_array(obj, 1, name);  // raises its DTypeError
  const auto a = py::reinterpret_borrow<py::array>(obj);
  return f32_array(obj, int(a.ndim()), name);
}

Dims shape_of(const py::array& a) { return Dims(a.shape(), a.shape() + a.ndim()); }

py::array graph_input(const Graph& g, const py::object& obj) { return f32_samples(obj, g.input_dims(), "input"); }

py::array_t<float> graph_output(const Graph& g, int64_t M) {
  std::vector<py::ssize_t> shape{py::ssize_t(M)};
  for (int64_t d : g.output_dims()) shape.push_back(py::ssize_t(d));
  return py::array_t<float>(shape);
}

// A parameter vector of exactly n floats.
const float* vector_of(const py::object& obj, int64_t n, const char* name, py::array& keep) {
  keep = f32_array(obj, 1, name);
  if (keep.size() != n)
    throw ShapeError(std::string(name) + " has " + std::to_string(keep.size()) + " values, " + std::to_string(n) +
                     " needed");
  return f32_data(keep);
}

Pool2dWindow window_of(Pair kernel, Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
  Pool2dWindow w;
  w.kernel_h = kernel[0], w.kernel_w = kernel[1];
  w.stride_h = stride[0], w.stride_w = stride[1];
  w.pad_h = padding[0], w.pad_w = padding[1];
  w.dilation_h = dilation[0], w.dilation_w = dilation[1];
  w.ceil_mode = ceil_mode;
  return w;
}

}  // namespace

void bind_graph(py::module_& m) {
  py::class_<Graph> graph(m, "Graph",
                          "A model as a graph of operations over batches of N-D samples; each add_* returns the "
                          "new value's id (the input is value 0).");
  graph.def(py::init<const Dims&>(), py::arg("input_shape"), "input_shape: one sample's shape (no batch dimension).")
      .def("add_constant",
           [](Graph& g, const py::object& obj) {
             const py::array a = f32_any(obj, "constant");
             return g.add_constant(f32_data(a), shape_of(a));
           })
      .def("add_linear",
           [](Graph& g, int x, const py::object& w_obj, const py::object& b_obj) {
             const py::array w = f32_array(w_obj, 2, "weight");
             py::array b;
             const float* pb = b_obj.is_none() ? nullptr : vector_of(b_obj, w.shape(0), "bias", b);
             return g.add_linear(x, f32_data(w), pb, w.shape(0), w.shape(1));
           },
           py::arg("x"), py::arg("weight"), py::arg("bias"))
      .def("add_conv2d",
           [](Graph& g, int x, const py::object& w_obj, const py::object& b_obj, Pair stride, Pair padding,
              Pair dilation, int64_t groups, const std::optional<Pair>& input_dilation,
              const std::optional<Pair>& extra_padding) {
             const py::array w = f32_array(w_obj, 4, "weight");
             const Dims& in = g.dims_of(x);
             if (in.size() != 3) throw ShapeError("conv2d takes (C, H, W) samples");
             const Conv2dShape s = conv2d_shape({w.shape(0), w.shape(1), w.shape(2), w.shape(3)}, in[1], in[2],
                                                stride, padding, dilation, groups, input_dilation.value_or(Pair{1, 1}),
                                                extra_padding.value_or(Pair{0, 0}));
             py::array b;
             const float* pb = b_obj.is_none() ? nullptr : vector_of(b_obj, s.out_channels, "bias", b);
             return g.add_conv2d(x, f32_data(w), pb, s);
           },
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride") = Pair{1, 1},
           py::arg("padding") = Pair{0, 0}, py::arg("dilation") = Pair{1, 1}, py::arg("groups") = 1,
           py::arg("input_dilation") = py::none(), py::arg("extra_padding") = py::none(),
           "A 2-D convolution; input_dilation (zeros between the input's neighbours) and extra_padding (at the end "
           "only) make it a transposed convolution's (see conv.hpp).")
      .def("add_max_pool2d",
           [](Graph& g, int x, Pair kernel, Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
             return g.add_pool2d(x, Graph::Op::max_pool2d, window_of(kernel, stride, padding, dilation, ceil_mode));
           },
           py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding") = Pair{0, 0},
           py::arg("dilation") = Pair{1, 1}, py::arg("ceil_mode") = false)
      .def("add_avg_pool2d",
           [](Graph& g, int x, Pair kernel, Pair stride, Pair padding, bool ceil_mode, bool count_include_pad,
              int64_t divisor_override) {
             Pool2dWindow w = window_of(kernel, stride, padding, Pair{1, 1}, ceil_mode);
             w.count_include_pad = count_include_pad;
             w.divisor_override = divisor_override;
             return g.add_pool2d(x, Graph::Op::avg_pool2d, w);
           },
           py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding") = Pair{0, 0},
           py::arg("ceil_mode") = false, py::arg("count_include_pad") = true, py::arg("divisor_override") = 0)
      .def("add_adaptive_avg_pool2d",
           [](Graph& g, int x, Pair out) { return g.add_adaptive_avg_pool2d(x, out[0], out[1]); }, py::arg("x"),
           py::arg("output_size"))
      .def("add_channel_affine",
           [](Graph& g, int x, const py::object& s_obj, const py::object& t_obj) {
             const int64_t C = g.dims_of(x).front();
             py::array s, t;
             const float* ps = vector_of(s_obj, C, "scale", s);
             return g.add_channel_affine(x, ps, vector_of(t_obj, C, "shift", t));
           },
           py::arg("x"), py::arg("scale"), py::arg("shift"),
           "y = x * scale[c] + shift[c], c the sample's first dimension (batch norm in eval mode, folded).")
      .def("add_activation",
           [](Graph& g, int x, const std::string& name, const std::optional<double>& alpha) {
             const Activation a = parse_activation(name);
             return g.add_activation(x, a, activation_parameter(a, alpha));
           },
           py::arg("x"), py::arg("name"), py::arg("alpha") = py::none(),
           "An element-wise activation; alpha: leaky_relu's negative slope or elu's alpha (those two only).")
      .def("add_softmax", &Graph::add_softmax, py::arg("x"), py::arg("dim"))
      .def("add_log_softmax", &Graph::add_log_softmax, py::arg("x"), py::arg("dim"))
      .def("add_reduce", &Graph::add_reduce, py::arg("x"), py::arg("dim"), py::arg("mean"),
           "Sum (mean=False) or mean over one sample dimension, left to right from the first value.")
      .def("add_layer_norm",
           [](Graph& g, int x, const py::object& g_obj, const py::object& b_obj, float eps) {
             const int64_t n = g.dims_of(x).back();
             py::array ga, ba;
             const float* pg = vector_of(g_obj, n, "layer norm weight", ga);
             return g.add_layer_norm(x, pg, vector_of(b_obj, n, "layer norm bias", ba), eps);
           },
           py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"))
      .def("add_binary",
           [](Graph& g, int a, int b, const std::string& op) { return g.add_binary(a, b, parse_binary_op(op)); },
           py::arg("a"), py::arg("b"), py::arg("op"))
      .def("add_reshape", &Graph::add_reshape, py::arg("x"), py::arg("shape"))
      .def("add_permute", &Graph::add_permute, py::arg("x"), py::arg("perm"))
      .def("add_concat", &Graph::add_concat, py::arg("xs"), py::arg("dim"))
      .def("add_slice", &Graph::add_slice, py::arg("x"), py::arg("dim"), py::arg("start"), py::arg("stop"),
           py::arg("step") = 1, "x's entries start, start + step, ... below stop along one sample dimension (copies).")
      .def("add_matmul", &Graph::add_matmul, py::arg("a"), py::arg("b"),
           "a (..., m, k) times b (..., k, n), both depending on the input, per group of the leading dimensions: each "
           "element a dot over k in the run's order.")
      .def("add_attention", &Graph::add_attention, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("scale"),
           py::arg("causal") = false,
           "Scaled dot-product attention over the last two dimensions (the leading ones are groups, e.g. heads).")
      .def("add_embedding",
           [](Graph& g, int x, const py::object& t_obj) {
             const py::array t = f32_array(t_obj, 2, "embedding table");
             return g.add_embedding(x, f32_data(t), t.shape(0), t.shape(1));
           },
           py::arg("x"), py::arg("table"), "Rows of table for x's token ids (float32 integers).")
      .def("set_output", &Graph::set_output, py::arg("value"))
      .def("shape_of", [](const Graph& g, int v) { return g.dims_of(v); }, py::arg("value"))
      .def_property_readonly("input_shape", [](const Graph& g) { return g.input_dims(); })
      .def_property_readonly("output_shape", [](const Graph& g) { return g.output_dims(); })
      .def_property_readonly("flops_per_sample", &Graph::flops_per_sample)
      .def("describe", &Graph::describe)
      .def("__repr__", [](const Graph& g) { return "<batchcore._core.Graph " + g.describe() + ">"; });
  bind_forward_passes(graph, &graph_input, &graph_output, default_run_options());
}

}  // namespace batchcore
