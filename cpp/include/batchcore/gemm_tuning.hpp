// The GEMM's free parameters: which worker computes which tile, and when. They never change a bit (each
// output element is one dot product in its order, computed whole inside one tile, whatever the tile's size,
// the order of the tiles or the thread that runs it); they change the speed, and their best values depend
// on the machine, so they are measured on it (batchcore.measure.tuning) and set here, like BLIS's block
// sizes registered per configuration.
#pragma once
#include <cstdint>

namespace batchcore {

enum class Traversal : int {
  by_reads = 0,     // row-tile-major or panel-major, whichever reads fewer bytes (gemm.cpp)
  row_tiles = 1,    // a worker keeps its tile of A while the weight panels stream past it
  panels = 2,       // a worker keeps one weight panel while the row tiles stream past it
};

struct GemmTuning {
  int tile_l2_eighths = 3;  // a row tile's A may fill this many eighths of the core's L2 (1..8)
  Traversal traversal = Traversal::by_reads;
  int min_work_log2 = 18;   // flops a worker must be given before another thread is woken: 2^n (12..26)
};

// The values every GEMM of this process uses now (defaults until set).
GemmTuning gemm_tuning();

// Sets them (ArgumentError for a value out of range); takes effect for the next GEMM.
void set_gemm_tuning(const GemmTuning& tuning);

}  // namespace batchcore
