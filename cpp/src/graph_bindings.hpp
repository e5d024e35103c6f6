// The binding of batchcore::Graph (graph_bindings.cpp), called from _core's module definition.
#pragma once
#include <pybind11/pybind11.h>

#include "batchcore/run_options.hpp"

namespace batchcore {

void bind_graph(pybind11::module_& m, const RunOptions& defaults);

}  // namespace batchcore
