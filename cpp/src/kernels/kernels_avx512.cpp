// The tile kernels compiled for AVX-512 (this file gets -mavx512f ...); 32 zmm registers.
#define BC_ISA_NS isa_avx512
#define BC_ISA_ROW_BLOCK 4
#include "tile_kernels.inl"
