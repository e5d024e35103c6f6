// The tile kernels compiled for AVX2 + FMA (this file gets -mavx2 -mfma); 16 ymm registers.
#define BC_ISA_NS isa_avx2
#define BC_ISA_ROW_BLOCK 2
#define BC_ISA_F64_ROWS 4
#include "tile_kernels.inl"
#include "row_kernels.inl"
