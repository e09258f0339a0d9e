//===- tc_gemm.cuh - bf16-activation GEMMs on tensor cores ----------------===//
//
// C = A * B^T for bf16 activations A [M, K] and a checkpoint weight B [N, K]
// that is bf16 or FP8 e4m3 with one f32 scale per BLOCK_N x BLOCK_K block
// (dequantized exactly), dense or grouped over experts (grouped_gemm.cuh's
// row layout). Same signatures and results (up to the order of fp32
// additions) as gemm.cuh's bf16_gemm / w8a16_gemm and grouped_gemm.cuh's
// grouped kernels, which run on CUDA cores.
//
// One block owns a BM x BN tile of C (BM in {16, 32, 64, 128}, BN in {32,
// 64, 128}); its warps form kWarpsM x kWarpsN, each a (BM / kWarpsM) x 32
// piece, multiplied with mma.sync m16n8k16 (bf16 in, f32 accumulators), which
// every target from sm_80 to sm_100 runs:
//
//  - K is walked 32 columns at a time ("sub-tiles"); a pipeline stage holds
//    128 bytes of each weight row (4 sub-tiles of e4m3, 2 of bf16: whole
//    128-byte lines from memory) and the same K columns of A, STAGES stages
//    deep (STAGES - 1 in flight while one is multiplied), filled by cp.async
//    (16-byte chunks, zero-filled outside the matrix) into dynamic shared
//    memory (tileSharedBytes). Each sub-tile is stored [rows][32] with no
//    padding: the fragment reads below touch each bank once per phase.
//  - Fragments without ldmatrix: inside a sub-tile the mma's 16-deep index is
//    a permutation of K, the same for both operands (the sum does not care
//    about order). Lane (g, t) = (lane / 4, lane % 4) holds K columns
//    8t .. 8t + 7 of its rows: one 16-byte read of an A row or a bf16 weight
//    row, or one 8-byte read of an e4m3 weight row, feeds both k16 steps.
//  - FP8 weights: each e4m3 byte becomes a bf16 with the same value (e4m3 fits
//    in bf16 exactly; see e4m3x4ToBf16x2), so the tensor cores multiply the
//    raw weight. The weight is the mma's 16-row operand here (C^T = B A^T per
//    warp): the conversions write the operand registers in the order the mma
//    takes them, where rows g and g + 8 of a 16-row operand interleave. The
//    products of one BLOCK_K-deep scale block sum in their own f32
//    accumulators, added to the output accumulators times that block's scale
//    (DeepSeek's f32 promotion): the weight is dequantized exactly and the
//    only rounding is f32 accumulation and the output's.
//  - K split (dense kernels, KSPLIT > 1): the block holds KSPLIT groups of
//    threads, each with its own pipeline and named barrier over every
//    KSPLIT-th stage, and adds the groups' sums in a fixed order at the end:
//    KSPLIT times the loads in flight for a projection whose N gives few
//    blocks (q_a, kv_a), with deterministic results.
//
// Dense launches swizzle block indices so that a wave of blocks shares a few
// A row tiles and B column tiles in L2 (8 row tiles per group). Grouped
// launches find their (expert, row tile) as grouped_gemm.cuh does, per warp
// with shuffles and no barrier.
//
// Requirements: K % 16 == 0 for FP8 weights, K % 8 == 0 for bf16 (16-byte
// chunks never straddle K); BLOCK_K % 32 == 0 (a sub-tile lies in one scale
// block); a and b 16-byte aligned and lda % 8 == 0 (every row starts on a
// 16-byte boundary; the code generator's arenas and weights are 256-byte
// aligned and lda = K), else the kernel traps.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

namespace tc_detail {

inline constexpr int kSubK = 32;           // K columns per sub-tile
inline constexpr int kStageRowBytes = 128; // weight bytes per row and pipeline stage

/// Threads of one K group of a BM x BN tile (a block has KSPLIT groups); the
/// code generator copies this.
__host__ __device__ constexpr int tileThreads(int BM, int BN) {
  return 32 * (BM >= 32 ? 2 : 1) * (BN / 32);
}

/// Dynamic shared memory of one K group: STAGES stages, each 128 bytes of
/// every one of the BN weight rows (4 sub-tiles of 32 e4m3, or 2 of 32
/// bf16) and the matching sub-tiles of BM bf16 A rows; the code generator
/// copies this formula (times KSPLIT).
__host__ __device__ constexpr int tileSharedBytes(int BM, int BN, int STAGES, int weightBytes) {
  return STAGES * (kStageRowBytes / (kSubK * weightBytes)) *
         (BM * kSubK * 2 + BN * kSubK * weightBytes);
}

/// The block count __launch_bounds__ promises per SM: with none, ptxas (CUDA
/// 13) capped 256-thread tiles at 128 registers and spilled; one block of 256
/// threads allows 255 registers, two blocks of 128 as well, one of 512 128.
__host__ __device__ constexpr int tileMinBlocks(int threads) { return threads >= 256 ? 1 : 2; }

/// Geometry of a BM x BN tile, STAGES deep, with weight element type TB.
template <int BM, int BN, int STAGES, typename TB> struct TileConfig {
  static_assert(BM == 16 || BM == 32 || BM == 64 || BM == 128, "BM: 16, 32, 64 or 128");
  static_assert(BN == 32 || BN == 64 || BN == 128, "BN: 32, 64 or 128");
  static_assert(STAGES >= 2, "a pipeline needs two stages");
  static constexpr int kWarpsM = BM >= 32 ? 2 : 1;
  static constexpr int kWarpsN = BN / 32;
  static constexpr int kThreads = tileThreads(BM, BN);
  static constexpr int kWarpRows = BM / kWarpsM; // A rows per warp
  static constexpr int kARowBytes = kSubK * 2;
  static constexpr int kBRowBytes = kSubK * static_cast<int>(sizeof(TB));
  static constexpr int kSubsPerStage = kStageRowBytes / kBRowBytes;
  static constexpr int kAStageBytes = kSubsPerStage * BM * kARowBytes;
  static constexpr int kStageBytes = kAStageBytes + kSubsPerStage * BN * kBRowBytes;
  static constexpr int kStageK = kSubsPerStage * kSubK;
  static constexpr int kPipelineBytes = STAGES * kStageBytes;
  static_assert(kPipelineBytes == tileSharedBytes(BM, BN, STAGES, static_cast<int>(sizeof(TB))),
                "the launch's dynamic shared memory");
};

__device__ __forceinline__ unsigned sharedAddress(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// 16 bytes global -> shared; srcBytes 0 writes zeros and reads nothing.
__device__ __forceinline__ void copyAsync16(unsigned dst, const void *src, int srcBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes)
               : "memory");
}
__device__ __forceinline__ void commitAsync() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending> __device__ __forceinline__ void waitAsync() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

/// d += a * b for one m16n8k16 tile (bf16 inputs, f32 accumulators).
__device__ __forceinline__ void mma16816(float (&d)[4], unsigned a0, unsigned a1, unsigned a2,
                                         unsigned a3, unsigned b0, unsigned b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/// Four e4m3 values (bytes 0..3 of w, byte 0 first in K) as two bf16 pairs
/// with exactly the same values: lo = (byte 0, byte 1), hi = (byte 2, byte 3).
///
/// e4m3 is s.eeee.mmm with bias 7; placing its bits as bf16 s.0000eeee.mmm0000
/// gives a bf16 (bias 127) of value x * 2^-120 for every code, subnormals
/// included (exponent field 0 means 2^-126 * 0.mmm in bf16 and 2^-6 * 0.mmm in
/// e4m3). Multiplying by 2^120 in bf16 is then exact. The two NaN codes
/// (s.1111.111) never occur in checkpoints (DeepSeek's scales keep |w| <= 448).
__device__ __forceinline__ void e4m3x4ToBf16x2(unsigned w, unsigned &lo, unsigned &hi) {
  const unsigned pairLo = __byte_perm(w, 0u, 0x1404); // byte1 << 24 | byte0 << 8
  const unsigned pairHi = __byte_perm(w, 0u, 0x3424); // byte3 << 24 | byte2 << 8
  const unsigned scaledLo = ((pairLo >> 4) & 0x07F007F0u) | (pairLo & 0x80008000u);
  const unsigned scaledHi = ((pairHi >> 4) & 0x07F007F0u) | (pairHi & 0x80008000u);
  const unsigned twoTo120 = 0x7B807B80u; // bf16 2^120 in both halves
  const unsigned minusZero = 0x80008000u;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(lo) : "r"(scaledLo), "r"(twoTo120), "r"(minusZero));
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(hi) : "r"(scaledHi), "r"(twoTo120), "r"(minusZero));
}

/// Tile origin of a dense launch: grid (ceilDiv(N, BN), ceilDiv(M, BM)),
/// remapped so that consecutive blocks walk groups of kGroupRows row tiles
/// column by column (A and B tiles of a wave stay in L2).
struct TileCoord {
  int rowTile, colTile;
};
__device__ __forceinline__ TileCoord swizzledTile() {
  constexpr int kGroupRows = 8;
  const int cols = gridDim.x, rows = gridDim.y;
  const int linear = blockIdx.y * cols + blockIdx.x;
  const int group = linear / (kGroupRows * cols);
  const int firstRow = group * kGroupRows;
  const int groupRows = rows - firstRow < kGroupRows ? rows - firstRow : kGroupRows;
  const int inGroup = linear - group * kGroupRows * cols;
  return {firstRow + inGroup % groupRows, inGroup / groupRows};
}

/// The row tile `tileIndex` of the expert-ordered list of BM-row tiles (as
/// grouped_gemm.cuh's findExpertTile). Each warp computes it on its own with
/// shuffles; all lanes of every warp must call it.
struct ExpertTile {
  int expert, rowBegin, rows; // rows == 0: past the last tile
};
template <int NUM_EXPERTS, int BM>
__device__ __forceinline__ ExpertTile findExpertTile(const int *expert_offsets, int tileIndex) {
  const int lane = threadIdx.x % 32;
  // Experts are read 32 at a time (one per lane), kBatch chunks of 32 loaded
  // before any is scanned so that their latencies overlap.
  constexpr int kChunks = ceilDiv(NUM_EXPERTS, 32);
  constexpr int kBatch = kChunks < 8 ? kChunks : 8;
  int tilesBefore = 0;
  for (int batch = 0; batch < kChunks; batch += kBatch) {
    int begins[kBatch], ends[kBatch];
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const int expert = (batch + i) * 32 + lane;
      const bool exists = batch + i < kChunks && expert < NUM_EXPERTS;
      begins[i] = exists ? expert_offsets[expert] : 0;
      ends[i] = exists ? expert_offsets[expert + 1] : 0;
    }
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const int expert = (batch + i) * 32 + lane;
      const int begin = begins[i], end = ends[i];
      const int tiles = end > begin ? ceilDiv(end - begin, BM) : 0;
      int inclusive = tiles;
#pragma unroll
      for (int offset = 1; offset < 32; offset <<= 1) {
        int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
        if (lane >= offset)
          inclusive += other;
      }
      const int firstTile = tilesBefore + inclusive - tiles;
      const bool mine = tileIndex >= firstTile && tileIndex < firstTile + tiles;
      const unsigned owners = __ballot_sync(0xffffffffu, mine);
      if (owners != 0) {
        const int owner = __ffs(owners) - 1;
        const int rowBegin = begin + (tileIndex - firstTile) * BM;
        const int rows = end - rowBegin < BM ? end - rowBegin : BM;
        return {__shfl_sync(0xffffffffu, expert, owner), __shfl_sync(0xffffffffu, rowBegin, owner),
                __shfl_sync(0xffffffffu, rows, owner)};
      }
      tilesBefore += __shfl_sync(0xffffffffu, inclusive, 31);
    }
  }
  return {0, 0, 0};
}

/// Waits for the `threads` threads of K-split group `group` (all of the
/// block when there is one group).
template <int KSPLIT> __device__ __forceinline__ void groupBarrier(int group, int threads) {
  if constexpr (KSPLIT == 1)
    __syncthreads();
  else
    asm volatile("bar.sync %0, %1;\n" ::"r"(group + 1), "r"(threads) : "memory");
}

/// One BM x BN tile of C = A * B^T (see the file comment).
///
/// Tile row i (0 <= i < validRows) is output row rowBegin + i and reads A row
/// gatherRows ? gatherRows[rowBegin + i] : rowBegin + i (stride lda). The
/// tile's columns are n0 .. n0 + BN - 1 (those >= N are skipped). FP8 (TB =
/// fp8): B's scales are bScales[(n / BLOCK_N) * ceilDiv(K, BLOCK_K) + kb];
/// bf16: BLOCK_N and BLOCK_K are unused. KSPLIT groups of tileThreads(BM, BN)
/// threads each run their own pipeline over every KSPLIT-th stage and add
/// their sums in shared memory at the end. All threads of the block call it.
template <typename TB, int N, int K, int BLOCK_N, int BLOCK_K, int BM, int BN, int STAGES,
          int KSPLIT, typename OutT>
__device__ __forceinline__ void tcTile(const bf16 *a, long long lda, const int *gatherRows,
                                       int rowBegin, int validRows, const TB *b,
                                       const float *bScales, OutT *c, int n0) {
  using Cfg = TileConfig<BM, BN, STAGES, TB>;
  constexpr bool kFp8 = sizeof(TB) == 1;
  static_assert(K % 8 == 0 && K % (16 / sizeof(TB)) == 0, "16-byte chunks must not straddle K");
  static_assert(!kFp8 || BLOCK_K % kSubK == 0, "a sub-tile must lie in one scale block");
  static_assert(KSPLIT >= 1, "at least one K group");
  constexpr int kGroupThreads = Cfg::kThreads;
  constexpr int kSubs = ceilDiv(K, kSubK);              // sub-tiles over K
  constexpr int kStageCount = ceilDiv(K, Cfg::kStageK); // pipeline steps, all groups
  constexpr int kSubsPerScale = kFp8 ? BLOCK_K / kSubK : 1;
  constexpr int kBlocksK = kFp8 ? ceilDiv(K, BLOCK_K) : 1;

  extern __shared__ __align__(128) unsigned char tcGemmShared[]; // KSPLIT * tileSharedBytes
  const int group = threadIdx.x / kGroupThreads;
  const int tid = threadIdx.x % kGroupThreads;
  unsigned char *const shared = tcGemmShared + group * Cfg::kPipelineBytes;

  // 16-byte copies need 16-byte-aligned rows (see the file comment); a
  // launch that breaks this stops here rather than reading misaligned data.
  if (((reinterpret_cast<unsigned long long>(a) | reinterpret_cast<unsigned long long>(b)) &
       15ull) != 0 ||
      lda % 8 != 0)
    __trap();

  // ---- Loader: each thread owns fixed 16-byte chunks of every stage.
  // A: a stage row is kSubsPerStage * 4 chunks (8 bf16 each), consecutive
  // threads on consecutive chunks of one row; B likewise (128 bytes a row).
  constexpr int kAChunksPerRow = Cfg::kSubsPerStage * 4;
  constexpr int kAChunks = BM * kAChunksPerRow;
  constexpr int kASlots = ceilDiv(kAChunks, kGroupThreads);
  constexpr int kBChunksPerSubRow = Cfg::kBRowBytes / 16;
  constexpr int kBChunksPerRow = Cfg::kSubsPerStage * kBChunksPerSubRow;
  constexpr int kBChunks = BN * kBChunksPerRow;
  constexpr int kBSlots = ceilDiv(kBChunks, kGroupThreads);
  constexpr int kBElementsPerChunk = 16 / static_cast<int>(sizeof(TB));

  // Per slot: the chunk's source at k = 0 (null: a row outside the matrix,
  // zero-filled), its first K column within a stage, its offset in a stage
  // buffer, and whether the slot exists (the last round may be partial).
  const unsigned char *aSource[kASlots];
  int aColumn[kASlots];
  unsigned aShared[kASlots];
  bool aExists[kASlots];
#pragma unroll
  for (int s = 0; s < kASlots; ++s) {
    const int id = tid + s * kGroupThreads;
    const int row = id / kAChunksPerRow, chunk = id % kAChunksPerRow;
    aExists[s] = kAChunks % kGroupThreads == 0 || id < kAChunks;
    aColumn[s] = chunk * 8;
    aShared[s] = (chunk / 4) * BM * Cfg::kARowBytes + row * Cfg::kARowBytes + (chunk % 4) * 16;
    aSource[s] = nullptr;
    if (aExists[s] && row < validRows) {
      const long long source = gatherRows != nullptr ? gatherRows[rowBegin + row] : rowBegin + row;
      aSource[s] = reinterpret_cast<const unsigned char *>(a + source * lda) + chunk * 16;
    }
  }
  const unsigned char *bSource[kBSlots];
  int bColumn[kBSlots];
  unsigned bShared[kBSlots];
  bool bExists[kBSlots];
#pragma unroll
  for (int s = 0; s < kBSlots; ++s) {
    const int id = tid + s * kGroupThreads;
    const int row = id / kBChunksPerRow, chunk = id % kBChunksPerRow;
    bExists[s] = kBChunks % kGroupThreads == 0 || id < kBChunks;
    bColumn[s] = chunk * kBElementsPerChunk;
    bShared[s] = Cfg::kAStageBytes + (chunk / kBChunksPerSubRow) * BN * Cfg::kBRowBytes +
                 row * Cfg::kBRowBytes + (chunk % kBChunksPerSubRow) * 16;
    bSource[s] = nullptr;
    if (bExists[s] && n0 + row < N)
      bSource[s] =
          reinterpret_cast<const unsigned char *>(b + static_cast<long long>(n0 + row) * K) +
          chunk * 16;
  }
  const unsigned sharedBase = sharedAddress(shared);

  // One chunk of the stage starting at K column k0 into stage buffer offset
  // `offset` (zeros past K or for a missing row); bytesPerElement turns
  // columns into bytes.
  auto copyChunk = [&](unsigned offset, const unsigned char *src, int column, int k0,
                       int bytesPerElement) {
    const bool inside = src != nullptr && k0 + column < K;
    copyAsync16(sharedBase + offset,
                inside ? src + static_cast<long long>(k0) * bytesPerElement
                       : reinterpret_cast<const unsigned char *>(a),
                inside ? 16 : 0);
  };
  auto loadStage = [&](int step, int slot) {
    const int k0 = step * Cfg::kStageK;
    const unsigned stageOffset = slot * Cfg::kStageBytes;
#pragma unroll
    for (int s = 0; s < kASlots; ++s)
      if (aExists[s])
        copyChunk(stageOffset + aShared[s], aSource[s], aColumn[s], k0, 2);
#pragma unroll
    for (int s = 0; s < kBSlots; ++s)
      if (bExists[s])
        copyChunk(stageOffset + bShared[s], bSource[s], bColumn[s], k0,
                  static_cast<int>(sizeof(TB)));
  };

  // ---- Compute: warp (wm, wn) owns A rows wm * kWarpRows .. (tokens) and
  // B rows wn * 32 .. (output columns).
  const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int wm = warp / Cfg::kWarpsN, wn = warp % Cfg::kWarpsN;
  const int warpRow0 = wm * Cfg::kWarpRows;
  // bf16 weights: A is the mma's 16-row operand (kMT m16 tiles of tokens),
  // B its 8-column one (4 n8 tiles of weight rows). FP8 weights: roles
  // swapped, so that the converted weight registers are written straight
  // into mma operand order: B is the 16-row operand (2 m16 tiles of weight
  // rows), A the 8-column one (kWarpRows / 8 n8 tiles of tokens).
  constexpr int kTiles0 = kFp8 ? 2 : Cfg::kWarpRows / 16;
  constexpr int kTiles1 = kFp8 ? Cfg::kWarpRows / 8 : 4;
  // FP8: the MMAs sum one scale block into `part`, promoted into `acc`
  // times `scale` at the block's end; bf16: straight into `acc`.
  float acc[kTiles0][kTiles1][4];
  float part[kTiles0][kTiles1][4];
  float scale[kTiles0][2]; // FP8: per m16 weight tile, rows g and g + 8
#pragma unroll
  for (int i = 0; i < kTiles0; ++i)
#pragma unroll
    for (int j = 0; j < kTiles1; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[i][j][e] = 0.0f;
        part[i][j][e] = 0.0f;
      }

  auto loadScales = [&](int kb) {
#pragma unroll
    for (int i = 0; i < kTiles0; ++i) {
      const int n = n0 + wn * 32 + i * 16 + g;
      const int first = n < N ? n : N - 1, second = n + 8 < N ? n + 8 : N - 1;
      scale[i][0] = bScales[(first / BLOCK_N) * kBlocksK + kb];
      // Rows g and g + 8 share a block when blocks are whole m16 tiles.
      scale[i][1] = BLOCK_N % 16 == 0 ? scale[i][0] : bScales[(second / BLOCK_N) * kBlocksK + kb];
    }
  };

  auto computeSub = [&](const unsigned char *stage, int sub) {
    if (warpRow0 >= validRows)
      return; // this warp's rows are all past the tile's end
    const unsigned char *aTile = stage + sub * BM * Cfg::kARowBytes;
    const unsigned char *bTile = stage + Cfg::kAStageBytes + sub * BN * Cfg::kBRowBytes;
    if constexpr (kFp8) {
      // Weight rows g and g + 8 of each m16 tile: 8 e4m3 bytes each (K
      // columns 8t .. 8t + 7), two k16 steps, converted into place.
      unsigned wFrag[kTiles0][2][4]; // [tile][k16 step][a0..a3]
#pragma unroll
      for (int i = 0; i < kTiles0; ++i) {
        const int n = wn * 32 + i * 16 + g;
        const uint2 top = *reinterpret_cast<const uint2 *>(bTile + n * Cfg::kBRowBytes + 8 * t);
        const uint2 bottom =
            *reinterpret_cast<const uint2 *>(bTile + (n + 8) * Cfg::kBRowBytes + 8 * t);
        e4m3x4ToBf16x2(top.x, wFrag[i][0][0], wFrag[i][0][2]);
        e4m3x4ToBf16x2(bottom.x, wFrag[i][0][1], wFrag[i][0][3]);
        e4m3x4ToBf16x2(top.y, wFrag[i][1][0], wFrag[i][1][2]);
        e4m3x4ToBf16x2(bottom.y, wFrag[i][1][1], wFrag[i][1][3]);
      }
#pragma unroll
      for (int j = 0; j < kTiles1; ++j) {
        if (warpRow0 + j * 8 >= validRows)
          continue; // tokens past the tile's end: nothing to multiply
        const uint4 x = *reinterpret_cast<const uint4 *>(
            aTile + (warpRow0 + j * 8 + g) * Cfg::kARowBytes + 16 * t);
#pragma unroll
        for (int i = 0; i < kTiles0; ++i) {
          mma16816(part[i][j], wFrag[i][0][0], wFrag[i][0][1], wFrag[i][0][2], wFrag[i][0][3], x.x,
                   x.y);
          mma16816(part[i][j], wFrag[i][1][0], wFrag[i][1][1], wFrag[i][1][2], wFrag[i][1][3], x.z,
                   x.w);
        }
      }
    } else {
      unsigned bFrag[kTiles1][4]; // k16 step 0: b0, b1; step 1: b0, b1
#pragma unroll
      for (int j = 0; j < kTiles1; ++j) {
        const int n = wn * 32 + j * 8 + g;
        const uint4 v = *reinterpret_cast<const uint4 *>(bTile + n * Cfg::kBRowBytes + 16 * t);
        bFrag[j][0] = v.x, bFrag[j][1] = v.y, bFrag[j][2] = v.z, bFrag[j][3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < kTiles0; ++i) {
        if (warpRow0 + i * 16 >= validRows)
          continue;
        const int r = warpRow0 + i * 16 + g;
        const uint4 x = *reinterpret_cast<const uint4 *>(aTile + r * Cfg::kARowBytes + 16 * t);
        const uint4 y =
            *reinterpret_cast<const uint4 *>(aTile + (r + 8) * Cfg::kARowBytes + 16 * t);
#pragma unroll
        for (int j = 0; j < kTiles1; ++j)
          mma16816(acc[i][j], x.x, y.x, x.y, y.y, bFrag[j][0], bFrag[j][1]);
#pragma unroll
        for (int j = 0; j < kTiles1; ++j)
          mma16816(acc[i][j], x.z, y.z, x.w, y.w, bFrag[j][2], bFrag[j][3]);
      }
    }
  };

  auto promote = [&] {
#pragma unroll
    for (int i = 0; i < kTiles0; ++i)
#pragma unroll
      for (int j = 0; j < kTiles1; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          acc[i][j][e] = fmaf(part[i][j][e], scale[i][e / 2], acc[i][j][e]);
          part[i][j][e] = 0.0f;
        }
  };

  // ---- Pipeline: this group's stages are group, group + KSPLIT, ...; it
  // keeps STAGES - 1 of them in flight ahead of the one multiplied.
  const int steps = (kStageCount - group + KSPLIT - 1) / KSPLIT;
#pragma unroll
  for (int local = 0; local < STAGES - 1; ++local) {
    if (local < steps)
      loadStage(group + local * KSPLIT, local);
    commitAsync();
  }
  for (int local = 0; local < steps; ++local) {
    waitAsync<STAGES - 2>();
    groupBarrier<KSPLIT>(group, kGroupThreads); // stage landed; buffer (local - 1) is free
    const int next = local + STAGES - 1;
    if (next < steps)
      loadStage(group + next * KSPLIT, next % STAGES);
    commitAsync();
    const unsigned char *stage = shared + (local % STAGES) * Cfg::kStageBytes;
    const int step = group + local * KSPLIT;
#pragma unroll
    for (int sub = 0; sub < Cfg::kSubsPerStage; ++sub) {
      const int q = step * Cfg::kSubsPerStage + sub; // sub-tile index over K
      if (q >= kSubs)
        break;
      // A scale block split between groups is promoted by each in part.
      const bool stageStart = KSPLIT > 1 && sub == 0;
      const bool stageEnd = KSPLIT > 1 && sub == Cfg::kSubsPerStage - 1;
      if constexpr (kFp8)
        if (q % kSubsPerScale == 0 || stageStart)
          loadScales(q / kSubsPerScale); // used at the block's end: latency hidden
      computeSub(stage, sub);
      if constexpr (kFp8)
        if ((q + 1) % kSubsPerScale == 0 || q + 1 == kSubs || stageEnd)
          promote();
    }
  }
  waitAsync<0>(); // nothing is left in flight when the block exits

  // ---- K groups: groups 1.. leave their sums in shared memory in their
  // threads' fragment order; group 0 adds them in group order and stores.
  if constexpr (KSPLIT > 1) {
    constexpr int kVectors = kTiles0 * kTiles1; // float4 per thread
    static_assert((KSPLIT - 1) * kVectors * kGroupThreads * 16 <= KSPLIT * Cfg::kPipelineBytes,
                  "the partial sums fit in the pipeline's shared memory");
    float4 *sums = reinterpret_cast<float4 *>(tcGemmShared);
    __syncthreads(); // every group is done with its pipeline buffers
    if (group > 0) {
#pragma unroll
      for (int i = 0; i < kTiles0; ++i)
#pragma unroll
        for (int j = 0; j < kTiles1; ++j)
          sums[((group - 1) * kVectors + i * kTiles1 + j) * kGroupThreads + tid] =
              make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
    }
    __syncthreads();
    if (group > 0)
      return;
    for (int other = 1; other < KSPLIT; ++other)
#pragma unroll
      for (int i = 0; i < kTiles0; ++i)
#pragma unroll
        for (int j = 0; j < kTiles1; ++j) {
          const float4 v = sums[((other - 1) * kVectors + i * kTiles1 + j) * kGroupThreads + tid];
          acc[i][j][0] += v.x, acc[i][j][1] += v.y, acc[i][j][2] += v.z, acc[i][j][3] += v.w;
        }
  }

  // ---- Epilogue. bf16 weights: lane (g, t) holds A rows g, g + 8 and output
  // columns 2t, 2t + 1 of each m16 x n8 tile; FP8: output columns (weight
  // rows) g, g + 8 and A rows 2t, 2t + 1.
  if constexpr (kFp8) {
#pragma unroll
    for (int i = 0; i < kTiles0; ++i)
#pragma unroll
      for (int j = 0; j < kTiles1; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = warpRow0 + j * 8 + 2 * t + e % 2;
          const int n = n0 + wn * 32 + i * 16 + g + 8 * (e / 2);
          if (row < validRows && n < N)
            c[static_cast<long long>(rowBegin + row) * N + n] = fromFloat<OutT>(acc[i][j][e]);
        }
  } else {
#pragma unroll
    for (int i = 0; i < kTiles0; ++i)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = warpRow0 + i * 16 + g + 8 * half;
        if (row >= validRows)
          continue;
        OutT *cRow = c + static_cast<long long>(rowBegin + row) * N;
#pragma unroll
        for (int j = 0; j < kTiles1; ++j) {
          const int n = n0 + wn * 32 + j * 8 + 2 * t;
          const float v0 = acc[i][j][2 * half], v1 = acc[i][j][2 * half + 1];
          if (N % 2 == 0 && n + 1 < N) {
            if constexpr (sizeof(OutT) == 4)
              *reinterpret_cast<float2 *>(cRow + n) = make_float2(v0, v1);
            else
              *reinterpret_cast<__nv_bfloat162 *>(cRow + n) = __floats2bfloat162_rn(v0, v1);
          } else {
            if (n < N)
              cRow[n] = fromFloat<OutT>(v0);
            if (n + 1 < N)
              cRow[n + 1] = fromFloat<OutT>(v1);
          }
        }
      }
  }
}

} // namespace tc_detail

/// FP8 weight, bf16 activations, on tensor cores: C[M, N] = A[M, K] *
/// dequant(B)^T, arguments as w8a16_gemm (gemm.cuh): a [M, lda] bf16 (columns
/// [0, K) used), b [N, K] e4m3, b_scales [ceilDiv(N, BLOCK_N), ceilDiv(K,
/// BLOCK_K)], c [M, N] of OutT. The tile: BM x BN, STAGES deep, K split
/// between KSPLIT groups of threads (more loads in flight per block when N
/// gives few blocks).
///
/// Launch: grid = (ceilDiv(N, BN), ceilDiv(M, BM), 1), block = (KSPLIT * tileThreads(BM, BN), 1,
/// 1), dynamic shared memory = KSPLIT * tileSharedBytes(BM, BN, STAGES, 1) bytes
template <int N, int K, int BLOCK_N, int BLOCK_K, typename OutT, int BM, int BN, int STAGES,
          int KSPLIT>
__global__ void __launch_bounds__(KSPLIT *tc_detail::tileThreads(BM, BN),
                                  tc_detail::tileMinBlocks(KSPLIT *tc_detail::tileThreads(BM, BN)))
    tc_w8a16_gemm(const bf16 *a, int lda, const fp8 *b, const float *b_scales, OutT *c, int M) {
  awaitPrecedingKernels();
  const tc_detail::TileCoord tile = tc_detail::swizzledTile();
  const int rowBegin = tile.rowTile * BM;
  if (rowBegin >= M)
    return;
  const int rows = M - rowBegin < BM ? M - rowBegin : BM;
  tc_detail::tcTile<fp8, N, K, BLOCK_N, BLOCK_K, BM, BN, STAGES, KSPLIT, OutT>(
      a, lda, nullptr, rowBegin, rows, b, b_scales, c, tile.colTile * BN);
}

/// BF16 weight on tensor cores: C[M, N] = A[M, K] * B[N, K]^T, arguments as
/// bf16_gemm (gemm.cuh); tile parameters as tc_w8a16_gemm.
///
/// Launch: grid = (ceilDiv(N, BN), ceilDiv(M, BM), 1), block = (KSPLIT * tileThreads(BM, BN), 1,
/// 1), dynamic shared memory = KSPLIT * tileSharedBytes(BM, BN, STAGES, 2) bytes
template <int N, int K, typename OutT, int BM, int BN, int STAGES, int KSPLIT>
__global__ void __launch_bounds__(KSPLIT *tc_detail::tileThreads(BM, BN),
                                  tc_detail::tileMinBlocks(KSPLIT *tc_detail::tileThreads(BM, BN)))
    tc_bf16_gemm(const bf16 *a, int lda, const bf16 *b, OutT *c, int M) {
  awaitPrecedingKernels();
  const tc_detail::TileCoord tile = tc_detail::swizzledTile();
  const int rowBegin = tile.rowTile * BM;
  if (rowBegin >= M)
    return;
  const int rows = M - rowBegin < BM ? M - rowBegin : BM;
  tc_detail::tcTile<bf16, N, K, 1, 32, BM, BN, STAGES, KSPLIT, OutT>(
      a, lda, nullptr, rowBegin, rows, b, nullptr, c, tile.colTile * BN);
}

/// Routed experts, FP8 weights, bf16 activations, on tensor cores; arguments
/// as w8a16_grouped_gemm (grouped_gemm.cuh): a [*, K] bf16 gathered through
/// a_rows (or in routed order when null), b [NUM_EXPERTS, N, K] e4m3,
/// b_scales [NUM_EXPERTS, ceilDiv(N, BLOCK_N), ceilDiv(K, BLOCK_K)],
/// expert_offsets [NUM_EXPERTS + 1], c [R, N] of OutT. Block y handles the
/// y-th BM-row tile of the expert-ordered tiles (never two experts), block x
/// a BN-column stripe of that expert's weight, so each hit expert's weight
/// is read once per row tile.
///
/// Launch: grid = (ceilDiv(N, BN), ceilDiv(R, BM) + NUM_EXPERTS, 1), block = (tileThreads(BM, BN),
/// 1, 1), dynamic shared memory = tileSharedBytes(BM, BN, STAGES, 1) bytes
template <int N, int K, int NUM_EXPERTS, int BLOCK_N, int BLOCK_K, typename OutT, int BM, int BN,
          int STAGES>
__global__ void __launch_bounds__(tc_detail::tileThreads(BM, BN),
                                  tc_detail::tileMinBlocks(tc_detail::tileThreads(BM, BN)))
    tc_w8a16_grouped_gemm(const bf16 *a, const int *a_rows, const fp8 *b, const float *b_scales,
                          const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  const tc_detail::ExpertTile tile =
      tc_detail::findExpertTile<NUM_EXPERTS, BM>(expert_offsets, blockIdx.y);
  // expert_offsets[NUM_EXPERTS] == R; the clamp keeps a corrupt table from
  // writing past c.
  const int rows = tile.rowBegin + tile.rows <= R ? tile.rows : R - tile.rowBegin;
  if (rows <= 0)
    return;
  constexpr long long kScalesPerExpert =
      static_cast<long long>(ceilDiv(N, BLOCK_N)) * ceilDiv(K, BLOCK_K);
  tc_detail::tcTile<fp8, N, K, BLOCK_N, BLOCK_K, BM, BN, STAGES, 1, OutT>(
      a, K, a_rows, tile.rowBegin, rows, b + static_cast<long long>(tile.expert) * N * K,
      b_scales + tile.expert * kScalesPerExpert, c, blockIdx.x * BN);
}

/// Routed experts of a BF16 checkpoint on tensor cores; arguments as
/// bf16_grouped_gemm (grouped_gemm.cuh), tiles as tc_w8a16_grouped_gemm.
///
/// Launch: grid = (ceilDiv(N, BN), ceilDiv(R, BM) + NUM_EXPERTS, 1), block = (tileThreads(BM, BN),
/// 1, 1), dynamic shared memory = tileSharedBytes(BM, BN, STAGES, 2) bytes
template <int N, int K, int NUM_EXPERTS, typename OutT, int BM, int BN, int STAGES>
__global__ void __launch_bounds__(tc_detail::tileThreads(BM, BN),
                                  tc_detail::tileMinBlocks(tc_detail::tileThreads(BM, BN)))
    tc_bf16_grouped_gemm(const bf16 *a, const int *a_rows, const bf16 *b, const int *expert_offsets,
                         OutT *c, int R) {
  awaitPrecedingKernels();
  const tc_detail::ExpertTile tile =
      tc_detail::findExpertTile<NUM_EXPERTS, BM>(expert_offsets, blockIdx.y);
  const int rows = tile.rowBegin + tile.rows <= R ? tile.rows : R - tile.rowBegin;
  if (rows <= 0)
    return;
  tc_detail::tcTile<bf16, N, K, 1, 32, BM, BN, STAGES, 1, OutT>(
      a, K, a_rows, tile.rowBegin, rows, b + static_cast<long long>(tile.expert) * N * K, nullptr,
      c, blockIdx.x * BN);
}

} // namespace dsv3k
