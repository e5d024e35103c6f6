// The parts of the _core extension, one per concern, each adding its names to the module (module.cpp
// calls them in order). Thin by rule: check arguments (array_checks.hpp), release the GIL, call the core,
// translate errors (error_table.hpp). Spellings are parsed in the core, never here.
#pragma once
#include <pybind11/pybind11.h>

#include "batchcore/run_options.hpp"

namespace batchcore {

void bind_errors(pybind11::module_& m);    // the exception classes (errors.cpp)
void bind_orders(pybind11::module_& m);    // Order, RunOptions, one dot product, rounding (orders.cpp)
void bind_timer(pybind11::module_& m);     // TimerPolicy and the timer around a Python callable (timer.cpp)
void bind_machine(pybind11::module_& m);   // caches, SIMD levels, threads, build, the ceilings' probes (machine.cpp)
void bind_checks(pybind11::module_& m);    // the input checks every backend shares (checks.cpp)
void bind_model(pybind11::module_& m);     // a chain of layers and its forward passes (model.cpp)
void bind_graph(pybind11::module_& m);     // a graph of operations and its forward passes (graph.cpp)
void bind_testing(pybind11::module_& m);   // hooks only the tests call: the _core.testing submodule (testing.cpp)

// The options of every call that takes none: seq, fp32, fixed, all cores, the best SIMD level.
const RunOptions& default_run_options();

}  // namespace batchcore
