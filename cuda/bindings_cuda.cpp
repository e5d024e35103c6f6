// Python bindings of the CUDA core (host-compiled; links the static CUDA library). Same rules as
// cpp/src/bindings.cpp: check, release the GIL, call, translate. Exceptions are _core's classes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "array_checks.hpp"
#include "error_table.hpp"
#include "batchcore_build_info.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/model.hpp"
#include "batchcore/run_options.hpp"
#include "batchcore_cuda.hpp"
#include "device_model.hpp"
#include "sm_clock.hpp"
#include "timing_dict.hpp"

namespace py = pybind11;
using namespace batchcore;

namespace {

// Raises _core's class for a core error (the one table in error_table.hpp), so that
// `except bc.BatchcoreError` and its subclasses catch GPU errors too.
void translate_to_core_exceptions(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const Error& e) {
    PyErr_SetString(py::module_::import("batchcore._core").attr(python_error_name(e)).ptr(), e.what());
  }
}

py::array model_input(const cuda::DeviceModel& self, const py::object& obj) {
  return f32_rows(obj, self.input_width(), "input");
}

// Runs the device model on x: (y, peak_bytes, predicted_bytes), with the timing summary second when timed.
py::tuple run_device(cuda::DeviceModel& self, const py::object& obj, const cuda::DeviceRunOptions& opt) {
  const py::array x = model_input(self, obj);
  const float* px = f32_data(x);
  py::array_t<float> y({x.shape(0), py::ssize_t(self.output_width())});
  float* py_ = y.mutable_data();
  cuda::DeviceRunStats stats;
  {
    py::gil_scoped_release release;
    stats = self.run(px, x.shape(0), py_, opt);
  }
  if (opt.timer) return py::make_tuple(y, summary_dict(stats.timing), stats.peak_bytes, stats.predicted_bytes);
  return py::make_tuple(y, stats.peak_bytes, stats.predicted_bytes);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "batchcore's CUDA core (compiled where nvcc was found).";
  // _core first: its exception classes, and its Order and RunOptions types that these functions take.
  py::module_::import("batchcore._core");
  py::register_local_exception_translator(&translate_to_core_exceptions);  // this module's calls only

  m.def("device_count", &cuda::device_count);
  m.def("device_name", &cuda::device_name, py::arg("device") = 0);
  m.def("runtime_version", &cuda::runtime_version);
  m.def("driver_version", &cuda::driver_version, "The driver's CUDA version as an integer (13000 = 13.0; 0: none).");
  m.def("l2_cache_bytes", &cuda::l2_cache_bytes, py::arg("device"));
  m.def("clock_ghz", &cuda::default_clock_ghz, py::arg("device"), "The device's default (peak) SM clock in GHz.");
  m.def("build_info", [] {
    return py::dict(py::arg("cuda_compiler") = build::cuda_compiler, py::arg("cuda_flags") = build::cuda_flags,
                    py::arg("cuda_architectures") = build::cuda_architectures);
  }, "How the CUDA core was compiled.");
  // The probes run for a second or more: pybind11's call guard releases the GIL around them.
  m.def("probe_fma_peak", &cuda::probe_fma_peak_gflops, py::arg("device"), py::call_guard<py::gil_scoped_release>(),
        "fp32 fma peak in GFLOP/s (register-resident kernel on every SM, best of 3).");
  m.def("probe_copy", &cuda::probe_copy_gbytes_per_s, py::arg("device"), py::call_guard<py::gil_scoped_release>(),
        "Device-to-device copy bandwidth in GB/s (read + write, best of 10).");
  // Streams cross from torch and CuPy as integers (torch: Stream.cuda_stream, CuPy: Stream.ptr).
  const auto as_stream = [](uintptr_t handle) { return reinterpret_cast<void*>(handle); };
  py::class_<cuda::SmClock>(m, "SmClock", "SM 0's clock over a stretch of a stream's work (nvbench's throttle check).")
      .def(py::init<int>(), py::arg("device"))
      .def("mark_start", [as_stream](cuda::SmClock& c, uintptr_t s) { c.mark_start(as_stream(s)); }, py::arg("stream"))
      .def("mark_stop", [as_stream](cuda::SmClock& c, uintptr_t s) { c.mark_stop(as_stream(s)); }, py::arg("stream"))
      .def("ghz", [as_stream](cuda::SmClock& c, uintptr_t s) {
            py::gil_scoped_release release;
            return c.ghz(as_stream(s));
          }, py::arg("stream"))
      .def("throttled", [as_stream](cuda::SmClock& c, uintptr_t s) {
            py::gil_scoped_release release;
            return c.throttled(as_stream(s));
          }, py::arg("stream"))
      .def_property_readonly("default_ghz", &cuda::SmClock::default_ghz);
  m.def(
      "linear_reference",
      [](const py::object& x_obj, const py::object& W_obj, const py::object& b_obj, const Order& order,
         const std::string& precision, int device) {
        const py::array x = f32_array(x_obj, 2, "x"), W = f32_array(W_obj, 2, "weight"), b = f32_array(b_obj, 1, "bias");
        const float *px = f32_data(x), *pw = f32_data(W), *pb = f32_data(b);
        if (x.shape(1) != W.shape(1) || b.shape(0) != W.shape(0))
          throw ShapeError("shapes do not agree: x (M x K), weight (N x K), bias (N)");
        const Precision p = parse_precision(precision);
        py::array_t<float> y({x.shape(0), W.shape(0)});
        float* py_ = y.mutable_data();
        {
          py::gil_scoped_release release;
          cuda::linear_reference(px, pw, pb, py_, x.shape(0), W.shape(0), W.shape(1), order, p, device);
        }
        return y;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("order") = Order{}, py::arg("precision") = "fp32",
      py::arg("device") = 0);

  m.def(
      "dot",
      [](const py::object& a_obj, const py::object& b_obj, float c, const Order& order, const std::string& precision,
         int device) {
        const py::array a = f32_array(a_obj, 1, "a"), b = f32_array(b_obj, 1, "b");
        const float *pa = f32_data(a), *pb = f32_data(b);
        if (a.size() != b.size()) throw ShapeError("a and b differ in length");
        const Precision p = parse_precision(precision);
        float y = 0;
        {
          py::gil_scoped_release release;
          cuda::linear_reference(pa, pb, &c, &y, 1, 1, a.size(), order, p, device);
        }
        return y;
      },
      py::arg("a"), py::arg("b"), py::arg("c") = 0.0f, py::arg("order") = Order{}, py::arg("precision") = "fp32",
      py::arg("device") = 0, "dot(a, b) + c in a named order, computed by one GPU thread.");

  py::class_<cuda::DeviceModel>(m, "DeviceModel", "A batchcore._core.Model's forward pass on a CUDA device.")
      .def(py::init<const Model&, int>(), py::arg("model"), py::arg("device") = 0)
      .def_property_readonly("device", &cuda::DeviceModel::device)
      .def_property_readonly("input_width", &cuda::DeviceModel::input_width)
      .def_property_readonly("output_width", &cuda::DeviceModel::output_width)
      .def_property_readonly("l2_flush_bytes", &cuda::DeviceModel::l2_flush_bytes)
      .def(
          "run",
          [](cuda::DeviceModel& self, const py::object& x, const RunOptions& options) {
            return run_device(self, x, cuda::device_options(options));
          },
          py::arg("x"), py::arg("options"),
          "Forward pass of x (M x input_width). Returns (y, peak_bytes, predicted_bytes).")
      .def(
          "measure",
          [](cuda::DeviceModel& self, const py::object& x, const TimerPolicy& timer, const RunOptions& options,
             bool cold) { return run_device(self, x, cuda::device_options(options, &timer, cold)); },
          py::arg("x"), py::arg("timer"), py::arg("options"), py::arg("cold") = false,
          "Forward passes timed with CUDA events. Returns (y, summary, peak_bytes, predicted_bytes).")
      .def(
          "plan_bytes",
          [](const cuda::DeviceModel& self, int64_t M, const RunOptions& options, bool cold) {
            if (M <= 0) throw ShapeError("batch size must be positive, got " + std::to_string(M));
            return self.plan_bytes(M, cuda::device_options(options, nullptr, cold));
          },
          py::arg("batch_size"), py::arg("options"), py::arg("cold") = false)
      .def(
          "run_zeros",
          [](cuda::DeviceModel& self, int64_t M, const RunOptions& options) {
            if (M <= 0) throw ShapeError("batch size must be positive, got " + std::to_string(M));
            const cuda::DeviceRunOptions opt = cuda::device_options(options);
            py::gil_scoped_release release;
            return self.run(nullptr, M, nullptr, opt).peak_bytes;
          },
          py::arg("batch_size"), py::arg("options"),
          "A forward pass of batch_size zero rows made on the device (no host array); returns the peak bytes. "
          "Raises OutOfMemoryError (everything freed) when it does not fit.")
      .def_property("memory_limit", [](cuda::DeviceModel& self) { return self.allocator().limit(); },
                    [](cuda::DeviceModel& self, int64_t v) { self.allocator().set_limit(v); },
                    "Byte budget of the device allocator (-1: none); past it a run raises OutOfMemoryError.")
      .def_property_readonly("current_bytes", [](cuda::DeviceModel& self) { return self.allocator().current_bytes(); });
}
