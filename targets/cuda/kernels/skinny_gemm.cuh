//===- skinny_gemm.cuh - GEMMs over a few rows, at weight-read speed -----===//
//
// C = A * B^T for M of 1 to a few rows (decode), where the product is bound
// by reading B once: gemm.cuh's 64 x 64 tiles would leave most of a tile's
// rows empty and launch too few blocks to keep HBM busy. Here a block of 8
// warps owns kColumns = 4 output columns and splits K among its warps:
//
//  - warp w, lane l takes the 16-byte weight chunks c = w * 32 + l, + 256, ...
//    of each of the 4 weight rows (16 e4m3 or 8 bf16 values per chunk), and
//    the matching activation values of each output row (bf16, 16-byte loads,
//    held in registers and reused for all 4 columns);
//  - an FP8 chunk lies inside one BLOCK_K-deep scale block (BLOCK_K is a
//    multiple of 16), so its 16 products are summed in fp32 and scaled by
//    that block's weight scale: the weight is dequantized exactly, in fp32;
//  - partial sums are reduced across lanes with shuffles and across warps in
//    shared memory; one thread per (row, column) writes the result.
//
// Rows are processed kRowsPerPass = 4 at a time: for M <= 4 every weight byte
// is read once. The grid has ceil(N / 4) blocks, enough to fill the GPU for
// every DeepSeek-V3 projection (N >= 576 gives 144 blocks).
//
// Layouts that do not allow 16-byte loads (K not a multiple of the chunk,
// unaligned pointers or row strides) take a scalar path with the same
// arithmetic: correct for any layout, just slower.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"
#include "targets/cuda/kernels/gemm.cuh"

namespace dsv3k {

namespace skinny_detail {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kColumns = 4;
constexpr int kRowsPerPass = 4;

/// Weight values per 16-byte chunk.
template <typename TB> struct ChunkWidth;
template <> struct ChunkWidth<fp8> { static constexpr int value = 16; };
template <> struct ChunkWidth<bf16> { static constexpr int value = 8; };

/// kWidth bf16 activations at p (16-byte aligned) as floats.
template <int kWidth> __device__ __forceinline__ void loadActivations(const bf16 *p, float *out) {
#pragma unroll
  for (int v = 0; v < kWidth / 8; ++v) {
    float eight[8];
    load8(p + 8 * v, eight);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      out[8 * v + i] = eight[i];
  }
}

/// Output columns n0 .. n0 + 3 of rows rowBegin .. rowBegin + rows - 1 of
/// C = A * B^T. Output row i reads A row gatherRows ? gatherRows[rowBegin +
/// i] : rowBegin + i (stride lda). kScaled: B's block scales are
/// bScales[(n / BLOCK_N) * KB + k / BLOCK_K]; otherwise BLOCK_K is unused.
/// Called by all kThreads threads of the block.
template <typename TB, int N, int K, int BLOCK_N, int BLOCK_K, bool kScaled, typename OutT>
__device__ __forceinline__ void skinnyColumns(const bf16 *a, long long lda, const int *gatherRows,
                                              int rowBegin, int rows, const TB *b,
                                              const float *bScales, OutT *c, int n0) {
  constexpr int kWidth = ChunkWidth<TB>::value;
  constexpr int kChunks = K / kWidth;
  constexpr int kBlocksK = kScaled ? ceilDiv(K, BLOCK_K) : 1;
  static_assert(!kScaled || BLOCK_K % 16 == 0, "a chunk must not straddle two scale blocks");
  __shared__ float partial[kWarps][kRowsPerPass][kColumns];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const TB *bRows[kColumns];
  int scaleRow[kColumns]; // row of B's scales; unused when !kScaled
#pragma unroll
  for (int j = 0; j < kColumns; ++j) {
    int n = n0 + j < N ? n0 + j : N - 1; // past-the-end columns recompute N - 1, unwritten
    bRows[j] = b + static_cast<long long>(n) * K;
    scaleRow[j] = n / BLOCK_N;
  }
  const bool vectorized = K % kWidth == 0 && lda % 8 == 0 && gemm_detail::aligned16(a) &&
                          gemm_detail::aligned16(b);

  for (int pass = 0; pass < rows; pass += kRowsPerPass) {
    const int passRows = rows - pass < kRowsPerPass ? rows - pass : kRowsPerPass;
    const bf16 *aRows[kRowsPerPass];
#pragma unroll
    for (int m = 0; m < kRowsPerPass; ++m) {
      int row = rowBegin + pass + (m < passRows ? m : 0);
      long long source = gatherRows != nullptr ? gatherRows[row] : row;
      aRows[m] = a + source * lda;
    }
    float acc[kRowsPerPass][kColumns];
#pragma unroll
    for (int m = 0; m < kRowsPerPass; ++m)
#pragma unroll
      for (int j = 0; j < kColumns; ++j)
        acc[m][j] = 0.0f;

    if (vectorized) {
      for (int chunk = warp * 32 + lane; chunk < kChunks; chunk += kThreads) {
        const int k = chunk * kWidth;
        float activations[kRowsPerPass][kWidth];
#pragma unroll
        for (int m = 0; m < kRowsPerPass; ++m)
          if (m < passRows)
            loadActivations<kWidth>(aRows[m] + k, activations[m]);
#pragma unroll
        for (int j = 0; j < kColumns; ++j) {
          float weights[kWidth];
          gemm_detail::unpackVector(*reinterpret_cast<const uint4 *>(bRows[j] + k), weights);
          float scale = 1.0f;
          if (kScaled)
            scale = bScales[scaleRow[j] * kBlocksK + k / BLOCK_K];
#pragma unroll
          for (int m = 0; m < kRowsPerPass; ++m) {
            if (m < passRows) {
              float dot = 0.0f;
#pragma unroll
              for (int i = 0; i < kWidth; ++i)
                dot = fmaf(activations[m][i], weights[i], dot);
              acc[m][j] = fmaf(dot, scale, acc[m][j]);
            }
          }
        }
      }
    } else {
      for (int k = warp * 32 + lane; k < K; k += kThreads) {
#pragma unroll
        for (int j = 0; j < kColumns; ++j) {
          float weight = toFloat(bRows[j][k]);
          if (kScaled)
            weight *= bScales[scaleRow[j] * kBlocksK + k / BLOCK_K];
#pragma unroll
          for (int m = 0; m < kRowsPerPass; ++m)
            if (m < passRows)
              acc[m][j] = fmaf(toFloat(aRows[m][k]), weight, acc[m][j]);
        }
      }
    }

#pragma unroll
    for (int m = 0; m < kRowsPerPass; ++m)
#pragma unroll
      for (int j = 0; j < kColumns; ++j) {
        float total = warpSum(acc[m][j]);
        if (lane == 0)
          partial[warp][m][j] = total;
      }
    __syncthreads();
    if (threadIdx.x < kRowsPerPass * kColumns) {
      int m = threadIdx.x / kColumns, j = threadIdx.x % kColumns;
      if (m < passRows && n0 + j < N) {
        float total = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w)
          total += partial[w][m][j];
        c[static_cast<long long>(rowBegin + pass + m) * N + n0 + j] = fromFloat<OutT>(total);
      }
    }
    __syncthreads(); // partial is rewritten by the next pass
  }
}

/// The expert owning routed row r: the e with offsets[e] <= r < offsets[e+1].
template <int NUM_EXPERTS>
__device__ __forceinline__ int expertOfRow(const int *expert_offsets, int r) {
  int low = 0, high = NUM_EXPERTS; // offsets[low] <= r < offsets[high]
  while (high - low > 1) {
    int middle = (low + high) / 2;
    if (expert_offsets[middle] <= r)
      low = middle;
    else
      high = middle;
  }
  return low;
}

} // namespace skinny_detail

/// FP8 weight, bf16 activations, few rows: C[M, N] = A[M, K] * dequant(B)^T
/// with a: [M, lda] bf16, b: [N, K] e4m3, b_scales: [ceilDiv(N, BLOCK_N),
/// ceilDiv(K, BLOCK_K)], c: [M, N] of OutT. Same results as w8a16_gemm up
/// to the order of fp32 additions; fastest for M <= 4.
///
/// Launch: grid = (ceilDiv(N, 4), 1, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads)
    w8a16_skinny_gemm(const bf16 *a, int lda, const fp8 *b, const float *b_scales, OutT *c,
                      int M) {
  skinny_detail::skinnyColumns<fp8, N, K, BLOCK_N, BLOCK_K, true, OutT>(
      a, lda, nullptr, 0, M, b, b_scales, c, blockIdx.x * skinny_detail::kColumns);
}

/// BF16 weight, few rows: C[M, N] = A[M, K] * B[N, K]^T, a: [M, lda] bf16, c:
/// [M, N] of OutT (the router and lm_head write float).
///
/// Launch: grid = (ceilDiv(N, 4), 1, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads)
    bf16_skinny_gemm(const bf16 *a, int lda, const bf16 *b, OutT *c, int M) {
  skinny_detail::skinnyColumns<bf16, N, K, 1, K, false, OutT>(
      a, lda, nullptr, 0, M, b, nullptr, c, blockIdx.x * skinny_detail::kColumns);
}

/// Routed experts over few rows: block (x, r) computes columns 4x .. 4x + 3
/// of routed row r with the weight of the expert owning r (as
/// w8a16_grouped_gemm: a [*, K] bf16 gathered through a_rows or in routed
/// order; b [NUM_EXPERTS, N, K] e4m3 with b_scales [NUM_EXPERTS,
/// ceilDiv(N, BLOCK_N), ceilDiv(K, BLOCK_K)]; c [R, N] of OutT). Each
/// routed row reads its expert's weight slice, so it suits R up to a few
/// dozen (decode at small batch).
///
/// Launch: grid = (ceilDiv(N, 4), R, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads)
    w8a16_grouped_skinny_gemm(const bf16 *a, const int *a_rows, const fp8 *b,
                              const float *b_scales, const int *expert_offsets, OutT *c, int R) {
  const int r = blockIdx.y;
  if (r >= R)
    return;
  const int expert = skinny_detail::expertOfRow<NUM_EXPERTS>(expert_offsets, r);
  constexpr long long kScalesPerExpert =
      static_cast<long long>(ceilDiv(N, BLOCK_N)) * ceilDiv(K, BLOCK_K);
  skinny_detail::skinnyColumns<fp8, N, K, BLOCK_N, BLOCK_K, true, OutT>(
      a, K, a_rows, r, 1, b + static_cast<long long>(expert) * N * K,
      b_scales + expert * kScalesPerExpert, c, blockIdx.x * skinny_detail::kColumns);
}

/// BF16 routed experts over few rows: as w8a16_grouped_skinny_gemm without
/// scales (b: [NUM_EXPERTS, N, K] bf16).
///
/// Launch: grid = (ceilDiv(N, 4), R, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads)
    bf16_grouped_skinny_gemm(const bf16 *a, const int *a_rows, const bf16 *b,
                             const int *expert_offsets, OutT *c, int R) {
  const int r = blockIdx.y;
  if (r >= R)
    return;
  const int expert = skinny_detail::expertOfRow<NUM_EXPERTS>(expert_offsets, r);
  skinny_detail::skinnyColumns<bf16, N, K, 1, K, false, OutT>(
      a, K, a_rows, r, 1, b + static_cast<long long>(expert) * N * K, nullptr, c,
      blockIdx.x * skinny_detail::kColumns);
}

} // namespace dsv3k
