// The interface between the drivers (gemm.cpp, model.cpp) and the per-instruction-set kernels. A tile is
// up to kTileRows consecutive rows of A times one packed weight panel; a kernel writes y = dot + bias for
// the tile's valid columns in the tile's order. A row layer applies one of the row functions of
// layers.hpp to rows in place. Every kernel implementation gives the same bits.
#pragma once
#include <cstdint>

#include "batchcore/cpu_features.hpp"
#include "batchcore/order.hpp"

namespace batchcore {

constexpr int kTileRows = 96;
constexpr int kMaxRowBlock = 12;  // the largest row_block() of any instruction set


struct GemmTile {
  const float* a;      // first row of the tile, already rounded to the input precision
  int64_t lda;         // row stride of a, >= K (see row_stride in gemm.hpp)
  int rows;            // 1..kTileRows
  const float* panel;  // K x kPanelWidth, see pack_weights.hpp
  const float* bias;   // kPanelWidth
  int64_t K;
  float* y;            // first output element of the tile
  int64_t ldy;         // = N
  int cols;            // valid columns of the panel, 1..kPanelWidth
  float* scratch;      // W * kMaxRowBlock * kPanelWidth floats when the order is lanes:W, else unused
};

struct RowLayer;

// gemm.cpp's K-outer schedule for seq and seq-nofma: the chains of rows [0, rows) of A and of `panels` full
// consecutive panels, over k in [k0, k1), kept in y itself (rows ldy apart). first: they start at zero;
// last: the bias is added after them, then the epilogue (an activation) if any.
struct OutputBlock {
  const float* a;
  int64_t lda, rows;
  const float* panel;     // the first panel
  int64_t panel_stride;   // floats from one panel to the next
  int panels;
  const float* bias;      // panels * kPanelWidth
  int64_t k0, k1;
  bool first, last, fused;
  float* y;
  int64_t ldy;
  const RowLayer* epilogue;
};

// The row layers of a model, as the kernels know them (layers.hpp defines each one; the activations come
// first, numbered as layers.hpp's Activation: row_definition.cpp asserts it).
enum class RowFunction : int {
  relu, gelu, silu, tanh, gelu_tanh, sigmoid, relu6, hardsigmoid, hardswish, mish, leaky_relu, elu,
  softmax, layer_norm, batch_norm
};

struct RowLayer {
  RowFunction function;
  int64_t width;              // floats per row
  const float* p0 = nullptr;  // layer norm: gamma; batch norm: scale
  const float* p1 = nullptr;  // layer norm: beta; batch norm: shift
  float eps = 0.0f;           // layer norm
  float alpha = 0.0f;         // leaky_relu: the negative slope; elu: alpha
};

// Orders except `exact` (the driver runs exact through the scalar long accumulator).
// fma_probe(n): n iterations of 24 x 16 independent fmas (768 flops each), for the peak probe;
// triad: a[i] = b[i] + s * c[i] (multiply, then add), for the bandwidth probe.
#define BC_ISA_ENTRY_POINTS                                                    \
  void run_tile(const GemmTile& t, Order o);                                   \
  void run_output_block(const OutputBlock& b);                                 \
  float fma_probe(int64_t n);                                                  \
  void triad(float* a, const float* b, const float* c, float s, int64_t n);    \
  void row_layer(const RowLayer& l, float* rows, int64_t n, int64_t ld);        \
  void gather(float* dst, const float* src, const int32_t* index, int64_t n);
namespace isa_scalar { BC_ISA_ENTRY_POINTS }
namespace isa_avx2 { BC_ISA_ENTRY_POINTS }
namespace isa_avx512 { BC_ISA_ENTRY_POINTS }
#undef BC_ISA_ENTRY_POINTS

// The registry of an instruction set's kernels, as BLIS registers its kernels per configuration: the
// GEMM driver and the probes both look theirs up here (isa_registry.cpp), so one place knows which
// instruction sets this build has.
struct IsaKernels {
  void (*run_tile)(const GemmTile& t, Order o);
  void (*run_output_block)(const OutputBlock& b);
  float (*fma_probe)(int64_t n);
  void (*triad)(float* a, const float* b, const float* c, float s, int64_t n);
  void (*row_layer)(const RowLayer& l, float* rows, int64_t n, int64_t ld);  // n rows, ld floats apart
  void (*gather)(float* dst, const float* src, const int32_t* index, int64_t n);  // dst[i] = src[index[i]]
};
const IsaKernels& kernels_for(SimdLevel level);

// layers.hpp's definitions applied element by element (row_definition.cpp): what every row_layer kernel
// must equal bit for bit.
void row_layer_definition(const RowLayer& l, float* rows, int64_t n, int64_t ld);


}  // namespace batchcore
