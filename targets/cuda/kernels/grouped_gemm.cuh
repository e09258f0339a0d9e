//===- grouped_gemm.cuh - mixture-of-experts products over sorted rows ---===//
//
// R routed rows, sorted by expert: expert e owns rows
// [expert_offsets[e], expert_offsets[e + 1]) and multiplies them by its own
// weight, experts stacked [NUM_EXPERTS, N, K]. The host launching these does
// not know the per-expert counts (they live on the device, written by the
// routing kernels), so the grid depends only on R:
//
//   grid.y = ceilDiv(R, 64) + NUM_EXPERTS row tiles is an upper bound on
//   sum_e ceilDiv(count_e, 64) (each non-empty expert wastes at most one
//   partial tile), so every expert's rows get 64-row tiles that never mix
//   two experts. Block y finds the y-th such tile by a prefix sum of the
//   per-expert tile counts over expert_offsets (NUM_EXPERTS + 1 ints, read
//   by the whole block at once); blocks past the last tile exit.
//
// Each tile is then exactly gemm.cuh's 64 x 64 tile with the expert's
// weight, so a block reads one expert's weight slice once for all of its
// rows and warps without rows (a decode tile with 1-2 rows) skip the FMAs.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"
#include "targets/cuda/kernels/gemm.cuh"

namespace dsv3k {

namespace grouped_detail {

/// The row tile `tileIndex` of the expert-ordered tile list: its expert, its
/// first row and its number of rows (0 when tileIndex is past the last tile).
struct ExpertTile {
  int expert;
  int rowBegin;
  int rows;
};

/// Called by all gemm_detail::kThreads threads of the block; every thread
/// gets the same answer.
template <int NUM_EXPERTS>
__device__ ExpertTile findExpertTile(const int *expert_offsets, int tileIndex) {
  constexpr int kThreads = gemm_detail::kThreads;
  constexpr int kWarps = kThreads / 32;
  constexpr int kTileM = gemm_detail::kTileM;
  __shared__ int warpTotals[kWarps];
  __shared__ ExpertTile found;
  if (threadIdx.x == 0)
    found = ExpertTile{0, 0, 0};
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int tilesBefore = 0; // tiles of the experts in earlier chunks
  for (int chunk = 0; chunk < NUM_EXPERTS; chunk += kThreads) {
    int expert = chunk + threadIdx.x;
    int begin = 0, end = 0;
    if (expert < NUM_EXPERTS) {
      begin = expert_offsets[expert];
      end = expert_offsets[expert + 1];
    }
    int tiles = end > begin ? ceilDiv(end - begin, kTileM) : 0;
    // Inclusive prefix sum of `tiles` over the block: within each warp by
    // shuffles, then across warps through shared memory.
    int inclusive = tiles;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
      if (lane >= offset)
        inclusive += other;
    }
    __syncthreads(); // warpTotals of the previous chunk have been read
    if (lane == 31)
      warpTotals[warp] = inclusive;
    __syncthreads();
    int earlierWarps = 0, chunkTotal = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      earlierWarps += w < warp ? warpTotals[w] : 0;
      chunkTotal += warpTotals[w];
    }
    int firstTile = tilesBefore + earlierWarps + inclusive - tiles;
    if (tileIndex >= firstTile && tileIndex < firstTile + tiles) {
      int rowBegin = begin + (tileIndex - firstTile) * kTileM;
      int rows = end - rowBegin < kTileM ? end - rowBegin : kTileM;
      found = ExpertTile{expert, rowBegin, rows}; // exactly one thread matches
    }
    tilesBefore += chunkTotal;
  }
  __syncthreads();
  return found;
}

} // namespace grouped_detail

/// Grouped block-scaled FP8 GEMM for routed experts:
/// c[r, :] = A[a_rows ? a_rows[r] : r, :] * B_e^T for the expert e owning r.
///
/// a: [*, K] e4m3 with a_scales [*, ceilDiv(K, BLOCK_K)], indexed by the
/// gathered row (a_rows: [R] ints, or null for A already in routed order).
/// b: [NUM_EXPERTS, N, K] e4m3, b_scales: [NUM_EXPERTS, ceilDiv(N, BLOCK_N),
/// ceilDiv(K, BLOCK_K)]. expert_offsets: [NUM_EXPERTS + 1] non-decreasing,
/// expert_offsets[0] = 0, expert_offsets[NUM_EXPERTS] = R; empty experts fine.
/// c: [R, N] of OutT. Same fp32 promotion per K block as fp8_gemm.
///
/// Launch: grid = (ceilDiv(N, 64), ceilDiv(R, 64) + NUM_EXPERTS, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, typename OutT>
__global__ void __launch_bounds__(256, 2)
    fp8_grouped_gemm(const fp8 *a, const float *a_scales, const int *a_rows, const fp8 *b,
                     const float *b_scales, const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  grouped_detail::ExpertTile tile =
      grouped_detail::findExpertTile<NUM_EXPERTS>(expert_offsets, blockIdx.y);
  // expert_offsets[NUM_EXPERTS] == R; the clamp only keeps a corrupt offset
  // table from writing past c.
  int rows = tile.rowBegin + tile.rows <= R ? tile.rows : R - tile.rowBegin;
  if (rows <= 0)
    return;
  constexpr long long kScalesPerExpert =
      static_cast<long long>(ceilDiv(N, BLOCK_N)) * ceilDiv(K, BLOCK_K);
  gemm_detail::gemmTile<fp8, fp8, N, K, BLOCK_N, BLOCK_K, gemm_detail::Scaling::kBoth, OutT>(
      a, K, a_scales, a_rows, tile.rowBegin, rows,
      b + static_cast<long long>(tile.expert) * N * K, b_scales + tile.expert * kScalesPerExpert,
      c, blockIdx.x * gemm_detail::kTileN);
}

/// Grouped GEMM of bf16 activations with block-scaled FP8 expert weights
/// (as w8a16_gemm per expert): a: [*, K] bf16, gathered by a_rows as in
/// fp8_grouped_gemm; b, b_scales, expert_offsets and c as there.
///
/// Launch: grid = (ceilDiv(N, 64), ceilDiv(R, 64) + NUM_EXPERTS, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, typename OutT>
__global__ void __launch_bounds__(256, 2)
    w8a16_grouped_gemm(const bf16 *a, const int *a_rows, const fp8 *b, const float *b_scales,
                       const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  grouped_detail::ExpertTile tile =
      grouped_detail::findExpertTile<NUM_EXPERTS>(expert_offsets, blockIdx.y);
  int rows = tile.rowBegin + tile.rows <= R ? tile.rows : R - tile.rowBegin;
  if (rows <= 0)
    return;
  constexpr long long kScalesPerExpert =
      static_cast<long long>(ceilDiv(N, BLOCK_N)) * ceilDiv(K, BLOCK_K);
  gemm_detail::gemmTile<bf16, fp8, N, K, BLOCK_N, BLOCK_K, gemm_detail::Scaling::kWeightOnly,
                        OutT>(a, K, nullptr, a_rows, tile.rowBegin, rows,
                              b + static_cast<long long>(tile.expert) * N * K,
                              b_scales + tile.expert * kScalesPerExpert, c,
                              blockIdx.x * gemm_detail::kTileN);
}

/// Grouped BF16 GEMM for routed experts of a BF16 checkpoint: as
/// fp8_grouped_gemm without scales. a: [*, K] bf16; b: [NUM_EXPERTS, N, K]
/// bf16; c: [R, N] of OutT, fp32 accumulation.
///
/// Launch: grid = (ceilDiv(N, 64), ceilDiv(R, 64) + NUM_EXPERTS, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, typename OutT>
__global__ void __launch_bounds__(256, 2)
    bf16_grouped_gemm(const bf16 *a, const int *a_rows, const bf16 *b, const int *expert_offsets,
                      OutT *c, int R) {
  awaitPrecedingKernels();
  grouped_detail::ExpertTile tile =
      grouped_detail::findExpertTile<NUM_EXPERTS>(expert_offsets, blockIdx.y);
  int rows = tile.rowBegin + tile.rows <= R ? tile.rows : R - tile.rowBegin;
  if (rows <= 0)
    return;
  gemm_detail::gemmTile<bf16, bf16, N, K, 1, K, gemm_detail::Scaling::kNone, OutT>(
      a, K, nullptr, a_rows, tile.rowBegin, rows,
      b + static_cast<long long>(tile.expert) * N * K, nullptr, c,
      blockIdx.x * gemm_detail::kTileN);
}

} // namespace dsv3k
