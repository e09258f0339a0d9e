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

static const CudaArch kArchs[] = {
    // name     major minor fp8    wgmma  tma    dependent launches
    {"sm_80", 8, 0, false, false, false, false,
     withMaxSharedBytes(kMeasuredOnH100, 163 * 1024)}, // A100
    {"sm_89", 8, 9, true, false, false, false,
     withMaxSharedBytes(kMeasuredOnH100, 99 * 1024)}, // L40S, RTX 4090
    {"sm_90a", 9, 0, true, true, true, true, kMeasuredOnH100}, // H100, H200
    {"sm_100a", 10, 0, true, false, true, true, kMeasuredOnH100}, // B200 (tcgen05 MMA, not wgmma)
};

llvm::ArrayRef<CudaArch> supportedCudaArchs() { return kArchs; }

const CudaArch *lookupCudaArch(llvm::StringRef name) {
  const CudaArch *it = llvm::find_if(
      kArchs, [&](const CudaArch &arch) { return arch.name == name; });
  return it == std::end(kArchs) ? nullptr : it;
}

std::string supportedCudaArchList() {
  return llvm::join(llvm::map_range(kArchs,
                                    [](const CudaArch &arch) {
                                      return arch.name;
                                    }),
                    ", ");
}

} // namespace dsv3
