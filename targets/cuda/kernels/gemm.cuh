//===- gemm.cuh - block-scaled FP8 and BF16 matrix products --------------===//
//
// C = A * B^T with B a checkpoint weight stored [N, K] (out_features,
// in_features): FP8 x FP8 (both block-scaled), bf16 x FP8 (weight-only
// scales) and bf16 x bf16. All kernels share one tiled core (gemm_detail::gemmTile),
// which grouped_gemm.cuh reuses for the mixture-of-experts products:
//
//  - a block of 256 threads owns a 64 x 64 tile of C; thread (tx, ty) =
//    (tid % 16, tid / 16) accumulates rows 4 ty .. 4 ty + 3 and columns
//    4 tx .. 4 tx + 3 in fp32 registers;
//  - K is walked 32 columns at a time: the block stages 64 A rows and 64 B
//    rows of 32 columns, converted to fp32, into shared memory transposed
//    ([k][row]), with 16-byte coalesced loads where the layout allows;
//  - FP8: the products of one BLOCK_K-deep scale block are summed in fp32 on
//    their own, then added to the accumulator times a_scale * b_scale of that
//    block (DeepSeek's fp32 promotion per 128-deep K block), so a partial K
//    block or a partial N block needs no special case beyond zero fill.
//
// __launch_bounds__(256, 2) caps registers at 128: without a minimum block
// count ptxas (CUDA 13) held the FP8 kernels to 64 registers and spilled.
//
// This is the correct, parallel baseline (SIMT fp32 FMA, no tensor cores);
// the fast path (wgmma / mma.sync fp8) is a later change with the same
// signatures and results within rounding.
//
// Alignment: the vectorized loads need the matrices 16-byte aligned with
// rows that are multiples of 16 bytes (K % 16 == 0 for fp8, K % 8 == 0 and
// lda % 8 == 0 for bf16); otherwise the kernels fall back to element loads,
// chosen per launch, so any layout is computed correctly.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

namespace gemm_detail {

inline constexpr int kTileM = 64;   // rows of C per block
inline constexpr int kTileN = 64;   // columns of C per block
inline constexpr int kTileK = 32;   // K columns staged per step
inline constexpr int kThreads = 256;
inline constexpr int kMicro = 4;    // each thread: 4 x 4 outputs
inline constexpr int kPad = 4;      // keeps rows 16-byte aligned for float4 reads

static_assert(kTileM == kMicro * (kThreads / (kTileN / kMicro)), "threads cover the tile rows");

/// Elements of T in one 16-byte load.
template <typename T> struct VectorWidth;
template <> struct VectorWidth<fp8> { static constexpr int value = 16; };
template <> struct VectorWidth<bf16> { static constexpr int value = 8; };

__device__ __forceinline__ void unpackVector(uint4 raw, float (&out)[16]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      __nv_fp8x2_e4m3 pair;
      pair.__x = static_cast<__nv_fp8x2_storage_t>(words[w] >> (16 * half));
      float2 f = static_cast<float2>(pair);
      out[4 * w + 2 * half] = f.x;
      out[4 * w + 2 * half + 1] = f.y;
    }
  }
}

__device__ __forceinline__ void unpackVector(uint4 raw, float (&out)[8]) {
  unpackBf16x8(raw, out);
}

/// Stages columns [k0, k0 + kTileK) of kRows matrix rows into
/// tile[k - k0][row] as fp32. rowStart[i] is row i's first element, or null
/// for a row outside the matrix (staged as zeros); columns >= K stage as zeros.
/// `vectorized` promises every non-null rowStart is 16-byte aligned and
/// K % VectorWidth == 0, so a 16-byte vector is either wholly inside K or out.
template <typename T, int K, int kRows>
__device__ __forceinline__ void stageTile(const T *const *rowStart, int k0, bool vectorized,
                                          float (*tile)[kRows + kPad]) {
  constexpr int kWidth = VectorWidth<T>::value;
  constexpr int kVectorsPerRow = kTileK / kWidth;
  static_assert(kTileK % kWidth == 0, "a staged row is whole vectors");
  if (vectorized) {
    for (int v = threadIdx.x; v < kRows * kVectorsPerRow; v += kThreads) {
      int row = v / kVectorsPerRow, segment = v % kVectorsPerRow;
      int k = k0 + segment * kWidth;
      float values[kWidth];
      const T *start = rowStart[row];
      if (start != nullptr && k < K) {
        unpackVector(*reinterpret_cast<const uint4 *>(start + k), values);
      } else {
#pragma unroll
        for (int j = 0; j < kWidth; ++j)
          values[j] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kWidth; ++j)
        tile[segment * kWidth + j][row] = values[j];
    }
  } else {
    // Consecutive threads read consecutive columns of one row.
    for (int e = threadIdx.x; e < kRows * kTileK; e += kThreads) {
      int row = e / kTileK, column = e % kTileK;
      const T *start = rowStart[row];
      int k = k0 + column;
      tile[column][row] = (start != nullptr && k < K) ? toFloat(start[k]) : 0.0f;
    }
  }
}

/// Which operands of a product carry block scales.
enum class Scaling {
  kNone,       // bf16 x bf16: one unscaled K block
  kWeightOnly, // bf16 activations x block-scaled FP8 weight
  kBoth,       // FP8 activations (per row and K block) x block-scaled FP8 weight
};

/// One 64 x 64 tile of C = A * B^T (see the file comment).
///
/// Tile row i (0 <= i < validRows, validRows <= kTileM) is output row
/// rowBegin + i and reads A row gatherRows ? gatherRows[rowBegin + i] :
/// rowBegin + i (row stride lda). The tile's columns are n0 .. n0 + 63 (those
/// >= N are skipped). KB = ceilDiv(K, BLOCK_K). With Scaling::kBoth A's row s
/// has scales aScales[s * KB + kb]; with kBoth or kWeightOnly B's scales are
/// bScales[(n / BLOCK_N) * KB + kb]; with kNone BLOCK_K must equal K (one
/// unscaled block).
/// Called by all kThreads threads of the block, none returned early.
template <typename TA, typename TB, int N, int K, int BLOCK_N, int BLOCK_K, Scaling kScaling,
          typename OutT>
__device__ __forceinline__ void gemmTile(const TA *a, long long lda, const float *aScales,
                                         const int *gatherRows, int rowBegin, int validRows,
                                         const TB *b, const float *bScales, OutT *c, int n0) {
  constexpr bool kScaled = kScaling != Scaling::kNone;
  static_assert(!kScaled || BLOCK_K % kTileK == 0,
                "a staged K step must not straddle two scale blocks");
  static_assert(kScaled || BLOCK_K == K, "an unscaled product is one K block");
  constexpr int kBlocksK = ceilDiv(K, BLOCK_K);

  __shared__ __align__(16) float aTile[kTileK][kTileM + kPad];
  __shared__ __align__(16) float bTile[kTileK][kTileN + kPad];
  __shared__ const TA *aRowStart[kTileM];
  __shared__ const TB *bRowStart[kTileN];
  __shared__ int aSourceRow[kTileM];

  for (int i = threadIdx.x; i < kTileM; i += kThreads) {
    int source = -1;
    if (i < validRows)
      source = gatherRows != nullptr ? gatherRows[rowBegin + i] : rowBegin + i;
    aSourceRow[i] = source;
    aRowStart[i] = source >= 0 ? a + source * lda : nullptr;
  }
  for (int i = threadIdx.x; i < kTileN; i += kThreads) {
    int n = n0 + i;
    bRowStart[i] = n < N ? b + static_cast<long long>(n) * K : nullptr;
  }
  constexpr int kWidthA = VectorWidth<TA>::value, kWidthB = VectorWidth<TB>::value;
  const bool aVectorized = K % kWidthA == 0 && lda % kWidthA == 0 && aligned16(a);
  const bool bVectorized = K % kWidthB == 0 && aligned16(b);
  __syncthreads();

  const int tx = threadIdx.x % (kTileN / kMicro), ty = threadIdx.x / (kTileN / kMicro);
  // Threads whose four rows are all past validRows only help stage tiles:
  // with few routed rows per expert most warps skip the FMAs entirely.
  const bool hasRows = ty * kMicro < validRows;

  float acc[kMicro][kMicro];
#pragma unroll
  for (int i = 0; i < kMicro; ++i)
#pragma unroll
    for (int j = 0; j < kMicro; ++j)
      acc[i][j] = 0.0f;

  for (int kb = 0; kb < kBlocksK; ++kb) {
    float partial[kMicro][kMicro];
#pragma unroll
    for (int i = 0; i < kMicro; ++i)
#pragma unroll
      for (int j = 0; j < kMicro; ++j)
        partial[i][j] = 0.0f;

    const int kEnd = (kb + 1) * BLOCK_K < K ? (kb + 1) * BLOCK_K : K;
    for (int k0 = kb * BLOCK_K; k0 < kEnd; k0 += kTileK) {
      __syncthreads(); // the previous step's tiles are no longer read
      stageTile<TA, K, kTileM>(aRowStart, k0, aVectorized, aTile);
      stageTile<TB, K, kTileN>(bRowStart, k0, bVectorized, bTile);
      __syncthreads();
      if (hasRows) {
#pragma unroll 8
        for (int kk = 0; kk < kTileK; ++kk) {
          float4 av = *reinterpret_cast<const float4 *>(&aTile[kk][ty * kMicro]);
          float4 bv = *reinterpret_cast<const float4 *>(&bTile[kk][tx * kMicro]);
          const float aValues[kMicro] = {av.x, av.y, av.z, av.w};
          const float bValues[kMicro] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
          for (int i = 0; i < kMicro; ++i)
#pragma unroll
            for (int j = 0; j < kMicro; ++j)
              partial[i][j] = fmaf(aValues[i], bValues[j], partial[i][j]);
        }
      }
    }

    if (hasRows) {
      if (kScaled) {
        float aScale[kMicro], bScale[kMicro];
#pragma unroll
        for (int i = 0; i < kMicro; ++i) {
          int source = aSourceRow[ty * kMicro + i];
          if (kScaling == Scaling::kBoth)
            aScale[i] =
                source >= 0 ? aScales[static_cast<long long>(source) * kBlocksK + kb] : 0.0f;
          else
            aScale[i] = 1.0f;
        }
#pragma unroll
        for (int j = 0; j < kMicro; ++j) {
          int n = n0 + tx * kMicro + j;
          bScale[j] = n < N ? bScales[(n / BLOCK_N) * kBlocksK + kb] : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < kMicro; ++i)
#pragma unroll
          for (int j = 0; j < kMicro; ++j)
            acc[i][j] = fmaf(partial[i][j], aScale[i] * bScale[j], acc[i][j]);
      } else {
#pragma unroll
        for (int i = 0; i < kMicro; ++i)
#pragma unroll
          for (int j = 0; j < kMicro; ++j)
            acc[i][j] += partial[i][j];
      }
    }
  }

  if (!hasRows)
    return;
#pragma unroll
  for (int i = 0; i < kMicro; ++i) {
    int row = ty * kMicro + i;
    if (row >= validRows)
      continue;
    OutT *cRow = c + static_cast<long long>(rowBegin + row) * N;
#pragma unroll
    for (int j = 0; j < kMicro; ++j) {
      int n = n0 + tx * kMicro + j;
      if (n < N)
        cRow[n] = fromFloat<OutT>(acc[i][j]);
    }
  }
}

} // namespace gemm_detail

/// Block-scaled FP8 GEMM: C[M, N] = A[M, K] * B[N, K]^T.
///
/// a: [M, K] e4m3 (an act_quant output), a_scales: [M, ceilDiv(K, BLOCK_K)].
/// b: [N, K] e4m3 checkpoint weight, b_scales: [ceilDiv(N, BLOCK_N),
/// ceilDiv(K, BLOCK_K)] (its weight_scale_inv). c: [M, N] of OutT (bf16 or
/// float). For each K block kb the fp32 sum of a[m, k] * b[n, k] over the
/// block is added to c[m, n] times a_scales[m, kb] * b_scales[n / BLOCK_N, kb].
/// N and K need not be multiples of 64, BLOCK_N or BLOCK_K; BLOCK_K must be a
/// multiple of 32 (DeepSeek: 128).
///
/// Launch: grid = (ceilDiv(N, 64), ceilDiv(M, 64), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, typename OutT>
__global__ void __launch_bounds__(256, 2)
    fp8_gemm(const fp8 *a, const float *a_scales, const fp8 *b, const float *b_scales, OutT *c,
             int M) {
  awaitPrecedingKernels();
  int rowBegin = blockIdx.y * gemm_detail::kTileM;
  if (rowBegin >= M)
    return;
  int validRows = M - rowBegin < gemm_detail::kTileM ? M - rowBegin : gemm_detail::kTileM;
  gemm_detail::gemmTile<fp8, fp8, N, K, BLOCK_N, BLOCK_K, gemm_detail::Scaling::kBoth, OutT>(
      a, K, a_scales, nullptr, rowBegin, validRows, b, b_scales, c,
      blockIdx.x * gemm_detail::kTileN);
}

/// FP8 weight with bf16 activations (DeepSeek's demo default): C[M, N] =
/// A[M, K] * dequant(B)[N, K]^T, a: [M, lda] bf16 unquantized (columns [0,
/// K) used), b and b_scales as in fp8_gemm. Each BLOCK_K-deep slice is summed
/// in fp32 and scaled by its weight block's scale, so the weight is
/// dequantized exactly (in fp32) and the only rounding is the output's.
///
/// Launch: grid = (ceilDiv(N, 64), ceilDiv(M, 64), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, typename OutT>
__global__ void __launch_bounds__(256, 2)
    w8a16_gemm(const bf16 *a, int lda, const fp8 *b, const float *b_scales, OutT *c, int M) {
  awaitPrecedingKernels();
  int rowBegin = blockIdx.y * gemm_detail::kTileM;
  if (rowBegin >= M)
    return;
  int validRows = M - rowBegin < gemm_detail::kTileM ? M - rowBegin : gemm_detail::kTileM;
  gemm_detail::gemmTile<bf16, fp8, N, K, BLOCK_N, BLOCK_K, gemm_detail::Scaling::kWeightOnly,
                        OutT>(a, lda, nullptr, nullptr, rowBegin, validRows, b, b_scales, c,
                              blockIdx.x * gemm_detail::kTileN);
}

/// BF16 GEMM with fp32 accumulation: C[M, N] = A[M, K] * B[N, K]^T.
///
/// a: [M, lda] bf16, columns [0, K) used (lda >= K). b: [N, K] bf16.
/// c: [M, N] of OutT (bf16 or float; the router and lm_head use float).
///
/// Launch: grid = (ceilDiv(N, 64), ceilDiv(M, 64), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int N, int K, typename OutT>
__global__ void __launch_bounds__(256, 2)
    bf16_gemm(const bf16 *a, int lda, const bf16 *b, OutT *c, int M) {
  awaitPrecedingKernels();
  int rowBegin = blockIdx.y * gemm_detail::kTileM;
  if (rowBegin >= M)
    return;
  int validRows = M - rowBegin < gemm_detail::kTileM ? M - rowBegin : gemm_detail::kTileM;
  gemm_detail::gemmTile<bf16, bf16, N, K, 1, K, gemm_detail::Scaling::kNone, OutT>(
      a, lda, nullptr, nullptr, rowBegin, validRows, b, nullptr, c,
      blockIdx.x * gemm_detail::kTileN);
}

} // namespace dsv3k
