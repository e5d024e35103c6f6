#include "batchcore/cpu_features.hpp"

#include "batchcore/errors.hpp"

namespace batchcore {

SimdLevel best_simd_level() {
#if defined(BC_HAVE_X86_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma"))
    return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
#endif
  return SimdLevel::scalar;
}

std::vector<SimdLevel> available_simd_levels() {
  std::vector<SimdLevel> levels;
  for (int l = 0; l <= int(best_simd_level()); ++l) levels.push_back(SimdLevel(l));
  return levels;
}

SimdLevel parse_simd_level(const std::string& text) {
  SimdLevel want;
  if (text == "auto") return best_simd_level();
  if (text == "scalar") want = SimdLevel::scalar;
  else if (text == "avx2") want = SimdLevel::avx2;
  else if (text == "avx512") want = SimdLevel::avx512;
  else throw DeviceUnavailableError("unknown SIMD level '" + text + "'; known: auto, scalar, avx2, avx512");
  if (int(want) > int(best_simd_level()))
    throw DeviceUnavailableError("SIMD level '" + text + "' is not supported by this CPU (best: " +
                                 format_simd_level(best_simd_level()) + ")");
  return want;
}

std::string format_simd_level(SimdLevel level) {
  switch (level) {
    case SimdLevel::scalar: return "scalar";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
  }
  return "?";
}

}  // namespace batchcore
