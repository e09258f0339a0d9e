//===- mla_prefill.cuh - MLA attention of fresh prompts on tensor cores ---===//
//
// Non-absorbed MLA attention for the prefill of fresh prompts: kv_b_proj has
// already expanded each step token's latent into per-head k_nope and v, so
// every head is an ordinary attention head of query/key width NOPE + ROPE
// and value width V, whose keys are the step's own rows (the rope part of a
// key, k_pe, shared by all heads, is read from the latent cache). Per head h
// and step token t at position p:
//
//   keys     j = t - p .. t (the earlier tokens of t's sequence, and t)
//   score_j  = (q_nope[t,h] . k_nope[j,h] + q_pe[t,h] . k_pe[j]) * softmax_scale
//   out[t,h] = sum_j softmax(score)_j v[j,h]
//
// PRECONDITION (the caller's, not checked): each sequence's tokens in the step
// form one contiguous run of rows with positions 0, 1, 2, ..., so token t's
// keys are exactly the rows t - positions[t] .. t. A step packs several runs
// back to back (8 x 1024 tokens, or runs of 1, 200, 1000).
//
// Flash attention (FA2) on mma.sync m16n8k16 (bf16 in, fp32 accumulation):
// each block takes 128 query rows of one head (kRowsPerBlock), the blocks
// ordered so that late, heavy query tiles start first (heads in groups of
// 32, each group's tiles from the last to the first); its 4 warps take 32
// rows each (two m16 tiles, so that every K and V fragment read from shared
// memory feeds two mma). Key tiles of 64 rows are walked from the block's
// last row down to the first key any of its rows sees: tile i holds keys
// (t1 - 64 (i + 1), t1 - 64 i], so the diagonal comes first and, for a full
// block, tiles split at warp boundaries. A warp skips tiles none of its rows
// sees and masks only the tiles that cross one of its rows' bounds (the
// diagonal, a sequence start). Per tile:
//
//   S = Q K^T    (32 x 64 per warp, over NOPE + ROPE; Q pre-scaled)
//   online softmax in fp32 (running max per row, 2^ on the MUFU)
//   O += P V     (32 x V per warp, P rounded to bf16)
//
// Shared memory (dynamic, sharedBytes; 115200 bytes at DeepSeek-V3's shape:
// two blocks per SM): the block's queries rounded to bf16 (128 rows), two key
// tiles (the next one loads with cp.async during the current one), one value
// tile (loads while the scores are computed) and each row's first key.
// Rows are 16-byte chunks whose position is XORed with the row's low three
// bits, so the 8 rows an ldmatrix or a cp.async wave touches lie in
// different banks. k_pe rows are looked up in the paged cache through
// token_seq, positions and block_table, software-pipelined ahead of the
// copies (the sequence and position a tile and a half before, the block
// table half a tile before).
// The output goes through the warp's own query rows in shared memory, so
// that it leaves in 16-byte stores.
//
// Precision: the products' inputs are bf16: q times softmax_scale log2(e)
// rounded once when staged (float or bf16 q alike), k_nope, k_pe and v as
// stored, and P once before the value product (the running sums use the fp32
// P). Scores, softmax and accumulators are fp32; out is rounded once to bf16.
//
// Split invariance (as mla_decode_attention's): P is taken relative to the
// running maximum rounded up to an integer (log2 units) and built from the
// score alone times an exact power of two, so its bf16 digits do not depend on
// which keys a tile held before; a token's output then does not depend on how
// the step packed it (which rows share its block, where its key tiles start)
// beyond the order of fp32 additions. The fast path splits a score s as
// rint(s) + f with the 1.5 * 2^23 rounding trick, valid while the running
// maximum is within +-2^21 (scores in log2 units); a warp whose rows leave
// that range (inputs no model produces) takes mla_decode_detail's
// floor-based probabilityBelow for the tile instead.
//
// Requirements (static_assert): NOPE, ROPE and KV_LORA multiples of 8 (16-byte
// chunks), NOPE + ROPE and V multiples of 16 (mma k steps and n-tile pairs),
// V <= 128 (the accumulators, V fp32 registers per thread) and V no wider
// than NOPE + ROPE rounded up to 64 (the output staging). All pointers
// 16-byte aligned (cudaMalloc'd tensors; row strides are multiples of 16
// bytes by the above). T >= 1. Row offsets are 64-bit; T is an int, and
// sequences * max_pages * PAGE and the cache's row count stay below 2^32
// (k_pe slots are computed in 32 bits).
//
// Resources (ptxas, CUDA 13.0, sm_90a, __launch_bounds__(128, 2)): at
// DeepSeek-V3's shape 255 registers with float or bf16 q, no spills, no
// stack; 115200 bytes of dynamic shared memory, so two blocks (8 warps) per
// SM. Tiny test shape (4 heads, 32 + 16 / 32): 167 registers,
// 41472 bytes. The register budget is tight: fully unrolling the score
// loop's 12 k steps (it is unrolled by 4) or keeping per-lane ldmatrix
// offsets in registers spilled.
//
// The mma, ldmatrix, cp.async and probability helpers are mla_decode.cuh's.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/mla_decode.cuh"

namespace dsv3k {

namespace mla_prefill_detail {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * 32;             ///< threads per block
inline constexpr int kWarpRows = 32;                     ///< query rows per warp
inline constexpr int kRowsPerBlock = kWarps * kWarpRows; ///< query rows per block
inline constexpr int kKeyRows = 64;                      ///< keys per tile
inline constexpr int kBlocksPerSm = 2;                   ///< the launch bounds' target
inline constexpr int kHeadGroup = 32; ///< heads whose query tiles interleave in launch order
inline constexpr float kRoundingShift = 12582912.0f;     ///< 1.5 * 2^23
inline constexpr float kFastRange = 2097152.0f;          ///< 2^21

/// Shared-memory layout of one block (bytes).
template <int NOPE, int ROPE, int V> struct Layout {
  static constexpr int kQkChunks = (NOPE + ROPE) / 8;           // 16-byte chunks
  static constexpr int kQkRowBytes = (kQkChunks + 7) / 8 * 128; // swizzle needs 8k chunks
  static constexpr int kValueChunks = V / 8;
  static constexpr int kValueRowBytes = (kValueChunks + 7) / 8 * 128;
  static constexpr int kQueryBytes = kRowsPerBlock * kQkRowBytes;
  static constexpr int kKeyBytes = kKeyRows * kQkRowBytes;
  static constexpr int kValueBytes = kKeyRows * kValueRowBytes;
  static constexpr int kQueryOffset = 0;
  static constexpr int kKeyOffset = kQueryOffset + kQueryBytes;   // two tiles
  static constexpr int kValueOffset = kKeyOffset + 2 * kKeyBytes; // one tile
  static constexpr int kRowLoOffset = kValueOffset + kValueBytes; // int per query row
  static constexpr int kBytes = kRowLoOffset + kRowsPerBlock * 4;
};

/// Dynamic shared memory of mla_prefill_attention<..., NOPE, ROPE, V, ...>:
/// 115200 bytes at DeepSeek-V3's shape (NOPE 128, ROPE 64, V 128), 41472 at the
/// tiny test shape (32, 16, 32). Above 48 KB: the launcher must raise
/// cudaFuncAttributeMaxDynamicSharedMemorySize to it first. Two blocks of
/// 115200 bytes (plus 1 KB the hardware reserves per block) fill an H100's
/// 228 KB; the kernel traps if launched with less.
template <int NOPE, int ROPE, int V> __host__ __device__ constexpr unsigned sharedBytes() {
  return static_cast<unsigned>(Layout<NOPE, ROPE, V>::kBytes);
}

/// Blocks of a launch over T step tokens: grid = (gridBlocks(T), HEADS, 1).
__host__ __device__ constexpr int gridBlocks(int T) { return ceilDiv(T, kRowsPerBlock); }

/// Waits until only the newest cp.async group may still be in flight.
__device__ __forceinline__ void waitCopiesButNewest() {
  asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}
__device__ __forceinline__ void waitAllCopies() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

/// 2^(s - reference) for an integral reference >= s with |reference| < 2^21
/// (s = -inf gives 0), built like mla_decode_detail::probabilityBelow from s
/// alone times an exact power of two: s = rint(s) + f (adding 1.5 * 2^23
/// leaves rint(s) in the low mantissa bits), 2^f in [0.707, 1.415] from
/// ex2.approx, and rint(s) - reference added to its exponent field.
/// referenceField is bits(reference + 1.5 * 2^23) << 23 (rint(s) << 23 is
/// bits(s + 1.5 * 2^23) << 23 likewise: 0x4B400000 << 23 wraps to 0).
/// 0 for scores 125 or more below the reference (and masked ones).
__device__ __forceinline__ float probabilityFast(float s, float reference,
                                                 unsigned referenceField) {
  const float shifted = s + kRoundingShift;
  const float whole = shifted - kRoundingShift; // rint(s), exactly
  float mantissa;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(mantissa) : "f"(s - whole)); // s - whole exact
  const unsigned bits =
      __float_as_uint(mantissa) + (__float_as_uint(shifted) << 23) - referenceField;
  return s > reference - 125.0f ? __uint_as_float(bits) : 0.0f;
}

__device__ __forceinline__ void storeShared32(unsigned address, unsigned value) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(address), "r"(value) : "memory");
}
__device__ __forceinline__ void storeShared128(unsigned address, uint4 v) {
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(address), "r"(v.x), "r"(v.y),
               "r"(v.z), "r"(v.w)
               : "memory");
}
/// 16 bytes to global memory in one vector store (a plain uint4 assignment
/// through a bf16 pointer came out as four 4-byte stores).
__device__ __forceinline__ void storeGlobal128(void *p, uint4 v) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z),
               "r"(v.w)
               : "memory");
}
__device__ __forceinline__ uint4 loadShared128(unsigned address) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(address)
               : "memory");
  return v;
}

} // namespace mla_prefill_detail

/// MLA attention over the step's own rows (see the file comment).
///   q           [T, HEADS (NOPE + ROPE)] QT (float or bf16); head h's nope part at
///               h (NOPE + ROPE), its rope part (already rotated) after it
///   kv          [T, HEADS (NOPE + V)] bf16: kv_b_proj of each step token's latent;
///               head h's k_nope at h (NOPE + V), its v at h (NOPE + V) + NOPE
///   cache       this layer's paged latent cache [num_pages PAGE, KV_LORA + ROPE] bf16;
///               key j's k_pe is the last ROPE values of the row of
///               (token_seq[j], positions[j]) through block_table [sequences, max_pages]
///   out         [T, HEADS V] bf16; head h's output at h V
/// Launch: grid = (ceil(T / 128), HEADS, 1) (mla_prefill_detail::gridBlocks),
///   block = (128, 1, 1) (mla_prefill_detail::kThreads), dynamic shared memory =
///   mla_prefill_detail::sharedBytes<NOPE, ROPE, V>() bytes (115200 at DeepSeek-V3's
///   shape: more than 48 KB, so cudaFuncAttributeMaxDynamicSharedMemorySize first).
template <int HEADS, int NOPE, int ROPE, int V, int KV_LORA, int PAGE, typename QT = bf16>
__global__ void __launch_bounds__(mla_prefill_detail::kThreads, mla_prefill_detail::kBlocksPerSm)
    mla_prefill_attention(const QT *q, const bf16 *kv, const bf16 *cache, const int *block_table,
                          int max_pages, const int *token_seq, const int *positions, bf16 *out,
                          int T, float softmax_scale) {
  awaitPrecedingKernels();
  using namespace mla_prefill_detail;
  using mla_decode_detail::commitCopies;
  using mla_decode_detail::copyAsync16;
  using mla_decode_detail::loadMatrixX4;
  using mla_decode_detail::loadMatrixX4Transposed;
  using mla_decode_detail::mma16816;
  using mla_decode_detail::packBf16;
  using mla_decode_detail::sharedAddress;
  constexpr int D = NOPE + ROPE;
  static_assert(NOPE % 8 == 0 && ROPE % 8 == 0 && KV_LORA % 8 == 0,
                "16-byte chunks of k_nope, k_pe and v");
  static_assert(D % 16 == 0, "whole k16 steps of the score product");
  static_assert(V % 16 == 0, "pairs of n8 tiles of the value product");
  static_assert(V <= 128, "the accumulators are V fp32 registers per thread");
  using L = Layout<NOPE, ROPE, V>;
  static_assert(L::kValueRowBytes <= L::kQkRowBytes, "the output is staged in the query rows");
  static_assert(L::kBytes <= 227 * 1024, "shared memory of one block");
  constexpr int kSteps = D / 16;            // k steps of S = Q K^T
  constexpr int kScoreTiles = kKeyRows / 8; // n8 tiles of S (8)
  constexpr int kValueTiles = V / 8;        // n8 tiles of O
  constexpr int kNopeChunks = NOPE / 8, kRopeChunks = ROPE / 8, kValueChunks = V / 8;
  constexpr long long kQueryStride = static_cast<long long>(HEADS) * D;
  constexpr long long kKvStride = static_cast<long long>(HEADS) * (NOPE + V);
  constexpr long long kOutStride = static_cast<long long>(HEADS) * V;
  constexpr int kCacheRow = KV_LORA + ROPE;
  const float negInf = mla_detail::negativeInfinity();

  extern __shared__ __align__(128) unsigned char mlaPrefillShared[];
  const unsigned queryBase = sharedAddress(mlaPrefillShared + L::kQueryOffset);
  {
    unsigned given;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(given));
    if (given < static_cast<unsigned>(L::kBytes) || queryBase % 128 != 0)
      __trap(); // launched with less than sharedBytes (the swizzle needs 128-byte rows)
  }
  const unsigned keyBase = sharedAddress(mlaPrefillShared + L::kKeyOffset);
  const unsigned valueBase = sharedAddress(mlaPrefillShared + L::kValueOffset);
  int *rowLo = reinterpret_cast<int *>(mlaPrefillShared + L::kRowLoOffset);
  int *warpLo = reinterpret_cast<int *>(mlaPrefillShared + L::kValueOffset); // prologue only

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, q4 = lane % 4; // mma fragment coordinates
  // Launch order (blocks start roughly in linear index order, x fastest):
  // heads in groups of kHeadGroup (all heads if HEADS is no multiple of it),
  // and within a group the query tiles from the last (the heaviest: most
  // keys) to the first, each for all the group's heads. The last blocks to
  // start are then the light ones (longest processing time first: at 1 x
  // 1024 tokens, 8 tiles x 128 heads, this took 289 us to 251 from one head
  // after another), while the blocks running at once read the key and value
  // rows of a few heads (about 16 MB at DeepSeek-V3's shape: L2 hits).
  const int group = gridDim.y % kHeadGroup == 0 ? kHeadGroup : static_cast<int>(gridDim.y);
  const int linear = blockIdx.x + gridDim.x * blockIdx.y;
  const int groupBlocks = gridDim.x * group;
  const int within = linear % groupBlocks;
  const int head = linear / groupBlocks * group + within % group;
  const int t0 = (gridDim.x - 1 - within / group) * kRowsPerBlock;
  if (t0 >= T)
    return; // a grid larger than gridBlocks(T)
  const int t1 = min(t0 + kRowsPerBlock, T) - 1;

  // ---- rows: thread tid describes row t0 + tid, so warp w's threads hold
  // exactly the 32 rows warp w computes. First key of each row (INT_MAX past T:
  // every key masked), the warp's smallest and largest, the block's smallest.
  const int warpFirst = t0 + warp * kWarpRows;
  const int warpLast = min(warpFirst + kWarpRows, T) - 1;
  const bool warpLive = warpFirst < T;
  int warpLoMin, warpLoMax, blockLo;
  {
    const int row = t0 + tid;
    const int lo = row < T ? row - positions[row] : 0x7fffffff;
    rowLo[tid] = lo;
    warpLoMin = lo;
    warpLoMax = row < T ? lo : -1;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      warpLoMin = min(warpLoMin, __shfl_xor_sync(0xffffffffu, warpLoMin, offset));
      warpLoMax = max(warpLoMax, __shfl_xor_sync(0xffffffffu, warpLoMax, offset));
    }
    if (lane == 0)
      warpLo[warp] = warpLoMin;
    __syncthreads();
    blockLo = warpLo[0];
#pragma unroll
    for (int w = 1; w < kWarps; ++w)
      blockLo = min(blockLo, warpLo[w]);
    // warpLo lies in the value tile, which the first cp.async of values
    // overwrites only after the loop's first barrier.
  }
  const int tiles = (t1 - blockLo) / kKeyRows + 1;
  // Tile i holds keys [t1 - 64 (i + 1) + 1, t1 - 64 i]. This warp computes
  // tiles activeFrom..activeTo (those holding a key of one of its rows) and
  // masks all but plainFrom..plainTo (tiles inside every row's bounds).
  int activeFrom = 1, activeTo = 0, plainFrom = 0, plainTo = -1;
  if (warpLive) {
    activeFrom = (t1 - warpLast) / kKeyRows;
    activeTo = (t1 - warpLoMin) / kKeyRows;
    plainFrom = (t1 - warpFirst + kKeyRows - 1) / kKeyRows;
    const int plainLimit = t1 - (kKeyRows - 1) - warpLoMax;
    plainTo = plainLimit >= 0 ? plainLimit / kKeyRows : -1;
  }

  // ---- loading: 2 threads per key row, alternate 16-byte chunks (a lane
  // pair covers 32 contiguous bytes per copy). The k_pe slot of the row each
  // thread loads is found one step ahead: stage A reads the row's sequence
  // and position (a tile and a half before its copy) into one word, seq
  // max_pages PAGE + position, stage B the block table (half a tile before),
  // leaving the cache row. (32-bit: sequences max_pages PAGE and the cache's
  // rows below 2^32.)
  const int loadRow = tid / 2, part = tid % 2;
  auto keyOf = [&](int tile) { return t1 - (tile + 1) * kKeyRows + 1 + loadRow; };
  constexpr unsigned kNoKey = 0xffffffffu;
  unsigned flatA = kNoKey, slotB = 0;
  auto stageA = [&](int tile) {
    const int j = keyOf(tile);
    flatA = kNoKey;
    if (tile < tiles && j >= blockLo)
      flatA = static_cast<unsigned>(token_seq[j]) * (static_cast<unsigned>(max_pages) * PAGE) +
              static_cast<unsigned>(positions[j]);
  };
  auto stageB = [&]() {
    slotB = flatA != kNoKey ? static_cast<unsigned>(block_table[flatA / PAGE]) * PAGE + flatA % PAGE
                            : 0u;
  };
  // Chunk c = 2 i + part of a row goes to 16 (c ^ (row & 7)) = 16 ((2 i) ^ x)
  // with x = (row & 7) ^ part: (row base + 16 x) ^ 32 (i % 4), + 128 (i / 4),
  // one XOR per copy (rows are multiples of 128 bytes).
  const unsigned loadChunk = static_cast<unsigned>(((loadRow % 8) ^ part) << 4);
  const unsigned keyLoadLane = keyBase + loadRow * L::kQkRowBytes + loadChunk;
  const unsigned valueLoadLane = valueBase + loadRow * L::kValueRowBytes + loadChunk;
  auto issueKeys = [&](int tile) { // uses stage B's slot, which must be tile's
    const int j = keyOf(tile);
    const bool valid = j >= blockLo; // zeros below the block's first key (masked)
    const unsigned dst = keyLoadLane + (tile % 2) * L::kKeyBytes;
    const bf16 *nope = valid ? kv + j * kKvStride + head * (NOPE + V) + part * 8 : kv;
    const bf16 *rope =
        valid ? cache + static_cast<long long>(slotB) * kCacheRow + KV_LORA + part * 8 : cache;
#pragma unroll
    for (int i = 0; i < (kNopeChunks + 1) / 2; ++i)
      if (2 * i + part < kNopeChunks)
        copyAsync16((dst ^ (32 * (i % 4))) + 128 * (i / 4), nope + 16 * i, valid);
#pragma unroll
    for (int i = 0; i < (kRopeChunks + 1) / 2; ++i) {
      // chunk kNopeChunks + 2 i + part: kNopeChunks is even when ROPE chunks
      // follow whole pairs; else fall back to the plain formula.
      if (2 * i + part < kRopeChunks) {
        if constexpr (kNopeChunks % 2 == 0) {
          constexpr int kFirst = kNopeChunks / 2; // pair index of the first rope chunk
          copyAsync16((dst ^ (32 * ((kFirst + i) % 4))) + 128 * ((kFirst + i) / 4), rope + 16 * i,
                      valid);
        } else {
          const int c = kNopeChunks + 2 * i + part;
          copyAsync16(keyBase + (tile % 2) * L::kKeyBytes + loadRow * L::kQkRowBytes +
                          ((c ^ (loadRow % 8)) << 4),
                      rope + 16 * i, valid);
        }
      }
    }
  };
  auto issueValues = [&](int tile) {
    const int j = keyOf(tile);
    const bool valid = j >= blockLo;
    const bf16 *value = valid ? kv + j * kKvStride + head * (NOPE + V) + NOPE + part * 8 : kv;
#pragma unroll
    for (int i = 0; i < (kValueChunks + 1) / 2; ++i)
      if (2 * i + part < kValueChunks)
        copyAsync16((valueLoadLane ^ (32 * (i % 4))) + 128 * (i / 4), value + 16 * i, valid);
  };

  stageA(0);
  stageB();
  issueKeys(0);
  commitCopies();
  stageA(1);

  // ---- the block's queries, times softmax_scale log2(e), to bf16 in shared
  // memory (zeros past T); kBatch 8-value pieces per thread loaded before any
  // is stored.
  {
    const float queryScale = softmax_scale * mla_detail::kLog2e;
    constexpr int kChunks = D / 8;
    constexpr int kPieces = kRowsPerBlock * kChunks;
    constexpr int kBatch = 12; // 24 (float q) or 12 (bf16) 16-byte loads in flight
    for (int first = 0; first < kPieces; first += kBatch * kThreads) {
      float v[kBatch][8];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int e = first + b * kThreads + tid;
        const int row = e / kChunks, chunk = e % kChunks;
        if (e < kPieces && t0 + row < T) {
          load8(q + (t0 + row) * kQueryStride + head * D + chunk * 8, v[b]);
        } else {
#pragma unroll
          for (int k = 0; k < 8; ++k)
            v[b][k] = 0.0f;
        }
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int e = first + b * kThreads + tid;
        const int row = e / kChunks, chunk = e % kChunks;
        if (e < kPieces)
          storeShared128(queryBase + row * L::kQkRowBytes + ((chunk ^ (row % 8)) << 4),
                         make_uint4(packBf16(v[b][0] * queryScale, v[b][1] * queryScale),
                                    packBf16(v[b][2] * queryScale, v[b][3] * queryScale),
                                    packBf16(v[b][4] * queryScale, v[b][5] * queryScale),
                                    packBf16(v[b][6] * queryScale, v[b][7] * queryScale)));
      }
    }
  }
  stageB();

  // ---- per-lane ldmatrix addresses. Every x4 load (Q, K, V) has lane l name
  // row (l & 7) + 8 ((l >> 3) & 1) of a 16-row slab and its chunk 2k + (l >> 4)
  // (matrices: rows 0-7 low chunk, rows 8-15 low, rows 0-7 high, rows 8-15
  // high). With the swizzle that chunk sits at 16 ((2k) ^ x), x = (l & 7) ^
  // (l >> 4): rows start at multiples of 128 bytes, so the chunk's address is
  // (lane base ^ 32 (k % 4)) + 128 (k / 4), the lane base holding 16 x. One
  // XOR per k step, the rest immediate offsets.
  const unsigned fragmentRow = (lane % 8) + ((lane / 8) % 2) * 8;
  const unsigned fragmentChunk = (((lane % 8) ^ (lane / 16)) << 4);
  const unsigned queryLane =
      queryBase + (warp * kWarpRows + fragmentRow) * L::kQkRowBytes + fragmentChunk;
  const unsigned keyLane = keyBase + fragmentRow * L::kQkRowBytes + fragmentChunk;
  const unsigned valueLane = valueBase + fragmentRow * L::kValueRowBytes + fragmentChunk;

  float acc[2][kValueTiles][4];
#pragma unroll
  for (int m = 0; m < 2; ++m)
#pragma unroll
    for (int n = 0; n < kValueTiles; ++n)
#pragma unroll
      for (int k = 0; k < 4; ++k)
        acc[m][n][k] = 0.0f;
  // Rows 16 m + g + 8 r of the warp: running max (integral, log2 units) and
  // this thread's share of the running sum.
  float runningMax[2][2] = {{negInf, negInf}, {negInf, negInf}};
  float runningSum[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};

  for (int tile = 0; tile < tiles; ++tile) {
    waitAllCopies();
    __syncthreads(); // keys of `tile` (and the queries) landed; all warps are
                     // past tile - 1's value product and its score product
    issueValues(tile);
    commitCopies();
    if (tile + 1 < tiles)
      issueKeys(tile + 1);
    commitCopies(); // (maybe empty: keeps "all but the newest group" = the values)
    stageA(tile + 2);

    const int tileLo = t1 - (tile + 1) * kKeyRows + 1;
    const bool active = tile >= activeFrom && tile <= activeTo;
    const bool masked = tile < plainFrom || tile > plainTo;
    unsigned probability[2][kKeyRows / 16][4]; // P as m16k16 A fragments
    if (active) {
      // ---- scores: S = Q K^T, 32 rows x 64 keys ----------------------------
      float score[2][kScoreTiles][4];
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
          for (int k = 0; k < 4; ++k)
            score[m][n][k] = 0.0f;
      const unsigned keyTile = keyLane + (tile % 2) * L::kKeyBytes;
#pragma unroll 4
      for (int k = 0; k < kSteps; ++k) {
        unsigned a0[4], a1[4];
        const unsigned queryStep = (queryLane ^ (32 * (k % 4))) + 128 * (k / 4);
        const unsigned keyStep = (keyTile ^ (32 * (k % 4))) + 128 * (k / 4);
        loadMatrixX4(queryStep, a0);
        loadMatrixX4(queryStep + 16 * L::kQkRowBytes, a1);
#pragma unroll
        for (int n = 0; n < kScoreTiles; n += 2) {
          // b: keys 8n.. + 0-7 and + 8-15 of the low k half, then of the high
          // half: n-tile n is (b[0], b[2]), n + 1 is (b[1], b[3]).
          unsigned b[4];
          loadMatrixX4(keyStep + n * 8 * L::kQkRowBytes, b);
          mma16816(score[0][n], a0, b[0], b[2]);
          mma16816(score[0][n + 1], a0, b[1], b[3]);
          mma16816(score[1][n], a1, b[0], b[2]);
          mma16816(score[1][n + 1], a1, b[1], b[3]);
        }
      }

      // ---- mask: key j counts for row t iff t - positions[t] <= j <= t ------
      if (masked) {
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int local = warp * kWarpRows + m * 16 + g + 8 * r;
            const int row = t0 + local, lo = rowLo[local];
#pragma unroll
            for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
              for (int c = 0; c < 2; ++c) {
                const int key = tileLo + n * 8 + 2 * q4 + c;
                if (key < lo || key > row)
                  score[m][n][2 * r + c] = negInf;
              }
          }
      }

      // ---- online softmax --------------------------------------------------
      float alpha[2][2];
      bool fast = true;
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float tileMax = negInf;
#pragma unroll
          for (int n = 0; n < kScoreTiles; ++n)
            tileMax = fmaxf(tileMax, fmaxf(score[m][n][2 * r], score[m][n][2 * r + 1]));
          tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
          tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 2));
          const float newMax = fmaxf(runningMax[m][r], ceilf(tileMax)); // integral or -inf
          alpha[m][r] =
              runningMax[m][r] > newMax - 127.0f // 0 while the row saw no key
                  ? mla_decode_detail::exactPowerOfTwo(static_cast<int>(runningMax[m][r] - newMax))
                  : 0.0f;
          runningMax[m][r] = newMax;
          runningSum[m][r] *= alpha[m][r];
          fast = fast && (newMax == negInf || fabsf(newMax) < kFastRange);
        }
      if (__any_sync(0xffffffffu, alpha[0][0] != 1.0f || alpha[0][1] != 1.0f ||
                                      alpha[1][0] != 1.0f || alpha[1][1] != 1.0f)) {
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
          for (int n = 0; n < kValueTiles; ++n) {
            acc[m][n][0] *= alpha[m][0];
            acc[m][n][1] *= alpha[m][0];
            acc[m][n][2] *= alpha[m][1];
            acc[m][n][3] *= alpha[m][1];
          }
      }
      if (__all_sync(0xffffffffu, fast)) {
        unsigned field[2][2];
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
          for (int r = 0; r < 2; ++r)
            field[m][r] = __float_as_uint(runningMax[m][r] + kRoundingShift) << 23;
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
          for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
            for (int k = 0; k < 4; ++k) {
              const float p =
                  probabilityFast(score[m][n][k], runningMax[m][k / 2], field[m][k / 2]);
              score[m][n][k] = p;
              runningSum[m][k / 2] += p;
            }
      } else {
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
          for (int n = 0; n < kScoreTiles; ++n)
#pragma unroll
            for (int k = 0; k < 4; ++k) {
              const float p =
                  mla_decode_detail::probabilityBelow(score[m][n][k], runningMax[m][k / 2]);
              score[m][n][k] = p;
              runningSum[m][k / 2] += p;
            }
      }
#pragma unroll
      for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int kk = 0; kk < kKeyRows / 16; ++kk) {
          probability[m][kk][0] = packBf16(score[m][2 * kk][0], score[m][2 * kk][1]);
          probability[m][kk][1] = packBf16(score[m][2 * kk][2], score[m][2 * kk][3]);
          probability[m][kk][2] = packBf16(score[m][2 * kk + 1][0], score[m][2 * kk + 1][1]);
          probability[m][kk][3] = packBf16(score[m][2 * kk + 1][2], score[m][2 * kk + 1][3]);
        }
    }

    waitCopiesButNewest();
    __syncthreads(); // values of `tile` landed; all warps are past its scores
    stageB();

    // ---- values: O += P V ---------------------------------------------------
    if (active) {
#pragma unroll
      for (int kk = 0; kk < kKeyRows / 16; ++kk)
#pragma unroll
        for (int n = 0; n < kValueTiles; n += 2) {
          unsigned b[4];
          loadMatrixX4Transposed(
              (valueLane ^ (32 * ((n / 2) % 4))) + 128 * (n / 8) + kk * 16 * L::kValueRowBytes, b);
          mma16816(acc[0][n], probability[0][kk], b[0], b[1]);
          mma16816(acc[0][n + 1], probability[0][kk], b[2], b[3]);
          mma16816(acc[1][n], probability[1][kk], b[0], b[1]);
          mma16816(acc[1][n + 1], probability[1][kk], b[2], b[3]);
        }
    }
  }

  // ---- epilogue: O / sum to bf16 through the warp's own query rows (no other
  // warp reads them), then 16-byte stores of whole rows.
  if (!warpLive)
    return;
  __syncwarp();
  const unsigned stage = queryBase + warp * kWarpRows * L::kQkRowBytes;
#pragma unroll
  for (int m = 0; m < 2; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = runningSum[m][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inverse = 1.0f / sum; // > 0 for rows < T: a row sees itself
      const int row = m * 16 + g + 8 * r;
#pragma unroll
      for (int n = 0; n < kValueTiles; ++n)
        storeShared32(stage + row * L::kValueRowBytes + ((n ^ (row % 8)) << 4) + 4 * q4,
                      packBf16(acc[m][n][2 * r] * inverse, acc[m][n][2 * r + 1] * inverse));
    }
  __syncwarp();
#pragma unroll
  for (int i = 0; i < kWarpRows * kValueChunks / 32; ++i) {
    const int e = i * 32 + lane;
    const int row = e / kValueChunks, chunk = e % kValueChunks;
    if (warpFirst + row < T)
      storeGlobal128(out + (warpFirst + row) * kOutStride + head * V + chunk * 8,
                     loadShared128(stage + row * L::kValueRowBytes + ((chunk ^ (row % 8)) << 4)));
  }
}

} // namespace dsv3k
