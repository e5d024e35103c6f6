// The tile kernels compiled for AVX-512 (this file gets -mavx512f ...), with the explicit register-
// blocked micro-kernel for seq: 12 rows x 32 columns in 24 of the 32 zmm registers.
#include "microkernel_avx512.hpp"
#include "row_vectors_avx512.hpp"
#define BC_ISA_NS isa_avx512
#define BC_ISA_ROW_BLOCK 12
#define BC_ISA_MICROKERNEL accumulate_rows_avx512
#define BC_ISA_F64_ROWS 6
#define BC_ISA_F64_MICROKERNEL accumulate_rows_f64_avx512
#define BC_ISA_ROW_VECTORS  // gelu_n, silu_n
#include "tile_kernels.inl"
#include "row_kernels.inl"
