// Orders and run options, parsed once by the core (order_parse.cpp, run_options.cpp); one dot product in
// a named order; rounding to a precision.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>

#include "array_checks.hpp"
#include "bindings.hpp"
#include "batchcore/dot.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/order.hpp"
#include "batchcore/precision.hpp"

namespace py = pybind11;

namespace batchcore {

const RunOptions& default_run_options() {
  static const RunOptions defaults = parse_run_options(Order{}, "fp32", "fixed", std::nullopt, "auto");
  return defaults;
}

void bind_orders(py::module_& m) {
  py::class_<Order>(m, "Order", "An accumulation order, parsed once from its spelling (docs/orders.md). Equal "
                                "orders compare and hash equal; str() gives the canonical spelling.")
      .def(py::init(&parse_order), py::arg("spelling"))
      .def_property_readonly("kind", [](const Order& o) {
             const std::string spelling = format_order(o);
             return spelling.substr(0, spelling.find(':'));
           },
                             "The order's name without its parameter: seq, chunk, lanes, ...")
      .def_property_readonly("param", [](const Order& o) { return o.param; },
                             "C of chunk:C, S of splitk:S, W of lanes:W; 0 for the others.")
      .def("__str__", &format_order)
      .def("__repr__", [](const Order& o) { return "Order('" + format_order(o) + "')"; })
      .def("__eq__", [](const Order& a, const py::object& b) -> py::object {
             if (!py::isinstance<Order>(b)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             return py::bool_(a == b.cast<Order>());
           }, py::is_operator())
      .def("__hash__", [](const Order& o) { return py::hash(py::str(format_order(o))); });


  py::class_<RunOptions>(m, "RunOptions",
                         "How a forward pass runs, parsed once: order, precision, policy (they fix the bits), and "
                         "threads and SIMD level (they never change them). Immutable.")
      .def(py::init(&parse_run_options),
           py::arg("order") = Order{}, py::arg("precision") = "fp32", py::arg("policy") = "fixed",
           py::arg("threads") = py::none(), py::arg("simd") = "auto",
           "threads=None: all cores; simd='auto': the best level this CPU has.")
      .def_property_readonly("order", [](const RunOptions& o) { return o.order; })
      .def_property_readonly("precision", [](const RunOptions& o) { return format_precision(o.precision); })
      .def_property_readonly("policy", [](const RunOptions& o) { return format_policy(o.policy); })
      .def_property_readonly("threads", [](const RunOptions& o) { return o.threads; })
      .def_property_readonly("simd", [](const RunOptions& o) { return format_simd_level(o.simd); })
      .def("resolve", [](const RunOptions& o, int64_t M) {
             if (M <= 0) throw ShapeError("batch size must be positive, got " + std::to_string(M));
             return resolve_order(o.policy, o.order, M);
           }, py::arg("batch_size"), "The order a pass of batch_size rows runs under the policy.")
      .def("__repr__", [](const RunOptions& o) {
        return "RunOptions(order=Order('" + format_order(o.order) + "'), precision='" + format_precision(o.precision) +
               "', policy='" + format_policy(o.policy) + "', threads=" + std::to_string(o.threads) + ", simd='" +
               format_simd_level(o.simd) + "')";
      });

  m.def("order_grammar", &order_grammar);
  m.def("parse_precision", [](const std::string& s) { return format_precision(parse_precision(s)); });
  m.def(
      "dot",
      [](const py::object& a_obj, const py::object& b_obj, float c, const Order& order, const std::string& precision) {
        const py::array a = f32_array(a_obj, 1, "a"), b = f32_array(b_obj, 1, "b");
        const float *pa = f32_data(a), *pb = f32_data(b);
        if (a.size() != b.size())
          throw ShapeError("a and b must have the same length, got " + std::to_string(a.size()) + " and " +
                           std::to_string(b.size()));
        const Precision p = parse_precision(precision);
        py::gil_scoped_release release;
        return checked_dot(pa, pb, a.size(), c, order, p);
      },
      py::arg("a"), py::arg("b"), py::arg("c") = 0.0f, py::arg("order") = Order{}, py::arg("precision") = "fp32");

  m.def("round_to", [](const py::object& obj, const std::string& precision) {
    const py::array x = f32_array(obj, 1, "x");
    const float* p = f32_data(x);
    const Precision prec = parse_precision(precision);
    py::array_t<float> out(x.size());
    float* o = out.mutable_data();
    for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = round_to(p[i], prec);
    return out;
  });
}

}  // namespace batchcore
