#include "batchcore/gemm_tuning.hpp"

#include <atomic>
#include <string>

#include "batchcore/errors.hpp"

namespace batchcore {
namespace {

// Each field on its own: a GEMM reads them at its start; one set while another runs changes only the
// schedule of the next (never a bit of either).
std::atomic<int> tile_l2_eighths{GemmTuning{}.tile_l2_eighths};
std::atomic<int> traversal{int(GemmTuning{}.traversal)};
std::atomic<int> min_work_log2{GemmTuning{}.min_work_log2};

void check_range(const char* name, int value, int lo, int hi) {
  if (value < lo || value > hi)
    throw ArgumentError(std::string(name) + " must lie in " + std::to_string(lo) + ".." + std::to_string(hi) +
                        ", got " + std::to_string(value));
}

}  // namespace

GemmTuning gemm_tuning() {
  return GemmTuning{tile_l2_eighths.load(), Traversal(traversal.load()), min_work_log2.load()};
}

void set_gemm_tuning(const GemmTuning& t) {
  check_range("tile_l2_eighths", t.tile_l2_eighths, 1, 8);
  check_range("traversal", int(t.traversal), 0, 2);
  check_range("min_work_log2", t.min_work_log2, 12, 26);
  tile_l2_eighths.store(t.tile_l2_eighths);
  traversal.store(int(t.traversal));
  min_work_log2.store(t.min_work_log2);
}

}  // namespace batchcore
