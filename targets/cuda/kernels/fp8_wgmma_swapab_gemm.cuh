//===- fp8_wgmma_swapab_gemm.cuh - grouped FP8 GEMM, weights on wgmma's M -===//
//
// The routed-expert product of fp8_wgmma_grouped_gemm (same arguments, same
// results) for experts of few rows: with 256 experts and top-8, a prefill of
// 1024 tokens gives each expert about 32 rows, which would fill a quarter of
// that kernel's 128-row tiles. Here the operands are swapped: the expert's
// weight rows are wgmma's M side (64 per math warp group and wave; a block
// tile is WAVES x 128 weight rows) and its token rows are wgmma's N side,
// the MMA's width picked per tile as the expert's rows rounded up to 16
// (16 .. TILE_T). No tensor work is spent on padding beyond that rounding,
// and each block streams its weight slice from memory once for all of the
// expert's rows (up to TILE_T; an expert with more is split into
// TILE_T-row chunks, each of which streams the slice again).
//
// The block is fp8_wgmma_gemm.cuh's (see there for the pipeline): 384
// threads, warp group 0 loads a stage per 128-deep K block with cp.async
// (the weight rows, the chunk's token rows, their activation scales and one
// weight scale per wave), groups 1 and 2 multiply 64 weight rows of each
// wave. Both operands are K-major rows of 128 bytes in the 128-byte
// swizzle. The promotion per K block multiplies by the wave's weight scale
// (one per 128 weight rows: constant over the wave) and by the activation
// scale of each token, which varies along the accumulator's columns. With
// one wave of at most 64 tokens each group keeps two accumulator sets, so
// that K block kb's MMAs run while kb - 1 is promoted; otherwise one set per
// wave, promoted once its MMAs complete. The epilogue exchanges values
// between lane pairs (shfl.xor 4) so that each thread holds two consecutive
// weight rows of one token and stores them as a pair into c[token row, n],
// the layout fp8_wgmma_grouped_gemm writes.
//
// Requirements as fp8_wgmma_grouped_gemm's: K % 16 == 0, N even, 128 x 128
// weight scale blocks, A, B and C 16-byte aligned.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/fp8_wgmma_gemm.cuh"

namespace dsv3k {

namespace wgmma_swap_detail {

using wgmma_detail::kBlockK;
using wgmma_detail::kGroupThreads;
using wgmma_detail::kMathGroups;
using wgmma_detail::kSharedBudget;
using wgmma_detail::kThreads;
using wgmma_detail::u32;
using wgmma_detail::u64;

/// Weight rows of one MMA wave: 64 per math warp group, one weight scale
/// block (so one weight scale per wave and K block).
inline constexpr int kWaveRows = 64 * kMathGroups;

/// Stage sizes, stage count and dynamic shared memory for TILE_T token rows
/// and WAVES x 128 weight rows per tile. The code generator computes the
/// same numbers (fp8WgmmaSwapSharedBytes in targets/cuda/CodeGen.cpp).
template <int TILE_T, int WAVES> struct SwapShape {
  static_assert(TILE_T % 16 == 0 && TILE_T >= 16 && TILE_T <= 128,
                "16 .. 128 token rows per tile, in steps of 16");
  static_assert(WAVES == 1 || (WAVES == 2 && TILE_T <= 64),
                "registers for one wave of 128 tokens or two of 64");
  static constexpr int kWeightRows = WAVES * kWaveRows;
  static constexpr int kWeightBytes = kWeightRows * kBlockK;
  static constexpr int kTokenBytes = TILE_T * kBlockK;
  static constexpr int kScaleBytes = TILE_T * 4 + 16; // token scales, weight scales, padding
  static constexpr int kStageBytes = kWeightBytes + kTokenBytes + kScaleBytes + 2 * 8;
  static constexpr int kStagesFit = (kSharedBudget - 1024) / kStageBytes;
  static constexpr int kStages = kStagesFit < 8 ? kStagesFit : 8;
  static constexpr int kSharedBytes = 1024 + kStages * kStageBytes;
  static constexpr int kAccumulators = TILE_T / 2; // per thread and wave
  /// Two accumulator sets (K block kb's MMAs run while kb - 1's are
  /// promoted) where the registers allow.
  static constexpr bool kOverlap = WAVES == 1 && kAccumulators <= 32;
  static_assert(kStages >= 3, "a pipeline needs stages");
};

#if DSV3_WGMMA_AVAILABLE

// d (+)= W[64 x 32] * T[NT x 32]^T for NT = 16 .. 128: the first NT / 2 of
// the accumulators. Thread t of the warp group holds weight row 16 (t / 32)
// + (t % 32) / 4 (+ 8 for d[4i + 2 .. 3]) and token columns 8 i + 2 (t % 4)
// (+ 1) in d[4i + 0 .. 1].
#define DSV3_SWAP_ACC8(i)                                                                          \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]),      \
      "+f"(d[i + 6]), "+f"(d[i + 7])
#define DSV3_SWAP_L0 "%0, %1, %2, %3, %4, %5, %6, %7"
#define DSV3_SWAP_L1 DSV3_SWAP_L0 ", %8, %9, %10, %11, %12, %13, %14, %15"
#define DSV3_SWAP_L2 DSV3_SWAP_L1 ", %16, %17, %18, %19, %20, %21, %22, %23"
#define DSV3_SWAP_L3 DSV3_SWAP_L2 ", %24, %25, %26, %27, %28, %29, %30, %31"
#define DSV3_SWAP_L4 DSV3_SWAP_L3 ", %32, %33, %34, %35, %36, %37, %38, %39"
#define DSV3_SWAP_L5 DSV3_SWAP_L4 ", %40, %41, %42, %43, %44, %45, %46, %47"
#define DSV3_SWAP_L6 DSV3_SWAP_L5 ", %48, %49, %50, %51, %52, %53, %54, %55"
#define DSV3_SWAP_L7 DSV3_SWAP_L6 ", %56, %57, %58, %59, %60, %61, %62, %63"
#define DSV3_SWAP_O0 DSV3_SWAP_ACC8(0)
#define DSV3_SWAP_O1 DSV3_SWAP_O0, DSV3_SWAP_ACC8(8)
#define DSV3_SWAP_O2 DSV3_SWAP_O1, DSV3_SWAP_ACC8(16)
#define DSV3_SWAP_O3 DSV3_SWAP_O2, DSV3_SWAP_ACC8(24)
#define DSV3_SWAP_O4 DSV3_SWAP_O3, DSV3_SWAP_ACC8(32)
#define DSV3_SWAP_O5 DSV3_SWAP_O4, DSV3_SWAP_ACC8(40)
#define DSV3_SWAP_O6 DSV3_SWAP_O5, DSV3_SWAP_ACC8(48)
#define DSV3_SWAP_O7 DSV3_SWAP_O6, DSV3_SWAP_ACC8(56)
// NT columns: accumulator list L, outputs O, then the descriptors and the
// accumulate flag as operands A, B and P (numbered after the outputs).
#define DSV3_SWAP_MMA(NT, L, O, A, B, P)                                                           \
  template <> struct SwapMma<NT> {                                                                 \
    template <int COUNT>                                                                           \
    static __device__ __forceinline__ void run(float (&d)[COUNT], u64 descW, u64 descT,            \
                                               u32 accumulate) {                                   \
      static_assert(NT / 2 <= COUNT, "accumulators for every column");                             \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #P ", 0;\n"                                \
                   "wgmma.mma_async.sync.aligned.m64n" #NT "k32.f32.e4m3.e4m3 {" L "}, "           \
                   "%" #A ", %" #B ", p, 1, 1;\n}\n"                                               \
                   : O                                                                             \
                   : "l"(descW), "l"(descT), "r"(accumulate));                                     \
    }                                                                                              \
  };

template <int NT> struct SwapMma;
DSV3_SWAP_MMA(16, DSV3_SWAP_L0, DSV3_SWAP_O0, 8, 9, 10)
DSV3_SWAP_MMA(32, DSV3_SWAP_L1, DSV3_SWAP_O1, 16, 17, 18)
DSV3_SWAP_MMA(48, DSV3_SWAP_L2, DSV3_SWAP_O2, 24, 25, 26)
DSV3_SWAP_MMA(64, DSV3_SWAP_L3, DSV3_SWAP_O3, 32, 33, 34)
DSV3_SWAP_MMA(80, DSV3_SWAP_L4, DSV3_SWAP_O4, 40, 41, 42)
DSV3_SWAP_MMA(96, DSV3_SWAP_L5, DSV3_SWAP_O5, 48, 49, 50)
DSV3_SWAP_MMA(112, DSV3_SWAP_L6, DSV3_SWAP_O6, 56, 57, 58)
DSV3_SWAP_MMA(128, DSV3_SWAP_L7, DSV3_SWAP_O7, 64, 65, 66)

#undef DSV3_SWAP_MMA
#undef DSV3_SWAP_ACC8
#undef DSV3_SWAP_L0
#undef DSV3_SWAP_L1
#undef DSV3_SWAP_L2
#undef DSV3_SWAP_L3
#undef DSV3_SWAP_L4
#undef DSV3_SWAP_L5
#undef DSV3_SWAP_L6
#undef DSV3_SWAP_L7
#undef DSV3_SWAP_O0
#undef DSV3_SWAP_O1
#undef DSV3_SWAP_O2
#undef DSV3_SWAP_O3
#undef DSV3_SWAP_O4
#undef DSV3_SWAP_O5
#undef DSV3_SWAP_O6
#undef DSV3_SWAP_O7

/// A stage's four k32 MMAs at the narrowest width NT >= columns (a uniform
/// branch per tile: every thread of the warp group has the same columns).
template <int COUNT, int NT = 16>
__device__ __forceinline__ void issueColumns(int columns, float (&acc)[COUNT], u64 descW,
                                             u64 descT) {
  if constexpr (NT / 2 <= COUNT) {
    if (columns <= NT || NT / 2 == COUNT) {
#pragma unroll
      for (int step = 0; step < kBlockK / 32; ++step) // 32 bytes = 2 descriptor units
        SwapMma<NT>::run(acc, descW + 2 * step, descT + 2 * step, step > 0);
    } else {
      issueColumns<COUNT, NT + 16>(columns, acc, descW, descT);
    }
  }
}

#endif // DSV3_WGMMA_AVAILABLE

/// The kernel body after the tile list is known: `tiles` is
/// wgmma_detail::GroupedTiles with TILE_T-row chunks of each expert's rows
/// and WAVES x 128-column (here: weight row) slices.
template <int N, int K, int TILE_T, int WAVES, typename OutT, typename Tiles>
__device__ __forceinline__ void runSwappedBlock(const fp8 *a, const float *aScales, const fp8 *b,
                                                const float *bScales, OutT *c, const Tiles &tiles,
                                                unsigned char *smemRaw) {
#if DSV3_WGMMA_AVAILABLE
  using namespace wgmma_detail;
  using Shape = SwapShape<TILE_T, WAVES>;
  static_assert(K % 16 == 0, "rows are whole 16-byte chunks");
  static_assert(N % 2 == 0, "outputs are stored in pairs of weight rows");
  constexpr int kBlocksK = ceilDiv(K, kBlockK);
  constexpr int kBlocksN = ceilDiv(N, 128);
  constexpr int kStages = Shape::kStages;
  constexpr int kAcc = Shape::kAccumulators;
  constexpr int kWeightRows = Shape::kWeightRows;

  const u32 rawAddress = sharedAddress(smemRaw);
  unsigned char *smem = smemRaw + ((1024 - (rawAddress & 1023)) & 1023);
  const u32 weightStages = sharedAddress(smem);
  const u32 tokenStages = weightStages + kStages * Shape::kWeightBytes;
  const u32 scaleStages = tokenStages + kStages * Shape::kTokenBytes;
  const float *scaleStagesPtr = reinterpret_cast<const float *>(
      smem + kStages * (Shape::kWeightBytes + Shape::kTokenBytes));
  const u32 fullBarriers = scaleStages + kStages * Shape::kScaleBytes;
  const u32 emptyBarriers = fullBarriers + kStages * 8;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      barrierInit(fullBarriers + 8 * s, kGroupThreads);
      barrierInit(emptyBarriers + 8 * s, kMathGroups * 4);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  const int group = threadIdx.x / kGroupThreads;
  const int tileCount = tiles.count();
  // The MMA width of a tile: its token rows rounded up to 16.
  auto columnsOf = [](const Tile &tile) { return (tile.rows + 15) / 16 * 16; };

  if (group == 0) {
    // ------------------------------------------------------------ loader
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kLoaderRegisters));
    const int t = threadIdx.x;
    const int chunk = t % 8;
    const int rowInPass = t / 8; // rows rowInPass + 16 j
    const u32 swizzled = static_cast<u32>((chunk ^ (rowInPass % 8)) * 16);
    u32 iteration = 0;
    for (int index = blockIdx.x; index < tileCount; index += gridDim.x) {
      const Tile tile = tiles.at(index);
      const int columns = columnsOf(tile);
      const fp8 *bExpert = b + static_cast<long long>(tile.expert) * N * K;
      const float *bScaleRow =
          bScales + (static_cast<long long>(tile.expert) * kBlocksN + tile.n0 / 128) * kBlocksK;
      for (int kb = 0; kb < kBlocksK; ++kb, ++iteration) {
        const u32 stage = iteration % kStages;
        const u32 phase = (iteration / kStages) & 1;
        barrierWait(emptyBarriers + 8 * stage, phase ^ 1);
        const int k = kb * kBlockK + chunk * 16;
        const bool kInside = k < K;
        const u32 weightStage = weightStages + stage * Shape::kWeightBytes;
#pragma unroll
        for (int j = 0; j < kWeightRows / 16; ++j) {
          const int n = tile.n0 + rowInPass + 16 * j;
          const bool valid = kInside && n < N;
          copy16(weightStage + (rowInPass + 16 * j) * 128 + swizzled,
                 valid ? bExpert + static_cast<long long>(n) * K + k : b, valid);
        }
        // Token rows up to the MMA width; those past the expert's rows are
        // zeros (the MMA reads them, the epilogue stores none).
        const u32 tokenStage = tokenStages + stage * Shape::kTokenBytes;
#pragma unroll 4
        for (int j = 0; j < TILE_T / 16; ++j) {
          const int r = rowInPass + 16 * j;
          if (r < columns) {
            const bool valid = kInside && r < tile.rows;
            const fp8 *src = a;
            if (valid)
              src = a + static_cast<long long>(tiles.sourceRow(tile.rowBegin + r)) * K + k;
            copy16(tokenStage + r * 128 + swizzled, src, valid);
          }
        }
        const u32 scaleStage = scaleStages + stage * Shape::kScaleBytes;
        if (t < columns) {
          const bool valid = t < tile.rows;
          const float *src = aScales;
          if (valid)
            src = aScales + static_cast<long long>(tiles.sourceRow(tile.rowBegin + t)) * kBlocksK +
                  kb;
          copy4(scaleStage + 4 * t, src, valid);
        }
        if (t < WAVES) { // wave t's weight scale (zero past N)
          const bool valid = tile.n0 + kWaveRows * t < N;
          copy4(scaleStage + 4 * (TILE_T + t), valid ? bScaleRow + t * kBlocksK + kb : bScales,
                valid);
        }
        arriveWhenCopiesLand(fullBarriers + 8 * stage);
      }
    }
    asm volatile("cp.async.wait_all;" ::: "memory");
  } else {
    // ---------------------------------------------------------- multiply
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kMathRegisters));
    const int mathGroup = group - 1;
    const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
    const int weightRow = mathGroup * 64 + warp * 16 + lane / 4; // and + 8
    const int tokenColumn = 2 * (lane % 4);                      // + 8 i, and + 1
    u32 iteration = 0;

    auto waitStage = [&](u32 stage, u32 phase) {
      barrierWait(fullBarriers + 8 * stage, phase);
      fenceGenericToAsync();
    };
    // Issues (does not wait for) wave w's four k32 MMAs of a stage into acc.
    auto issue = [&](u32 stage, int w, int columns, float (&acc)[kAcc]) {
      const u64 descW = swizzled128Descriptor(weightStages + stage * Shape::kWeightBytes +
                                              (w * kWaveRows + mathGroup * 64) * 128);
      const u64 descT = swizzled128Descriptor(tokenStages + stage * Shape::kTokenBytes);
      pinAccumulators(acc);
      asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
      issueColumns(columns, acc, descW, descT);
    };
    auto commit = [] { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); };
    auto release = [&](u32 stage) {
      __syncwarp();
      if (lane == 0)
        barrierArrive(emptyBarriers + 8 * stage);
    };
    // total += acc * weight scale * token scale, column by column: the
    // stage's scales are read here, so the stage is released after this.
    auto promote = [&](float (&total)[kAcc], const float (&acc)[kAcc], u32 stage, int w,
                       int columns) {
      const float *scales = scaleStagesPtr + stage * (Shape::kScaleBytes / 4);
      const float weightScale = scales[TILE_T + w];
#pragma unroll
      for (int i = 0; i < kAcc / 4; ++i) {
        if (8 * i >= columns)
          break;
        const float2 tokenScale = *reinterpret_cast<const float2 *>(scales + 8 * i + tokenColumn);
        const float s0 = tokenScale.x * weightScale, s1 = tokenScale.y * weightScale;
        total[4 * i] = fmaf(acc[4 * i], s0, total[4 * i]);
        total[4 * i + 1] = fmaf(acc[4 * i + 1], s1, total[4 * i + 1]);
        total[4 * i + 2] = fmaf(acc[4 * i + 2], s0, total[4 * i + 2]);
        total[4 * i + 3] = fmaf(acc[4 * i + 3], s1, total[4 * i + 3]);
      }
    };

    for (int index = blockIdx.x; index < tileCount; index += gridDim.x) {
      const Tile tile = tiles.at(index);
      const int columns = columnsOf(tile);
      float total[WAVES][kAcc];
#pragma unroll
      for (int w = 0; w < WAVES; ++w)
#pragma unroll
        for (int i = 0; i < kAcc; ++i)
          total[w][i] = 0.0f;

      if constexpr (Shape::kOverlap) {
        float accEven[kAcc], accOdd[kAcc];
#pragma unroll
        for (int i = 0; i < kAcc; ++i)
          accEven[i] = accOdd[i] = 0.0f;
        u32 stageEven = 0, stageOdd = 0;
        auto step = [&](int kb, float (&acc)[kAcc], u32 &stageOf, float (&previous)[kAcc],
                        u32 previousStage) {
          const u32 it = iteration + kb;
          stageOf = it % kStages;
          waitStage(stageOf, (it / kStages) & 1);
          issue(stageOf, 0, columns, acc);
          commit();
          if (kb > 0) {
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
            pinAccumulators(previous);
            promote(total[0], previous, previousStage, 0, columns);
            release(previousStage);
          }
        };
        for (int kb = 0; kb < kBlocksK; kb += 2) {
          step(kb, accEven, stageEven, accOdd, stageOdd);
          if (kb + 1 < kBlocksK)
            step(kb + 1, accOdd, stageOdd, accEven, stageEven);
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
        if constexpr (kBlocksK % 2 == 1) {
          pinAccumulators(accEven);
          promote(total[0], accEven, stageEven, 0, columns);
          release(stageEven);
        } else {
          pinAccumulators(accOdd);
          promote(total[0], accOdd, stageOdd, 0, columns);
          release(stageOdd);
        }
        iteration += kBlocksK;
      } else {
        // One accumulator set per wave: each K block's MMAs complete before
        // their promotion (the other math group's MMAs keep the tensor
        // cores busy meanwhile).
        float acc[WAVES][kAcc];
#pragma unroll
        for (int w = 0; w < WAVES; ++w)
#pragma unroll
          for (int i = 0; i < kAcc; ++i)
            acc[w][i] = 0.0f;
        for (int kb = 0; kb < kBlocksK; ++kb, ++iteration) {
          const u32 stage = iteration % kStages;
          waitStage(stage, (iteration / kStages) & 1);
#pragma unroll
          for (int w = 0; w < WAVES; ++w)
            issue(stage, w, columns, acc[w]);
          commit();
          asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
          for (int w = 0; w < WAVES; ++w) {
            pinAccumulators(acc[w]);
            promote(total[w], acc[w], stage, w, columns);
          }
          release(stage);
        }
      }

      // Epilogue. Lanes l and l ^ 4 hold weight rows r and r + 1 (r even)
      // of the same two token columns c, c + 1; after one exchange the even
      // lane holds (r, c), (r + 1, c) and the odd lane (r, c + 1), (r + 1,
      // c + 1): a pair of consecutive outputs of one token row each.
      const bool odd = (lane / 4) % 2 == 1;
#pragma unroll
      for (int w = 0; w < WAVES; ++w) {
        const int n = tile.n0 + w * kWaveRows + weightRow - (odd ? 1 : 0);
#pragma unroll
        for (int i = 0; i < kAcc / 4; ++i) {
          if (8 * i >= columns)
            break;
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const float own0 = total[w][4 * i + 2 * half], own1 = total[w][4 * i + 2 * half + 1];
            const float received = __shfl_xor_sync(0xffffffffu, odd ? own0 : own1, 4);
            const int token = 8 * i + tokenColumn + (odd ? 1 : 0);
            const int row = n + 8 * half;
            if (token < tile.rows && row < N) {
              OutT *out = c + static_cast<long long>(tile.rowBegin + token) * N + row;
              if (odd)
                storePair(out, received, own1);
              else
                storePair(out, own0, received);
            }
          }
        }
      }
    }
  }
#else
  __trap(); // instantiated for a target without wgmma
#endif
}

} // namespace wgmma_swap_detail

/// fp8_wgmma_grouped_gemm's product (arguments, results and launch alike
/// but the shared memory) with the expert's weight rows on wgmma's M side:
/// for experts of up to TILE_T (16 .. 128, a multiple of 16) routed rows,
/// each block tile of WAVES x 128 weight rows (two waves only for TILE_T <=
/// 64) is read once per expert. c[r, :] = A[a_rows ? a_rows[r] : r, :] *
/// B_e^T for the expert e owning routed row r (expert_offsets:
/// [NUM_EXPERTS + 1], non-decreasing from 0 to R); b: [NUM_EXPERTS, N, K],
/// b_scales: [NUM_EXPERTS, ceilDiv(N, 128), ceilDiv(K, 128)]; a_scales:
/// [rows of a, ceilDiv(K, 128)].
///
/// Launch: grid = (any; best min(tiles, multiprocessors), tiles <=
/// (ceilDiv(R, TILE_T) + NUM_EXPERTS) * ceilDiv(N, WAVES * 128)), block =
/// (384, 1, 1), dynamic shared memory =
/// wgmma_swap_detail::SwapShape<TILE_T, WAVES>::kSharedBytes
template <int N, int K, int NUM_EXPERTS, int TILE_T, int WAVES, typename OutT>
__global__ void __launch_bounds__(wgmma_detail::kThreads, 1)
    fp8_wgmma_swapab_grouped_gemm(const fp8 *a, const float *a_scales, const int *a_rows,
                                  const fp8 *b, const float *b_scales, const int *expert_offsets,
                                  OutT *c, int R) {
  awaitPrecedingKernels();
  using Shape = wgmma_swap_detail::SwapShape<TILE_T, WAVES>;
  extern __shared__ __align__(1024) unsigned char wgmmaSwapShared[];
  {
    wgmma_detail::u32 bytes;
    asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
    if (bytes < static_cast<wgmma_detail::u32>(Shape::kSharedBytes))
      __trap(); // a plan and a kernel out of step fail loudly
  }
  __shared__ int offsets[NUM_EXPERTS + 1];
  __shared__ int chunksBefore[NUM_EXPERTS + 1];
  static_assert(2 * (NUM_EXPERTS + 1) * 4 <= wgmma_detail::kStaticSharedReserve,
                "expert tables fit the shared memory kept for them");
  // Tiles here are chunks of up to TILE_T routed rows of one expert.
  wgmma_detail::loadExpertTiles<NUM_EXPERTS, TILE_T>(expert_offsets, offsets, chunksBefore);
  wgmma_detail::GroupedTiles<N, TILE_T, Shape::kWeightRows, NUM_EXPERTS> tiles{
      offsets, chunksBefore, a_rows, R};
  wgmma_swap_detail::runSwappedBlock<N, K, TILE_T, WAVES, OutT>(a, a_scales, b, b_scales, c,
                                                                tiles, wgmmaSwapShared);
}

} // namespace dsv3k
