// What this machine and build are: caches, SIMD levels, default threads, compiler and flags; and the
// probes of its ceilings (fma peak, clock, triad bandwidth).
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings.hpp"
#include "batchcore_build_info.hpp"
#include "batchcore/cache_sizes.hpp"
#include "batchcore/cpu_features.hpp"
#include "batchcore/errors.hpp"
#include "batchcore/gemm_tuning.hpp"
#include "batchcore/probes.hpp"
#include "batchcore/thread_pool.hpp"

namespace py = pybind11;

namespace batchcore {
namespace {

// 0 means all cores; anything else must lie in 1..kMaxThreads (ArgumentError, as in the Python layer).
int thread_count(int threads) {
  const int t = threads == 0 ? default_thread_count() : threads;
  check_thread_count(t);
  return t;
}

}  // namespace

void bind_machine(py::module_& m) {
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
  m.def("gemm_tuning", [] {
    const GemmTuning t = gemm_tuning();
    return py::dict(py::arg("tile_l2_eighths") = t.tile_l2_eighths, py::arg("traversal") = int(t.traversal),
                    py::arg("min_work_log2") = t.min_work_log2);
  }, "The GEMM's scheduling parameters now in force (gemm_tuning.hpp); they never change a bit.");
  m.def(
      "set_gemm_tuning",
      [](int tile_l2_eighths, int traversal, int min_work_log2) {
        set_gemm_tuning(GemmTuning{tile_l2_eighths, Traversal(traversal), min_work_log2});
      },
      py::arg("tile_l2_eighths"), py::arg("traversal"), py::arg("min_work_log2"),
      "Sets the GEMM's scheduling parameters for the next GEMMs (ArgumentError out of range).");
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
}

}  // namespace batchcore
