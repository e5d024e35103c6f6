// The chain orders on the GPU: seq, seq-nofma, chunk:C and splitk:S. Every output element is one chain
// over k = 0..K-1 in order (restarted at each chunk boundary, the chunks then added left to right), so
// the bits are docs/orders.md's definition whatever the tile: no kernel here ever splits K across threads.
// Two kernels, chosen by M only through the launch, never through an element's order:
//  - small_m_kernel (M <= 8): one thread per output column holding all M rows' chains; the input rows
//    are staged in shared memory and every weight is read once (the GEMV case is bandwidth-bound).
//  - tiled_kernel: 128 x 128 output tiles, 8-deep k slices in shared memory, 8 x 8 elements a thread.
//    The tile configuration is fixed (it does not depend on M), hence batch invariance.
#include "cuda_check.cuh"
#include "linear_kernels.cuh"

namespace batchcore::cuda {
namespace {

// One element's accumulation. The intrinsics round exactly as written (nvcc never contracts them).
template <bool Fma>
struct Chain {
  float s = 0.0f, total = 0.0f;
  __device__ __forceinline__ void step(float a, float b) {
    if constexpr (Fma) s = __fmaf_rn(a, b, s);
    else s = __fadd_rn(s, __fmul_rn(a, b));
  }
  // End of a chunk: the first chunk's sum becomes the total, later ones are added to it.
  __device__ __forceinline__ void close_chunk(bool first) {
    total = first ? s : __fadd_rn(total, s);
    s = 0.0f;
  }
  __device__ __forceinline__ float result(bool chunked, float bias) const {
    return __fadd_rn(chunked ? total : s, bias);
  }
};

// Where the chunks end, shared by all elements of a thread (boundaries depend on k only).
struct ChunkClock {
  int64_t C, next;
  bool first = true;
  __device__ explicit ChunkClock(int64_t chunk) : C(chunk), next(chunk) {}
  // Called after step k; true when k closes a chunk.
  __device__ __forceinline__ bool ends_at(int64_t k) const { return k + 1 == next; }
  __device__ __forceinline__ void advance() {
    first = false;
    next += C;
  }
};

constexpr int kSmallRows = 8;
constexpr int kSmallThreads = 128;
constexpr int kSmallKSlice = 256;

template <bool Fma, bool Chunked>
__global__ void __launch_bounds__(kSmallThreads)
    small_m_kernel(const float* x, int64_t M, int64_t K, const float* wt, const float* bias, int64_t N, float* y,
                   int64_t C) {
  __shared__ float xs[kSmallRows][kSmallKSlice];
  const int64_t n = int64_t(blockIdx.x) * kSmallThreads + threadIdx.x;
  Chain<Fma> acc[kSmallRows];
  ChunkClock clock(C);
  for (int64_t k0 = 0; k0 < K; k0 += kSmallKSlice) {
    const int64_t depth = K - k0 < kSmallKSlice ? K - k0 : kSmallKSlice;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < M * kSmallKSlice; i += kSmallThreads) {
      const int64_t m = i / kSmallKSlice, kk = i % kSmallKSlice;
      xs[m][kk] = kk < depth ? x[m * K + k0 + kk] : 0.0f;
    }
    __syncthreads();
    if (n >= N) continue;  // still takes part in the loads above
    for (int64_t kk = 0; kk < depth; ++kk) {
      const float w = wt[(k0 + kk) * N + n];
#pragma unroll
      for (int m = 0; m < kSmallRows; ++m)
        if (m < M) acc[m].step(xs[m][kk], w);
      if (Chunked && clock.ends_at(k0 + kk)) {
#pragma unroll
        for (int m = 0; m < kSmallRows; ++m) acc[m].close_chunk(clock.first);
        clock.advance();
      }
    }
  }
  if (n >= N) return;
  if (Chunked && K % C != 0)
    for (int m = 0; m < kSmallRows; ++m) acc[m].close_chunk(clock.first);
  for (int m = 0; m < kSmallRows; ++m)
    if (m < M) y[m * N + n] = acc[m].result(Chunked, bias[n]);
}

constexpr int kTile = 128;     // rows and columns of an output tile
constexpr int kSlice = 8;      // k depth of a shared-memory slice
constexpr int kThreads = 256;  // 16 x 16 threads, 8 x 8 elements each
constexpr int kPerThread = 8;

// Thread (tx, ty) owns rows ty*4 + {0..3} and 64 + ty*4 + {0..3} of the tile, and the same columns
// with tx: two 4-wide groups 64 apart, so a warp's shared-memory reads are broadcasts or consecutive.
__device__ __forceinline__ int owned(int t, int i) { return (i < 4 ? 0 : 64) + t * 4 + (i & 3); }

template <bool Fma, bool Chunked>
__global__ void __launch_bounds__(kThreads)
    tiled_kernel(const float* x, int64_t M, int64_t K, const float* wt, const float* bias, int64_t N, float* y,
                 int64_t C) {
  __shared__ float as[kSlice][kTile + 4];  // x slice, k-major; padded against bank conflicts on store
  __shared__ float bs[kSlice][kTile];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.x) * kTile, n0 = int64_t(blockIdx.y) * kTile;  // x: up to 2^31 - 1 tiles
  Chain<Fma> acc[kPerThread][kPerThread];
  ChunkClock clock(C);
  for (int64_t k0 = 0; k0 < K; k0 += kSlice) {
    const int depth = K - k0 < kSlice ? int(K - k0) : kSlice;
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kTile * kSlice / kThreads; ++r) {
      const int i = tid + r * kThreads;
      const int row = i / kSlice, kk = i % kSlice;  // x: consecutive threads walk along k
      const int64_t m = m0 + row;
      as[kk][row] = (m < M && kk < depth) ? x[m * K + k0 + kk] : 0.0f;
      const int kb = i / kTile, col = i % kTile;  // wt: consecutive threads walk along n
      const int64_t n = n0 + col;
      bs[kb][col] = (n < N && kb < depth) ? wt[(k0 + kb) * N + n] : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < depth; ++kk) {
      float a[kPerThread], b[kPerThread];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        a[i] = as[kk][owned(ty, i)];
        b[i] = bs[kk][owned(tx, i)];
      }
#pragma unroll
      for (int i = 0; i < kPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) acc[i][j].step(a[i], b[j]);
      if (Chunked && clock.ends_at(k0 + kk)) {
#pragma unroll
        for (int i = 0; i < kPerThread; ++i)
#pragma unroll
          for (int j = 0; j < kPerThread; ++j) acc[i][j].close_chunk(clock.first);
        clock.advance();
      }
    }
  }
  const bool open_chunk = Chunked && K % C != 0;
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int64_t m = m0 + owned(ty, i);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int64_t n = n0 + owned(tx, j);
      if (open_chunk) acc[i][j].close_chunk(clock.first);
      if (m < M && n < N) y[m * N + n] = acc[i][j].result(Chunked, bias[n]);
    }
  }
}

template <bool Fma, bool Chunked>
void launch_chain(const float* x, int64_t M, int64_t K, const float* wt, const float* bias, int64_t N, float* y,
                  int64_t C, cudaStream_t stream) {
  if (M <= kSmallRows) {
    const int64_t blocks = (N + kSmallThreads - 1) / kSmallThreads;
    small_m_kernel<Fma, Chunked><<<unsigned(blocks), kSmallThreads, 0, stream>>>(x, M, K, wt, bias, N, y, C);
  } else {
    const dim3 grid(unsigned((M + kTile - 1) / kTile), unsigned((N + kTile - 1) / kTile));
    if (grid.y > 65535) throw ShapeError("layer too wide for one launch (over 8 million outputs)");
    tiled_kernel<Fma, Chunked><<<grid, kThreads, 0, stream>>>(x, M, K, wt, bias, N, y, C);
  }
  check(cudaGetLastError(), "launch chain GEMM");
}

}  // namespace

void launch_linear(const float* x, int64_t M, int64_t K, const float* wt, const float* bias, int64_t N, float* y,
                   Order order, cudaStream_t stream) {
  switch (order.kind) {
    case OrderKind::seq: return launch_chain<true, false>(x, M, K, wt, bias, N, y, K, stream);
    case OrderKind::seq_nofma: return launch_chain<false, false>(x, M, K, wt, bias, N, y, K, stream);
    case OrderKind::chunk:
    case OrderKind::splitk:
      return launch_chain<true, true>(x, M, K, wt, bias, N, y, chunk_length(order, K), stream);
    default:
      return launch_linear_per_element(x, wt, 1, N, bias, y, M, N, K, order, Precision::fp32, stream);
  }
}

}  // namespace batchcore::cuda
