//===- skinny_gemm.cuh - GEMMs over a few rows, at weight-read speed -----===//
//
// C = A * B^T for M of 1 to a few rows (decode), where the product is bound
// by reading B once: gemm.cuh's 64 x 64 tiles would leave most of a tile's
// rows empty and launch too few blocks to keep HBM busy. Here the 8 warps of
// a block form 8 / SPLIT groups of SPLIT warps; each group owns COLS output
// columns and splits K among its warps:
//
//  - lane l of the group's warp p takes the 16-byte weight chunks
//    c = p * 32 + l, + 32 * SPLIT, ... of each of its COLS weight rows (16
//    e4m3 or 8 bf16 values per chunk), and the matching activation values of
//    each output row (bf16, 16-byte loads, reused for all COLS columns);
//  - the chunks a lane will read are unrolled so that several 16-byte weight
//    loads (up to 8) are in flight before the first is used: decode GEMMs
//    are latency-bound otherwise. Weights bypass L1 (read once), activations
//    stay there (read by every column);
//  - an FP8 chunk lies inside one BLOCK_K-deep scale block (BLOCK_K is a
//    multiple of 16), so its 16 products are summed in fp32 and scaled by
//    that block's weight scale: the weight is dequantized exactly, in fp32;
//  - partial sums are reduced across lanes with shuffles and across the
//    group's warps in shared memory; one thread per (row, column) writes.
//
// The code generator picks SPLIT and COLS per shape: SPLIT large enough for
// long K to be shared by several warps, small enough that each lane still
// has a few chunks (K = 1536 FP8 is 96 chunks: one warp per column); COLS
// as large as the GPU stays full (N / columns-per-block blocks).
//
// Rows are processed kRowsPerPass = 4 at a time: for M <= 4 every weight byte
// is read once.
//
// A block takes tiles blockIdx.x, + gridDim.x, ... of 8 / SPLIT * COLS
// columns. The grouped kernels' RING variant (sm_90+) streams them through
// a ring of shared-memory stages filled by bulk copies (see kBulkCopies).
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

inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;
inline constexpr int kRowsPerPass = 4;
/// 16-byte weight loads a thread keeps in flight. Targets without e4m3
/// conversion instructions (sm_80) decode FP8 in software, so there these
/// kernels are bound by arithmetic, and unrolling 8 loads deep made NVRTC
/// take 47 s instead of 14 s for a plan.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
inline constexpr int kLoadsInFlight = 2;
#else
inline constexpr int kLoadsInFlight = 8;
#endif

/// Output columns of one block.
template <int SPLIT, int COLS> __host__ __device__ constexpr int blockColumns() {
  return kWarps / SPLIT * COLS;
}

/// The start of tile `tile`'s weight rows (row min(N, tile x the block's
/// columns) of b [N, K]): a block's first tile is [tileEdge(x), tileEdge(x +
/// 1)), contiguous, which the dense kernels prefetch before they wait.
template <int N, int K, int SPLIT, int COLS, typename TB>
__device__ __forceinline__ const TB *tileEdge(const TB *b, int tile) {
  const long long row = static_cast<long long>(tile) * blockColumns<SPLIT, COLS>();
  return b + (row < N ? row : N) * K;
}

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

/// 16 e4m3 activations at p (16-byte aligned) as floats (unscaled).
template <int kWidth> __device__ __forceinline__ void loadActivations(const fp8 *p, float *out) {
  static_assert(kWidth == 16, "FP8 activations meet FP8 weights: 16 per chunk");
  float sixteen[16];
  gemm_detail::unpackVector(*reinterpret_cast<const uint4 *>(p), sixteen);
#pragma unroll
  for (int i = 0; i < 16; ++i)
    out[i] = sixteen[i];
}

/// 16 bytes read once: not kept in L1.
__device__ __forceinline__ uint4 loadStreaming(const void *p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

/// The grouped kernels' RING variant, where the target has bulk copies
/// (sm_90 and later): a block streams its tiles of B (8 / SPLIT * COLS whole
/// rows: one contiguous range) through a ring of shared-memory stages, each
/// filled by one cp.async.bulk that completes the stage's mbarrier; one
/// thread keeps up to kBulkRingMaxBytes in flight per block while the warps
/// work on the oldest stage, and a block takes tile blockIdx.x, + gridDim.x,
/// ... so that a grid of a few blocks per SM streams without waves of
/// blocks that each load, wait and finish. Each tile still ends in a
/// block-wide reduction (two __syncthreads) that the next tile waits for:
/// measured on an H100, the ring beats the register loads only for the
/// routed experts at decode (each block streams about 20 tiles of one
/// expert), and the dense kernels, slower through it at every tile size
/// tried, do not use it (docs/kernels-gemm.md). Without RING, on older
/// targets, or for tiles that do not
/// fit the ring twice, rows not a whole number of chunks, or unaligned
/// operands, each tile goes through skinnyColumns' register loads.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
inline constexpr bool kBulkCopies = true;
#else
inline constexpr bool kBulkCopies = false;
#endif
/// The ring's static shared memory: with the partial sums of both paths it
/// stays under the 48 KB a block may have without opting in. dsv3c sizes
/// the ring's tiles with the same bound (CodeGen.cpp, skinnyRingShape).
inline constexpr int kBulkRingMaxBytes = 45 * 1024;
inline constexpr int kBulkMaxStages = 8;
/// Activation rows held in registers at once by the bulk path (as floats,
/// reused for every column of the warp group).
inline constexpr int kBulkRowsAtOnce = 2;

/// Stages of the ring for tiles of 8 / SPLIT * COLS rows of K values of TB.
template <typename TB, int K, int SPLIT, int COLS> __host__ __device__ constexpr int bulkStages() {
  long long tileBytes = static_cast<long long>(blockColumns<SPLIT, COLS>()) * K * sizeof(TB);
  long long stages = kBulkRingMaxBytes / tileBytes;
  return stages > kBulkMaxStages ? kBulkMaxStages : static_cast<int>(stages);
}

/// True when tiles of 8 / SPLIT * COLS rows of K values of TB fit the ring:
/// whole 16-byte chunks per row, and at least two stages (dsv3c's
/// CodeGen.cpp makes the same test to size the grid).
template <typename TB, int K, int SPLIT, int COLS> __host__ __device__ constexpr bool ringFits() {
  return K % ChunkWidth<TB>::value == 0 && bulkStages<TB, K, SPLIT, COLS>() >= 2;
}

/// True when a block's tiles stream through the shared-memory ring.
template <typename TB, int K, int SPLIT, int COLS> __host__ __device__ constexpr bool bulkTiles() {
  return kBulkCopies && ringFits<TB, K, SPLIT, COLS>();
}

/// Blocks per SM the kernels are compiled for: the ring needs no registers
/// for loads in flight, so three blocks fit (80 registers each); the
/// register path keeps 8 loads in flight per thread and needs two.
template <typename TB, int K, int SPLIT, int COLS, bool RING>
__host__ __device__ constexpr int minBlocks() {
  return RING && bulkTiles<TB, K, SPLIT, COLS>() ? 3 : 2;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ unsigned sharedAddress(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// Makes barrier `bar` expect one arrival and `bytes` bytes, then copies
/// them from global `src` to shared `dst` (both 16-byte aligned, bytes a
/// multiple of 16), first in line for eviction from L2 (read once).
__device__ __forceinline__ void bulkLoad(void *dst, const void *src, unsigned bytes,
                                         unsigned long long *bar, unsigned long long policy) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;"
               ::"r"(sharedAddress(bar)), "r"(bytes)
               : "memory");
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
               " [%0], [%1], %2, [%3], %4;"
               ::"r"(sharedAddress(dst)), "l"(src), "r"(bytes), "r"(sharedAddress(bar)),
               "l"(policy)
               : "memory");
}

/// Waits until the phase of barrier `bar` with the given parity completed.
__device__ __forceinline__ void awaitBulkLoad(unsigned long long *bar, unsigned parity) {
  unsigned done = 0;
  while (!done)
    asm volatile("{\n .reg .pred complete;\n"
                 " mbarrier.try_wait.parity.shared::cta.b64 complete, [%1], %2;\n"
                 " selp.u32 %0, 1, 0, complete;\n}"
                 : "=r"(done)
                 : "r"(sharedAddress(bar)), "r"(parity)
                 : "memory");
}
#endif

/// The end of a pass over up to kRowsPerPass rows: each warp's per-lane sums
/// acc[m][j] reduced, the SPLIT warps of each column group added through
/// `partial` (after a block barrier), and C[row0 + m, column0 + group COLS +
/// j] stored for m < passRows. `partial` may be rewritten only after another
/// barrier. Called by the whole block.
template <int N, int SPLIT, int COLS, typename OutT>
__device__ __forceinline__ void storeColumnSums(const float (&acc)[kRowsPerPass][COLS],
                                                float (&partial)[kWarps][kRowsPerPass][COLS],
                                                int column0, int row0, int passRows, OutT *c) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int m = 0; m < kRowsPerPass; ++m)
#pragma unroll
    for (int j = 0; j < COLS; ++j) {
      float total = warpSum(acc[m][j]);
      if (lane == 0)
        partial[warp][m][j] = total;
    }
  __syncthreads();
  constexpr int kOutputs = kWarps / SPLIT * kRowsPerPass * COLS;
  if (threadIdx.x < kOutputs) {
    const int outGroup = threadIdx.x / (kRowsPerPass * COLS);
    const int m = threadIdx.x / COLS % kRowsPerPass, j = threadIdx.x % COLS;
    const int n = column0 + outGroup * COLS + j;
    if (m < passRows && n < N) {
      float total = 0.0f;
#pragma unroll
      for (int p = 0; p < SPLIT; ++p)
        total += partial[outGroup * SPLIT + p][m][j];
      c[static_cast<long long>(row0 + m) * N + n] = fromFloat<OutT>(total);
    }
  }
}

/// Output columns blockColumn0 .. + blockColumns<SPLIT, COLS>() - 1 of rows
/// rowBegin .. rowBegin + rows - 1 of C = A * B^T. Output row i reads A row
/// gatherRows ? gatherRows[rowBegin + i] : rowBegin + i (stride lda).
/// kScaled: B's block scales are bScales[(n / BLOCK_N) * KB + k / BLOCK_K];
/// otherwise BLOCK_K is unused. FP8 activations (TA = fp8) have scales
/// aScales[row * KB + k / BLOCK_K], row being the A row read.
/// Called by all kThreads threads of the block.
template <typename TA, typename TB, int N, int K, int BLOCK_N, int BLOCK_K, bool kScaled,
          int SPLIT, int COLS, typename OutT>
__device__ __forceinline__ void skinnyColumns(const TA *a, const float *aScales, long long lda,
                                              const int *gatherRows, int rowBegin, int rows,
                                              const TB *b, const float *bScales, OutT *c,
                                              int blockColumn0) {
  constexpr bool kFp8Activations = sizeof(TA) == 1;
  static_assert(!kFp8Activations || (sizeof(TB) == 1 && kScaled),
                "FP8 activations meet block-scaled FP8 weights only");
  static_assert(kWarps % SPLIT == 0, "SPLIT must divide the block's 8 warps");
  static_assert(COLS >= 1 && COLS <= kLoadsInFlight, "COLS: at most the loads a thread keeps in flight");
  constexpr int kWidth = ChunkWidth<TB>::value;
  constexpr int kChunks = K / kWidth;
  constexpr int kBlocksK = kScaled ? ceilDiv(K, BLOCK_K) : 1;
  constexpr int kStride = 32 * SPLIT; // chunks between one lane's successive chunks
  constexpr int kIters = ceilDiv(kChunks, kStride);
  constexpr int kUnroll = kLoadsInFlight / COLS;
  static_assert(!kScaled || BLOCK_K % 16 == 0, "a chunk must not straddle two scale blocks");
  __shared__ float partial[kWarps][kRowsPerPass][COLS];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp / SPLIT, part = warp % SPLIT;
  const int n0 = blockColumn0 + group * COLS;
  const TB *bRows[COLS];
  int scaleRow[COLS]; // row of B's scales; unused when !kScaled
#pragma unroll
  for (int j = 0; j < COLS; ++j) {
    int n = n0 + j < N ? n0 + j : N - 1; // past-the-end columns recompute N - 1, unwritten
    bRows[j] = b + static_cast<long long>(n) * K;
    scaleRow[j] = n / BLOCK_N;
  }
  const bool vectorized = K % kWidth == 0 && lda % (16 / sizeof(TA)) == 0 &&
                          aligned16(a) && aligned16(b);

  for (int pass = 0; pass < rows; pass += kRowsPerPass) {
    const int passRows = rows - pass < kRowsPerPass ? rows - pass : kRowsPerPass;
    const TA *aRows[kRowsPerPass];
    const float *aRowScales[kRowsPerPass]; // FP8 activations only
#pragma unroll
    for (int m = 0; m < kRowsPerPass; ++m) {
      int row = rowBegin + pass + (m < passRows ? m : 0);
      long long source = gatherRows != nullptr ? gatherRows[row] : row;
      aRows[m] = a + source * lda;
      aRowScales[m] = kFp8Activations ? aScales + source * kBlocksK : nullptr;
    }
    float acc[kRowsPerPass][COLS];
#pragma unroll
    for (int m = 0; m < kRowsPerPass; ++m)
#pragma unroll
      for (int j = 0; j < COLS; ++j)
        acc[m][j] = 0.0f;

    if (vectorized) {
#pragma unroll 1
      for (int it0 = 0; it0 < kIters; it0 += kUnroll) {
        uint4 raw[kUnroll][COLS];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int chunk = part * 32 + lane + (it0 + u) * kStride;
          if (it0 + u < kIters && chunk < kChunks)
#pragma unroll
            for (int j = 0; j < COLS; ++j)
              raw[u][j] = loadStreaming(bRows[j] + chunk * kWidth);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int chunk = part * 32 + lane + (it0 + u) * kStride;
          if (it0 + u >= kIters || chunk >= kChunks)
            continue;
          const int k = chunk * kWidth;
          float scales[COLS];
#pragma unroll
          for (int j = 0; j < COLS; ++j)
            scales[j] = kScaled ? bScales[scaleRow[j] * kBlocksK + k / BLOCK_K] : 1.0f;
          // One row's activations at a time, the weights unpacked again for
          // each row: registers stay few enough for two blocks per SM.
#pragma unroll
          for (int m = 0; m < kRowsPerPass; ++m) {
            if (m >= passRows)
              break;
            float activations[kWidth];
            loadActivations<kWidth>(aRows[m] + k, activations);
            const float aScale = kFp8Activations ? aRowScales[m][k / BLOCK_K] : 1.0f;
#pragma unroll
            for (int j = 0; j < COLS; ++j) {
              float weights[kWidth];
              gemm_detail::unpackVector(raw[u][j], weights);
              float dot = 0.0f;
#pragma unroll
              for (int i = 0; i < kWidth; ++i)
                dot = fmaf(activations[i], weights[i], dot);
              acc[m][j] = fmaf(dot, kFp8Activations ? scales[j] * aScale : scales[j], acc[m][j]);
            }
          }
        }
      }
    } else {
      for (int k = part * 32 + lane; k < K; k += kStride) {
#pragma unroll
        for (int j = 0; j < COLS; ++j) {
          float weight = toFloat(bRows[j][k]);
          if (kScaled)
            weight *= bScales[scaleRow[j] * kBlocksK + k / BLOCK_K];
#pragma unroll
          for (int m = 0; m < kRowsPerPass; ++m)
            if (m < passRows) {
              float activation = toFloat(aRows[m][k]);
              if (kFp8Activations)
                activation *= aRowScales[m][k / BLOCK_K];
              acc[m][j] = fmaf(activation, weight, acc[m][j]);
            }
        }
      }
    }

    storeColumnSums<N, SPLIT, COLS>(acc, partial, blockColumn0, rowBegin + pass, passRows, c);
    __syncthreads(); // partial is rewritten by the next pass
  }
}

/// All of the block's tiles (tile blockIdx.x, + gridDim.x, ...; a tile is
/// blockColumns<SPLIT, COLS>() columns) of rows rowBegin .. + rows - 1, as
/// skinnyColumns computes one, with B's rows streamed through the
/// shared-memory ring (bulkTiles() and 16-byte aligned operands only).
template <typename TA, typename TB, int N, int K, int BLOCK_N, int BLOCK_K, bool kScaled,
          int SPLIT, int COLS, typename OutT>
__device__ __forceinline__ void skinnyBulkTiles(const TA *a, const float *aScales, long long lda,
                                                const int *gatherRows, int rowBegin, int rows,
                                                const TB *b, const float *bScales, OutT *c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr bool kFp8Activations = sizeof(TA) == 1;
  constexpr int kWidth = ChunkWidth<TB>::value;
  constexpr int kChunks = K / kWidth; // per row
  constexpr int kTileColumns = blockColumns<SPLIT, COLS>();
  constexpr int kTiles = ceilDiv(N, kTileColumns);
  constexpr int kStages = bulkStages<TB, K, SPLIT, COLS>();
  constexpr int kBlocksK = kScaled ? ceilDiv(K, BLOCK_K) : 1;
  constexpr int kStride = 32 * SPLIT;
  constexpr int kIters = ceilDiv(kChunks, kStride);
  constexpr unsigned kRowBytes = K * sizeof(TB);
  __shared__ __align__(128) uint4 ring[kStages][kTileColumns * kChunks];
  __shared__ __align__(8) unsigned long long stageFull[kStages];
  __shared__ float partial[kWarps][kRowsPerPass][COLS];

  // Thread 0 fills stage `stage` with tile `tile` (its rows below N).
  auto startTile = [&](int stage, int tile, unsigned long long policy) {
    const int first = tile * kTileColumns;
    const int columns = N - first < kTileColumns ? N - first : kTileColumns;
    bulkLoad(ring[stage], b + static_cast<long long>(first) * K, columns * kRowBytes,
             &stageFull[stage], policy);
  };
  unsigned long long policy = 0;
  if (threadIdx.x == 0) {
    for (int stage = 0; stage < kStages; ++stage)
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(sharedAddress(&stageFull[stage]))
                   : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    for (int stage = 0; stage < kStages; ++stage)
      if (blockIdx.x + stage * gridDim.x < kTiles)
        startTile(stage, blockIdx.x + stage * gridDim.x, policy);
  }
  __syncthreads(); // the barriers are initialized before anyone waits

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp / SPLIT, part = warp % SPLIT;
  int use = 0; // tiles this block finished
  for (int tile = blockIdx.x; tile < kTiles; tile += gridDim.x, ++use) {
    const int stage = use % kStages;
    awaitBulkLoad(&stageFull[stage], (use / kStages) & 1);
    const int tileColumn0 = tile * kTileColumns;
    const uint4 *groupRows = ring[stage] + group * COLS * kChunks;
    int scaleRow[COLS]; // columns past N (never written) use N - 1's scales
#pragma unroll
    for (int j = 0; j < COLS; ++j) {
      const int n = tileColumn0 + group * COLS + j;
      scaleRow[j] = (n < N ? n : N - 1) / BLOCK_N;
    }

    for (int pass = 0; pass < rows; pass += kRowsPerPass) {
      const int passRows = rows - pass < kRowsPerPass ? rows - pass : kRowsPerPass;
      const TA *aRows[kRowsPerPass];
      const float *aRowScales[kRowsPerPass]; // FP8 activations only
#pragma unroll
      for (int m = 0; m < kRowsPerPass; ++m) {
        int row = rowBegin + pass + (m < passRows ? m : 0);
        long long source = gatherRows != nullptr ? gatherRows[row] : row;
        aRows[m] = a + source * lda;
        aRowScales[m] = kFp8Activations ? aScales + source * kBlocksK : nullptr;
      }
      float acc[kRowsPerPass][COLS];
#pragma unroll
      for (int m = 0; m < kRowsPerPass; ++m)
#pragma unroll
        for (int j = 0; j < COLS; ++j)
          acc[m][j] = 0.0f;

      // kBulkRowsAtOnce activation rows in registers; each weight chunk is
      // read from shared memory and unpacked once for them.
#pragma unroll
      for (int m0 = 0; m0 < kRowsPerPass; m0 += kBulkRowsAtOnce) {
        if (m0 >= passRows)
          break;
#pragma unroll 1
        for (int it = 0; it < kIters; ++it) {
          const int chunk = part * 32 + lane + it * kStride;
          if (chunk >= kChunks)
            break;
          const int k = chunk * kWidth;
          float activations[kBulkRowsAtOnce][kWidth];
          float aScale[kBulkRowsAtOnce];
#pragma unroll
          for (int mm = 0; mm < kBulkRowsAtOnce; ++mm) {
            const int m = m0 + mm < passRows ? m0 + mm : m0; // a repeated row is not summed
            loadActivations<kWidth>(aRows[m] + k, activations[mm]);
            aScale[mm] = kFp8Activations ? aRowScales[m][k / BLOCK_K] : 1.0f;
          }
#pragma unroll
          for (int j = 0; j < COLS; ++j) {
            float weights[kWidth];
            gemm_detail::unpackVector(groupRows[j * kChunks + chunk], weights);
            const float scale = kScaled ? bScales[scaleRow[j] * kBlocksK + k / BLOCK_K] : 1.0f;
#pragma unroll
            for (int mm = 0; mm < kBulkRowsAtOnce; ++mm) {
              float dot = 0.0f;
#pragma unroll
              for (int i = 0; i < kWidth; ++i)
                dot = fmaf(activations[mm][i], weights[i], dot);
              if (m0 + mm < passRows)
                acc[m0 + mm][j] = fmaf(dot, kFp8Activations ? scale * aScale[mm] : scale,
                                       acc[m0 + mm][j]);
            }
          }
        }
      }

      storeColumnSums<N, SPLIT, COLS>(acc, partial, tileColumn0, rowBegin + pass, passRows, c);
      // partial is rewritten next; after the last pass nobody reads the
      // stage any more, so it can be refilled.
      __syncthreads();
    }
    if (threadIdx.x == 0 && tile + kStages * gridDim.x < kTiles)
      startTile(stage, tile + kStages * gridDim.x, policy);
  }
#endif
}

/// Tiles blockIdx.x, + gridDim.x, ... of the columns, rows rowBegin .. +
/// rows - 1: through the shared-memory ring where RING asks for it and it
/// applies, else one skinnyColumns call per tile.
template <typename TA, typename TB, int N, int K, int BLOCK_N, int BLOCK_K, bool kScaled,
          int SPLIT, int COLS, bool RING, typename OutT>
__device__ __forceinline__ void skinnyTiles(const TA *a, const float *aScales, long long lda,
                                            const int *gatherRows, int rowBegin, int rows,
                                            const TB *b, const float *bScales, OutT *c) {
  constexpr int kTileColumns = blockColumns<SPLIT, COLS>();
  constexpr int kTiles = ceilDiv(N, kTileColumns);
  if (rows <= 0)
    return;
  if constexpr (RING && bulkTiles<TB, K, SPLIT, COLS>()) {
    if (lda % (16 / sizeof(TA)) == 0 && aligned16(a) && aligned16(b)) {
      skinnyBulkTiles<TA, TB, N, K, BLOCK_N, BLOCK_K, kScaled, SPLIT, COLS, OutT>(
          a, aScales, lda, gatherRows, rowBegin, rows, b, bScales, c);
      return;
    }
  }
  for (int tile = blockIdx.x; tile < kTiles; tile += gridDim.x)
    skinnyColumns<TA, TB, N, K, BLOCK_N, BLOCK_K, kScaled, SPLIT, COLS, OutT>(
        a, aScales, lda, gatherRows, rowBegin, rows, b, bScales, c, tile * kTileColumns);
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

/// Block (x, r) of a grouped skinny kernel: routed row r (block y) with the
/// weight (and scales, kScaled) of the expert owning it, column stripe x.
template <typename TA, typename TB, int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K,
          bool kScaled, int SPLIT, int COLS, bool RING, typename OutT>
__device__ __forceinline__ void groupedRow(const TA *a, const float *aScales, const int *aRows,
                                           const TB *b, const float *bScales,
                                           const int *expertOffsets, OutT *c, int R) {
  const int r = blockIdx.y;
  if (r >= R)
    return;
  const int expert = expertOfRow<NUM_EXPERTS>(expertOffsets, r);
  constexpr long long kScalesPerExpert =
      kScaled ? static_cast<long long>(ceilDiv(N, BLOCK_N)) * ceilDiv(K, BLOCK_K) : 0;
  skinnyTiles<TA, TB, N, K, BLOCK_N, BLOCK_K, kScaled, SPLIT, COLS, RING, OutT>(
      a, aScales, K, aRows, r, 1, b + static_cast<long long>(expert) * N * K,
      kScaled ? bScales + expert * kScalesPerExpert : nullptr, c);
}

} // namespace skinny_detail

/// FP8 weight, bf16 activations, few rows: C[M, N] = A[M, K] * dequant(B)^T
/// with a: [M, lda] bf16, b: [N, K] e4m3, b_scales: [ceilDiv(N, BLOCK_N),
/// ceilDiv(K, BLOCK_K)], c: [M, N] of OutT. Same results as w8a16_gemm up
/// to the order of fp32 additions; fastest for M <= 4. SPLIT warps share
/// each column's K; each warp group owns COLS columns.
///
/// Launch: grid = (ceilDiv(N, 8 / SPLIT * COLS), 1, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, int SPLIT, int COLS, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads, 2)
    w8a16_skinny_gemm(const bf16 *a, int lda, const fp8 *b, const float *b_scales, OutT *c,
                      int M) {
  awaitPrecedingKernelsPrefetching(
      skinny_detail::tileEdge<N, K, SPLIT, COLS>(b, blockIdx.x),
      skinny_detail::tileEdge<N, K, SPLIT, COLS>(b, blockIdx.x + 1));
  skinny_detail::skinnyTiles<bf16, fp8, N, K, BLOCK_N, BLOCK_K, true, SPLIT, COLS, false,
                              OutT>(
      a, nullptr, lda, nullptr, 0, M, b, b_scales, c);
}

/// FP8 activations and weights, few rows (DeepSeek's scheme, dsv3c
/// --activation-dtype=fp8): the arguments and results of fp8_gemm — a: [M, K]
/// e4m3 with a_scales [M, ceilDiv(K, BLOCK_K)], b and b_scales as above —
/// each 16-value chunk's fp32 sum scaled by a_scales x b_scales of its block.
///
/// Launch: grid = (ceilDiv(N, 8 / SPLIT * COLS), 1, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, int SPLIT, int COLS, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads, 2)
    fp8_skinny_gemm(const fp8 *a, const float *a_scales, const fp8 *b, const float *b_scales,
                    OutT *c, int M) {
  awaitPrecedingKernelsPrefetching(
      skinny_detail::tileEdge<N, K, SPLIT, COLS>(b, blockIdx.x),
      skinny_detail::tileEdge<N, K, SPLIT, COLS>(b, blockIdx.x + 1));
  skinny_detail::skinnyTiles<fp8, fp8, N, K, BLOCK_N, BLOCK_K, true, SPLIT, COLS, false,
                              OutT>(
      a, a_scales, K, nullptr, 0, M, b, b_scales, c);
}

/// BF16 weight, few rows: C[M, N] = A[M, K] * B[N, K]^T, a: [M, lda] bf16, c:
/// [M, N] of OutT (the router and lm_head write float).
///
/// Launch: grid = (ceilDiv(N, 8 / SPLIT * COLS), 1, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int SPLIT, int COLS, typename OutT>
__global__ void __launch_bounds__(skinny_detail::kThreads, 2)
    bf16_skinny_gemm(const bf16 *a, int lda, const bf16 *b, OutT *c, int M) {
  awaitPrecedingKernelsPrefetching(
      skinny_detail::tileEdge<N, K, SPLIT, COLS>(b, blockIdx.x),
      skinny_detail::tileEdge<N, K, SPLIT, COLS>(b, blockIdx.x + 1));
  skinny_detail::skinnyTiles<bf16, bf16, N, K, 1, K, false, SPLIT, COLS, false, OutT>(
      a, nullptr, lda, nullptr, 0, M, b, nullptr, c);
}

/// Routed experts over few rows: block (x, r) computes the x-th stripe of
/// 8 / SPLIT * COLS columns of routed row r with the weight of the expert
/// owning r (as w8a16_grouped_gemm: a [*, K] bf16 gathered through a_rows or
/// in routed order; b [NUM_EXPERTS, N, K] e4m3 with b_scales [NUM_EXPERTS,
/// ceilDiv(N, BLOCK_N), ceilDiv(K, BLOCK_K)]; c [R, N] of OutT). Each
/// routed row reads its expert's weight slice, so it suits R up to a few
/// dozen (decode at small batch). RING: the blocks of a grid row stream
/// their stripes (every gridDim.x-th) through shared memory (sm_90+).
///
/// Launch: grid = (ceilDiv(N, 8 / SPLIT * COLS) or fewer, R, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, int SPLIT, int COLS,
          typename OutT, bool RING = false>
__global__ void __launch_bounds__(skinny_detail::kThreads,
                                    (skinny_detail::minBlocks<fp8, K, SPLIT, COLS, RING>()))
    w8a16_grouped_skinny_gemm(const bf16 *a, const int *a_rows, const fp8 *b,
                              const float *b_scales, const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  skinny_detail::groupedRow<bf16, fp8, N, K, NUM_EXPERTS, BLOCK_N, BLOCK_K, true, SPLIT, COLS,
                            RING, OutT>(a, nullptr, a_rows, b, b_scales, expert_offsets, c, R);
}

/// FP8 activations and routed FP8 experts over few rows: the arguments and
/// results of fp8_grouped_gemm (a [*, K] e4m3 and a_scales [*, ceilDiv(K,
/// BLOCK_K)], both read at row a_rows[r] when gathering), one block row per
/// routed row and RING as w8a16_grouped_skinny_gemm.
///
/// Launch: grid = (ceilDiv(N, 8 / SPLIT * COLS) or fewer, R, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, int SPLIT, int COLS,
          typename OutT, bool RING = false>
__global__ void __launch_bounds__(skinny_detail::kThreads,
                                    (skinny_detail::minBlocks<fp8, K, SPLIT, COLS, RING>()))
    fp8_grouped_skinny_gemm(const fp8 *a, const float *a_scales, const int *a_rows, const fp8 *b,
                            const float *b_scales, const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  skinny_detail::groupedRow<fp8, fp8, N, K, NUM_EXPERTS, BLOCK_N, BLOCK_K, true, SPLIT, COLS,
                            RING, OutT>(a, a_scales, a_rows, b, b_scales, expert_offsets, c, R);
}

/// BF16 routed experts over few rows: as w8a16_grouped_skinny_gemm (RING
/// too) without scales (b: [NUM_EXPERTS, N, K] bf16).
///
/// Launch: grid = (ceilDiv(N, 8 / SPLIT * COLS) or fewer, R, 1), block = (256, 1, 1),
/// dynamic shared memory = 0 bytes
template <int N, int K, int NUM_EXPERTS, int SPLIT, int COLS, typename OutT, bool RING = false>
__global__ void __launch_bounds__(skinny_detail::kThreads,
                                    (skinny_detail::minBlocks<bf16, K, SPLIT, COLS, RING>()))
    bf16_grouped_skinny_gemm(const bf16 *a, const int *a_rows, const bf16 *b,
                             const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  skinny_detail::groupedRow<bf16, bf16, N, K, NUM_EXPERTS, 1, K, false, SPLIT, COLS, RING,
                            OutT>(
      a, nullptr, a_rows, b, nullptr, expert_offsets, c, R);
}

} // namespace dsv3k
