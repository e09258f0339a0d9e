//===- fp8_mma_skinny.cuh - FP8 x FP8 GEMMs over a few rows, on tensor cores ===//
//
// C = A * B^T for a few rows of FP8 activations (decode) against block-scaled
// FP8 weights, bound by reading B once. skinny_gemm.cuh's fp8_skinny_gemm
// turns every e4m3 byte of both operands into fp32 on the CUDA cores; on an
// H100 those conversions, not memory, bound it (56-73% of copy bandwidth at
// DeepSeek-V3's decode shapes). Here the tensor cores take the bytes as they
// are: mma.sync m16n8k32 e4m3 with the operands swapped, 16 weight rows (16
// output columns) as the mma's A and up to 8 activation rows (output rows) as
// its B.
//
//  - A warp owns a tile of 16 weight rows and a share of their K: segments of
//    64 values, every KSPLIT-th one (the KSPLIT warps of a tile interleave,
//    so that a tile's warps read neighbouring bytes at the same time).
//  - In a segment, lane l (g = l / 4, q = l % 4) loads the 16 bytes at offset
//    16 q of weight rows g and g + 8 and of activation row g: two mmas, the
//    first taking bytes 0-7 of each load, the second bytes 8-15. An mma pairs
//    A's k-th value of a row with B's k-th value of a column whatever k's
//    order; the loads permute k identically for both operands, so every
//    weight byte meets its own activation byte.
//  - Each mma starts from zero, and its 16 x 8 fp32 result is added to the
//    running sums times the weight's and the activation row's scale of the
//    segment's BLOCK_K block. Hopper's FP8 MMA keeps about 14 bits in its
//    internal accumulator (DeepSeek-V3 report, 3.3.2): promoting after every
//    32 products keeps that out of the long sums, at the cost of four fp32
//    FMAs per mma, which memory-bound work has to spare.
//  - Loads run kSegmentsInFlight segments ahead of the mmas (weights, the
//    activation chunk and the three scales of each), so a lane has that many
//    48-byte groups in flight at all times: a decode GEMM is latency-bound
//    otherwise. Weights bypass L1 (read once); activations (read by every
//    tile) and scales stay there.
//  - The KSPLIT warps of a tile add their sums through shared memory; the
//    first of them stores C.
//
// A block is 8 warps: 8 / KSPLIT tiles, 128 / KSPLIT weight rows. More than 8
// activation rows take passes of 8, each reading the weights again.
//
// Needs e4m3 MMA (sm_89 and later), K a multiple of 64, BLOCK_K of 64 and
// BLOCK_N of 16 (a segment inside one scale block, a tile inside one scale
// row), 16-byte aligned operands. dsv3c picks this kernel only then (else
// skinny_gemm.cuh's fp8_skinny_gemm).
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"
#include "targets/cuda/kernels/skinny_gemm.cuh"

namespace dsv3k {

namespace mma_skinny_detail {

inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;
/// Weight rows of one mma: a warp's tile.
inline constexpr int kTileRows = 16;
/// Activation rows of one mma: a pass.
inline constexpr int kPassRows = 8;
/// K values of one segment: 16 bytes per lane of each of a tile's rows.
inline constexpr int kSegmentK = 64;
/// Segments a lane has loaded ahead of its mmas.
inline constexpr int kSegmentsInFlight = 4;

/// Weight rows of one block.
template <int KSPLIT> __host__ __device__ constexpr int blockRows() {
  return kWarps / KSPLIT * kTileRows;
}

/// D = A * B + 0 on e4m3 operands (m16n8k32, fp32 result): a[0..3] are rows
/// g, g + 8, g, g + 8 of A at k 4q.., 4q.., 16 + 4q.., 16 + 4q..; b[0..1]
/// column g of B at k 4q.. and 16 + 4q..; d[0..1] row g, d[2..3] row g + 8,
/// columns 2q and 2q + 1.
__device__ __forceinline__ void mmaE4m3(float (&d)[4], unsigned a0, unsigned a1, unsigned a2,
                                        unsigned a3, unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%10, %10, %10, %10};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(0.0f));
#else
  __trap(); // dsv3c picks these kernels only for targets with e4m3 MMA
#endif
}

/// One segment's operands as a lane holds them.
struct Segment {
  uint4 rowG, rowG8;   ///< weight rows g and g + 8, 16 bytes at offset 16 q
  uint4 activations;   ///< activation row g (zero past the pass's rows)
  float weightScale;   ///< the tile's weight scale for the segment's K block
  float rowScale[2];   ///< activation rows 2q and 2q + 1's scales (zero past the rows)
};

/// Output columns [tile0, tile0 + 16) of activation rows rowBegin .. +
/// rows - 1 (rows <= kPassRows): C row rowBegin + j reads A row gatherRows ?
/// gatherRows[rowBegin + j] : rowBegin + j, with its scales aScales[row * KB
/// + k / BLOCK_K]. Warp `part` of the tile's KSPLIT covers segments part,
/// part + KSPLIT, ...; its sums are added through `partial` by the caller.
template <int N, int K, int BLOCK_N, int BLOCK_K, int KSPLIT>
__device__ __forceinline__ void tileSums(const fp8 *a, const float *aScales,
                                         const int *gatherRows, int rowBegin, int rows,
                                         const fp8 *b, const float *bScales, int tile0, int part,
                                         float (&acc)[4]) {
  constexpr int kSegments = K / kSegmentK;
  constexpr int kBlocksK = ceilDiv(K, BLOCK_K);
  constexpr int kDepth = kSegmentsInFlight;
  const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  const fp8 *weightG = b + static_cast<long long>(min(tile0 + g, N - 1)) * K + 16 * q;
  const fp8 *weightG8 = b + static_cast<long long>(min(tile0 + g + 8, N - 1)) * K + 16 * q;
  const float *weightScales = bScales + (tile0 / BLOCK_N) * kBlocksK;
  auto sourceRow = [&](int j) -> long long {
    return gatherRows != nullptr ? gatherRows[rowBegin + j] : rowBegin + j;
  };
  const fp8 *activationRow = g < rows ? a + sourceRow(g) * K + 16 * q : nullptr;
  const float *rowScales[2];
#pragma unroll
  for (int c = 0; c < 2; ++c)
    rowScales[c] = 2 * q + c < rows ? aScales + sourceRow(2 * q + c) * kBlocksK : nullptr;

  // This warp's i-th segment is part + i * KSPLIT.
  const int segments = part < kSegments ? (kSegments - part + KSPLIT - 1) / KSPLIT : 0;
  auto load = [&](int i, Segment &s) {
    const int k = (part + i * KSPLIT) * kSegmentK;
    const int blockK = k / BLOCK_K;
    s.rowG = skinny_detail::loadStreaming(weightG + k);
    s.rowG8 = skinny_detail::loadStreaming(weightG8 + k);
    s.activations = activationRow != nullptr
                        ? *reinterpret_cast<const uint4 *>(activationRow + k)
                        : make_uint4(0, 0, 0, 0);
    s.weightScale = weightScales[blockK];
#pragma unroll
    for (int c = 0; c < 2; ++c)
      s.rowScale[c] = rowScales[c] != nullptr ? rowScales[c][blockK] : 0.0f;
  };
  auto consume = [&](const Segment &s) {
    const float scale0 = s.weightScale * s.rowScale[0], scale1 = s.weightScale * s.rowScale[1];
    float d[4];
    mmaE4m3(d, s.rowG.x, s.rowG8.x, s.rowG.y, s.rowG8.y, s.activations.x, s.activations.y);
    acc[0] = fmaf(d[0], scale0, acc[0]);
    acc[1] = fmaf(d[1], scale1, acc[1]);
    acc[2] = fmaf(d[2], scale0, acc[2]);
    acc[3] = fmaf(d[3], scale1, acc[3]);
    mmaE4m3(d, s.rowG.z, s.rowG8.z, s.rowG.w, s.rowG8.w, s.activations.z, s.activations.w);
    acc[0] = fmaf(d[0], scale0, acc[0]);
    acc[1] = fmaf(d[1], scale1, acc[1]);
    acc[2] = fmaf(d[2], scale0, acc[2]);
    acc[3] = fmaf(d[3], scale1, acc[3]);
  };

  Segment ring[kDepth];
#pragma unroll
  for (int s = 0; s < kDepth; ++s)
    if (s < segments)
      load(s, ring[s]);
#pragma unroll 1
  for (int i0 = 0; i0 < segments; i0 += kDepth) {
#pragma unroll
    for (int s = 0; s < kDepth; ++s) {
      const int i = i0 + s;
      if (i < segments) {
        consume(ring[s]);
        if (i + kDepth < segments)
          load(i + kDepth, ring[s]);
      }
    }
  }
}

/// One weight of a block's product: B [N, K] with its scales, and C [*, N].
template <typename OutT> struct Product {
  const fp8 *b;
  const float *bScales;
  OutT *c;
};

/// The block's tiles of C0 = A * B0^T and, when N1 > 0, C1 = A * B1^T (a
/// pair of products of one input, launched once): tile t = blockIdx.x * 8 /
/// KSPLIT + warp / KSPLIT is tile t of B0's ceilDiv(N0, 16), or then of
/// B1's. Activation rows rowBegin .. + rows - 1 in passes of kPassRows, C
/// row rowBegin + j reading A row gatherRows[rowBegin + j] (or rowBegin +
/// j). Called by all kThreads threads.
template <int N0, int N1, int K, int BLOCK_N, int BLOCK_K, int KSPLIT, typename OutT>
__device__ __forceinline__ void blockTiles(const fp8 *a, const float *aScales,
                                           const int *gatherRows, int rowBegin, int rows,
                                           Product<OutT> p0, Product<OutT> p1) {
  static_assert(K % kSegmentK == 0, "K must be whole 64-value segments");
  static_assert(BLOCK_K % kSegmentK == 0 && BLOCK_N % kTileRows == 0,
                "a segment must lie in one scale block and a tile in one scale row");
  static_assert(kWarps % KSPLIT == 0, "KSPLIT must divide the block's 8 warps");
  constexpr int kTiles0 = ceilDiv(N0, kTileRows), kTiles1 = ceilDiv(N1, kTileRows);
  __shared__ float4 partial[kWarps][32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int part = warp % KSPLIT;
  const int tile = blockIdx.x * (kWarps / KSPLIT) + warp / KSPLIT;
  const bool second = tile >= kTiles0;
  const int tile0 = (second ? tile - kTiles0 : tile) * kTileRows;
  const bool active = !second || tile - kTiles0 < kTiles1;
  const int n = second ? N1 : N0;
  OutT *c = second ? p1.c : p0.c;
  for (int pass = 0; pass < rows; pass += kPassRows) {
    const int passRows = min(rows - pass, kPassRows);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (!second)
      tileSums<N0, K, BLOCK_N, BLOCK_K, KSPLIT>(a, aScales, gatherRows, rowBegin + pass, passRows,
                                                p0.b, p0.bScales, tile0, part, acc);
    else if constexpr (N1 > 0)
      if (active)
        tileSums<N1, K, BLOCK_N, BLOCK_K, KSPLIT>(a, aScales, gatherRows, rowBegin + pass,
                                                  passRows, p1.b, p1.bScales, tile0, part, acc);
    if (KSPLIT > 1) {
      partial[warp][lane] = make_float4(acc[0], acc[1], acc[2], acc[3]);
      __syncthreads();
      if (part == 0)
#pragma unroll
        for (int p = 1; p < KSPLIT; ++p) {
          const float4 other = partial[warp + p][lane];
          acc[0] += other.x;
          acc[1] += other.y;
          acc[2] += other.z;
          acc[3] += other.w;
        }
    }
    if (part == 0 && active) {
      const int g = lane / 4, q = lane % 4;
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const int column = tile0 + g + (v / 2) * 8, j = 2 * q + v % 2;
        if (column < n && j < passRows)
          c[static_cast<long long>(rowBegin + pass + j) * n + column] = fromFloat<OutT>(acc[v]);
      }
    }
    if (KSPLIT > 1)
      __syncthreads(); // partial is rewritten by the next pass
  }
}

/// The weight bytes a block's warps load first: the first kSegmentsInFlight
/// segments of each KSPLIT warp, the leading bytes of each of its rows.
template <int K, int KSPLIT> __host__ __device__ constexpr unsigned leadingRowBytes() {
  constexpr int kBytes = kSegmentsInFlight * KSPLIT * kSegmentK;
  return kBytes < K ? kBytes : K;
}

/// The weight rows the block's tiles cover, as up to two runs: B0's and
/// B1's (N1 = 0: B0's only).
template <int N0, int N1, int K, int KSPLIT>
__device__ __forceinline__ PrefetchRows pairRows(const fp8 *b0, const fp8 *b1) {
  constexpr int kTiles0 = ceilDiv(N0, kTileRows);
  const int tileBegin = blockIdx.x * (kWarps / KSPLIT), tileEnd = tileBegin + kWarps / KSPLIT;
  PrefetchRows rows;
  const int first0 = tileBegin * kTileRows;
  rows.first[0] = b0 + static_cast<long long>(first0) * K;
  rows.count[0] = max(min(tileEnd * kTileRows, N0) - first0, 0);
  const int first1 = max(tileBegin - kTiles0, 0) * kTileRows;
  rows.first[1] = b1 + static_cast<long long>(first1) * K;
  rows.count[1] = max(min((tileEnd - kTiles0) * kTileRows, N1) - first1, 0);
  return rows;
}

/// Grid row blockIdx.y of a grouped launch over R routed rows: when it is
/// its expert's first routed row or 8, 16, ... after it, the block's tiles
/// (blockTiles) of that expert's products for up to 8 of its rows.
template <int N0, int N1, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, int KSPLIT,
          typename OutT>
__device__ __forceinline__ void groupedBlockTiles(const fp8 *a, const float *aScales,
                                                  const int *aRows, const int *expertOffsets,
                                                  int R, Product<OutT> p0, Product<OutT> p1) {
  const int r = blockIdx.y;
  if (r >= R)
    return;
  const int expert = skinny_detail::expertOfRow<NUM_EXPERTS>(expertOffsets, r);
  const int first = expertOffsets[expert], end = expertOffsets[expert + 1];
  if ((r - first) % kPassRows != 0)
    return;
  constexpr int kBlocksK = ceilDiv(K, BLOCK_K);
  p0.b += static_cast<long long>(expert) * N0 * K;
  p0.bScales += static_cast<long long>(expert) * ceilDiv(N0, BLOCK_N) * kBlocksK;
  if (N1 > 0) {
    p1.b += static_cast<long long>(expert) * N1 * K;
    p1.bScales += static_cast<long long>(expert) * ceilDiv(N1, BLOCK_N) * kBlocksK;
  }
  blockTiles<N0, N1, K, BLOCK_N, BLOCK_K, KSPLIT, OutT>(a, aScales, aRows, r,
                                                        min(end - r, kPassRows), p0, p1);
}

} // namespace mma_skinny_detail

/// FP8 activations and block-scaled FP8 weights, few rows, on tensor cores:
/// the arguments and results of fp8_skinny_gemm (a: [M, K] e4m3 with
/// a_scales [M, ceilDiv(K, BLOCK_K)], b: [N, K] e4m3 with b_scales
/// [ceilDiv(N, BLOCK_N), ceilDiv(K, BLOCK_K)], c: [M, N] of OutT), each
/// 32-product partial sum scaled by its block's a_scales x b_scales.
///
/// Launch: grid = (ceilDiv(N, 128 / KSPLIT), 1, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, int KSPLIT, typename OutT>
__global__ void __launch_bounds__(mma_skinny_detail::kThreads, 2)
    fp8_mma_skinny_gemm(const fp8 *a, const float *a_scales, const fp8 *b,
                        const float *b_scales, OutT *c, int M) {
  awaitPrecedingKernelsPrefetchingRows(mma_skinny_detail::pairRows<N, 0, K, KSPLIT>(b, b), K,
                                       mma_skinny_detail::leadingRowBytes<K, KSPLIT>());
  mma_skinny_detail::blockTiles<N, 0, K, BLOCK_N, BLOCK_K, KSPLIT, OutT>(
      a, a_scales, nullptr, 0, M, {b, b_scales, c}, {nullptr, nullptr, nullptr});
}

/// Two products of one input in one launch (q_a and kv_a; gate and up):
/// c0 = a * b0^T ([M, N0]) and c1 = a * b1^T ([M, N1]), each as
/// fp8_mma_skinny_gemm computes it (same layouts), the 16-row tiles of b1
/// numbered after those of b0. The leading bytes of the block's rows of
/// either weight are asked of L2 before the wait.
///
/// Launch: grid = (ceilDiv(ceilDiv(N0, 16) + ceilDiv(N1, 16), 8 / KSPLIT), 1, 1),
/// block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N0, int N1, int K, int BLOCK_N, int BLOCK_K, int KSPLIT, typename OutT>
__global__ void __launch_bounds__(mma_skinny_detail::kThreads, 2)
    fp8_mma_skinny_gemm_pair(const fp8 *a, const float *a_scales, const fp8 *b0,
                             const float *b0_scales, OutT *c0, const fp8 *b1,
                             const float *b1_scales, OutT *c1, int M) {
  awaitPrecedingKernelsPrefetchingRows(
      mma_skinny_detail::pairRows<N0, N1, K, KSPLIT>(b0, b1), K,
      mma_skinny_detail::leadingRowBytes<K, KSPLIT>());
  static_assert(N1 > 0, "a pair has two products");
  mma_skinny_detail::blockTiles<N0, N1, K, BLOCK_N, BLOCK_K, KSPLIT, OutT>(
      a, a_scales, nullptr, 0, M, {b0, b0_scales, c0}, {b1, b1_scales, c1});
}

/// Routed FP8 experts over few rows with FP8 activations, on tensor cores:
/// the arguments and results of fp8_grouped_skinny_gemm (a [*, K] e4m3 and
/// a_scales [*, ceilDiv(K, BLOCK_K)], read at row a_rows[r] when gathering,
/// else at r; b [NUM_EXPERTS, N, K] e4m3 with b_scales [NUM_EXPERTS,
/// ceilDiv(N, BLOCK_N), ceilDiv(K, BLOCK_K)]; expert_offsets [NUM_EXPERTS +
/// 1]; c [R, N] of OutT). Grid row r computes routed rows r .. r + 7 of the
/// expert owning r (as many of them as it owns) when r is that expert's
/// first row or 8, 16, ... after it, so an expert's weights are read once per
/// 8 of its rows; the other grid rows have nothing to do.
///
/// Launch: grid = (ceilDiv(N, 128 / KSPLIT), R, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, int KSPLIT, typename OutT>
__global__ void __launch_bounds__(mma_skinny_detail::kThreads, 2)
    fp8_mma_grouped_skinny_gemm(const fp8 *a, const float *a_scales, const int *a_rows,
                                const fp8 *b, const float *b_scales, const int *expert_offsets,
                                OutT *c, int R) {
  awaitPrecedingKernels();
  mma_skinny_detail::groupedBlockTiles<N, 0, K, NUM_EXPERTS, BLOCK_N, BLOCK_K, KSPLIT, OutT>(
      a, a_scales, a_rows, expert_offsets, R, {b, b_scales, c}, {nullptr, nullptr, nullptr});
}

/// Two routed products of one input in one launch (the experts' gate and
/// up): c0 = a * b0[e]^T ([R, N0]) and c1 = a * b1[e]^T ([R, N1]) for the
/// expert e owning each routed row, each as fp8_mma_grouped_skinny_gemm
/// computes it; b1 and b1_scales are laid out as b0's.
///
/// Launch: grid = (ceilDiv(ceilDiv(N0, 16) + ceilDiv(N1, 16), 8 / KSPLIT), R, 1),
/// block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N0, int N1, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, int KSPLIT,
          typename OutT>
__global__ void __launch_bounds__(mma_skinny_detail::kThreads, 2)
    fp8_mma_grouped_skinny_gemm_pair(const fp8 *a, const float *a_scales, const int *a_rows,
                                     const fp8 *b0, const float *b0_scales, const fp8 *b1,
                                     const float *b1_scales, const int *expert_offsets, OutT *c0,
                                     OutT *c1, int R) {
  awaitPrecedingKernels();
  static_assert(N1 > 0, "a pair has two products");
  mma_skinny_detail::groupedBlockTiles<N0, N1, K, NUM_EXPERTS, BLOCK_N, BLOCK_K, KSPLIT, OutT>(
      a, a_scales, a_rows, expert_offsets, R, {b0, b0_scales, c0}, {b1, b1_scales, c1});
}

} // namespace dsv3k
