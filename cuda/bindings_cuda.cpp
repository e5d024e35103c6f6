// Python bindings of the CUDA core (host-compiled; links the static CUDA library). Same rules as
// cpp/src/bindings.cpp: check, release the GIL, call, translate. Exceptions are _core's classes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "array_checks.hpp"
#include "batchcore/errors.hpp"
#include "batchcore_cuda.hpp"

namespace py = pybind11;
using namespace batchcore;

namespace {

void translate_to_core_exceptions(std::exception_ptr p) {
  const auto raise = [](const char* name, const std::exception& e) {
    PyErr_SetString(py::module_::import("batchcore._core").attr(name).ptr(), e.what());
  };
  try {
    if (p) std::rethrow_exception(p);
  } catch (const OutOfMemoryError& e) { raise("OutOfMemoryError", e);
  } catch (const DeviceUnavailableError& e) { raise("DeviceUnavailableError", e);
  } catch (const ShapeError& e) { raise("ShapeError", e);
  } catch (const DTypeError& e) { raise("DTypeError", e);
  } catch (const OrderError& e) { raise("OrderError", e);
  } catch (const NonFiniteError& e) { raise("NonFiniteError", e);
  } catch (const UnsupportedLayerError& e) { raise("UnsupportedLayerError", e);
  } catch (const Error& e) { raise("BatchcoreError", e);
  }
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "batchcore's CUDA core (compiled where nvcc was found).";
  // Reuse _core's exception classes so that `except bc.BatchcoreError` catches GPU errors too.
  py::module_::import("batchcore._core");
  py::register_local_exception_translator(&translate_to_core_exceptions);  // this module's calls only

  m.def("device_count", &cuda::device_count);
  m.def("device_name", &cuda::device_name, py::arg("device") = 0);
  m.def("runtime_version", &cuda::runtime_version);
  m.def(
      "linear_reference",
      [](const py::array& x, const py::array& W, const py::array& b, const std::string& order,
         const std::string& precision, int device) {
        const float* px = require_f32(x, 2, "x");
        const float* pw = require_f32(W, 2, "weight");
        const float* pb = require_f32(b, 1, "bias");
        if (x.shape(1) != W.shape(1) || b.shape(0) != W.shape(0))
          throw ShapeError("shapes do not agree: x (M x K), weight (N x K), bias (N)");
        const Order o = parse_order(order);
        const Precision p = parse_precision(precision);
        py::array_t<float> y({x.shape(0), W.shape(0)});
        float* py_ = y.mutable_data();
        {
          py::gil_scoped_release release;
          cuda::linear_reference(px, pw, pb, py_, x.shape(0), W.shape(0), W.shape(1), o, p, device);
        }
        return y;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("order") = "seq", py::arg("precision") = "fp32",
      py::arg("device") = 0);
}
