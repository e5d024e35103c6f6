// The row layers exactly as layers.hpp defines them, element by element with the BC_HD functions the GPU
// runs too: the reference the vectorised kernels (row_kernels.inl) are tested against, bit for bit.
// Compiled with the core's baseline flags.
#include "batchcore/layers.hpp"
#include "tile_kernels.hpp"

namespace batchcore {

// The kernels' activations are numbered as layers.hpp's, so that either converts to the other by value.
static_assert(int(RowFunction::relu) == int(Activation::relu) && int(RowFunction::gelu) == int(Activation::gelu) &&
              int(RowFunction::silu) == int(Activation::silu) && int(RowFunction::tanh) == int(Activation::tanh) &&
              int(RowFunction::gelu_tanh) == int(Activation::gelu_tanh) &&
              int(RowFunction::sigmoid) == int(Activation::sigmoid) && int(RowFunction::relu6) == int(Activation::relu6) &&
              int(RowFunction::hardsigmoid) == int(Activation::hardsigmoid) &&
              int(RowFunction::hardswish) == int(Activation::hardswish) &&
              int(RowFunction::mish) == int(Activation::mish) &&
              int(RowFunction::leaky_relu) == int(Activation::leaky_relu) &&
              int(RowFunction::elu) == int(Activation::elu));

void row_layer_definition(const RowLayer& l, float* rows, int64_t n, int64_t ld) {
  for (int64_t r = 0; r < n; ++r) {
    float* x = rows + r * ld;
    switch (l.function) {
      case RowFunction::relu:
      case RowFunction::gelu:
      case RowFunction::silu:
      case RowFunction::tanh:
      case RowFunction::gelu_tanh:
      case RowFunction::sigmoid:
      case RowFunction::relu6:
      case RowFunction::hardsigmoid:
      case RowFunction::hardswish:
      case RowFunction::mish:
      case RowFunction::leaky_relu:
      case RowFunction::elu:
        for (int64_t i = 0; i < l.width; ++i) x[i] = activate(x[i], Activation(int(l.function)), l.alpha);
        break;
      case RowFunction::softmax: softmax_row(x, l.width); break;
      case RowFunction::layer_norm: layer_norm_row(x, l.width, l.p0, l.p1, l.eps); break;
      case RowFunction::batch_norm: affine_row(x, l.width, l.p0, l.p1); break;
    }
  }
}

}  // namespace batchcore
