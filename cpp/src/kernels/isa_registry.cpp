#include "tile_kernels.hpp"

namespace batchcore {

const IsaKernels& kernels_for(SimdLevel level) {
  static const IsaKernels scalar{isa_scalar::run_tile, isa_scalar::run_output_block, isa_scalar::fma_probe, isa_scalar::triad, isa_scalar::row_layer,
                                 isa_scalar::gather};
#if defined(BC_HAVE_X86_KERNELS)
  static const IsaKernels avx2{isa_avx2::run_tile, isa_avx2::run_output_block, isa_avx2::fma_probe, isa_avx2::triad, isa_avx2::row_layer,
                                 isa_avx2::gather};
  static const IsaKernels avx512{isa_avx512::run_tile, isa_avx512::run_output_block, isa_avx512::fma_probe, isa_avx512::triad, isa_avx512::row_layer,
                                 isa_avx512::gather};
  if (level == SimdLevel::avx512) return avx512;
  if (level == SimdLevel::avx2) return avx2;
#endif
  (void)level;
  return scalar;
}

}  // namespace batchcore
