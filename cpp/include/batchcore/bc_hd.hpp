// BC_HD marks code that must give the same bits on the host and on a CUDA device: it is compiled by the
// host compiler with -ffp-contract=off and by nvcc with --fmad=false, and every fma in it is explicit.
#pragma once

#if defined(__CUDACC__)
#define BC_HD __host__ __device__ __forceinline__
#else
#define BC_HD inline
#endif

#include <cstdint>
#include <cstring>

namespace batchcore {

BC_HD uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

BC_HD float bits_float(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace batchcore
