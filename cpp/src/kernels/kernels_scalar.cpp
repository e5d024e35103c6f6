// Portable build of the tile kernels (no vector instruction set assumed).
#define BC_ISA_NS isa_scalar
#define BC_ISA_ROW_BLOCK 2
#define BC_ISA_F64_ROWS 4
#include "tile_kernels.inl"
#include "row_kernels.inl"
