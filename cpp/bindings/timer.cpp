// The timer's policy and the timer around a Python callable (or a caller's own sampler); its replay on
// planted durations (Timer.replay).
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <vector>

#include "bindings.hpp"
#include "timing_dict.hpp"
#include "batchcore/timer.hpp"

namespace py = pybind11;

namespace batchcore {

void bind_timer(py::module_& m) {
  py::class_<TimerPolicy>(m, "TimerPolicy", "The timer's settings; see batchcore.Timer for their meaning.")
      .def(py::init<>())
      .def_readwrite("warmup_s", &TimerPolicy::warmup_s)
      .def_readwrite("warmup_calls", &TimerPolicy::warmup_calls)
      .def_readwrite("target", &TimerPolicy::target)
      .def_readwrite("confidence", &TimerPolicy::confidence)
      .def_readwrite("min_samples", &TimerPolicy::min_samples)
      .def_readwrite("min_time_s", &TimerPolicy::min_time_s)
      .def_readwrite("timeout_s", &TimerPolicy::timeout_s)
      .def_readwrite("max_samples", &TimerPolicy::max_samples)
      .def_readwrite("overhead_frac", &TimerPolicy::overhead_frac)
      .def("check", &check_policy);
  m.def(
      "time_callable",
      [](const py::function& fn, const TimerPolicy& p, const py::object& sample) {
        SteadyClock clock;
        auto call = [&] { fn(); };  // a Python call: the GIL stays held
        if (sample.is_none()) return summary_dict(time_on_clock(p, clock, call));
        // A caller's own sampler (CUDA events of torch or CuPy): ns of `calls` calls, or (ns, rejected).
        auto sampler = [&](int64_t calls) {
          const py::object r = sample(calls);
          if (py::isinstance<py::tuple>(r)) {
            const auto t = r.cast<py::tuple>();
            return Sample{t[0].cast<double>(), t[1].cast<bool>()};
          }
          return Sample{r.cast<double>(), false};
        };
        return summary_dict(run_timer(p, clock, call, sampler));
      },
      py::arg("fn"), py::arg("policy"), py::arg("sample") = py::none(),
      "The timer around fn() (a Python callable, called with the GIL); sample(calls), when given, times a "
      "block of calls itself and returns its nanoseconds, or (ns, rejected).");
  m.def(
      "timer_replay",
      [](const TimerPolicy& p, const std::vector<double>& call_ns, double clock_read_ns,
         const std::vector<bool>& rejected) { return summary_dict(replay_timer(p, call_ns, clock_read_ns, rejected)); },
      py::arg("policy"), py::arg("call_ns"), py::arg("clock_read_ns") = 0.0,
      py::arg("rejected") = std::vector<bool>{},
      "The timer on planted call durations and a fake clock (for tests).");
}

}  // namespace batchcore
