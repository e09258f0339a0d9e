//===- GemmStep.cpp - the Gemm step: an FP8 GEMM by cuBLASLt --------------===//

#include "runtime/exec/GemmStep.h"

#include "runtime/plan/PlanDump.h"

namespace dsv3::exec {

namespace {

/// cuBLASLt 12.9 introduced the block scaling modes (VEC128_32F,
/// BLK128x128_32F) a Gemm needs.
constexpr size_t kFirstBlockScaledVersion = 120900;

const void *devicePointer(CUdeviceptr address) {
  return reinterpret_cast<const void *>(static_cast<uintptr_t>(address));
}

cudaDataType_t resultType(plan::DType dtype) {
  // Verified: F32 or BF16.
  return dtype == plan::DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

} // namespace

std::string gemmDisplayName(const plan::Gemm &gemm) {
  return fmt::format("cublasLt_fp8_gemm<{}, {}, {}>", gemm.n(), gemm.k(),
                     plan::EnumNameDType(gemm.c_dtype()));
}

StatusOr<PreparedGemm> prepareGemm(const plan::Gemm &gemm,
                                   const BufferAddresses &addresses,
                                   std::string where) {
  PreparedGemm prepared;
  prepared.where = std::move(where);
  prepared.name = gemmDisplayName(gemm);
  const struct {
    const char *name;
    const plan::Arg *arg;
    CUdeviceptr PreparedGemm::*address;
  } operands[] = {{"a", gemm.a(), &PreparedGemm::a},
                  {"a_scales", gemm.a_scales(), &PreparedGemm::aScales},
                  {"b", gemm.b(), &PreparedGemm::b},
                  {"b_scales", gemm.b_scales(), &PreparedGemm::bScales},
                  {"c", gemm.c(), &PreparedGemm::c}};
  for (const auto &operand : operands) {
    if (!operand.arg) // verified present; guards an unverified plan
      return Status::error("{}: {} is missing", prepared.where, operand.name);
    DSV3_ASSIGN_OR_RETURN(prepared.*operand.address,
                          resolveBufferAddress(*operand.arg, addresses,
                                               prepared.where, operand.name));
  }
  if (gemm.rows()) {
    prepared.rowsUnit = gemm.rows()->unit();
    prepared.rowsMultiplier = gemm.rows()->multiplier();
  }
  prepared.rowAlignment = gemm.row_alignment();
  prepared.n = gemm.n();
  prepared.k = gemm.k();
  prepared.cDtype = gemm.c_dtype();
  if (gemm.when())
    prepared.when = *gemm.when();
  if (gemm.also_when())
    prepared.alsoWhen = *gemm.also_when();
  return prepared;
}

bool gemmChosen(const PreparedGemm &gemm, const StepSizes &sizes) {
  return !gemm.omitted && sizeGuardsHold(gemm.when, gemm.alsoWhen, sizes);
}

StatusOr<int64_t> gemmRows(const PreparedGemm &gemm, const StepSizes &sizes) {
  int64_t rows;
  if (__builtin_mul_overflow(gemm.rowsMultiplier,
                             sizeValue(gemm.rowsUnit, sizes), &rows))
    return Status::error("{}: rows {} overflow at T={}, B={}, P={}",
                         gemm.where,
                         plan::formatSize(gemm.rowsUnit, gemm.rowsMultiplier),
                         sizes.tokens, sizes.sequences, sizes.pagesPerSequence);
  if (rows <= 0)
    return int64_t{0};
  const int64_t alignment = gemm.rowAlignment < 1 ? 1 : gemm.rowAlignment;
  int64_t padded;
  if (__builtin_add_overflow(rows, alignment - 1, &padded))
    return Status::error("{}: rows {} = {} overflow when rounded up to {}",
                         gemm.where,
                         plan::formatSize(gemm.rowsUnit, gemm.rowsMultiplier),
                         rows, alignment);
  return padded / alignment * alignment;
}

//===----------------------------------------------------------------------===//
// GemmContext
//===----------------------------------------------------------------------===//

StatusOr<std::unique_ptr<GemmContext>>
GemmContext::create(const Device &device, std::unique_ptr<CublasLt> library,
                    uint64_t workspaceBytes) {
  if (library->version() < kFirstBlockScaledVersion)
    return Status::error("{} is cuBLASLt {}, which has no block-scaled FP8 "
                         "GEMMs (they need cuBLASLt 12.9 or later)",
                         library->path(), library->versionText());
  DSV3_RETURN_IF_ERROR(library->createHandle().withPrefix(
      fmt::format("{} (cuBLASLt {}): ", library->path(),
                  library->versionText())));
  std::unique_ptr<GemmContext> context(
      new GemmContext(device, std::move(library)));
  DSV3_ASSIGN_OR_RETURN(context->workspace_,
                        device.allocate(workspaceBytes, "the cuBLASLt workspace"));
  return context;
}

GemmContext::~GemmContext() {
  for (auto &[key, matmul] : matmuls_)
    release(matmul);
}

void GemmContext::release(Matmul &matmul) {
  const CublasLtApi &api = library_->api();
  for (cublasLtMatrixLayout_t *layout :
       {&matmul.weight, &matmul.activation, &matmul.result})
    if (*layout) {
      api.layoutDestroy(*layout);
      *layout = nullptr;
    }
  if (matmul.desc) {
    api.descDestroy(matmul.desc);
    matmul.desc = nullptr;
  }
}

Status GemmContext::buildMatmul(const PreparedGemm &gemm, int64_t rows,
                                Matmul &matmul) {
  const CublasLtApi &api = library_->api();
  auto check = [&](cublasStatus_t status, std::string_view call) -> Status {
    if (status == CUBLAS_STATUS_SUCCESS) // the message is built only on failure
      return Status::success();
    return library_->check(status, fmt::format("{}: {} (n {}, k {}, M {})",
                                               gemm.where, call, gemm.n,
                                               gemm.k, rows));
  };
  auto setAttribute = [&](cublasLtMatmulDescAttributes_t attribute,
                          const auto &value, std::string_view name) {
    return check(api.descSetAttribute(matmul.desc, attribute, &value,
                                      sizeof value),
                 fmt::format("cublasLtMatmulDescSetAttribute({})", name));
  };
  DSV3_RETURN_IF_ERROR(check(
      api.descCreate(&matmul.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
      "cublasLtMatmulDescCreate"));
  const cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
  DSV3_RETURN_IF_ERROR(
      setAttribute(CUBLASLT_MATMUL_DESC_TRANSA, transposed, "TRANSA"));
  DSV3_RETURN_IF_ERROR(
      setAttribute(CUBLASLT_MATMUL_DESC_TRANSB, plain, "TRANSB"));
  // cuBLASLt's A is the weight b, its B the activation a (GemmStep.h).
  const void *weightScales = devicePointer(gemm.bScales);
  const void *activationScales = devicePointer(gemm.aScales);
  DSV3_RETURN_IF_ERROR(setAttribute(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                    weightScales, "A_SCALE_POINTER"));
  DSV3_RETURN_IF_ERROR(setAttribute(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                    activationScales, "B_SCALE_POINTER"));
  const int32_t weightScaleMode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  const int32_t activationScaleMode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  DSV3_RETURN_IF_ERROR(setAttribute(CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                    weightScaleMode,
                                    "A_SCALE_MODE BLK128x128_32F"));
  DSV3_RETURN_IF_ERROR(setAttribute(CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                    activationScaleMode,
                                    "B_SCALE_MODE VEC128_32F"));

  const uint64_t n = static_cast<uint64_t>(gemm.n);
  const uint64_t k = static_cast<uint64_t>(gemm.k);
  const uint64_t m = static_cast<uint64_t>(rows);
  DSV3_RETURN_IF_ERROR(check(
      api.layoutCreate(&matmul.weight, CUDA_R_8F_E4M3, k, n,
                       static_cast<int64_t>(k)),
      "cublasLtMatrixLayoutCreate (b)"));
  DSV3_RETURN_IF_ERROR(check(
      api.layoutCreate(&matmul.activation, CUDA_R_8F_E4M3, k, m,
                       static_cast<int64_t>(k)),
      "cublasLtMatrixLayoutCreate (a)"));
  DSV3_RETURN_IF_ERROR(check(
      api.layoutCreate(&matmul.result, resultType(gemm.cDtype), n, m,
                       static_cast<int64_t>(n)),
      "cublasLtMatrixLayoutCreate (c)"));

  cublasLtMatmulPreference_t preference = nullptr;
  DSV3_RETURN_IF_ERROR(check(api.preferenceCreate(&preference),
                             "cublasLtMatmulPreferenceCreate"));
  const uint64_t workspaceBytes = workspace_.size();
  Status preferred = check(
      api.preferenceSetAttribute(preference,
                                 CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                 &workspaceBytes, sizeof workspaceBytes),
      "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  cublasStatus_t searched = CUBLAS_STATUS_SUCCESS;
  if (preferred.ok())
    searched = api.algoGetHeuristic(library_->handle(), matmul.desc,
                                    matmul.weight, matmul.activation,
                                    matmul.result, matmul.result, preference,
                                    1, &heuristic, &found);
  api.preferenceDestroy(preference);
  DSV3_RETURN_IF_ERROR(preferred);
  // NOT_SUPPORTED is how the heuristic says it knows no algorithm.
  if (searched == CUBLAS_STATUS_NOT_SUPPORTED ||
      (searched == CUBLAS_STATUS_SUCCESS &&
       (found == 0 || heuristic.state != CUBLAS_STATUS_SUCCESS)))
    return Status::error(
        "{}: cuBLASLt {} ({}) has no algorithm for the block-scaled FP8 GEMM "
        "n {}, k {}, M {} with {} output on this GPU "
        "(cublasLtMatmulAlgoGetHeuristic found {})",
        gemm.where, library_->versionText(), library_->path(), gemm.n, gemm.k,
        rows, plan::EnumNameDType(gemm.cDtype), found);
  DSV3_RETURN_IF_ERROR(check(searched, "cublasLtMatmulAlgoGetHeuristic"));
  matmul.algo = heuristic.algo;
  return Status::success();
}

Status GemmContext::prepare(const PreparedGemm &gemm, const StepSizes &sizes) {
  if (!gemmChosen(gemm, sizes))
    return Status::success();
  DSV3_ASSIGN_OR_RETURN(int64_t rows, gemmRows(gemm, sizes));
  if (rows == 0)
    return Status::success();
  return matmulFor(gemm, rows).status();
}

StatusOr<const GemmContext::Matmul *>
GemmContext::matmulFor(const PreparedGemm &gemm, int64_t rows) {
  const auto key = std::make_pair(&gemm, rows);
  auto found = matmuls_.find(key);
  if (found != matmuls_.end())
    return &found->second;
  Matmul matmul;
  Status built = buildMatmul(gemm, rows, matmul);
  if (!built.ok()) {
    release(matmul);
    return built;
  }
  return &matmuls_.emplace(key, matmul).first->second;
}

Status runGemm(GemmContext &context, const PreparedGemm &gemm,
               const StepSizes &sizes) {
  if (!gemmChosen(gemm, sizes))
    return Status::success();
  DSV3_ASSIGN_OR_RETURN(int64_t rows, gemmRows(gemm, sizes));
  if (rows == 0) // no rows at these sizes: nothing to compute
    return Status::success();
  DSV3_ASSIGN_OR_RETURN(const GemmContext::Matmul *matmul,
                        context.matmulFor(gemm, rows));
  const CublasLt &library = *context.library_;
  const float alpha = 1.0f, beta = 0.0f;
  void *result = const_cast<void *>(devicePointer(gemm.c));
  const cublasStatus_t status = library.api().matmul(
      library.handle(), matmul->desc, &alpha, devicePointer(gemm.b),
      matmul->weight, devicePointer(gemm.a), matmul->activation, &beta,
      result, matmul->result, result, matmul->result, &matmul->algo,
      const_cast<void *>(devicePointer(context.workspace_.address())),
      context.workspace_.size(), context.device_.stream());
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status::success();
  return library.check(status, fmt::format("{}: cublasLtMatmul (n {}, k {}, "
                                           "M {})",
                                           gemm.where, gemm.n, gemm.k, rows));
}

} // namespace dsv3::exec
