// Python bindings of the CPU core. Thin by rule: check arguments, release the GIL, call the core,
// translate errors. Arrays must already be C-contiguous float32: nothing is silently converted.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <string>

#include "activation_names.hpp"
#include "array_checks.hpp"
#include "error_table.hpp"
#include "batchcore_build_info.hpp"
#include "kernels/tile_kernels.hpp"
#include "forward_bindings.hpp"
#include "graph_bindings.hpp"
#include "timing_dict.hpp"
#include "batchcore/cache_sizes.hpp"
#include "batchcore/conv.hpp"
#include "batchcore/cpu_features.hpp"
#include "batchcore/dot.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/gemm.hpp"
#include "batchcore/math_fixed.hpp"
#include "batchcore/model.hpp"
#include "batchcore/order.hpp"
#include "batchcore/probes.hpp"
#include "batchcore/run_options.hpp"
#include "batchcore/thread_pool.hpp"
#include "batchcore/timer.hpp"

namespace py = pybind11;
using namespace batchcore;

namespace {

// 0 means all cores; anything else must lie in 1..kMaxThreads (ArgumentError, as in the Python layer).
int thread_count(int threads) {
  const int t = threads == 0 ? default_thread_count() : threads;
  check_thread_count(t);
  return t;
}

// The bound Conv2d owns the allocator its packed weights and workspace come from (in a graph, the graph's).
struct BoundConv2d {
  TrackingAllocator alloc;
  Conv2d conv;
  BoundConv2d(const float* w, const float* b, const Conv2dShape& s) : conv(w, b, s, alloc) {}
};


py::array_t<float> output_array(int64_t rows, int64_t cols) { return py::array_t<float>({rows, cols}); }

py::array model_input(const Model& self, const py::object& obj) { return f32_rows(obj, self.input_width(), "input"); }

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "batchcore's CPU core: named accumulation orders, GEMM, forward passes, tracked memory.";
#ifdef BATCHCORE_VERSION
  m.attr("__version__") = BATCHCORE_VERSION;  // pyproject.toml's, through CMake
#else
  m.attr("__version__") = "0.0.0+unknown";
#endif

  // The base class first, subclasses with it as their base; translators run newest first.
  static py::exception<Error> base(m, "BatchcoreError", PyExc_Exception);
  for_each_error_class([&](auto cls, const char* name) {
    py::register_exception<typename decltype(cls)::type>(m, name, base.ptr());
  });

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

  // The defaults of every call that takes options: seq, fp32, fixed, all cores, the best SIMD level.
  const RunOptions defaults = parse_run_options(Order{}, "fp32", "fixed", std::nullopt, "auto");
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

  m.def("order_grammar", &order_grammar);
  m.def("parse_precision", [](const std::string& s) { return format_precision(parse_precision(s)); });
  m.def("cache_sizes", [] {
    const CacheSizes& c = cache_sizes();
    py::dict d;
    d["l1d_bytes"] = c.l1d_bytes;
    d["l2_bytes"] = c.l2_bytes;
    d["l3_bytes"] = c.l3_bytes;
    d["blocking_l2_bytes"] = c.blocking_l2_bytes;
    d["source"] = c.source;
    return d;
  }, "The caches the GEMM's blocking reads (bytes; per core for L1d and L2): a dict with the source.");
  m.def("simd_level", [] { return format_simd_level(best_simd_level()); });
  m.def("simd_levels", [] {
    std::vector<std::string> out;
    for (auto l : available_simd_levels()) out.push_back(format_simd_level(l));
    return out;
  });
  m.def("default_threads", &default_thread_count);
  m.def("build_info", [] {
    return py::dict(py::arg("cxx_compiler") = build::cxx_compiler, py::arg("cxx_flags") = build::cxx_flags,
                    py::arg("isa_flags") = build::isa_flags, py::arg("build_type") = build::build_type);
  }, "How the C++ core was compiled: compiler, flags of the core, per-instruction-set kernel flags.");
  m.def(
      "probe_fma_peak",
      [](int threads, const std::string& simd, double seconds) {
        const int t = thread_count(threads);
        const SimdLevel level = parse_simd_level(simd);
        py::gil_scoped_release release;
        return probe_fma_peak_gflops(t, level, seconds);
      },
      py::arg("threads") = 0, py::arg("simd") = "auto", py::arg("seconds") = 0.5,
      "FMA peak in GFLOP/s: a register-resident fma loop on every thread (best of 3 timed runs).");
  m.def(
      "probe_clock_ghz",
      [](int threads, double seconds) {
        check_thread_count(threads);
        py::gil_scoped_release release;
        return probe_clock_ghz(threads, seconds);
      },
      py::arg("threads"), py::arg("seconds") = 0.2,
      "Effective core clock in GHz with `threads` threads busy (dependent integer adds, one cycle each).");
  m.def(
      "probe_triad",
      [](int threads, int64_t elements, int repeats, const std::string& simd) {
        check_thread_count(threads);
        const SimdLevel level = parse_simd_level(simd);
        py::gil_scoped_release release;
        const TriadProbe t = probe_triad(threads, level, elements, repeats);
        py::gil_scoped_acquire acquire;
        return py::dict(py::arg("gbytes_per_s") = t.gbytes_per_s, py::arg("elements") = t.elements,
                        py::arg("repeats") = t.repeats);
      },
      py::arg("threads"), py::arg("elements"), py::arg("repeats") = 10, py::arg("simd") = "auto",
      "STREAM triad bandwidth in GB/s (best run; 12 bytes per element) over arrays of `elements` floats.");

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
      "row_layer",
      [](const py::object& obj, const std::string& function, const py::object& p0_obj, const py::object& p1_obj,
         float eps, const std::string& simd) {
        const py::array x = f32_array(obj, 2, "x");
        const int64_t n = x.shape(0), width = x.shape(1);
        static const char* names[] = {"relu", "gelu", "silu", "tanh", "gelu_tanh", "softmax", "layer_norm",
                                      "batch_norm"};
        int f = 0;
        while (f < 8 && function != names[f]) ++f;
        if (f == 8) throw UnsupportedLayerError("unknown row function '" + function + "'");
        RowLayer layer{RowFunction(f), width};
        py::array p0, p1;  // layer norm's gamma and beta, batch norm's scale and shift: `width` floats each
        if (layer.function == RowFunction::layer_norm || layer.function == RowFunction::batch_norm) {
          p0 = f32_array(p0_obj, 1, "p0");
          p1 = f32_array(p1_obj, 1, "p1");
          if (p0.size() != width || p1.size() != width) throw ShapeError("p0 and p1 need one value per column");
          layer.p0 = f32_data(p0);
          layer.p1 = f32_data(p1);
        }
        layer.eps = eps;
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
      py::arg("eps") = 0.0f, py::arg("simd") = "auto",
      "A row layer (relu, gelu, silu, tanh, softmax, layer_norm, batch_norm) on a copy of each row of x, by the "
      "kernels of a SIMD level, or simd='definition': layers.hpp's scalar definitions (what the GPU runs).");
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

  m.def(
      "fixed_math",
      [](const py::object& obj, const std::string& name) {
        const py::array x = f32_array(obj, 1, "x");
        float (*f)(float) = nullptr;
        if (name == "exp") f = [](float v) { return bc_exp(v); };
        if (name == "log") f = [](float v) { return bc_log(v); };
        if (name == "tanh") f = [](float v) { return bc_tanh(v); };
        if (!f) throw ArgumentError("fixed_math: unknown function '" + name + "'; known: exp, log, tanh");
        const float* p = f32_data(x);
        py::array_t<float> out(x.size());
        float* o = out.mutable_data();
        for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = f(p[i]);
        return out;
      },
      py::arg("x"), py::arg("name"),
      "math_fixed.hpp's exp, log or tanh of each element: the scalar definitions the CPU and GPU share.");
  m.def("round_to", [](const py::object& obj, const std::string& precision) {
    const py::array x = f32_array(obj, 1, "x");
    const float* p = f32_data(x);
    const Precision prec = parse_precision(precision);
    py::array_t<float> out(x.size());
    float* o = out.mutable_data();
    for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = round_to(p[i], prec);
    return out;
  });

  py::class_<BoundConv2d>(m, "Conv2d",
                     "A 2-D convolution, each output element one dot product in the run's order over the taps "
                     "(ci, kh, kw) in torch's weight layout; a padded tap is a +0 term (docs/orders.md).")
      .def(py::init([](const py::object& w_obj, const py::object& b_obj, int64_t height, int64_t width,
                       std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation,
                       int64_t groups) {
             const py::array w = f32_array(w_obj, 4, "weight");
             if (groups < 1) throw ShapeError("conv2d: groups must be positive, got " + std::to_string(groups));
             Conv2dShape s;
             s.out_channels = w.shape(0);
             s.in_channels = w.shape(1) * groups;
             s.kernel_h = w.shape(2);
             s.kernel_w = w.shape(3);
             s.height = height;
             s.width = width;
             s.stride_h = stride[0], s.stride_w = stride[1];
             s.pad_h = padding[0], s.pad_w = padding[1];
             s.dilation_h = dilation[0], s.dilation_w = dilation[1];
             s.groups = groups;
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
      .def("add_activation", [](Model& self, const std::string& name) { self.add_activation(parse_activation(name)); })
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
      model, [](const Model& self, const py::object& obj) { return model_input(self, obj); },
      [](const Model& self, int64_t rows) { return output_array(rows, self.output_width()); }, defaults);
  bind_graph(m, defaults);
}
