//===- CudaArch.h - the GPU architectures dsv3c generates code for -*- C++ -*-===//

#ifndef DSV3_TARGETS_CUDA_CUDAARCH_H
#define DSV3_TARGETS_CUDA_CUDAARCH_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace dsv3 {

/// Where the code generator switches between kernel variants by step size:
/// each op gets both candidates, guarded by these bounds (plan Launch.when).
struct KernelTuning {
  /// GEMMs over at most this many rows use skinny_gemm.cuh's kernels.
  int64_t skinnyMaxRows;
  /// Grouped expert GEMMs over at most this many routed rows (top_k x T)
  /// use the grouped skinny kernels.
  int64_t skinnyMaxRoutedRows;
  /// MLA attention (mla_decode.cuh) splits each token's context over the
  /// GPU with 16 heads per block for steps of at most attentionSmallMaxTokens
  /// tokens, with 64 heads per block up to attentionSplitMaxTokens, and gives
  /// each token one block per 64 heads above that.
  int64_t attentionSmallMaxTokens;
  int64_t attentionSplitMaxTokens;
  /// Blocks of a split attention launch, all head groups together (one per
  /// SM: a block takes most of an SM's shared memory).
  int64_t attentionSplitBlocks;
  /// MLA's absorbed products (mla_absorb.cuh): the output absorption runs
  /// its fp32 stream kernel for steps of at most absorbStreamMaxTokens
  /// tokens; both run 16-token tensor-core tiles up to absorbSmallMaxTokens,
  /// the query absorption 64-token tiles over column blocks up to
  /// absorbMidMaxTokens, and 128-token tiles above (measured on an H100 by
  /// mla_absorb_test, docs/kernels-mla.md).
  int64_t absorbStreamMaxTokens;
  int64_t absorbSmallMaxTokens;
  int64_t absorbMidMaxTokens;
  /// Skinny GEMMs give each warp group one column instead of two when two
  /// would leave fewer blocks than this (two per SM keeps the GPU busy).
  int64_t skinnyMinBlocks;
  /// Grouped skinny GEMMs streaming through shared memory (RING, targets
  /// with bulk copies): blocks per routed row, each taking every this-many-th
  /// column stripe (three blocks per SM for the 8 routed rows of a token).
  int64_t skinnyRingBlocksPerRow;
  /// Bf16-activation GEMMs on tensor cores (tc_gemm.cuh), above the skinny
  /// bounds: dense ones use decode tiles up to tensorCoreSmallMaxRows rows,
  /// wider tiles up to tensorCoreMidMaxRows and prefill tiles above; grouped
  /// ones use 16-row tiles up to tensorCoreSmallMaxRowsPerExpert routed rows
  /// per expert (top_k x T / E), mid-size tiles up to
  /// tensorCoreMidMaxRowsPerExpert and prefill tiles above (measured on an
  /// H100 by tc_gemm_test, docs/PERF.md).
  int64_t tensorCoreSmallMaxRows;
  int64_t tensorCoreMidMaxRows;
  int64_t tensorCoreSmallMaxRowsPerExpert;
  int64_t tensorCoreMidMaxRowsPerExpert;
  /// Dynamic shared memory a block may have on the target (the opt-in
  /// maximum); tc_gemm.cuh tiles drop stages or K groups to fit.
  int64_t tensorCoreMaxSharedBytes;
  /// Dense FP8 x FP8 GEMMs on wgmma (sm_90a) take 128-row tiles up to this
  /// many rows and 256-row tiles above (fewer rows leave 256-row tiles too
  /// few to fill the multiprocessors: q_a_proj at 1024 rows is 48 of them).
  int64_t fp8WgmmaSmallTileMaxRows;
};

/// From how many rows an FP8 x FP8 dense GEMM of `n` outputs over `k` runs
/// as cuBLASLt's block-scaled GEMM (a plan Gemm step) rather than the plan's
/// own kernels: the tuning table's entry for one projection shape.
struct LibraryGemmBound {
  int64_t n, k, minRows;
};

/// One code-generation target: an NVRTC architecture name and the hardware
/// features kernel selection depends on.
struct CudaArch {
  llvm::StringRef name;  ///< as given to --target and NVRTC (sm_90a)
  int computeMajor;      ///< compute capability, major
  int computeMinor;      ///< compute capability, minor
  bool fp8TensorCores;   ///< e4m3 MMA (sm_89 and later)
  bool warpGroupMma;     ///< wgmma (sm_90a only)
  bool tensorMemoryAccelerator; ///< TMA bulk copies (sm_90 and later)
  /// griddepcontrol (sm_90 and later): the plan lets the runtime launch each
  /// kernel while its predecessor finishes (every kernel begins with
  /// awaitPrecedingKernels()).
  bool dependentLaunches;
  KernelTuning tuning;
  /// The shapes measured faster on cuBLASLt's block-scaled FP8 GEMM than on
  /// the plan's kernels, from some rows up (none: never the library).
  llvm::ArrayRef<LibraryGemmBound> libraryGemms = {};
};

/// The fewest rows from which `arch` runs the FP8 x FP8 product of n outputs
/// over k on cuBLASLt (its libraryGemms entry), or 0: never.
int64_t libraryGemmMinRows(const CudaArch &arch, int64_t n, int64_t k);

/// Every supported target, oldest first.
llvm::ArrayRef<CudaArch> supportedCudaArchs();

/// The target called `name`, or null.
const CudaArch *lookupCudaArch(llvm::StringRef name);

/// "sm_80, sm_89, sm_90a, sm_100a", for messages and --help.
std::string supportedCudaArchList();

} // namespace dsv3

#endif // DSV3_TARGETS_CUDA_CUDAARCH_H
