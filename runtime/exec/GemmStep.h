//===- GemmStep.h - the Gemm step: an FP8 GEMM by cuBLASLt ------*- C++ -*-===//
//
// A Gemm (plan.fbs) is c[M, n] = a[M, k] · b[n, k]ᵀ with e4m3 operands, fp32
// accumulation and DeepSeek-V3's block scales, run by cuBLASLt where the code
// generator measured it faster than the plan's own kernels. M is the step's
// rows (multiplier x size(unit)) rounded up to row_alignment: cuBLASLt's
// block scaling takes whole groups of rows, and the plan sized a, a_scales
// and c for them.
//
// cuBLASLt's matrices are column-major: a row-major [R, C] matrix is its
// C x R. So it computes D (n x M) = Aᵀ · B with A = b seen as k x n (used
// transposed; its 128 x 128 block scales, CUBLASLT_MATMUL_MATRIX_SCALE_
// BLK128x128_32F), B = a seen as k x M (one scale per row and 128 columns,
// CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F) and D = c, n x M: c[M, n]
// row-major. That is the recipe of test/gpu/fp8_wgmma_test.cu's CublasGemm.
//
// The executor prepares each Gemm once (buffer arguments become device
// addresses, exactly as for a Launch). Descriptors, layouts and the
// heuristic's algorithm depend on M, so GemmContext builds them the first
// time a step runs at an M (for a step captured as a CUDA graph: just before
// the capture) and keeps them: later steps of that size only look them up
// (host work, no heuristic) and queue cublasLtMatmul on the device's stream.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_GEMMSTEP_H
#define DSV3_RUNTIME_EXEC_GEMMSTEP_H

#include "runtime/exec/CublasLt.h"
#include "runtime/exec/Device.h"
#include "runtime/exec/LaunchStep.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace dsv3::exec {

/// The cuBLASLt workspace one executor allocates for its Gemm steps.
inline constexpr uint64_t kGemmWorkspaceBytes = plan::kGemmWorkspaceBytes;

/// How dumps, errors and dsv3-bench's profile name a Gemm:
/// "cublasLt_fp8_gemm<7168, 2048, F32>" (n, k, c's dtype). It contains
/// "gemm", so the bench counts it as a GEMM.
std::string gemmDisplayName(const plan::Gemm &gemm);

/// A Gemm ready to run: its buffers' addresses and its shape.
struct PreparedGemm {
  std::string where; ///< "entry point 'prefill' step 12 (dsv3.fp8_gemm)"
  std::string name;  ///< gemmDisplayName
  CUdeviceptr a = 0, aScales = 0, b = 0, bScales = 0, c = 0;
  /// The step's rows: rowsMultiplier x size(rowsUnit), before rounding.
  plan::SizeUnit rowsUnit = plan::SizeUnit::Constant;
  int64_t rowsMultiplier = 0;
  uint32_t rowAlignment = 1;
  int64_t n = 0, k = 0;
  plan::DType cDtype = plan::DType::F32;
  /// The sizes this Gemm runs for (both must hold); absent: all.
  std::optional<plan::SizeRange> when, alsoWhen;
  /// Left out of every step (ExecutorOptions::omitKernels).
  bool omitted = false;
};

/// Resolves `gemm` (from a verified plan) against `addresses`, as
/// prepareLaunch resolves a Launch's buffers. Fails when an argument points
/// at a buffer the addresses lack.
StatusOr<PreparedGemm> prepareGemm(const plan::Gemm &gemm,
                                   const BufferAddresses &addresses,
                                   std::string where);

/// Whether `gemm` runs for a step of these sizes: it is not omitted and both
/// of its size guards hold (launchChosen's rule).
bool gemmChosen(const PreparedGemm &gemm, const StepSizes &sizes);

/// M: the step's rows at `sizes` rounded up to the row alignment (0 when
/// the step has no rows). Fails on 64-bit overflow.
StatusOr<int64_t> gemmRows(const PreparedGemm &gemm, const StepSizes &sizes);

/// What an executor's Gemm steps share: cuBLASLt and its handle, one
/// workspace, and per (step, M) the matmul descriptor, the three matrix
/// layouts and the algorithm the heuristic chose.
class GemmContext {
public:
  /// Creates the handle on the device's (current) context, checks that the
  /// library has block-scaled FP8 GEMMs (cuBLASLt 12.9 or later) and
  /// allocates the workspace.
  static StatusOr<std::unique_ptr<GemmContext>>
  create(const Device &device, std::unique_ptr<CublasLt> library,
         uint64_t workspaceBytes = kGemmWorkspaceBytes);
  ~GemmContext();
  GemmContext(const GemmContext &) = delete;
  GemmContext &operator=(const GemmContext &) = delete;

  /// Builds what runGemm needs for `gemm` at `sizes` (its descriptors and
  /// the heuristic's algorithm), if it is chosen there and not built yet:
  /// the executor calls it before capturing a step into a CUDA graph, so
  /// that the capture makes no cuBLASLt call but cublasLtMatmul.
  Status prepare(const PreparedGemm &gemm, const StepSizes &sizes);

  const CublasLt &library() const { return *library_; }
  /// (step, M) pairs with a descriptor and an algorithm so far.
  size_t cachedMatmuls() const { return matmuls_.size(); }

private:
  friend Status runGemm(GemmContext &context, const PreparedGemm &gemm,
                        const StepSizes &sizes);

  /// One prepared cublasLtMatmul: everything but the stream work.
  struct Matmul {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t weight = nullptr;     ///< cuBLASLt's A: b
    cublasLtMatrixLayout_t activation = nullptr; ///< cuBLASLt's B: a
    cublasLtMatrixLayout_t result = nullptr;     ///< cuBLASLt's C and D: c
    cublasLtMatmulAlgo_t algo{};
  };

  GemmContext(const Device &device, std::unique_ptr<CublasLt> library)
      : device_(device), library_(std::move(library)) {}
  /// The matmul of `gemm` at `rows` (M), built on first use.
  StatusOr<const Matmul *> matmulFor(const PreparedGemm &gemm, int64_t rows);
  /// Builds `matmul`; on failure what it created so far stays in it for
  /// release().
  Status buildMatmul(const PreparedGemm &gemm, int64_t rows, Matmul &matmul);
  void release(Matmul &matmul);

  const Device &device_;
  std::unique_ptr<CublasLt> library_;
  DeviceBuffer workspace_;
  /// Keyed by the prepared step's address: the executor's prepared steps do
  /// not move once prepared.
  std::map<std::pair<const PreparedGemm *, int64_t>, Matmul> matmuls_;
};

/// Queues `gemm` for a step of `sizes` on the device's stream (nothing when
/// it has no rows). The first run at an M asks cuBLASLt's heuristic for an
/// algorithm; none is an error naming the step, n, k and M. Every cuBLASLt
/// status is checked. No host synchronization.
Status runGemm(GemmContext &context, const PreparedGemm &gemm,
               const StepSizes &sizes);

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_GEMMSTEP_H
