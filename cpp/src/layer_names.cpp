#include "layer_names.hpp"

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
static const char* const kActivationNames[] = {"relu", "gelu", "silu", "tanh", "gelu_tanh", "sigmoid", "relu6"};

Activation parse_activation(const std::string& name) {
  return find_name<Activation>(name, kActivationNames, "activation");
}

const char* activation_name(Activation a) { return kActivationNames[int(a)]; }

RowFunction parse_row_function(const std::string& name) {
  static const char* const names[] = {"relu", "gelu", "silu", "tanh", "gelu_tanh", "sigmoid", "relu6",
                                      "softmax", "layer_norm", "batch_norm"};
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
