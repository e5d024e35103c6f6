// _core.testing: what only the tests call. The row layers by a chosen SIMD level's kernels or by their
// scalar definitions, math_fixed.hpp's functions, and a convolution layer on its own (the graph runs the
// same Conv2d): each checked bit for bit against references written in the tests.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>

#include "array_checks.hpp"
#include "bindings.hpp"
#include "layer_names.hpp"
#include "kernels/tile_kernels.hpp"
#include "batchcore/conv.hpp"
#include "batchcore/cpu_features.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/tracking_allocator.hpp"

namespace py = pybind11;

namespace batchcore {
namespace {

// The bound Conv2d owns the allocator its packed weights and workspace come from (in a graph, the graph's).
struct BoundConv2d {
  TrackingAllocator alloc;
  Conv2d conv;
  BoundConv2d(const float* w, const float* b, const Conv2dShape& s) : conv(w, b, s, alloc) {}
};

}  // namespace

void bind_testing(py::module_& m) {
  m.def(
      "row_layer",
      [](const py::object& obj, const std::string& function, const py::object& p0_obj, const py::object& p1_obj,
         float eps, const std::string& simd, float alpha) {
        const py::array x = f32_array(obj, 2, "x");
        const int64_t n = x.shape(0), width = x.shape(1);
        RowLayer layer{parse_row_function(function), width};
        py::array p0, p1;  // layer norm's gamma and beta, batch norm's scale and shift: `width` floats each
        if (layer.function == RowFunction::layer_norm || layer.function == RowFunction::batch_norm) {
          p0 = f32_array(p0_obj, 1, "p0");
          p1 = f32_array(p1_obj, 1, "p1");
          if (p0.size() != width || p1.size() != width) throw ShapeError("p0 and p1 need one value per column");
          layer.p0 = f32_data(p0);
          layer.p1 = f32_data(p1);
        }
        layer.eps = eps;
        layer.alpha = alpha;
        py::array_t<float> y({n, width});
        std::memcpy(y.mutable_data(), f32_data(x), size_t(n * width) * sizeof(float));
        float* rows = y.mutable_data();
        if (simd == "definition") {
          py::gil_scoped_release release;
          row_layer_definition(layer, rows, n, width);
        } else {
          const SimdLevel level = parse_simd_level(simd);
          py::gil_scoped_release release;
          kernels_for(level).row_layer(layer, rows, n, width);
        }
        return y;
      },
      py::arg("x"), py::arg("function"), py::arg("p0") = py::none(), py::arg("p1") = py::none(),
      py::arg("eps") = 0.0f, py::arg("simd") = "auto", py::arg("alpha") = 0.0f,
      "A row layer (an activation, softmax, layer_norm, batch_norm; alpha: leaky_relu's or elu's parameter) on a copy of each row of x, by the "
      "kernels of a SIMD level, or simd='definition': layers.hpp's scalar definitions (what the GPU runs).");
  m.def(
      "fixed_math",
      [](const py::object& obj, const std::string& name) {
        const py::array x = f32_array(obj, 1, "x");
        const FixedMathFunction f = parse_fixed_math(name);
        const float* p = f32_data(x);
        py::array_t<float> out(x.size());
        float* o = out.mutable_data();
        for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = f(p[i]);
        return out;
      },
      py::arg("x"), py::arg("name"),
      "math_fixed.hpp's exp, log or tanh of each element: the scalar definitions the CPU and GPU share.");
  py::class_<BoundConv2d>(m, "Conv2d",
                     "A 2-D convolution, each output element one dot product in the run's order over the taps "
                     "(ci, kh, kw) in torch's weight layout; a padded tap is a +0 term (docs/orders.md).")
      .def(py::init([](const py::object& w_obj, const py::object& b_obj, int64_t height, int64_t width,
                       std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation,
                       int64_t groups) {
             const py::array w = f32_array(w_obj, 4, "weight");
             const Conv2dShape s = conv2d_shape({w.shape(0), w.shape(1), w.shape(2), w.shape(3)}, height, width,
                                                stride, padding, dilation, groups);
             py::array b;
             if (!b_obj.is_none()) {
               b = f32_array(b_obj, 1, "bias");
               if (b.size() != s.out_channels)
                 throw ShapeError("conv2d: bias has " + std::to_string(b.size()) + " values for " +
                                  std::to_string(s.out_channels) + " output channels");
             }
             return std::make_unique<BoundConv2d>(f32_data(w), b_obj.is_none() ? nullptr : f32_data(b), s);
           }),
           py::arg("weight"), py::arg("bias"), py::arg("height"), py::arg("width"),
           py::arg("stride") = std::array<int64_t, 2>{1, 1}, py::arg("padding") = std::array<int64_t, 2>{0, 0},
           py::arg("dilation") = std::array<int64_t, 2>{1, 1}, py::arg("groups") = 1)
      .def_property_readonly("output_shape", [](const BoundConv2d& c) {
        const Conv2dShape& s = c.conv.shape();
        return py::make_tuple(s.out_channels, s.out_height(), s.out_width());
      })
      .def(
          "run",
          [](BoundConv2d& self, const py::object& x_obj, const RunOptions& opt) {
            const py::array x = f32_array(x_obj, 4, "x");
            const Conv2dShape& s = self.conv.shape();
            if (x.shape(1) != s.in_channels || x.shape(2) != s.height || x.shape(3) != s.width)
              throw ShapeError("conv2d: x has samples of " + std::to_string(x.shape(1)) + " x " +
                               std::to_string(x.shape(2)) + " x " + std::to_string(x.shape(3)) + ", the layer takes " +
                               std::to_string(s.in_channels) + " x " + std::to_string(s.height) + " x " +
                               std::to_string(s.width));
            const int64_t N = x.shape(0);
            py::array_t<float> y({N, s.out_channels, s.out_height(), s.out_width()});
            const float* xp = f32_data(x);
            float* yp = y.mutable_data();
            {
              py::gil_scoped_release release;
              self.conv.run(xp, N, yp, opt);
            }
            return y;
          },
          py::arg("x"), py::arg("options"), "y (N, C_out, OH, OW) for x (N, C_in, H, W) float32, finite.");
}

}  // namespace batchcore
