//===- mla_absorb.cuh - MLA's absorbed per-head products ------------------===//
//
// The two batched per-head products of absorbed MLA (mla.cuh's overview):
//
//   q_lat[t, h, c]  = sum_{n < NOPE} q[t, h (NOPE + ROPE) + n] * W_UK[h][n, c]
//   out[t, h V + v] = sum_{c < KV_LORA} out_lat[t, h, c] * W_UV[h][v, c]
//
// with W_UK[h] = kv_b rows h (NOPE + V) + n and W_UV[h] = kv_b rows
// h (NOPE + V) + NOPE + v (kv_b bf16 [HEADS (NOPE + V), KV_LORA], c
// contiguous). The code generator picks a kernel by step size (KernelTuning):
//
//  - mla_q_absorb_mma, mla_out_absorb_mma: per head a GEMM on tensor cores,
//    mma.sync m16n8k16 (bf16 in, f32 accumulators; sm_80 and later), 256
//    threads. A block owns BM tokens (16, 64 or 128) x N output columns of
//    one head (N = all columns / COLUMN_BLOCKS), walked in chunks of BN <=
//    128 columns; its 8 warps are 4 (tokens) x 2 (columns), or 1 x 8 at BM =
//    16. K is walked 32 at a time through a STAGES-deep cp.async pipeline in
//    dynamic shared memory (rows padded by 16 bytes, so that ldmatrix and the
//    fragment reads touch every bank once per phase); a block with several
//    chunks keeps its whole activation tile instead, loaded once. W_UV[h] is
//    [N = V, K = KV_LORA], K contiguous: ldmatrix. W_UK[h] is [K = NOPE, N =
//    KV_LORA], N contiguous: ldmatrix.trans gives the mma's column operand
//    without transposing anything in memory. A float activation (q, out_lat)
//    is staged as float and enters as two bf16 fragments, its rounding and
//    the rounding's remainder, two products into the same accumulators: the
//    product then keeps about 16 significant bits of the input, so a token
//    gets the same result, up to the order of additions, whether its step
//    runs a tile or the fp32 stream kernel. (Rounding only in the tiles made
//    a sequence decoded in a batch differ from the same sequence alone by
//    ~2e-3 in the attention output: dsv3-run --serve's check found greedy
//    replies diverging outside each other's top 3.) Staging the floats keeps
//    every load asynchronous. Grid (COLUMN_BLOCKS, ceil(T /
//    BM), HEADS): the blocks of one head run together, so its weight slice
//    (128 KB at DeepSeek-V3's shape) comes from memory once and from L2 after.
//    Prefill takes BM = 128 and 3 stages; a decode step BM = 16 and a pipeline
//    deep enough to have most of a head's weight slice in flight (the weight
//    is all the bytes there are).
//  - mla_out_absorb_stream (one to a few tokens): CUDA cores, fp32
//    throughout. Each head's W_UV is split over 8 blocks (1024 in all at
//    DeepSeek-V3's shape) whose threads issue all their 16-byte weight loads
//    (128 bytes each) before using any. At one token it beats the 16-token
//    mma tile by a quarter (its cost grows by about a microsecond per token;
//    docs/kernels-mla.md has the numbers). Up to 16 tokens per block, more
//    along grid z (each z re-reads the weights).
//
// Requirements (static_asserts): NOPE, V and KV_LORA multiples of 32 (and of
// the chunk a block's warps divide), (NOPE + ROPE) % 8 == 0 (16-byte rows),
// V % 16 == 0 for the stream kernel; pointers 16-byte aligned (the arenas and
// weights are 256-byte aligned).
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"
#include "targets/cuda/kernels/tc_gemm.cuh"

namespace dsv3k {

namespace mla_absorb_detail {

inline constexpr int kMmaThreads = 256;
inline constexpr int kMmaK = 32; // K columns per pipeline stage
inline constexpr int kPad = 8; // elements of padding per staged row (16 bytes of bf16)

inline constexpr int kStreamThreads = 128;
inline constexpr int kStreamTokens = 16;     // tokens per block of the stream kernel
inline constexpr int kStreamRowsPerWarp = 4; // W_UV rows per warp
inline constexpr int kStreamRows = kStreamRowsPerWarp * kStreamThreads / 32; // 16 per block

/// Warps of an mma block along tokens (16 rows each at BM = 16, else 4
/// warps of BM / 4) and along output columns (the rest of 8).
__host__ __device__ constexpr int mmaWarpsM(int BM) { return BM >= 64 ? 4 : 1; }
__host__ __device__ constexpr int mmaWarpsN(int BM) { return 8 / mmaWarpsM(BM); }

/// Output columns one mma block covers at a time: the largest of 128, 64, 32
/// dividing n.
__host__ __device__ constexpr int mmaTileN(int n) {
  return n % 128 == 0 ? 128 : n % 64 == 0 ? 64 : 32;
}

/// Whether the mma kernels cover n output columns with BM-token tiles over
/// columnBlocks blocks: whole 32-column pieces per block, whole n16 pairs per
/// warp in each chunk. The code generator copies this rule.
__host__ __device__ constexpr bool mmaTileFits(int BM, int columnBlocks, int n) {
  return n % columnBlocks == 0 && n / columnBlocks % 32 == 0 &&
         mmaTileN(n / columnBlocks) / mmaWarpsN(BM) % 16 == 0;
}

/// The accumulators of one warp's part of a BM x BN chunk: [mt][nt] is the
/// m16n8 tile (warp row base + 16 mt, warp column base + 8 nt) in mma order.
template <int BM, int BN>
using MmaAccumulators = float[BM / mmaWarpsM(BM) / 16][BN / mmaWarpsN(BM) / 8][4];

/// Whether an mma block keeps its whole BM x K activation tile in shared
/// memory (loaded once, used for every BN-column chunk of N > BN columns)
/// rather than streaming it with the weights.
__host__ __device__ constexpr bool mmaResidentA(int n) { return n > mmaTileN(n); }

/// Dynamic shared memory of an mma block over N output columns and K: the
/// activation tile (BM padded rows of K values of inBytes each when resident,
/// else STAGES stages of BM padded rows of 32) and STAGES stages of
/// the weight tile, 32 padded rows of BN values (N contiguous, q_absorb) or
/// BN padded rows of 32 (K contiguous, out_absorb). The code generator copies
/// this formula.
__host__ __device__ constexpr int mmaSharedBytes(int BM, int N, int K, int STAGES, int inBytes,
                                                 bool kContiguous) {
  return (mmaResidentA(N) ? BM * (K + kPad) : STAGES * BM * (kMmaK + kPad)) * inBytes +
         STAGES * (kContiguous ? mmaTileN(N) * (kMmaK + kPad) : kMmaK * (mmaTileN(N) + kPad)) * 2;
}

__device__ __forceinline__ unsigned packBf16(float lo, float hi) {
  __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned *>(&pair);
}

__device__ __forceinline__ void storeTwo(float *p, float a, float b) {
  *reinterpret_cast<float2 *>(p) = make_float2(a, b);
}
__device__ __forceinline__ void storeTwo(bf16 *p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(a, b);
}

__device__ __forceinline__ void ldmatrixX4(unsigned (&r)[4], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrixX4Trans(unsigned (&r)[4], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

/// A 16 x 16 fragment of the row operand at (row0, k0) of a staged tile with
/// `stride` elements per row: a0 = (g, 2t), a1 = (g + 8, 2t), a2 = (g, 2t +
/// 8), a3 = (g + 8, 2t + 8) for lane (g, t) = (lane / 4, lane % 4).
__device__ __forceinline__ void rowFragment(unsigned (&a)[4], const bf16 *tile, int stride,
                                            int row0, int k0, int lane) {
  ldmatrixX4(a, tc_detail::sharedAddress(tile + (row0 + (lane & 15)) * stride + k0 +
                                         (lane >> 4) * 8));
}
__device__ __forceinline__ void rowFragment(unsigned (&a)[4], const float *tile, int stride,
                                            int row0, int k0, int lane) {
  const float *p = tile + (row0 + lane / 4) * stride + k0 + 2 * (lane % 4);
  float2 v0 = *reinterpret_cast<const float2 *>(p);
  float2 v1 = *reinterpret_cast<const float2 *>(p + 8 * stride);
  float2 v2 = *reinterpret_cast<const float2 *>(p + 8);
  float2 v3 = *reinterpret_cast<const float2 *>(p + 8 * stride + 8);
  a[0] = packBf16(v0.x, v0.y);
  a[1] = packBf16(v1.x, v1.y);
  a[2] = packBf16(v2.x, v2.y);
  a[3] = packBf16(v3.x, v3.y);
}

/// What rounding a float to bf16 leaves out, as a bf16.
__device__ __forceinline__ float bf16Remainder(float v) {
  return v - __bfloat162float(__float2bfloat16(v));
}

/// For a float tile: the fragment of what rowFragment's bf16 rounding left
/// out (v - bf16(v), itself rounded to bf16), so that two products, of
/// rowFragment and of this, carry about 16 of the float's 24 significant
/// bits: float activations then get the same products, up to the order of
/// additions, whichever kernel a step's token count selects (the stream
/// kernel multiplies them in fp32), not a bf16 rounding that only tiles
/// make. For bf16 tiles there is nothing left out.
__device__ __forceinline__ void rowFragmentRemainder(unsigned (&a)[4], const float *tile,
                                                     int stride, int row0, int k0, int lane) {
  const float *p = tile + (row0 + lane / 4) * stride + k0 + 2 * (lane % 4);
  float2 v0 = *reinterpret_cast<const float2 *>(p);
  float2 v1 = *reinterpret_cast<const float2 *>(p + 8 * stride);
  float2 v2 = *reinterpret_cast<const float2 *>(p + 8);
  float2 v3 = *reinterpret_cast<const float2 *>(p + 8 * stride + 8);
  a[0] = packBf16(bf16Remainder(v0.x), bf16Remainder(v0.y));
  a[1] = packBf16(bf16Remainder(v1.x), bf16Remainder(v1.y));
  a[2] = packBf16(bf16Remainder(v2.x), bf16Remainder(v2.y));
  a[3] = packBf16(bf16Remainder(v3.x), bf16Remainder(v3.y));
}

/// One block's BM rows of C = A W over N columns and K (multiples of 32): A
/// rows start at a (lda elements apart; rows >= rows read as zeros); the
/// weight starts at w: K-contiguous (W_UV: row n at w + n ldw, K_CONTIGUOUS)
/// or N-contiguous (W_UK: row k at w + k ldw). N is covered in chunks of BN =
/// mmaTileN(N) columns, one pipeline over all (chunk, 32-deep K step) pairs;
/// after each chunk, store(chunk, acc) gets the warp's part of it, acc[mt][nt]
/// the m16n8 tile (warp row base + 16 mt, warp column base + 8 nt) in mma
/// accumulator order (forEachPair walks it).
template <int BM, int N, int K, int STAGES, bool K_CONTIGUOUS, typename InT, typename Store>
__device__ __forceinline__ void mmaRows(const InT *a, long long lda, int rows, const bf16 *w,
                                        long long ldw, char *shared, Store store) {
  using namespace tc_detail;
  constexpr int BN = mmaTileN(N);
  constexpr bool kResident = mmaResidentA(N);
  constexpr int kWarpsM = mmaWarpsM(BM);
  constexpr int kWarpRows = BM / kWarpsM, kWarpCols = BN / mmaWarpsN(BM);
  constexpr int MT = kWarpRows / 16, NT = kWarpCols / 8;
  static_assert(kWarpRows % 16 == 0 && NT % 2 == 0, "whole m16 tiles and n16 pairs per warp");
  static_assert(STAGES >= 2, "a pipeline needs two stages");
  static_assert(K % kMmaK == 0 && N % BN == 0, "whole pipeline steps and column chunks");
  constexpr int kKSteps = K / kMmaK, kSteps = N / BN * kKSteps;
  constexpr int kAStride = kResident ? K + kPad : kMmaK + kPad;
  constexpr int kAStage = kResident ? 0 : BM * kAStride; // elements between A stages
  constexpr int kABytes = (kResident ? BM * kAStride : STAGES * kAStage) * sizeof(InT);
  constexpr int kWStride = K_CONTIGUOUS ? kMmaK + kPad : BN + kPad;
  constexpr int kWStage = K_CONTIGUOUS ? BN * kWStride : kMmaK * kWStride;
  constexpr int kAChunk = 16 / static_cast<int>(sizeof(InT)); // elements per 16 bytes
  constexpr int kAChunksPerRow = kMmaK / kAChunk;
  static_assert(kABytes + STAGES * kWStage * 2 ==
                    mmaSharedBytes(BM, N, K, STAGES, static_cast<int>(sizeof(InT)), K_CONTIGUOUS),
                "the launch's dynamic shared memory");
  InT *aTiles = reinterpret_cast<InT *>(shared);
  bf16 *wTiles = reinterpret_cast<bf16 *>(shared + kABytes);

  auto load = [&](int step) {
    int chunk = step / kKSteps, k0 = step % kKSteps * kMmaK, stage = step % STAGES;
    if (!kResident || chunk == 0) {
      InT *aTile = kResident ? aTiles + k0 : aTiles + stage * kAStage;
      for (int i = threadIdx.x; i < BM * kAChunksPerRow; i += kMmaThreads) {
        int r = i / kAChunksPerRow, c = i % kAChunksPerRow;
        bool valid = r < rows;
        const InT *src = valid ? a + r * lda + k0 + c * kAChunk : a;
        copyAsync16(sharedAddress(aTile + r * kAStride + c * kAChunk), src, valid ? 16 : 0);
      }
    }
    bf16 *wTile = wTiles + stage * kWStage;
    if constexpr (K_CONTIGUOUS) {
      const bf16 *rowsOfChunk = w + static_cast<long long>(chunk) * BN * ldw + k0;
      for (int i = threadIdx.x; i < BN * (kMmaK / 8); i += kMmaThreads) {
        int r = i / (kMmaK / 8), c = i % (kMmaK / 8);
        copyAsync16(sharedAddress(wTile + r * kWStride + c * 8), rowsOfChunk + r * ldw + c * 8,
                    16);
      }
    } else {
      const bf16 *columnsOfChunk = w + k0 * ldw + chunk * BN;
      for (int i = threadIdx.x; i < kMmaK * (BN / 8); i += kMmaThreads) {
        int r = i / (BN / 8), c = i % (BN / 8);
        copyAsync16(sharedAddress(wTile + r * kWStride + c * 8), columnsOfChunk + r * ldw + c * 8,
                    16);
      }
    }
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warpRow = (warp % kWarpsM) * kWarpRows;
  const int warpCol = (warp / kWarpsM) * kWarpCols;
  MmaAccumulators<BM, BN> acc;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < kSteps)
      load(s);
    commitAsync();
  }
  for (int step = 0; step < kSteps; ++step) {
    waitAsync<STAGES - 2>();
    __syncthreads(); // step's copies landed for all; step - 1's stage is no longer read
    if (step + STAGES - 1 < kSteps)
      load(step + STAGES - 1);
    commitAsync();
    const int kStep = step % kKSteps;
    const InT *aTile = kResident ? aTiles + kStep * kMmaK : aTiles + step % STAGES * kAStage;
    const bf16 *wTile = wTiles + step % STAGES * kWStage;
#pragma unroll
    for (int kk = 0; kk < kMmaK; kk += 16) {
      unsigned af[MT][4], bfrag[NT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        rowFragment(af[mt], aTile, kAStride, warpRow + 16 * mt, kk, lane);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        unsigned r[4];
        int col0 = warpCol + 16 * np;
        if constexpr (K_CONTIGUOUS) {
          // Matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15).
          ldmatrixX4(r, sharedAddress(wTile + (col0 + (lane & 7) + (lane >> 4) * 8) * kWStride +
                                      kk + ((lane >> 3) & 1) * 8));
        } else {
          // Rows k, transposed: the same four matrices from a [k][n] tile.
          ldmatrixX4Trans(r, sharedAddress(wTile + (kk + (lane & 15)) * kWStride + col0 +
                                           (lane >> 4) * 8));
        }
        bfrag[2 * np][0] = r[0], bfrag[2 * np][1] = r[1];
        bfrag[2 * np + 1][0] = r[2], bfrag[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          mma16816(acc[mt][nt], af[mt][0], af[mt][1], af[mt][2], af[mt][3], bfrag[nt][0],
                   bfrag[nt][1]);
      if constexpr (sizeof(InT) == 4) {
        // Float activations: the rounding's remainder too (rowFragmentRemainder).
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          rowFragmentRemainder(af[mt], aTile, kAStride, warpRow + 16 * mt, kk, lane);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
            mma16816(acc[mt][nt], af[mt][0], af[mt][1], af[mt][2], af[mt][3], bfrag[nt][0],
                     bfrag[nt][1]);
        }
      }
    }
    if (kStep == kKSteps - 1) {
      // The chunk's stores go out while the next chunk's copies are in flight.
      store(step / kKSteps, acc);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;
    }
  }
  waitAsync<0>(); // no copies outstanding at exit (the trailing groups are empty)
}

/// Calls store(row, column, v0, v1) for every accumulator pair of the warp's
/// part of the tile, row and column relative to the tile.
template <int BM, int BN, typename Store>
__device__ __forceinline__ void
forEachPair(const MmaAccumulators<BM, BN> &acc, Store store) {
  constexpr int kWarpsM = mmaWarpsM(BM);
  constexpr int kWarpRows = BM / kWarpsM, kWarpCols = BN / mmaWarpsN(BM);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = (warp % kWarpsM) * kWarpRows + lane / 4;
  const int col = (warp / kWarpsM) * kWarpCols + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < kWarpRows / 16; ++mt)
#pragma unroll
    for (int nt = 0; nt < kWarpCols / 8; ++nt) {
      store(row + 16 * mt, col + 8 * nt, acc[mt][nt][0], acc[mt][nt][1]);
      store(row + 16 * mt + 8, col + 8 * nt, acc[mt][nt][2], acc[mt][nt][3]);
    }
}

} // namespace mla_absorb_detail

/// Query absorption on tensor cores (mla.cuh's q absorption): q is [T, HEADS
/// (NOPE + ROPE)] of QT (bf16, or float as a bf16 pair: rowFragmentRemainder),
/// q_lat [T, HEADS, KV_LORA] of OutT; fp32 accumulation. Block (x, y, h)
/// computes tokens BM y .. BM y + BM - 1 of head h, latent columns N x .. N x
/// + N - 1 (N = KV_LORA / COLUMN_BLOCKS) in chunks of mmaTileN(N), through a
/// STAGES-deep pipeline; with several chunks the block loads its query rows
/// once. BM 16, 64 or 128: a decode step takes BM = 16 over column blocks,
/// with a pipeline deep enough to have the whole weight slice in flight;
/// prefill BM = 64 or 128 (the code generator picks by step size).
/// Launch: grid = (COLUMN_BLOCKS, ceilDiv(T, BM), HEADS), block = (256, 1, 1), dynamic shared memory = mmaSharedBytes(BM, KV_LORA / COLUMN_BLOCKS, NOPE, STAGES, sizeof(QT), false)
template <int HEADS, int NOPE, int ROPE, int V, int KV_LORA, typename QT = bf16,
          typename OutT = bf16, int BM = 128, int COLUMN_BLOCKS = 1, int STAGES = 3>
__global__ void __launch_bounds__(mla_absorb_detail::kMmaThreads, 2)
    mla_q_absorb_mma(const QT *q, const bf16 *kv_b, OutT *q_lat, int T) {
  awaitPrecedingKernels();
  using namespace mla_absorb_detail;
  constexpr int N = KV_LORA / COLUMN_BLOCKS, BN = mmaTileN(N);
  static_assert(mmaTileFits(BM, COLUMN_BLOCKS, KV_LORA) && NOPE % kMmaK == 0,
                "whole tiles of columns and of K");
  static_assert((NOPE + ROPE) % 8 == 0, "16-byte aligned query rows");
  extern __shared__ __align__(16) char shared[];
  const int n0 = blockIdx.x * N, firstToken = blockIdx.y * BM, head = blockIdx.z;
  const int rows = T - firstToken < BM ? T - firstToken : BM;
  constexpr long long kQRow = static_cast<long long>(HEADS) * (NOPE + ROPE);
  OutT *base = q_lat + (static_cast<long long>(firstToken) * HEADS + head) * KV_LORA + n0;
  mmaRows<BM, N, NOPE, STAGES, false>(
      q + firstToken * kQRow + head * (NOPE + ROPE), kQRow, rows,
      kv_b + static_cast<long long>(head) * (NOPE + V) * KV_LORA + n0, KV_LORA, shared,
      [&](int chunk, const MmaAccumulators<BM, BN> &acc) {
        forEachPair<BM, BN>(acc, [&](int r, int c, float v0, float v1) {
          if (r < rows)
            storeTwo(base + static_cast<long long>(r) * HEADS * KV_LORA + chunk * BN + c, v0, v1);
        });
      });
}

/// Output absorption on tensor cores (mla.cuh's out absorption): out_lat
/// [T, HEADS, KV_LORA] of InT (bf16, or float as a bf16 pair, for the
/// product), out [T, HEADS V] bf16 (o_proj's input); fp32 accumulation. Block
/// (x, y, h) computes tokens BM y .. BM y + BM - 1 of head h, value columns N
/// x .. N x + N - 1 (N = V / COLUMN_BLOCKS) in chunks of mmaTileN(N), through
/// a STAGES-deep pipeline over KV_LORA; BM 16, 64 or 128 (see
/// mla_q_absorb_mma).
/// Launch: grid = (COLUMN_BLOCKS, ceilDiv(T, BM), HEADS), block = (256, 1, 1), dynamic shared memory = mmaSharedBytes(BM, V / COLUMN_BLOCKS, KV_LORA, STAGES, sizeof(InT), true)
template <int HEADS, int NOPE, int V, int KV_LORA, typename InT = bf16, int BM = 128,
          int COLUMN_BLOCKS = 1, int STAGES = 3>
__global__ void __launch_bounds__(mla_absorb_detail::kMmaThreads, 2)
    mla_out_absorb_mma(const InT *out_lat, const bf16 *kv_b, bf16 *out, int T) {
  awaitPrecedingKernels();
  using namespace mla_absorb_detail;
  constexpr int N = V / COLUMN_BLOCKS, BN = mmaTileN(N);
  static_assert(mmaTileFits(BM, COLUMN_BLOCKS, V) && KV_LORA % kMmaK == 0,
                "whole tiles of columns and of K");
  extern __shared__ __align__(16) char shared[];
  const int n0 = blockIdx.x * N, firstToken = blockIdx.y * BM, head = blockIdx.z;
  const int rows = T - firstToken < BM ? T - firstToken : BM;
  constexpr long long kLatentRow = static_cast<long long>(HEADS) * KV_LORA;
  bf16 *base = out + static_cast<long long>(firstToken) * HEADS * V + head * V + n0;
  mmaRows<BM, N, KV_LORA, STAGES, true>(
      out_lat + firstToken * kLatentRow + static_cast<long long>(head) * KV_LORA, kLatentRow, rows,
      kv_b + (static_cast<long long>(head) * (NOPE + V) + NOPE + n0) * KV_LORA, KV_LORA, shared,
      [&](int chunk, const MmaAccumulators<BM, BN> &acc) {
        forEachPair<BM, BN>(acc, [&](int r, int c, float v0, float v1) {
          if (r < rows)
            storeTwo(base + static_cast<long long>(r) * HEADS * V + chunk * BN + c, v0, v1);
        });
      });
}

/// Output absorption for few tokens, fp32 on CUDA cores: same operands and
/// result as mla_out_absorb_mma, without rounding a float out_lat. Block (x,
/// h, z) computes value columns 16 x .. 16 x + 15 of head h for tokens 16 z ..
/// 16 z + 15: warp w holds W_UV[h] rows 16 x + 4 w .. + 3 in registers
/// (lane l: 16-byte chunks l, l + 32, ... of each row) and reduces each
/// token's dot products with shuffles.
/// Launch: grid = (V / 16, HEADS, ceilDiv(T, 16)), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int HEADS, int NOPE, int V, int KV_LORA, typename InT = bf16>
__global__ void __launch_bounds__(mla_absorb_detail::kStreamThreads)
    mla_out_absorb_stream(const InT *out_lat, const bf16 *kv_b, bf16 *out, int T) {
  awaitPrecedingKernels();
  using namespace mla_absorb_detail;
  constexpr int kTokens = kStreamTokens, kRows = kStreamRowsPerWarp;
  static_assert(V % kStreamRows == 0 && KV_LORA % 8 == 0, "whole blocks of rows, 16-byte chunks");
  constexpr int kChunks = KV_LORA / 8;
  constexpr int kChunksPerLane = ceilDiv(kChunks, 32);
  static_assert(kTokens * KV_LORA * 4 <= 40 * 1024, "latent rows must fit in static shared memory");
  __shared__ __align__(16) float latent[kTokens][KV_LORA];

  const int head = blockIdx.y, firstToken = blockIdx.z * kTokens;
  const int tokens = T - firstToken < kTokens ? T - firstToken : kTokens;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int v0 = blockIdx.x * kStreamRows + warp * kRows;

  const bf16 *w = kv_b + (static_cast<long long>(head) * (NOPE + V) + NOPE + v0) * KV_LORA;
  uint4 raw[kRows][kChunksPerLane];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int k = 0; k < kChunksPerLane; ++k) {
      int chunk = lane + 32 * k;
      raw[r][k] = chunk < kChunks ? __ldg(reinterpret_cast<const uint4 *>(
                                        w + static_cast<long long>(r) * KV_LORA + 8 * chunk))
                                  : make_uint4(0, 0, 0, 0);
    }
  for (int e = threadIdx.x; e < tokens * (KV_LORA / 8); e += kStreamThreads) {
    int j = e / (KV_LORA / 8), chunk = e % (KV_LORA / 8);
    float values[8];
    load8(out_lat + (static_cast<long long>(firstToken + j) * HEADS + head) * KV_LORA + 8 * chunk,
          values);
    float4 *dst = reinterpret_cast<float4 *>(&latent[j][8 * chunk]);
    dst[0] = make_float4(values[0], values[1], values[2], values[3]);
    dst[1] = make_float4(values[4], values[5], values[6], values[7]);
  }
  float weights[kRows][kChunksPerLane][8];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int k = 0; k < kChunksPerLane; ++k)
      unpackBf16x8(raw[r][k], weights[r][k]);
  __syncthreads();

  for (int j = 0; j < tokens; ++j) {
    float sum[kRows] = {};
#pragma unroll
    for (int k = 0; k < kChunksPerLane; ++k) {
      int chunk = lane + 32 * k;
      if (chunk < kChunks) {
        float4 l0 = *reinterpret_cast<const float4 *>(&latent[j][8 * chunk]);
        float4 l1 = *reinterpret_cast<const float4 *>(&latent[j][8 * chunk + 4]);
        const float l[8] = {l0.x, l0.y, l0.z, l0.w, l1.x, l1.y, l1.z, l1.w};
#pragma unroll
        for (int r = 0; r < kRows; ++r)
#pragma unroll
          for (int e = 0; e < 8; ++e)
            sum[r] += l[e] * weights[r][k][e];
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      sum[r] = warpSum(sum[r]);
    float mine = 0.0f; // lane r stores row r
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      mine = lane == r ? sum[r] : mine;
    if (lane < kRows)
      out[static_cast<long long>(firstToken + j) * HEADS * V + head * V + v0 + lane] =
          __float2bfloat16(mine);
  }
}

} // namespace dsv3k
