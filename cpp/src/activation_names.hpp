// An activation's name as the Python layer spells it, shared by the binding files.
#pragma once
#include <string>

#include "batchcore/errors.hpp"
#include "batchcore/layers.hpp"

namespace batchcore {

inline Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu") return Activation::gelu;
  if (name == "silu") return Activation::silu;
  if (name == "tanh") return Activation::tanh;
  if (name == "gelu_tanh") return Activation::gelu_tanh;
  throw UnsupportedLayerError("unknown activation '" + name + "'; known: relu, gelu, silu, tanh, gelu_tanh");
}

}  // namespace batchcore
