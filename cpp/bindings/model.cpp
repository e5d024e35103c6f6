// batchcore::Model, a chain of layers, and its forward passes (forward_bindings.hpp).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>

#include "array_checks.hpp"
#include "bindings.hpp"
#include "forward_bindings.hpp"
#include "layer_names.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/model.hpp"

namespace py = pybind11;

namespace batchcore {

void bind_model(py::module_& m) {
  py::class_<Model> model(m, "Model");
  model.def(py::init<int64_t>(), py::arg("input_width"))
      .def("add_linear",
           [](Model& self, const py::object& W_obj, const py::object& b) {
             const py::array W = f32_array(W_obj, 2, "weight");
             const float* pw = f32_data(W);
             const float* pb = nullptr;
             if (!b.is_none()) {
               const py::array ba = f32_array(b, 1, "bias");  // the caller's b keeps its data alive
               pb = f32_data(ba);
               if (ba.shape(0) != W.shape(0)) throw ShapeError("bias length must equal the weight's rows");
             }
             self.add_linear(pw, pb, W.shape(0), W.shape(1));
           },
           py::arg("weight"), py::arg("bias"))
      .def(
          "add_activation",
          [](Model& self, const std::string& name, const std::optional<double>& alpha) {
            const Activation a = parse_activation(name);
            self.add_activation(a, activation_parameter(a, alpha));
          },
          py::arg("name"), py::arg("alpha") = py::none(),
          "An element-wise activation; alpha: leaky_relu's negative slope or elu's alpha (those two only).")
      .def("add_softmax", &Model::add_softmax)
      .def("add_layer_norm",
           [](Model& self, const py::object& g_obj, const py::object& b_obj, float eps) {
             const py::array g = f32_array(g_obj, 1, "layer norm weight"), b = f32_array(b_obj, 1, "layer norm bias");
             const float *pg = f32_data(g), *pb = f32_data(b);
             if (g.size() != b.size()) throw ShapeError("layer norm weight and bias differ in length");
             self.add_layer_norm(pg, pb, g.size(), eps);
           })
      .def("add_batch_norm",
           [](Model& self, const py::object& s_obj, const py::object& t_obj) {
             const py::array s = f32_array(s_obj, 1, "batch norm scale"), t = f32_array(t_obj, 1, "batch norm shift");
             const float *ps = f32_data(s), *pt = f32_data(t);
             if (s.size() != t.size()) throw ShapeError("batch norm scale and shift differ in length");
             self.add_batch_norm(ps, pt, s.size());
           },
           py::arg("scale"), py::arg("shift"), "Batch norm in eval mode, folded to x * scale + shift.")
      .def_property_readonly("input_width", &Model::input_width)
      .def_property_readonly("output_width", &Model::output_width)
      .def_property_readonly("flops_per_row", &Model::flops_per_row)
      .def("__repr__", [](const Model& self) { return "<batchcore._core.Model " + self.describe() + ">"; });
  bind_forward_passes(
      model, [](const Model& self, const py::object& obj) { return f32_rows(obj, self.input_width(), "input"); },
      [](const Model& self, int64_t rows) { return py::array_t<float>({rows, self.output_width()}); },
      default_run_options());
}

}  // namespace batchcore
