// The checks every forward pass's input meets, whichever backend runs it (the Python layer calls them for
// backends that do not go through the core): the same code, class and message everywhere.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "array_checks.hpp"
#include "bindings.hpp"
#include "batchcore/finite.hpp"
#include "batchcore/tensor_ops.hpp"
#include "batchcore/thread_pool.hpp"

namespace py = pybind11;

namespace batchcore {

void bind_checks(py::module_& m) {
  m.def(
      "check_rows",
      [](const py::object& obj, int64_t width, bool finite) {
        const py::array x = f32_rows(obj, width, "input");
        if (!finite) return;
        const float* p = f32_data(x);
        py::gil_scoped_release release;
        const PoolView pool = shared_pool(default_thread_count());
        require_finite(p, x.size(), "input", width, &pool);
      },
      py::arg("x"), py::arg("width"), py::arg("finite") = true,
      "The checks every forward pass's input meets, whichever backend runs it: a C-contiguous, non-empty "
      "float32 numpy array of rows of `width` values (DTypeError, ShapeError); with finite, NonFiniteError "
      "naming the first NaN or Inf (the scan every pass of the core makes, on the core's threads).");
  m.def(
      "check_samples",
      [](const py::object& obj, const Dims& shape, bool finite) {
        const py::array x = f32_samples(obj, shape, "input");
        if (!finite) return;
        const float* p = f32_data(x);
        const int64_t per_sample = element_count(shape);
        py::gil_scoped_release release;
        const PoolView pool = shared_pool(default_thread_count());
        require_finite(p, x.size(), "input", per_sample, &pool);
      },
      py::arg("x"), py::arg("shape"), py::arg("finite") = true,
      "check_rows for a graph's input: a C-contiguous, non-empty float32 array of samples of `shape`; with finite, "
      "NonFiniteError naming the first NaN or Inf (by sample and flat index within it).");
}

}  // namespace batchcore
