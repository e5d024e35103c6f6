// Row-wise layers and input rounding on the GPU: the BC_HD functions of layers.hpp and precision.hpp,
// so the bits are the CPU's. Device pointers; rows dense (`width` floats apart).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "batchcore/layers.hpp"
#include "batchcore/precision.hpp"

namespace batchcore::cuda {

enum class RowOp : int { softmax, layer_norm, affine };

void launch_activation(float* x, int64_t count, Activation a, float alpha, cudaStream_t stream);
// One thread per row; p0, p1: layer norm's gamma and beta, or the affine scale and shift.
void launch_row_op(float* x, int64_t rows, int64_t width, RowOp op, const float* p0, const float* p1, float eps,
                   cudaStream_t stream);
void launch_round(float* x, int64_t count, Precision p, cudaStream_t stream);

}  // namespace batchcore::cuda
