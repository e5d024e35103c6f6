// Which vector instruction set the CPU kernels may use. All levels give the same bits.
#pragma once
#include <string>
#include <vector>

namespace batchcore {

enum class SimdLevel : int { scalar = 0, avx2 = 1, avx512 = 2 };

SimdLevel best_simd_level();                      // what this CPU (and build) supports
std::vector<SimdLevel> available_simd_levels();  // every level this CPU can run, scalar first
SimdLevel parse_simd_level(const std::string& text);  // "auto": best_simd_level(); DeviceUnavailableError otherwise
std::string format_simd_level(SimdLevel level);

}  // namespace batchcore
