//===- fp8_wgmma_gemm.cuh - block-scaled FP8 GEMM on Hopper tensor cores --===//
//
// C = A * B^T with A e4m3 [rows, K] (per row and 128 columns scaled) and B an
// e4m3 checkpoint weight [N, K] (128 x 128 block scales): the same products
// as gemm.cuh's fp8_gemm and grouped_gemm.cuh's fp8_grouped_gemm, on sm_90a's
// warp-group MMA (wgmma.mma_async m64nNk32 e4m3 x e4m3 -> f32). Only for
// targets with wgmma (CudaArch::warpGroupMma); the code generator keeps the
// CUDA-core kernels for the others and for steps of a few rows.
//
// A block of 384 threads is three warp groups:
//
//  - warp group 0 loads a TILE_M x 128 slice of A, a TILE_N x 128 slice of
//    B, the TILE_M A scales and the tile's B scale of a K block into one of
//    kStages shared-memory stages. One thread moves B's slice (and A's,
//    unless A's rows are gathered) with a TMA copy from a tensor map (the
//    runtime encodes it from the plan), announcing its bytes on the stage's
//    "full" barrier; every loader thread copies scales (and gathered A rows)
//    with 4- and 16-byte cp.async and arrives on the same barrier once they
//    land (cp.async.mbarrier.arrive.noinc). Rows and columns past the tensor
//    are zero-filled (TMA's out-of-bounds fill, cp.async's src-size 0):
//    partial row, N and K blocks need no other special case;
//  - warp groups 1 and 2 multiply: per 128-deep K block (one scale block),
//    four wgmma k32 steps accumulate 64 rows x TILE_N in fp32 registers from
//    a zero start; once they complete the group adds them to a second fp32
//    accumulator times a_scale[row, kb] * b_scale[n / 128, kb] (DeepSeek's
//    fp32 promotion per K block) and releases the stage ("empty" barrier).
//    TILE_M = 128: each group covers one 64-row wave (rows g*64 of the
//    tile), TILE_M = 256 two (rows g*64 and 128 + g*64), with one MMA
//    accumulator set, promoting each wave after its MMAs complete while the
//    other group's MMAs keep the tensor cores busy;
//  - the grid is persistent: block b takes tiles b, b + gridDim.x, ... and
//    the loaders run ahead into the next tile while the multipliers store
//    the last one (fp32 or bf16): 128-row tiles through staging rows in
//    shared memory and one bulk copy per row, which drains while the
//    multipliers start the next tile; 256-row tiles straight from
//    registers (no room to stage them). The tile order
//    keeps what concurrent blocks read in L2: a dense product walks bands of
//    kBandRowTiles row tiles, rows fastest within a band, so a band's A
//    (at most 2048 x K) stays in L2 while every weight slice passes over it
//    once; a grouped product walks expert by expert, rows fastest within an
//    N tile, so that an expert's weights are read from memory once (its row
//    tiles run together) and a row tile's A once (its N tiles run within
//    the same window of concurrent blocks).
//
// Shared memory layout (the dynamic buffer, aligned here to 1024 bytes):
// kStages A stages, kStages B stages, kStages scale stages, the output
// staging rows (128-row tiles), then the 2 x kStages barriers. A and B stages are K-major rows of 128 bytes in the
// 128-byte swizzle wgmma's descriptors name: the 16-byte chunk c of tile row
// r lives at r * 128 + ((c ^ (r % 8)) * 16), so 8 rows form one 1024-byte
// swizzle atom (descriptor stride byte offset 1024) and the k32 step j starts
// 32 * j bytes into the rows (the hardware applies the XOR to the address).
//
// Requirements (static_asserts): K % 16 == 0 (whole 16-byte chunks inside a
// row; TMA's 16-byte row strides), N even (paired stores), 128 x 128 scale
// blocks, TILE_N dividing 128 (one B scale per tile and K block). A, B and C
// must be 16-byte aligned.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

// wgmma and setmaxnreg exist only in sm_90a code; other targets compile the
// templates (they are part of every NVRTC translation unit) but never
// instantiate them, and an instance built elsewhere traps.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSV3_WGMMA_AVAILABLE 1
#else
#define DSV3_WGMMA_AVAILABLE 0
#endif

namespace dsv3k {

namespace wgmma_detail {

// No standard headers under NVRTC (common.cuh): fixed-width names here.
using u32 = unsigned int;
using u64 = unsigned long long;

inline constexpr int kBlockK = 128;       // K per stage: one DeepSeek scale block
inline constexpr int kGroupThreads = 128; // one warp group
inline constexpr int kMathGroups = 2;
inline constexpr int kThreads = (1 + kMathGroups) * kGroupThreads;
inline constexpr int kWaveRows = 64 * kMathGroups; // tile rows one MMA wave covers
inline constexpr int kLoaderRegisters = 56;        // setmaxnreg budgets: 128 x 56 +
inline constexpr int kMathRegisters = 224;         // 256 x 224 <= 65536
/// Dynamic shared memory a block may use on sm_90 (227 KB), less 4 KB kept
/// for static shared memory (the grouped kernel's expert tables).
inline constexpr int kStaticSharedReserve = 4096;
inline constexpr int kSharedBudget = 227 * 1024 - kStaticSharedReserve;

/// Stage sizes, stage count and the dynamic shared memory of a tile shape.
/// The code generator computes the same numbers (fp8WgmmaSharedBytes in
/// targets/cuda/CodeGen.cpp): keep the two in step.
template <int TILE_M, int TILE_N> struct TileShape {
  static_assert(TILE_M == 128 || TILE_M == 256, "one or two 128-row MMA waves");
  static_assert(TILE_N == 64 || TILE_N == 128, "a tile column range within one scale block");
  static constexpr int kWaves = TILE_M / kWaveRows;
  static constexpr int kABytes = TILE_M * kBlockK;
  static constexpr int kBBytes = TILE_N * kBlockK;
  static constexpr int kScaleBytes = TILE_M * 4 + 16; // A scales, B scale, padding
  static constexpr int kStageBytes = kABytes + kBBytes + kScaleBytes + 2 * 8;
  /// 128-row tiles stage their outputs in shared memory (rows of TILE_N
  /// floats or fewer bf16, 16 bytes of padding) and store them with bulk
  /// copies, so that the math groups go on to the next tile's MMAs while the
  /// stores drain; 256-row tiles have no room for it and store straight from
  /// registers.
  static constexpr bool kStagedStores = TILE_M == 128;
  static constexpr int kStagingRowBytes = TILE_N * 4 + 16;
  static constexpr int kStagingBytes = kStagedStores ? TILE_M * kStagingRowBytes : 0;
  static constexpr int kStagesFit = (kSharedBudget - 1024 - kStagingBytes) / kStageBytes;
  static constexpr int kStages = kStagesFit < 8 ? kStagesFit : 8;
  /// 1024 bytes of slack to align the buffer for the 128-byte swizzle.
  static constexpr int kSharedBytes = 1024 + kStages * kStageBytes + kStagingBytes;
  static constexpr int kAccumulators = TILE_N / 2; // per thread, per wave
  static_assert(kStages >= 3, "a pipeline needs stages");
};

__device__ __forceinline__ u32 sharedAddress(const void *p) {
  return static_cast<u32>(__cvta_generic_to_shared(p));
}

#if DSV3_WGMMA_AVAILABLE

__device__ __forceinline__ void barrierInit(u32 barrier, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(barrier), "r"(count) : "memory");
}

__device__ __forceinline__ void barrierArrive(u32 barrier) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}" ::"r"(
                   barrier)
               : "memory");
}

/// Blocks until the barrier's phase of parity `parity` has completed.
__device__ __forceinline__ void barrierWait(u32 barrier, u32 parity) {
  u32 done = 0;
  do {
    asm volatile("{\n.reg .pred p;\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done)
                 : "r"(barrier), "r"(parity)
                 : "memory");
  } while (!done);
}

/// 16 bytes global -> shared, or 16 zero bytes when !valid (nothing read).
__device__ __forceinline__ void copy16(u32 dst, const void *src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}

/// 4 bytes global -> shared, or zeros when !valid.
__device__ __forceinline__ void copy4(u32 dst, const void *src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}

/// One arrival on `barrier` once every cp.async this thread issued has
/// landed (the barrier's count includes it: .noinc).
__device__ __forceinline__ void arriveWhenCopiesLand(u32 barrier) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(barrier) : "memory");
}

/// One arrival on `barrier` that also expects `bytes` more bytes of bulk
/// (TMA) copies to complete on it before its phase can end.
__device__ __forceinline__ void arriveExpectingBytes(u32 barrier, u32 bytes) {
  asm volatile("{\n.reg .b64 state;\n"
               "mbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}" ::"r"(barrier),
               "r"(bytes)
               : "memory");
}

/// Fetches a tensor map (a __grid_constant__ parameter) into the TMA unit's
/// descriptor cache ahead of its first copy.
__device__ __forceinline__ void prefetchTensorMap(const TensorMap *map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(map)) : "memory");
}

/// One TMA copy of the box at coordinates (x innermost, y) of `map` into
/// shared memory at `dst`, completing its bytes on `barrier`. Parts of the
/// box outside the tensor arrive as zeros (and still count as bytes).
__device__ __forceinline__ void tmaLoad(u32 dst, const TensorMap *map, int x, int y, u32 barrier) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3}], [%4];" ::"r"(dst),
               "l"(reinterpret_cast<u64>(map)), "r"(x), "r"(y), "r"(barrier)
               : "memory");
}

/// The same for a 3-D map (coordinates x innermost, y, z).
__device__ __forceinline__ void tmaLoad(u32 dst, const TensorMap *map, int x, int y, int z,
                                        u32 barrier) {
  asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3, %4}], [%5];" ::"r"(dst),
               "l"(reinterpret_cast<u64>(map)), "r"(x), "r"(y), "r"(z), "r"(barrier)
               : "memory");
}

/// Barrier among the 128 threads of math group `group` (named barriers 1
/// and 2; 0 is __syncthreads').
__device__ __forceinline__ void groupBarrier(int group) {
  asm volatile("bar.sync %0, %1;" ::"r"(1 + group), "n"(kGroupThreads) : "memory");
}

/// A bulk copy of `bytes` (a multiple of 16) from shared memory at `src` to
/// global memory at `dst`, in this thread's current bulk group (committed
/// here); cp.async.bulk.wait_group(.read) waits for it.
__device__ __forceinline__ void storeRowAsync(void *dst, u32 src, u32 bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n"
               "cp.async.bulk.commit_group;" ::"l"(dst),
               "r"(src), "r"(bytes)
               : "memory");
}

/// cp.async writes through the generic proxy; wgmma reads shared memory
/// through the async proxy.
__device__ __forceinline__ void fenceGenericToAsync() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

/// Shared-memory matrix descriptor of a K-major operand in 128-byte swizzle:
/// start address (16-byte units), leading byte offset unused (one swizzle
/// atom spans the whole 128-byte K slice), stride byte offset 1024 between
/// 8-row atoms, layout type 1 (128B swizzle) in bits 62-63.
__device__ __forceinline__ u64 swizzled128Descriptor(u32 address) {
  return static_cast<u64>((address & 0x3FFFF) >> 4) |
         (static_cast<u64>(1024 >> 4) << 32) | (1ull << 62);
}

#define DSV3_WGMMA_ACC8(i)                                                                         \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]),      \
      "+f"(d[i + 6]), "+f"(d[i + 7])

/// d (+)= A[64 x 32] * B[N x 32]^T from two shared-memory descriptors; d
/// starts from zero when !accumulate. Thread t of the warp group holds row
/// 16 (t / 32) + (t % 32) / 4 (+ 8 for d[4i + 2 .. 3]) and columns
/// 8 i + 2 (t % 4) (+ 1) in d[4i + 0 .. 1].
template <int N> struct WarpGroupMma;

template <> struct WarpGroupMma<64> {
  static __device__ __forceinline__ void run(float (&d)[32], u64 descA, u64 descB,
                                             u32 accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31 "
                 "}, %32, %33, p, 1, 1;\n}\n"
                 : DSV3_WGMMA_ACC8(0), DSV3_WGMMA_ACC8(8), DSV3_WGMMA_ACC8(16), DSV3_WGMMA_ACC8(24)
                 : "l"(descA), "l"(descB), "r"(accumulate));
  }
};

template <> struct WarpGroupMma<128> {
  static __device__ __forceinline__ void run(float (&d)[64], u64 descA, u64 descB,
                                             u32 accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 {"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63 "
                 "}, %64, %65, p, 1, 1;\n}\n"
                 : DSV3_WGMMA_ACC8(0), DSV3_WGMMA_ACC8(8), DSV3_WGMMA_ACC8(16), DSV3_WGMMA_ACC8(24),
                   DSV3_WGMMA_ACC8(32), DSV3_WGMMA_ACC8(40), DSV3_WGMMA_ACC8(48), DSV3_WGMMA_ACC8(56)
                 : "l"(descA), "l"(descB), "r"(accumulate));
  }
};

#undef DSV3_WGMMA_ACC8

/// Keeps the compiler from moving reads of the accumulators across the
/// wgmma issue and wait statements (which name them only at issue).
template <int COUNT> __device__ __forceinline__ void pinAccumulators(float (&d)[COUNT]) {
#pragma unroll
  for (int i = 0; i < COUNT; ++i)
    asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ void storePair(float *p, float x, float y) {
  *reinterpret_cast<float2 *>(p) = make_float2(x, y);
}
__device__ __forceinline__ void storePair(bf16 *p, float x, float y) {
  *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(x, y);
}

#endif // DSV3_WGMMA_AVAILABLE

/// One output tile: rows [rowBegin, rowBegin + rows) of C (and, for a
/// grouped product, of the routed rows) times weight columns [n0, n0 +
/// TILE_N) of `expert`.
struct Tile {
  int rowBegin;
  int rows;
  int expert;
  int n0;
};

/// Row tiles per band of a dense product's tile order (see the file comment).
inline constexpr int kBandRowTiles = 8;

/// Tiles of a dense product over M rows: bands of kBandRowTiles row tiles,
/// each band's tiles with rows fastest.
template <int N, int TILE_M, int TILE_N> struct DenseTiles {
  static constexpr bool kGrouped = false; // one [N, K] weight (a 2-D map)
  static constexpr int kColumnTiles = ceilDiv(N, TILE_N);
  int M;
  __device__ int count() const { return ceilDiv(M, TILE_M) * kColumnTiles; }
  __device__ Tile at(int index) const {
    const int rowTiles = ceilDiv(M, TILE_M);
    const int band = index / (kBandRowTiles * kColumnTiles);
    const int bandFirst = band * kBandRowTiles;
    const int bandRows = rowTiles - bandFirst < kBandRowTiles ? rowTiles - bandFirst
                                                              : kBandRowTiles;
    const int local = index - bandFirst * kColumnTiles;
    const int rowBegin = (bandFirst + local % bandRows) * TILE_M;
    const int rows = M - rowBegin < TILE_M ? M - rowBegin : TILE_M;
    return Tile{rowBegin, rows, 0, (local / bandRows) * TILE_N};
  }
  /// A row read by tile row `rowBegin + r` (always inside: r < rows).
  __device__ int sourceRow(int row) const { return row; }
};

/// Tiles of a grouped product: each expert's rows [offsets[e], offsets[e+1])
/// in TILE_M-row tiles that never mix experts, expert by expert, and within
/// an expert N tile by N tile with its row tiles fastest. tilesBefore[e]
/// (shared memory, NUM_EXPERTS + 1 entries) counts the row tiles of experts
/// < e.
template <int N, int TILE_M, int TILE_N, int NUM_EXPERTS> struct GroupedTiles {
  static constexpr bool kGrouped = true; // [NUM_EXPERTS, N, K] weights (a 3-D map)
  static constexpr int kColumnTiles = ceilDiv(N, TILE_N);
  const int *offsets;     // shared copy of expert_offsets
  const int *tilesBefore; // shared prefix of per-expert row tiles
  const int *gather;      // a_rows or null
  int R;
  __device__ int count() const { return tilesBefore[NUM_EXPERTS] * kColumnTiles; }
  __device__ Tile at(int index) const {
    // The last expert e with kColumnTiles * tilesBefore[e] <= index owns it
    // (an empty expert shares its prefix with the next one, which then wins).
    int lo = 0, hi = NUM_EXPERTS;
    while (hi - lo > 1) {
      int mid = (lo + hi) / 2;
      if (tilesBefore[mid] * kColumnTiles <= index)
        lo = mid;
      else
        hi = mid;
    }
    const int expertRowTiles = tilesBefore[lo + 1] - tilesBefore[lo];
    const int local = index - tilesBefore[lo] * kColumnTiles;
    const int rowBegin = offsets[lo] + (local % expertRowTiles) * TILE_M;
    int end = offsets[lo + 1] < R ? offsets[lo + 1] : R; // a corrupt table never writes past C
    int rows = end - rowBegin < TILE_M ? end - rowBegin : TILE_M;
    return Tile{rowBegin, rows > 0 ? rows : 0, lo, (local / expertRowTiles) * TILE_N};
  }
  __device__ int sourceRow(int row) const { return gather != nullptr ? gather[row] : row; }
};

/// The whole kernel body after the tile list is known (see the file
/// comment). A_BY_TMA: A's tiles come by TMA through aMap ([rows, K], box
/// {128, TILE_M}); otherwise by cp.async from `a`, row by row through
/// tiles.sourceRow (a gathered A). B always comes through bMap. `smem` is
/// the dynamic shared buffer.
template <int N, int K, int TILE_M, int TILE_N, bool A_BY_TMA, typename OutT, typename Tiles>
__device__ __forceinline__ void runBlock(const fp8 *a, const TensorMap *aMap,
                                         const float *aScales, const TensorMap *bMap,
                                         const float *bScales, OutT *c, const Tiles &tiles,
                                         unsigned char *smemRaw) {
#if DSV3_WGMMA_AVAILABLE
  using Shape = TileShape<TILE_M, TILE_N>;
  static_assert(K % 16 == 0, "rows are whole 16-byte chunks");
  static_assert(N % 2 == 0, "outputs are stored in pairs");
  constexpr int kBlocksK = ceilDiv(K, kBlockK);
  constexpr int kBlocksN = ceilDiv(N, 128);
  constexpr int kStages = Shape::kStages;
  constexpr int kAcc = Shape::kAccumulators;
  constexpr int kWaves = Shape::kWaves;

  // 1024-byte aligned carve-up (the swizzle pattern repeats every 1024).
  const u32 rawAddress = sharedAddress(smemRaw);
  unsigned char *smem = smemRaw + ((1024 - (rawAddress & 1023)) & 1023);
  const u32 aStages = sharedAddress(smem);
  const u32 bStages = aStages + kStages * Shape::kABytes;
  const u32 scaleStages = bStages + kStages * Shape::kBBytes;
  const float *scaleStagesPtr =
      reinterpret_cast<const float *>(smem + kStages * (Shape::kABytes + Shape::kBBytes));
  const u32 stagingOffset = kStages * (Shape::kABytes + Shape::kBBytes + Shape::kScaleBytes);
  unsigned char *staging = smem + stagingOffset;
  const u32 stagingAddress = aStages + stagingOffset;
  const u32 fullBarriers = aStages + stagingOffset + Shape::kStagingBytes;
  const u32 emptyBarriers = fullBarriers + kStages * 8;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      // Every loader's cp.async copies, plus the TMA bytes' arrival.
      barrierInit(fullBarriers + 8 * s, kGroupThreads + 1);
      barrierInit(emptyBarriers + 8 * s, kMathGroups * 4); // every math warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  const int group = threadIdx.x / kGroupThreads;
  const int tileCount = tiles.count();

  if (group == 0) {
    // ------------------------------------------------------------ loader
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kLoaderRegisters));
    const int t = threadIdx.x;
    if (t == 0) {
      if constexpr (A_BY_TMA)
        prefetchTensorMap(aMap);
      prefetchTensorMap(bMap);
    }
    const int chunk = t % 8;     // this thread's 16-byte chunk of every gathered row
    const int rowInPass = t / 8; // rows rowInPass + 16 j
    const u32 swizzled = static_cast<u32>((chunk ^ (rowInPass % 8)) * 16);
    u32 iteration = 0;
    constexpr int kGatheredRows = A_BY_TMA ? 1 : TILE_M / 16; // per loader thread
    for (int index = blockIdx.x; index < tileCount; index += gridDim.x) {
      const Tile tile = tiles.at(index);
      const float *bScaleRow =
          bScales + (static_cast<long long>(tile.expert) * kBlocksN + tile.n0 / 128) * kBlocksK;
      // A gathered tile's source rows (-1 past the tile), looked up once per
      // tile rather than once per K block: the lookups' latency would
      // otherwise stall every stage's copies.
      int sourceRows[kGatheredRows];
#pragma unroll
      for (int j = 0; j < kGatheredRows; ++j) {
        const int r = rowInPass + 16 * j;
        sourceRows[j] = !A_BY_TMA && r < tile.rows ? tiles.sourceRow(tile.rowBegin + r) : -1;
      }
      for (int kb = 0; kb < kBlocksK; ++kb, ++iteration) {
        const u32 stage = iteration % kStages;
        const u32 phase = (iteration / kStages) & 1;
        barrierWait(emptyBarriers + 8 * stage, phase ^ 1);
        const u32 full = fullBarriers + 8 * stage;
        const u32 aStage = aStages + stage * Shape::kABytes;
        const u32 bStage = bStages + stage * Shape::kBBytes;
        // One thread moves the weight tile (and A's, unless gathered) by
        // TMA, in the 128-byte swizzle the descriptors name; a box's rows
        // and columns past the tensor arrive as zeros. A grouped A tile's
        // rows past its expert are the next expert's rows: multiplied, but
        // never stored (rows are independent).
        if (t == 0) {
          arriveExpectingBytes(full, (A_BY_TMA ? Shape::kABytes : 0) + Shape::kBBytes);
          if constexpr (A_BY_TMA)
            tmaLoad(aStage, aMap, kb * kBlockK, tile.rowBegin, full);
          if constexpr (Tiles::kGrouped)
            tmaLoad(bStage, bMap, kb * kBlockK, tile.n0, tile.expert, full);
          else
            tmaLoad(bStage, bMap, kb * kBlockK, tile.n0, full);
        }
        if constexpr (!A_BY_TMA) {
          // Gathered rows by 16-byte cp.async, in the same swizzle (one TMA
          // box per row measured slower: fp8_wgmma_test, docs/PERF.md).
          const int k = kb * kBlockK + chunk * 16;
          const bool kInside = k < K;
#pragma unroll
          for (int j = 0; j < kGatheredRows; ++j) {
            const int r = rowInPass + 16 * j;
            const bool valid = kInside && sourceRows[j] >= 0;
            const fp8 *src = valid ? a + static_cast<long long>(sourceRows[j]) * K + k : a;
            copy16(aStage + r * 128 + swizzled, src, valid);
          }
        }
        // The stage's scales: TILE_M A scales, then this tile's B scale, so
        // that the multipliers read no global memory in their loop.
        const u32 scaleStage = scaleStages + stage * Shape::kScaleBytes;
#pragma unroll
        for (int j = 0; j < ceilDiv(TILE_M, kGroupThreads); ++j) {
          const int r = t + kGroupThreads * j;
          if (r < TILE_M) {
            const bool valid = r < tile.rows;
            const float *src = aScales;
            if (valid)
              src = aScales +
                    static_cast<long long>(tiles.sourceRow(tile.rowBegin + r)) * kBlocksK + kb;
            copy4(scaleStage + 4 * r, src, valid);
          }
        }
        if (t == 0)
          copy4(scaleStage + 4 * TILE_M, bScaleRow + kb, true);
        arriveWhenCopiesLand(full);
      }
    }
    // Leave only with every copy landed (the multipliers wait for them).
    asm volatile("cp.async.wait_all;" ::: "memory");
  } else {
    // ---------------------------------------------------------- multiply
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kMathRegisters));
    const int mathGroup = group - 1;
    const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
    const int rowInWave = mathGroup * 64 + warp * 16 + lane / 4; // and + 8
    const int columnInTile = 2 * (lane % 4);                     // + 8 i, and + 1
    u32 iteration = 0;

    // A stage's (landed) A scales of wave w's rows rowInWave and
    // rowInWave + 8, times its B scale.
    auto stageScales = [&](u32 stage, int w, float (&scale)[2]) {
      const float *scales = scaleStagesPtr + stage * (Shape::kScaleBytes / 4);
      const float bScale = scales[TILE_M];
      scale[0] = scales[w * kWaveRows + rowInWave] * bScale;
      scale[1] = scales[w * kWaveRows + rowInWave + 8] * bScale;
    };
    auto waitStage = [&](u32 stage, u32 phase) {
      barrierWait(fullBarriers + 8 * stage, phase);
      fenceGenericToAsync();
    };
    // Issues (does not wait for) wave w's four k32 MMAs of a stage into acc.
    auto issue = [&](u32 stage, int w, float (&acc)[kAcc]) {
      const u64 descA = swizzled128Descriptor(aStages + stage * Shape::kABytes +
                                              (w * kWaveRows + mathGroup * 64) * 128);
      const u64 descB = swizzled128Descriptor(bStages + stage * Shape::kBBytes);
      pinAccumulators(acc);
      asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
      for (int step = 0; step < kBlockK / 32; ++step) // 32 bytes = 2 descriptor units
        WarpGroupMma<TILE_N>::run(acc, descA + 2 * step, descB + 2 * step, step > 0);
      asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    };
    auto release = [&](u32 stage) {
      __syncwarp();
      if (lane == 0)
        barrierArrive(emptyBarriers + 8 * stage); // this warp is done with the stage
    };
    auto promote = [&](float (&total)[kAcc], const float (&acc)[kAcc], const float (&scale)[2]) {
#pragma unroll
      for (int i = 0; i < kAcc; i += 4) {
        total[i] = fmaf(acc[i], scale[0], total[i]);
        total[i + 1] = fmaf(acc[i + 1], scale[0], total[i + 1]);
        total[i + 2] = fmaf(acc[i + 2], scale[1], total[i + 2]);
        total[i + 3] = fmaf(acc[i + 3], scale[1], total[i + 3]);
      }
    };

    for (int index = blockIdx.x; index < tileCount; index += gridDim.x) {
      const Tile tile = tiles.at(index);
      float total[kWaves][kAcc];
#pragma unroll
      for (int w = 0; w < kWaves; ++w)
#pragma unroll
        for (int i = 0; i < kAcc; ++i)
          total[w][i] = 0.0f;

      // One accumulator set for every wave: a wave's MMAs complete before
      // its promotion, while the other math group's MMAs keep the tensor
      // cores busy. (A second set, promoting K block kb - 1 while kb's MMAs
      // run, made ptxas serialize every wgmma of the kernel: it cannot see
      // that the promoted registers are not the ones in flight.)
      float acc[kAcc];
#pragma unroll
      for (int i = 0; i < kAcc; ++i)
        acc[i] = 0.0f;
      for (int kb = 0; kb < kBlocksK; ++kb, ++iteration) {
        const u32 stage = iteration % kStages;
        waitStage(stage, (iteration / kStages) & 1);
        float scale[kWaves][2];
#pragma unroll
        for (int w = 0; w < kWaves; ++w)
          stageScales(stage, w, scale[w]);
#pragma unroll
        for (int w = 0; w < kWaves; ++w) {
          issue(stage, w, acc);
          asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
          pinAccumulators(acc);
          if (w == kWaves - 1)
            release(stage);
          promote(total[w], acc, scale[w]);
        }
      }

      if constexpr (Shape::kStagedStores && (N * sizeof(OutT)) % 16 == 0) {
        // Epilogue through shared memory: the group's 64 rows go to its half
        // of the staging rows, then one bulk copy per row (whole 16-byte
        // runs: N * sizeof(OutT) % 16 == 0) while the group moves on.
        const int groupFirstRow = mathGroup * 64;
        // The previous tile's copies must have read the staging rows.
        asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");
        groupBarrier(mathGroup);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          OutT *stagedRow = reinterpret_cast<OutT *>(
              staging + (rowInWave + 8 * half) * Shape::kStagingRowBytes);
#pragma unroll
          for (int i = 0; i < kAcc / 4; ++i)
            storePair(stagedRow + 8 * i + columnInTile, total[0][4 * i + 2 * half],
                      total[0][4 * i + 2 * half + 1]);
        }
        fenceGenericToAsync(); // the bulk copies read through the async proxy
        groupBarrier(mathGroup);
        const int r = groupFirstRow + threadIdx.x % kGroupThreads;
        if (threadIdx.x % kGroupThreads < 64 && r < tile.rows) {
          const int columns = N - tile.n0 < TILE_N ? N - tile.n0 : TILE_N;
          storeRowAsync(c + static_cast<long long>(tile.rowBegin + r) * N + tile.n0,
                        stagingAddress + r * Shape::kStagingRowBytes,
                        static_cast<u32>(columns * sizeof(OutT)));
        }
      } else {
        // Epilogue: each thread stores its pairs of columns for two rows per wave.
#pragma unroll
        for (int w = 0; w < kWaves; ++w) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int r = w * kWaveRows + rowInWave + 8 * half;
            if (r >= tile.rows)
              continue;
            OutT *cRow = c + static_cast<long long>(tile.rowBegin + r) * N;
#pragma unroll
            for (int i = 0; i < kAcc / 4; ++i) {
              const int n = tile.n0 + 8 * i + columnInTile;
              if (n < N)
                storePair(cRow + n, total[w][4 * i + 2 * half],
                          total[w][4 * i + 2 * half + 1]);
            }
          }
        }
      }
    }
    // The last tile's bulk stores are done before the block ends.
    asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
  }
#else
  __trap(); // instantiated for a target without wgmma
#endif
}

/// Traps unless the launch gave the block the dynamic shared memory the
/// tile shape needs (a plan and a kernel out of step fail loudly).
template <int TILE_M, int TILE_N> __device__ __forceinline__ void checkSharedBytes() {
  u32 bytes;
  asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  if (bytes < static_cast<u32>(TileShape<TILE_M, TILE_N>::kSharedBytes))
    __trap();
}

/// Copies expert_offsets [NUM_EXPERTS + 1] into `offsets` (shared) and fills
/// `tilesBefore` (shared) with the exclusive prefix sum of each expert's tiles
/// of ROWS rows (tilesBefore[NUM_EXPERTS]: all of them): the first warp sums a
/// contiguous run of experts per lane, then scans across lanes. Called by the
/// whole block; ends with a barrier.
template <int NUM_EXPERTS, int ROWS>
__device__ __forceinline__ void loadExpertTiles(const int *expert_offsets, int *offsets,
                                                int *tilesBefore) {
  for (int e = threadIdx.x; e <= NUM_EXPERTS; e += blockDim.x)
    offsets[e] = expert_offsets[e];
  __syncthreads();
  if (threadIdx.x < 32) {
    constexpr int kPerLane = ceilDiv(NUM_EXPERTS, 32);
    const int lane = threadIdx.x, first = lane * kPerLane;
    int sum = 0;
    for (int e = first; e < first + kPerLane && e < NUM_EXPERTS; ++e) {
      int count = offsets[e + 1] - offsets[e];
      sum += count > 0 ? ceilDiv(count, ROWS) : 0;
    }
    int inclusive = sum;
    for (int offset = 1; offset < 32; offset <<= 1) {
      int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
      if (lane >= offset)
        inclusive += other;
    }
    int running = inclusive - sum;
    for (int e = first; e < first + kPerLane && e < NUM_EXPERTS; ++e) {
      tilesBefore[e] = running;
      int count = offsets[e + 1] - offsets[e];
      running += count > 0 ? ceilDiv(count, ROWS) : 0;
    }
    if (lane == 31)
      tilesBefore[NUM_EXPERTS] = inclusive;
  }
  __syncthreads();
}

} // namespace wgmma_detail

/// Block-scaled FP8 GEMM on wgmma: C[M, N] = A[M, K] * B[N, K]^T with
/// DeepSeek's per-128-deep-K-block promotion, exactly fp8_gemm's results
/// (within fp32 summation order). A and B come as TMA tensor maps: a_map
/// over A [M, K] e4m3 (dims {K, M}, box {128, TILE_M}), b_map over B [N, K]
/// e4m3 (dims {K, N}, box {128, TILE_N}), both in the 128-byte swizzle;
/// a_scales: [M, ceilDiv(K, 128)]; b_scales: [ceilDiv(N, 128), ceilDiv(K,
/// 128)]; c: [M, N] of OutT. 128 x 128 scale blocks only. TILE_M (128 or
/// 256) x TILE_N (64 or 128) output tiles.
///
/// Launch: grid = (any; best min(tiles, multiprocessors), tiles =
/// ceilDiv(M, TILE_M) * ceilDiv(N, TILE_N)), block = (384, 1, 1), dynamic
/// shared memory = wgmma_detail::TileShape<TILE_M, TILE_N>::kSharedBytes
template <int N, int K, int TILE_M, int TILE_N, typename OutT>
__global__ void __launch_bounds__(wgmma_detail::kThreads, 1)
    fp8_wgmma_gemm(const __grid_constant__ TensorMap a_map, const float *a_scales,
                   const __grid_constant__ TensorMap b_map, const float *b_scales, OutT *c,
                   int M) {
  awaitPrecedingKernels();
  extern __shared__ __align__(1024) unsigned char wgmmaShared[];
  wgmma_detail::checkSharedBytes<TILE_M, TILE_N>();
  wgmma_detail::DenseTiles<N, TILE_M, TILE_N> tiles{M};
  wgmma_detail::runBlock<N, K, TILE_M, TILE_N, /*A_BY_TMA=*/true, OutT>(
      nullptr, &a_map, a_scales, &b_map, b_scales, c, tiles, wgmmaShared);
}

/// Grouped block-scaled FP8 GEMM on wgmma for routed experts: fp8_grouped_gemm's
/// results. c[r, :] = A[a_rows ? a_rows[r] : r, :] * B_e^T for the expert e
/// owning routed row r (expert_offsets: [NUM_EXPERTS + 1], non-decreasing
/// from 0 to R). GATHERED (a_rows given): A [rows, K] is read row by row
/// from `a` by cp.async and a_map is unused (any valid map: the plan gives
/// one over A); otherwise A [R, K] comes through a_map (dims {K, R}, box
/// {128, TILE_M}) and `a` is unused. b_map covers B
/// [NUM_EXPERTS, N, K] (dims {K, N, NUM_EXPERTS}, box {128, TILE_N, 1});
/// b_scales: [NUM_EXPERTS, ceilDiv(N, 128), ceilDiv(K, 128)]. Row tiles
/// never mix experts; the block finds them from a prefix sum over
/// expert_offsets.
///
/// Launch: grid = (any; best min(tiles, multiprocessors), tiles <=
/// (ceilDiv(R, TILE_M) + NUM_EXPERTS) * ceilDiv(N, TILE_N)), block = (384, 1, 1),
/// dynamic shared memory = wgmma_detail::TileShape<TILE_M, TILE_N>::kSharedBytes
template <int N, int K, int NUM_EXPERTS, int TILE_M, int TILE_N, bool GATHERED, typename OutT>
__global__ void __launch_bounds__(wgmma_detail::kThreads, 1)
    fp8_wgmma_grouped_gemm(const fp8 *a, const __grid_constant__ TensorMap a_map,
                           const float *a_scales, const int *a_rows,
                           const __grid_constant__ TensorMap b_map, const float *b_scales,
                           const int *expert_offsets, OutT *c, int R) {
  awaitPrecedingKernels();
  extern __shared__ __align__(1024) unsigned char wgmmaShared[];
  wgmma_detail::checkSharedBytes<TILE_M, TILE_N>();
  if (GATHERED != (a_rows != nullptr))
    __trap(); // a plan and its kernel disagree on where A's rows come from
  __shared__ int offsets[NUM_EXPERTS + 1];
  __shared__ int tilesBefore[NUM_EXPERTS + 1];
  static_assert(2 * (NUM_EXPERTS + 1) * 4 <= wgmma_detail::kStaticSharedReserve,
                "expert tables fit the shared memory kept for them");
  wgmma_detail::loadExpertTiles<NUM_EXPERTS, TILE_M>(expert_offsets, offsets, tilesBefore);
  wgmma_detail::GroupedTiles<N, TILE_M, TILE_N, NUM_EXPERTS> tiles{offsets, tilesBefore, a_rows,
                                                                   R};
  wgmma_detail::runBlock<N, K, TILE_M, TILE_N, /*A_BY_TMA=*/!GATHERED, OutT>(
      a, &a_map, a_scales, &b_map, b_scales, c, tiles, wgmmaShared);
}

} // namespace dsv3k
