// The forward-pass methods every CPU model of the core has (Model, Graph), bound once: run, measure,
// run_batched, plan_bytes and the allocator's budget and counters. `Core` needs run(x, M, y, options),
// run_batched(x, M, B, y, options), plan_bytes(M, options) and allocator(); `input(self, obj)` checks a
// Python input and returns it as an array, `output(self, M)` makes the result array.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "timing_dict.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/model.hpp"
#include "batchcore/run_options.hpp"

namespace batchcore {

// A copy of the parsed options with this call's timer and cold-mode bytes.
inline RunOptions for_call(const RunOptions& options, const TimerPolicy* timer, int64_t cold_bytes) {
  if (cold_bytes < 0) throw ArgumentError("cold_bytes must be >= 0, got " + std::to_string(cold_bytes));
  RunOptions o = options;
  o.timer = timer;
  o.cold_bytes = cold_bytes;
  return o;
}

template <class Core, class Input, class Output>
void bind_forward_passes(pybind11::class_<Core>& cls, Input input, Output output, const RunOptions& defaults) {
  namespace py = pybind11;
  // One pass (or the timer's passes) of x; the GIL is released while the core runs.
  const auto pass = [input, output](Core& self, const py::object& obj, const RunOptions& opt) {
    const py::array x = input(self, obj);
    const float* px = static_cast<const float*>(x.data());
    py::array_t<float> y = output(self, x.shape(0));
    float* py_ = y.mutable_data();
    RunStats stats;
    {
      py::gil_scoped_release release;
      stats = self.run(px, x.shape(0), py_, opt);
    }
    return std::make_pair(y, stats);
  };
  cls.def(
         "run",
         [pass](Core& self, const py::object& obj, const RunOptions& options) {
           auto [y, stats] = pass(self, obj, options);
           return py::make_tuple(y, stats.peak_bytes, stats.predicted_bytes);
         },
         py::arg("x"), py::arg_v("options", defaults, "RunOptions()"),
         "One forward pass of x (M samples). Returns (y, peak_bytes, predicted_bytes).")
      .def(
          "measure",
          [pass](Core& self, const py::object& obj, const TimerPolicy& timer, const RunOptions& options,
                 int64_t cold_bytes) {
            auto [y, stats] = pass(self, obj, for_call(options, &timer, cold_bytes));
            return py::make_tuple(y, summary_dict(stats.timing), stats.peak_bytes, stats.predicted_bytes);
          },
          py::arg("x"), py::arg("timer"), py::arg_v("options", defaults, "RunOptions()"), py::arg("cold_bytes") = 0,
          "Forward passes of x timed by the timer policy; cold_bytes > 0: each pass reads the next of copies of x "
          "holding that many bytes. Returns (y, summary, peak_bytes, predicted_bytes).")
      .def(
          "run_batched",
          [input, output](Core& self, const py::object& obj, int64_t batch_size, const RunOptions& options) {
            const py::array x = input(self, obj);
            const float* px = static_cast<const float*>(x.data());
            py::array_t<float> y = output(self, x.shape(0));
            float* py_ = y.mutable_data();
            {
              py::gil_scoped_release release;
              self.run_batched(px, x.shape(0), batch_size, py_, options);
            }
            return y;
          },
          py::arg("x"), py::arg("batch_size"), py::arg_v("options", defaults, "RunOptions()"),
          "Consecutive batches of batch_size samples (the last one shorter), outputs concatenated.")
      .def(
          "plan_bytes",
          [](const Core& self, int64_t M, const RunOptions& options, int64_t cold_bytes) {
            if (M <= 0) throw ShapeError("batch size must be positive, got " + std::to_string(M));
            return self.plan_bytes(M, for_call(options, nullptr, cold_bytes));
          },
          py::arg("batch_size"), py::arg_v("options", defaults, "RunOptions()"), py::arg("cold_bytes") = 0,
          "Exact peak bytes a pass of batch_size samples holds (packed weights included).")
      .def_property(
          "memory_limit", [](Core& self) { return self.allocator().limit(); },
          [](Core& self, int64_t v) { self.allocator().set_limit(v); },
          "Byte budget of the model's tracking allocator (-1: none); past it a run raises OutOfMemoryError.")
      .def_property_readonly("current_bytes", [](Core& self) { return self.allocator().current_bytes(); },
                             "Live tracked bytes (the packed weights between runs).")
      .def_property_readonly("cached_bytes", [](Core& self) { return self.allocator().cached_bytes(); },
                             "Freed bytes kept for reuse by the next run of the same shape.")
      .def("release_cached", [](Core& self) { self.allocator().release_cached(); });
}

}  // namespace batchcore
