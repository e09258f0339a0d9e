//===- CudaArch.cpp - the GPU architectures dsv3c generates code for ------===//

#include "targets/cuda/CudaArch.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

namespace dsv3 {

// The tuning bounds were measured on an H100 (docs/PERF.md: skinny GEMMs at
// M = 1..4; 132 SMs; MLA attention by mla_decode_test at 1..128 tokens over
// contexts of 1024: 16 heads per block split over 16 blocks per head group
// fastest up to 8 tokens, 64 heads split over 66 up to 32, one block per
// token and 64 heads from 48; MLA's absorptions by mla_absorb_test at 1..8192
// tokens: the output's stream kernel fastest up to 2 of the measured sizes,
// 16-token tiles from 7 to 16, the query's 64-token tiles up to 1024 and
// 128-token tiles at 8192); the other targets use the same bounds until
// they are measured on their own hardware.
static constexpr KernelTuning kMeasuredOnH100 = {/*skinnyMaxRows=*/4,
                                                 /*skinnyMaxRoutedRows=*/32,
                                                 /*attentionSmallMaxTokens=*/8,
                                                 /*attentionSplitMaxTokens=*/32,
                                                 /*attentionSplitBlocks=*/132,
                                                 /*absorbStreamMaxTokens=*/4,
                                                 /*absorbSmallMaxTokens=*/16,
                                                 /*absorbMidMaxTokens=*/1024,
                                                 /*skinnyMinBlocks=*/264,
                                                 /*skinnyRingBlocksPerRow=*/50,
                                                 /*tensorCoreSmallMaxRows=*/64,
                                                 /*tensorCoreMidMaxRows=*/256,
                                                 /*tensorCoreSmallMaxRowsPerExpert=*/16,
                                                 /*tensorCoreMidMaxRowsPerExpert=*/64,
                                                 /*tensorCoreMaxSharedBytes=*/227 * 1024,
                                                 /*fp8WgmmaSmallTileMaxRows=*/2048};

/// The H100's bounds on a GPU with less shared memory per block.
static constexpr KernelTuning withMaxSharedBytes(KernelTuning tuning, int64_t bytes) {
  tuning.tensorCoreMaxSharedBytes = bytes;
  return tuning;
}

// DeepSeek-V3's dense FP8 projections (n x k) on an H100: from how many rows
// a plan's Gemm step (quant.cuh's scales_by_block, then cuBLASLt 13.1's
// block-scaled GEMM) ran at least 3% faster than the best fp8_wgmma_gemm
// tile, at that row count and every larger one measured (fp8_wgmma_test:
// FP8_WGMMA_SWEEP=1 at 256 to 8192 rows, the library path timed at 4096
// rows, where the scales' layout cost 1-6% of the library's time; docs/PERF.md
// session 9). Shapes not listed were not measured and keep the plan's kernels.
static const LibraryGemmBound kLibraryGemmsMeasuredOnH100[] = {
    {1536, 7168, 8192},  // q_a_proj
    {24576, 1536, 4096}, // q_b_proj
    {576, 7168, 8192},   // kv_a_proj_with_mqa
    {32768, 512, 2048},  // kv_b_proj (prefill's expansion of the latents)
    {7168, 16384, 512},  // o_proj
    {18432, 7168, 512},  // dense MLP gate_proj, up_proj
    {7168, 18432, 512},  // dense MLP down_proj
    {2048, 7168, 4096},  // shared expert gate_proj, up_proj
    {7168, 2048, 2048},  // shared expert down_proj
};

static const CudaArch kArchs[] = {
    // name     major minor fp8    wgmma  tma    dependent launches
    {"sm_80", 8, 0, false, false, false, false,
     withMaxSharedBytes(kMeasuredOnH100, 163 * 1024)}, // A100
    {"sm_89", 8, 9, true, false, false, false,
     withMaxSharedBytes(kMeasuredOnH100, 99 * 1024)}, // L40S, RTX 4090
    {"sm_90a", 9, 0, true, true, true, true, kMeasuredOnH100,
     kLibraryGemmsMeasuredOnH100}, // H100, H200
    {"sm_100a", 10, 0, true, false, true, true, kMeasuredOnH100}, // B200 (tcgen05 MMA, not wgmma)
};

llvm::ArrayRef<CudaArch> supportedCudaArchs() { return kArchs; }

const CudaArch *lookupCudaArch(llvm::StringRef name) {
  const CudaArch *it = llvm::find_if(
      kArchs, [&](const CudaArch &arch) { return arch.name == name; });
  return it == std::end(kArchs) ? nullptr : it;
}

int64_t libraryGemmMinRows(const CudaArch &arch, int64_t n, int64_t k) {
  for (const LibraryGemmBound &bound : arch.libraryGemms)
    if (bound.n == n && bound.k == k)
      return bound.minRows;
  return 0;
}

std::string supportedCudaArchList() {
  return llvm::join(llvm::map_range(kArchs,
                                    [](const CudaArch &arch) {
                                      return arch.name;
                                    }),
                    ", ");
}

} // namespace dsv3
