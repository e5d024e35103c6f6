// batchcore's exception classes in Python: BatchcoreError, then one subclass per kind (error_table.hpp).
#include "bindings.hpp"
#include "error_table.hpp"

namespace py = pybind11;

namespace batchcore {

void bind_errors(py::module_& m) {
  // The base class first, subclasses with it as their base; translators run newest first.
  static py::exception<Error> base(m, "BatchcoreError", PyExc_Exception);
  for_each_error_class([&](auto cls, const char* name) {
    py::register_exception<typename decltype(cls)::type>(m, name, base.ptr());
  });
}

}  // namespace batchcore
