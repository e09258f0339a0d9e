//===- mla_decode.cuh - split-KV MLA attention on tensor cores ------------===//
//
// Absorbed MLA attention (the function mla.cuh's mla_attention computes), as
// dsv3c runs it for every step: each token attends to its own context (a
// prefill's tokens re-read their sequence's rows, mostly from L2; a kernel
// tiling query tokens would share them). All heads of a token share one
// "KV head" (the latent cache), so heads are the rows of a matrix product:
// a block stages a tile of 64 cached rows in shared memory once and
// multiplies it with the queries of HEADS_PER_BLOCK heads on tensor cores
// (mma.sync m16n8k16, bf16 in, fp32 accumulation):
//
//   S = Q K^T   (heads x 64 keys, over the 576 columns of latent and rope)
//   online softmax over the tiles (running max and sum per head, fp32)
//   O += P V    (heads x 512: the values are the latent columns of the same rows)
//
// Precision: the products' inputs are bf16, as every matrix product's in
// dsv3c: q_lat and q_pe are rounded to bf16 once when staged, and the
// probabilities P once before the value product (the running sums use the
// fp32 P). Scores, softmax, accumulators, partial results and the combine
// are fp32; out_lat is stored as OutT.
//
// Split invariance. P is taken relative to the running maximum rounded up to
// an integer (log2 units), and built so that its float's mantissa depends on
// the score alone (probabilityBelow): whichever maximum a segment has seen,
// P differs only by an exact power of two, rounds to the same bf16 digits,
// and the rescaling of the accumulators by 2^(old - new maximum) is exact.
// So a token's result does not depend on how a step cut its context into
// segments (which depends on the other tokens of the step) beyond the order
// of fp32 additions; with P relative to the exact running maximum, its bf16
// rounding changed with the segment, and a sequence served beside others got
// bf16-level different attention (and diverging greedy replies) from the
// same sequence served alone.
//
// Work split. The cached rows of the step's tokens are cut into units of 16
// rows, listed token after token (a token at position p has ceil((p+1)/16)).
//  - split = 0: block (t, g) handles token t's whole context for head group
//    g; grid = (T, ceil(HEADS / HEADS_PER_BLOCK)). For steps with enough
//    tokens to fill the GPU.
//  - split = 1: the list is divided evenly among the gridDim.x blocks of each
//    head group (ceil(units / gridDim.x) units each), so that one token fills
//    the GPU and a step mixing long and short contexts stays balanced. A
//    token whose units all fall in one block is written to out_lat directly;
//    a token cut across blocks leaves, per block, a partial result (output
//    normalized by its own sum, fp32, and the log2 of that sum plus its max)
//    in `partials`, which mla_decode_combine merges exactly. A block touches
//    at most two cut tokens (its first and its last), so partial slot 2b is
//    block b's first token and 2b + 1 its last: `partials` holds
//    2 gridDim.x HEADS (KV_LORA + 1) floats, whatever T is.
//
// Shared memory (dynamic, mla_decode_shared_bytes): the queries (bf16,
// HEADS_PER_BLOCK rows), two tiles of 64 cache rows (the next one loads with
// cp.async while the current one is multiplied), P, and softmax statistics.
// Rows are stored in 16-byte chunks whose position is XORed with the row's
// low three bits, so the 8 rows an ldmatrix reads lie in different banks.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/mla.cuh"

namespace dsv3k {

namespace mla_decode_detail {

inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;
inline constexpr int kTileRows = 64;    ///< cache rows per shared-memory tile
inline constexpr int kUnitRows = 16;    ///< granularity of the split
inline constexpr int kCombineBatch = 16; ///< partials a combine thread loads at once

/// Shared-memory layout of one instance (bytes).
template <int HEADS_PER_BLOCK, int KV_LORA, int ROPE> struct Layout {
  static constexpr int kRowChunks = (KV_LORA + ROPE) / 8;        // 16-byte chunks
  static constexpr int kStoredChunks = (kRowChunks + 7) / 8 * 8; // swizzle needs 8k
  static constexpr int kRowBytes = kStoredChunks * 16;
  static constexpr int kQueryBytes = HEADS_PER_BLOCK * kRowBytes;
  static constexpr int kTileBytes = kTileRows * kRowBytes;
  static constexpr int kProbabilityRowBytes = kTileRows * 2; // 8 chunks
  static constexpr int kProbabilityBytes = HEADS_PER_BLOCK * kProbabilityRowBytes;
  // Score warps: head slices of 16 rows x key groups.
  static constexpr int kHeadSlices = HEADS_PER_BLOCK / 16;
  static constexpr int kKeyGroups = kWarps / kHeadSlices;
  // Statistics: tile max and end-of-segment sums per key group, alpha and
  // final max per head.
  static constexpr int kStatBytes = (2 * kKeyGroups + 2) * HEADS_PER_BLOCK * 4;
  static constexpr int kQueryOffset = 0;
  static constexpr int kTileOffset = kQueryBytes;
  static constexpr int kProbabilityOffset = kTileOffset + 2 * kTileBytes;
  static constexpr int kStatOffset = kProbabilityOffset + kProbabilityBytes;
  static constexpr int kBytes = kStatOffset + kStatBytes;
};

/// Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled tile.
__device__ __forceinline__ unsigned swizzled(int row, int chunk, int rowBytes) {
  return static_cast<unsigned>(row * rowBytes + ((chunk ^ (row & 7)) << 4));
}

__device__ __forceinline__ unsigned sharedAddress(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// 16 bytes from global to shared memory, asynchronously; zeros when !valid
/// (nothing is read then).
__device__ __forceinline__ void copyAsync16(unsigned dst, const void *src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void commitCopies() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void waitCopies() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void loadMatrixX4(unsigned address, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void loadMatrixX2(unsigned address, unsigned (&r)[2]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(address));
}
__device__ __forceinline__ void loadMatrixX4Transposed(unsigned address, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void loadMatrixX2Transposed(unsigned address, unsigned (&r)[2]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(address));
}

/// c += a b for one m16n8k16 tile: bf16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned packBf16(float lo, float hi) {
  __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned *>(&pair);
}

/// 2^e as a float, exactly, for an integer e <= 0 (0 below the normal range).
__device__ __forceinline__ float exactPowerOfTwo(int e) {
  return e < -126 ? 0.0f : __int_as_float((127 + e) << 23);
}

/// 2^(s - reference) for an integral reference >= s, built as exp2f of s's
/// fractional part times 2^(floor(s) - reference): the float's mantissa
/// depends on s alone, so two references give values that differ by an exact
/// power of two and round to bf16 alike (see the file comment). 0 for
/// negligible or masked (-inf) scores.
__device__ __forceinline__ float probabilityBelow(float s, float reference) {
  if (!(s > reference - 126.0f))
    return 0.0f;
  const float whole = floorf(s);
  const float mantissa = exp2f(s - whole); // s - floor(s) is exact; [1, 2]
  const int e = static_cast<int>(whole - reference); // -126 <= e <= 0
  return __int_as_float(__float_as_int(mantissa) + e * (1 << 23));
}

/// Units of 16 rows of a token at `position` (it sees position + 1 rows).
__device__ __forceinline__ int unitsOf(int position) { return (position + kUnitRows) / kUnitRows; }

__device__ __forceinline__ int warpSumInt(int v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// Units of all T tokens, and of those before token `t` (every lane).
__device__ __forceinline__ void countUnits(const int *positions, int T, int t, int &before,
                                           int &total) {
  int lane = threadIdx.x % 32;
  before = total = 0;
  for (int i = lane; i < T; i += 32) {
    int units = unitsOf(positions[i]);
    total += units;
    before += i < t ? units : 0;
  }
  before = warpSumInt(before);
  total = warpSumInt(total);
}

/// One token's rows [rowBegin, rowEnd) for one head group; where it goes.
struct Segment {
  int token, rowBegin, rowEnd;
  bool whole; ///< the token's whole context: write out_lat
  int slot;   ///< else its partial slot
};

/// A value warp's accumulators times 1 / sum to rows firstHead + 16 m + g
/// (+ 8) (heads < HEADS) of headRows [HEADS, KV_LORA], columns firstCol + 8 n
/// + 2 q4 (+ 1): out_lat (OutT) or a partial slot (float).
template <int HEADS, int KV_LORA, int M, int N, typename T>
__device__ __forceinline__ void storeRows(T *headRows, const float (&acc)[M][N][4],
                                          const float (&inverse)[M][2], int firstHead, int firstCol,
                                          int g, int q4) {
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int head = firstHead + m * 16 + g + 8 * r;
      if (head < HEADS) {
#pragma unroll
        for (int n = 0; n < N; ++n)
          mla_detail::storePair(
              headRows + static_cast<long long>(head) * KV_LORA + firstCol + n * 8 + 2 * q4,
              make_float2(acc[m][n][2 * r] * inverse[m][r], acc[m][n][2 * r + 1] * inverse[m][r]));
      }
    }
}

} // namespace mla_decode_detail

/// Dynamic shared memory of mla_decode_attention<..., HEADS_PER_BLOCK>:
/// (HEADS_PER_BLOCK + 128) rows of ceil((KV_LORA + ROPE) / 64) * 128 bytes,
/// HEADS_PER_BLOCK * 128 bytes of probabilities and (2 (8 / (HEADS_PER_BLOCK
/// / 16)) + 2) * HEADS_PER_BLOCK * 4 bytes of statistics (230912 bytes at
/// DeepSeek-V3's shape with 64 heads per block).
template <int HEADS_PER_BLOCK, int KV_LORA, int ROPE>
__host__ __device__ constexpr int mla_decode_shared_bytes() {
  return mla_decode_detail::Layout<HEADS_PER_BLOCK, KV_LORA, ROPE>::kBytes;
}

/// Absorbed MLA attention, split over the context (see the file comment).
/// Arguments as mla_attention's, then `partials` (split = 1: 2 gridDim.x
/// HEADS (KV_LORA + 1) floats of scratch; unused, may be null, for split =
/// 0) and `split`. With split = 1, mla_decode_combine must run next with the
/// same partials, gridDim.x and positions.
/// HEADS_PER_BLOCK: 16, 32 or 64 (the last head group is masked when it does
/// not divide HEADS).
/// Launch: grid = (split ? blocks : T, ceil(HEADS / HEADS_PER_BLOCK), 1), block = (256, 1, 1),
///   dynamic shared memory = mla_decode_shared_bytes<HEADS_PER_BLOCK, KV_LORA, ROPE>() bytes
template <int HEADS, int NOPE, int ROPE, int KV_LORA, int PAGE, typename QT = bf16,
          typename OutT = bf16, int HEADS_PER_BLOCK = 64>
__global__ void __launch_bounds__(mla_decode_detail::kThreads, 1)
    mla_decode_attention(const QT *q_lat, const QT *q, const bf16 *cache, const int *block_table,
                         int max_pages, const int *token_seq, const int *positions, OutT *out_lat,
                         int T, float softmax_scale, float *partials, int split) {
  awaitPrecedingKernels();
  using namespace mla_decode_detail;
  constexpr int G = HEADS_PER_BLOCK;
  static_assert(G == 16 || G == 32 || G == 64, "16, 32 or 64 heads per block");
  static_assert(KV_LORA % 16 == 0 && ROPE % 16 == 0, "whole k16 steps of the score product");
  static_assert(NOPE % 8 == 0, "queries are read in 8-value pieces");
  using L = Layout<G, KV_LORA, ROPE>;
  constexpr int kRow = KV_LORA + ROPE;
  constexpr int kScoreSteps = kRow / 16;
  constexpr int kScoreKeys = kTileRows / L::kKeyGroups; // keys per score warp
  constexpr int kScoreTiles = kScoreKeys / 8;           // n8 tiles per score warp
  // Value warps: kValueRowGroups x kValueColGroups, each kValueMTiles m16
  // tiles (heads) by kValueNTiles n8 tiles (latent columns).
  constexpr int kValueRowGroups = G >= 32 ? G / 32 : 1;
  constexpr int kValueMTiles = G / 16 / kValueRowGroups;
  constexpr int kValueColGroups = kWarps / kValueRowGroups;
  static_assert(KV_LORA % (kValueColGroups * 8) == 0, "whole n8 tiles per value warp");
  constexpr int kValueCols = KV_LORA / kValueColGroups;
  constexpr int kValueNTiles = kValueCols / 8;
  static_assert(L::kBytes <= 227 * 1024, "shared memory of one block");

  extern __shared__ __align__(128) unsigned char mlaDecodeShared[];
  unsigned char *queryTile = mlaDecodeShared + L::kQueryOffset;
  const unsigned queryBase = sharedAddress(queryTile);
  const unsigned tileBase = sharedAddress(mlaDecodeShared + L::kTileOffset);
  unsigned char *probabilities = mlaDecodeShared + L::kProbabilityOffset;
  const unsigned probabilityBase = sharedAddress(probabilities);
  float *tileMax = reinterpret_cast<float *>(mlaDecodeShared + L::kStatOffset); // [kKeyGroups][G]
  float *segmentSum = tileMax + L::kKeyGroups * G;                              // [kKeyGroups][G]
  float *alpha = segmentSum + L::kKeyGroups * G;                                // [G]
  float *finalMax = alpha + G;                                                  // [G]

  {
    unsigned given;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(given));
    if (given < static_cast<unsigned>(L::kBytes))
      __trap(); // launched with less than mla_decode_shared_bytes
  }

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, q4 = lane % 4; // mma fragment coordinates
  const int headBase = blockIdx.y * G;
  const float scoreScale = softmax_scale * mla_detail::kLog2e;
  const float negInf = mla_detail::negativeInfinity();

  // Score role: head slice x key group.
  const int slice = warp % L::kHeadSlices, keyGroup = warp / L::kHeadSlices;
  // Value role: row group x column group.
  const int rowGroup = warp % kValueRowGroups, colGroup = warp / kValueRowGroups;

  // ---- which segments this block handles ------------------------------
  int perBlock = 0, u0 = 0, u1 = 0;
  if (split) {
    int before, total;
    countUnits(positions, T, 0, before, total);
    perBlock = ceilDiv(total, gridDim.x);
    u0 = blockIdx.x * perBlock;
    u1 = min(u0 + perBlock, total);
    if (u0 >= u1)
      return; // uniform over the block
  } else if (blockIdx.x >= T) {
    return;
  }
  // Split walk: the lanes of every warp alike scan the tokens 32 at a time
  // (a chunk); `pending` marks the chunk's tokens that overlap [u0, u1) and
  // are not processed yet. Every warp computes the same, so the loop below
  // (with its barriers) is uniform over the block.
  int chunkStart = 0, unitsBeforeChunk = 0, laneStart = 0, laneEnd = 0;
  unsigned pending = 0;
  bool chunkScanned = false, noSplitDone = false;

  auto nextSegment = [&](Segment &s) -> bool {
    if (!split) {
      if (noSplitDone)
        return false;
      noSplitDone = true;
      s.token = blockIdx.x;
      s.rowBegin = 0;
      s.rowEnd = positions[s.token] + 1;
      s.whole = true;
      s.slot = 0;
      return true;
    }
    while (pending == 0) {
      if (chunkScanned) { // step past the exhausted chunk
        unitsBeforeChunk = __shfl_sync(0xffffffffu, laneEnd, 31);
        chunkStart += 32;
        chunkScanned = false;
      }
      if (chunkStart >= T || unitsBeforeChunk >= u1)
        return false;
      int i = chunkStart + lane;
      int units = i < T ? unitsOf(positions[i]) : 0;
      int inclusive = units;
      for (int offset = 1; offset < 32; offset <<= 1) {
        int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
        if (lane >= offset)
          inclusive += other;
      }
      laneStart = unitsBeforeChunk + inclusive - units;
      laneEnd = unitsBeforeChunk + inclusive; // lane 31: units before the next chunk
      pending = __ballot_sync(0xffffffffu, i < T && laneEnd > u0 && laneStart < u1);
      chunkScanned = true;
    }
    int source = __ffs(pending) - 1;
    pending &= pending - 1;
    int start = __shfl_sync(0xffffffffu, laneStart, source);
    int end = __shfl_sync(0xffffffffu, laneEnd, source);
    s.token = chunkStart + source;
    s.rowBegin = (max(u0, start) - start) * kUnitRows;
    s.rowEnd = min((min(u1, end) - start) * kUnitRows, positions[s.token] + 1);
    s.whole = start >= u0 && end <= u1;
    s.slot = 2 * blockIdx.x + (start <= u0 ? 0 : 1);
    return true;
  };

  Segment segment;
  while (nextSegment(segment)) {
    const int t = segment.token;
    const int sequence = token_seq[t];
    const int rowCount = segment.rowEnd - segment.rowBegin;
    const int tiles = ceilDiv(rowCount, kTileRows);

    // Tile i's rows to buffer i % 2: thread (row, part) copies chunks part,
    // part + 4, ... of one row, so one block-table lookup per thread.
    auto loadTile = [&](int tileIndex) {
      constexpr int kThreadsPerRow = kThreads / kTileRows;
      static_assert(kThreads % kTileRows == 0, "whole rows per thread group");
      int row = tid / kThreadsPerRow, part = tid % kThreadsPerRow;
      int keyRow = segment.rowBegin + tileIndex * kTileRows + row;
      bool valid = keyRow < segment.rowEnd;
      const bf16 *source = cache;
      if (valid)
        source = cache + mla_detail::cacheSlot(block_table, max_pages, sequence, keyRow, PAGE) *
                             static_cast<long long>(kRow);
      unsigned buffer = tileBase + (tileIndex % 2) * L::kTileBytes;
      for (int chunk = part; chunk < L::kRowChunks; chunk += kThreadsPerRow)
        copyAsync16(buffer + swizzled(row, chunk, L::kRowBytes), valid ? source + chunk * 8 : cache,
                    valid);
      commitCopies();
    };

    // All threads are past the previous segment (its epilogue barrier), so
    // buffer 0 and the query tile are free.
    loadTile(0);
    // The query rows to bf16, kQueryBatch 8-value pieces per thread loaded
    // before any is stored, so their latency is paid once per batch.
    constexpr int kQueryPieces = G * L::kRowChunks;
    constexpr int kQueryBatch = G >= 64 ? 3 : 6; // G = 64 has few registers to spare
    for (int first = 0; first < kQueryPieces; first += kQueryBatch * kThreads) {
      float v[kQueryBatch][8];
#pragma unroll
      for (int j = 0; j < kQueryBatch; ++j) {
        int e = first + j * kThreads + tid;
        int row = e / L::kRowChunks, chunk = e % L::kRowChunks;
        int head = headBase + row;
        if (e < kQueryPieces && head < HEADS) {
          if (chunk < KV_LORA / 8)
            load8(q_lat + (static_cast<long long>(t) * HEADS + head) * KV_LORA + chunk * 8, v[j]);
          else
            load8(q + static_cast<long long>(t) * HEADS * (NOPE + ROPE) + head * (NOPE + ROPE) +
                      NOPE + (chunk - KV_LORA / 8) * 8,
                  v[j]);
        } else {
#pragma unroll
          for (int k = 0; k < 8; ++k)
            v[j][k] = 0.0f;
        }
      }
#pragma unroll
      for (int j = 0; j < kQueryBatch; ++j) {
        int e = first + j * kThreads + tid;
        if (e < kQueryPieces)
          *reinterpret_cast<uint4 *>(queryTile +
                                     swizzled(e / L::kRowChunks, e % L::kRowChunks, L::kRowBytes)) =
              make_uint4(packBf16(v[j][0], v[j][1]), packBf16(v[j][2], v[j][3]),
                         packBf16(v[j][4], v[j][5]), packBf16(v[j][6], v[j][7]));
      }
    }

    float runningMax[2] = {negInf, negInf}; // score role: rows g, g + 8 of the slice
    float runningSum[2] = {0.0f, 0.0f};     // this thread's keys only
    float acc[kValueMTiles][kValueNTiles][4];
#pragma unroll
    for (int m = 0; m < kValueMTiles; ++m)
#pragma unroll
      for (int n = 0; n < kValueNTiles; ++n)
#pragma unroll
        for (int k = 0; k < 4; ++k)
          acc[m][n][k] = 0.0f;

    for (int tile = 0; tile < tiles; ++tile) {
      waitCopies();
      __syncthreads(); // tile landed for all; everyone is past tile - 1
      if (tile + 1 < tiles)
        loadTile(tile + 1);
      const unsigned keyBase = tileBase + (tile % 2) * L::kTileBytes;
      const int tileRows = min(kTileRows, rowCount - tile * kTileRows);

      // ---- scores: S = Q K^T for 16 heads x kScoreKeys keys ------------
      // Even and odd k steps go to two accumulator sets (two dependency
      // chains of mma instead of one), for every HEADS_PER_BLOCK alike: a
      // score's fp32 additions then happen in the same order whichever
      // head grouping a step uses (16 heads per block for small steps, 64
      // for larger ones), so a token's scores do not depend on the step.
      constexpr int kChains = 2;
      float score[kChains][kScoreTiles][4];
#pragma unroll
      for (int c = 0; c < kChains; ++c)
#pragma unroll
        for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
          for (int k = 0; k < 4; ++k)
            score[c][n][k] = 0.0f;
      {
        const int aRow = slice * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int aChunkHigh = lane >> 4;
        const int bKeyX4 = keyGroup * kScoreKeys + (lane & 7) + (lane >> 4) * 8;
        const int bKeyX2 = keyGroup * kScoreKeys + (lane & 7);
        const int bChunkHigh = (lane >> 3) & 1;
#pragma unroll 2
        for (int first = 0; first < kScoreSteps; first += kChains) {
#pragma unroll
          for (int c = 0; c < kChains; ++c) {
            const int step = first + c;
            if (step < kScoreSteps) {
              unsigned a[4];
              loadMatrixX4(queryBase + swizzled(aRow, 2 * step + aChunkHigh, L::kRowBytes), a);
#pragma unroll
              for (int n = 0; n + 1 < kScoreTiles; n += 2) {
                unsigned b[4];
                loadMatrixX4(
                    keyBase + swizzled(bKeyX4 + n * 8, 2 * step + bChunkHigh, L::kRowBytes), b);
                mma16816(score[c][n], a, b[0], b[1]);
                mma16816(score[c][n + 1], a, b[2], b[3]);
              }
              if constexpr (kScoreTiles % 2 == 1) {
                unsigned b[2];
                loadMatrixX2(keyBase + swizzled(bKeyX2 + (kScoreTiles - 1) * 8,
                                                2 * step + bChunkHigh, L::kRowBytes),
                             b);
                mma16816(score[c][kScoreTiles - 1], a, b[0], b[1]);
              }
            }
          }
        }
#pragma unroll
        for (int c = 1; c < kChains; ++c)
#pragma unroll
          for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
            for (int k = 0; k < 4; ++k)
              score[0][n][k] += score[c][n][k];
      }

      // ---- online softmax ----------------------------------------------
      // Row r (0: g, 1: g + 8) of the slice; fragment values k = 2 r, 2 r + 1.
      float rowMax[2] = {negInf, negInf};
#pragma unroll
      for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          int key = keyGroup * kScoreKeys + n * 8 + 2 * q4 + (k & 1);
          float s = key < tileRows ? score[0][n][k] * scoreScale : negInf;
          score[0][n][k] = s;
          rowMax[k / 2] = fmaxf(rowMax[k / 2], s);
        }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        rowMax[r] = fmaxf(rowMax[r], __shfl_xor_sync(0xffffffffu, rowMax[r], 1));
        rowMax[r] = fmaxf(rowMax[r], __shfl_xor_sync(0xffffffffu, rowMax[r], 2));
        if (q4 == 0)
          tileMax[keyGroup * G + slice * 16 + g + 8 * r] = rowMax[r];
      }
      __syncthreads(); // tile maxima of all key groups
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        int head = slice * 16 + g + 8 * r;
        float newMax = runningMax[r];
#pragma unroll
        for (int k = 0; k < L::kKeyGroups; ++k)
          newMax = fmaxf(newMax, tileMax[k * G + head]);
        newMax = ceilf(newMax); // integral: see probabilityBelow
        const float factor = runningMax[r] > newMax - 127.0f // 0 on the first tile
                                 ? exactPowerOfTwo(static_cast<int>(runningMax[r] - newMax))
                                 : 0.0f;
        runningMax[r] = newMax;
        float sum = 0.0f;
#pragma unroll
        for (int n = 0; n < kScoreTiles; ++n) {
          float p0 = probabilityBelow(score[0][n][2 * r], newMax),
                p1 = probabilityBelow(score[0][n][2 * r + 1], newMax);
          sum += p0 + p1;
          int chunk = (keyGroup * kScoreKeys + n * 8) / 8;
          *reinterpret_cast<unsigned *>(probabilities +
                                        swizzled(head, chunk, L::kProbabilityRowBytes) + 4 * q4) =
              packBf16(p0, p1);
        }
        runningSum[r] = runningSum[r] * factor + sum;
        if (keyGroup == 0 && q4 == 0)
          alpha[head] = factor;
      }
      __syncthreads(); // P and alpha

      // ---- values: O = O * alpha + P V -------------------------------
      {
#pragma unroll
        for (int m = 0; m < kValueMTiles; ++m) {
          int row = (rowGroup * kValueMTiles + m) * 16 + g;
          float a0 = alpha[row], a1 = alpha[row + 8];
#pragma unroll
          for (int n = 0; n < kValueNTiles; ++n) {
            acc[m][n][0] *= a0;
            acc[m][n][1] *= a0;
            acc[m][n][2] *= a1;
            acc[m][n][3] *= a1;
          }
        }
        const int aRowLane = (lane & 7) + ((lane >> 3) & 1) * 8;
        const int aChunkHigh = lane >> 4;
        const int bKeyLane = (lane & 7) + ((lane >> 3) & 1) * 8;
        const int bChunkLane = colGroup * kValueCols / 8 + (lane >> 4);
        const int bChunkLaneX2 = colGroup * kValueCols / 8;
#pragma unroll
        for (int step = 0; step < kTileRows / 16; ++step) {
          unsigned a[kValueMTiles][4];
#pragma unroll
          for (int m = 0; m < kValueMTiles; ++m)
            loadMatrixX4(probabilityBase + swizzled((rowGroup * kValueMTiles + m) * 16 + aRowLane,
                                                    2 * step + aChunkHigh, L::kProbabilityRowBytes),
                         a[m]);
          const int key = step * 16 + bKeyLane;
#pragma unroll
          for (int n = 0; n + 1 < kValueNTiles; n += 2) {
            unsigned b[4];
            loadMatrixX4Transposed(keyBase + swizzled(key, bChunkLane + n, L::kRowBytes), b);
#pragma unroll
            for (int m = 0; m < kValueMTiles; ++m) {
              mma16816(acc[m][n], a[m], b[0], b[1]);
              mma16816(acc[m][n + 1], a[m], b[2], b[3]);
            }
          }
          if constexpr (kValueNTiles % 2 == 1) {
            unsigned b[2];
            loadMatrixX2Transposed(
                keyBase + swizzled(key, bChunkLaneX2 + kValueNTiles - 1, L::kRowBytes), b);
#pragma unroll
            for (int m = 0; m < kValueMTiles; ++m)
              mma16816(acc[m][kValueNTiles - 1], a[m], b[0], b[1]);
          }
        }
      }
    }

    // ---- epilogue: normalize, write out_lat or the partial --------------
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = runningSum[r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      int head = slice * 16 + g + 8 * r;
      if (q4 == 0)
        segmentSum[keyGroup * G + head] = sum;
      if (keyGroup == 0 && q4 == 0)
        finalMax[head] = runningMax[r];
    }
    __syncthreads(); // sums; every value product of the segment is done

    // Rows of this thread's value fragments: 1 / sum per row, then the
    // normalized accumulators to out_lat or to the partial slot.
    float inverse[kValueMTiles][2];
#pragma unroll
    for (int m = 0; m < kValueMTiles; ++m)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = (rowGroup * kValueMTiles + m) * 16 + g + 8 * r;
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < L::kKeyGroups; ++k)
          sum += segmentSum[k * G + row];
        inverse[m][r] = 1.0f / sum;
        if (!segment.whole && colGroup == 0 && q4 == 0 && headBase + row < HEADS)
          partials[2LL * gridDim.x * HEADS * KV_LORA +
                   static_cast<long long>(segment.slot) * HEADS + headBase + row] =
              finalMax[row] + __log2f(sum);
      }
    const int firstHead = headBase + rowGroup * kValueMTiles * 16;
    const int firstCol = colGroup * kValueCols;
    if (segment.whole)
      storeRows<HEADS, KV_LORA>(out_lat + static_cast<long long>(t) * HEADS * KV_LORA, acc, inverse,
                                firstHead, firstCol, g, q4);
    else
      storeRows<HEADS, KV_LORA>(partials + static_cast<long long>(segment.slot) * HEADS * KV_LORA,
                                acc, inverse, firstHead, firstCol, g, q4);
  }
}

/// Merges the partial results mla_decode_attention (split = 1) left for the
/// tokens it cut across blocks: out = sum_b w_b o_b / sum_b w_b with w_b =
/// 2^(lse_b - max lse), in fp32. Tokens one block handled whole are skipped
/// (already written). `split_blocks` is the attention launch's gridDim.x.
/// Each thread owns 4 columns of one head (KV_LORA / 4 threads per head) and
/// loads kCombineBatch blocks' partials at once: the latency of the reads is
/// paid once per batch, and a single token's merge still spreads over
/// HEADS KV_LORA / 1024 blocks.
/// Launch: grid = (T, ceil(HEADS * KV_LORA / 1024), 1), block = (256, 1, 1), dynamic shared memory
/// = 0 bytes
template <int HEADS, int KV_LORA, typename OutT = bf16>
__global__ void __launch_bounds__(mla_decode_detail::kThreads)
    mla_decode_combine(const float *partials, int split_blocks, const int *positions, OutT *out_lat,
                       int T) {
  awaitPrecedingKernels();
  using namespace mla_decode_detail;
  static_assert(KV_LORA % 4 == 0 && 1024 % KV_LORA == 0, "whole heads of float4 columns per block");
  constexpr int kThreadsPerHead = KV_LORA / 4;
  constexpr int kHeadsPerBlock = kThreads / kThreadsPerHead;
  int t = blockIdx.x;
  if (t >= T)
    return;
  int before, total;
  countUnits(positions, T, t, before, total);
  int perBlock = ceilDiv(total, split_blocks);
  int start = before, end = before + unitsOf(positions[t]);
  int first = start / perBlock, last = (end - 1) / perBlock;
  int head = blockIdx.y * kHeadsPerBlock + threadIdx.x / kThreadsPerHead;
  int col = 4 * (threadIdx.x % kThreadsPerHead);
  if (first == last || head >= HEADS)
    return;
  const float *lse = partials + 2LL * split_blocks * HEADS * KV_LORA;
  auto slotOf = [&](int b) -> long long {
    return 2 * b + (b == first && start != b * perBlock ? 1 : 0);
  };
  // One pass: a batch's log-sums and partial rows load together, and the
  // running sums are rescaled when a batch raises the maximum. A token cut
  // over at most kCombineBatch blocks (one token's step: 16) is one batch,
  // whose weights are exactly 2^(lse_b - max lse). (Reading the maxima in a
  // pass of their own first cost a decode step's critical path a dependent
  // round of loads per layer.)
  float maxLse = mla_detail::negativeInfinity();
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float weightSum = 0.0f;
  for (int b = first; b <= last; b += kCombineBatch) {
    float batchLse[kCombineBatch];
    float4 value[kCombineBatch];
#pragma unroll
    for (int j = 0; j < kCombineBatch; ++j) {
      bool live = b + j <= last;
      long long slot = slotOf(live ? b + j : first);
      batchLse[j] = live ? lse[slot * HEADS + head] : mla_detail::negativeInfinity();
      value[j] =
          *reinterpret_cast<const float4 *>(partials + (slot * HEADS + head) * KV_LORA + col);
    }
    float batchMax = maxLse;
#pragma unroll
    for (int j = 0; j < kCombineBatch; ++j)
      batchMax = fmaxf(batchMax, batchLse[j]);
    if (batchMax > maxLse) {
      // exp2f(-inf) = 0: nothing summed yet stays nothing.
      const float rescale = exp2f(maxLse - batchMax);
      weightSum *= rescale;
      acc.x *= rescale;
      acc.y *= rescale;
      acc.z *= rescale;
      acc.w *= rescale;
      maxLse = batchMax;
    }
#pragma unroll
    for (int j = 0; j < kCombineBatch; ++j) {
      const float weight = exp2f(batchLse[j] - maxLse);
      weightSum += weight;
      acc.x += weight * value[j].x;
      acc.y += weight * value[j].y;
      acc.z += weight * value[j].z;
      acc.w += weight * value[j].w;
    }
  }
  float inverse = 1.0f / weightSum;
  OutT *row = out_lat + (static_cast<long long>(t) * HEADS + head) * KV_LORA + col;
  mla_detail::storePair(row, make_float2(acc.x * inverse, acc.y * inverse));
  mla_detail::storePair(row + 2, make_float2(acc.z * inverse, acc.w * inverse));
}

} // namespace dsv3k
