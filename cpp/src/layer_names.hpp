// The spellings of layers and element functions as the Python layer writes them, parsed here in the
// core (as orders are in order_parse.cpp and run options in run_options.cpp), never in a binding.
#pragma once
#include <optional>
#include <string>

#include "batchcore/layers.hpp"
#include "batchcore/tensor_ops.hpp"
#include "kernels/tile_kernels.hpp"

namespace batchcore {

// relu, gelu, silu, tanh, gelu_tanh, sigmoid, relu6 (UnsupportedLayerError naming the known ones otherwise).
Activation parse_activation(const std::string& name);
// The spelling parse_activation reads.
const char* activation_name(Activation a);
// An activation's parameter as a float: required (finite) for leaky_relu and elu, refused for the others
// (ArgumentError naming the activation either way); 0 where there is none.
float activation_parameter(Activation a, const std::optional<double>& alpha);
// An activation, or softmax, layer_norm, batch_norm: a row layer's function.
RowFunction parse_row_function(const std::string& name);
// add, sub, mul, div: an element-wise operation between two values of a graph.
BinaryOp parse_binary_op(const std::string& name);
// exp, log, tanh: math_fixed.hpp's scalar definitions the CPU and the GPU share (ArgumentError otherwise).
using FixedMathFunction = float (*)(float);
FixedMathFunction parse_fixed_math(const std::string& name);

}  // namespace batchcore
