// The _core extension: batchcore's CPU core for Python. Each concern binds its own names (bindings.hpp).
#include "bindings.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "batchcore's CPU core: named accumulation orders, GEMM, forward passes, tracked memory.";
#ifdef BATCHCORE_VERSION
  m.attr("__version__") = BATCHCORE_VERSION;  // pyproject.toml's, through CMake
#else
  m.attr("__version__") = "0.0.0+unknown";
#endif
  batchcore::bind_errors(m);  // first: every later binding may raise them
  batchcore::bind_orders(m);
  batchcore::bind_timer(m);
  batchcore::bind_machine(m);
  batchcore::bind_checks(m);
  batchcore::bind_model(m);
  batchcore::bind_graph(m);
  py::module_ testing = m.def_submodule("testing", "Hooks the tests call: the row layers and fixed math by their "
                                                   "definitions, a convolution layer alone.");
  batchcore::bind_testing(testing);
}
