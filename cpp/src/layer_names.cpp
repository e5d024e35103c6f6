#include "layer_names.hpp"

#include <cmath>

#include "batchcore/errors.hpp"
#include "batchcore/math_fixed.hpp"

namespace batchcore {
namespace {

template <class T, size_t N>
T find_name(const std::string& name, const char* const (&names)[N], const char* what, bool layer = true) {
  for (size_t i = 0; i < N; ++i)
    if (name == names[i]) return T(i);
  std::string known;
  for (size_t i = 0; i < N; ++i) known += (i ? ", " : "") + std::string(names[i]);
  const std::string message = "unknown " + std::string(what) + " '" + name + "'; known: " + known;
  if (layer) throw UnsupportedLayerError(message);
  throw ArgumentError(message);
}

}  // namespace

// Each list in its enum's order.
static const char* const kActivationNames[] = {"relu",  "gelu",        "silu",      "tanh", "gelu_tanh",  "sigmoid",
                                               "relu6", "hardsigmoid", "hardswish", "mish", "leaky_relu", "elu"};

Activation parse_activation(const std::string& name) {
  return find_name<Activation>(name, kActivationNames, "activation");
}

const char* activation_name(Activation a) { return kActivationNames[int(a)]; }

float activation_parameter(Activation a, const std::optional<double>& alpha) {
  const std::string name = activation_name(a);
  if (!has_parameter(a)) {
    if (alpha) throw ArgumentError("activation '" + name + "' takes no parameter (alpha)");
    return 0.0f;
  }
  if (!alpha) throw ArgumentError("activation '" + name + "' needs its parameter alpha (" +
                                  (a == Activation::elu ? "elu's alpha" : "the negative slope") + ")");
  const float value = float(*alpha);
  if (!std::isfinite(value)) throw ArgumentError("activation '" + name + "': alpha must be a finite float32");
  return value;
}

RowFunction parse_row_function(const std::string& name) {
  static const char* const names[] = {"relu",      "gelu", "silu",       "tanh", "gelu_tanh", "sigmoid",
                                      "relu6",     "hardsigmoid", "hardswish", "mish", "leaky_relu", "elu",
                                      "softmax",   "layer_norm",  "batch_norm"};
  return find_name<RowFunction>(name, names, "row function");
}

BinaryOp parse_binary_op(const std::string& name) {
  static const char* const names[] = {"add", "sub", "mul", "div"};
  return find_name<BinaryOp>(name, names, "element-wise operation");
}

FixedMathFunction parse_fixed_math(const std::string& name) {
  static const char* const names[] = {"exp", "log", "tanh"};
  static const FixedMathFunction functions[] = {[](float v) { return bc_exp(v); }, [](float v) { return bc_log(v); },
                                                [](float v) { return bc_tanh(v); }};
  return functions[find_name<int>(name, names, "fixed_math function", false)];
}

}  // namespace batchcore
