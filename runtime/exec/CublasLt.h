//===- CublasLt.h - cuBLASLt, loaded at run time -------------------*- C++ -*-===//
//
// Like the CUDA driver (Driver.h), cuBLASLt is opened with dlopen and its
// functions found with dlsym: cublasLt.h gives the prototypes, nothing links
// the library. So a runtime binary starts on a machine without it, and only
// a plan that runs cuBLASLt GEMMs (Gemm steps) or a tool that measures with
// it (dsv3-bench's GEMM peaks) needs it there.
//
// A CublasLt owns the library and at most one handle (cublasLtCreate, on the
// CUDA context current when it is created: the runtime's primary context,
// which cuBLASLt's own runtime shares).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_CUBLASLT_H
#define DSV3_RUNTIME_EXEC_CUBLASLT_H

#include "runtime/Status.h"

#include <cublasLt.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::exec {

/// X(member, symbol) for each cuBLASLt function the runtime and the tools
/// call.
#define DSV3_CUBLASLT_FUNCTIONS(X)                                             \
  X(getVersion, cublasLtGetVersion)                                            \
  X(getStatusName, cublasLtGetStatusName)                                      \
  X(getStatusString, cublasLtGetStatusString)                                  \
  X(create, cublasLtCreate)                                                    \
  X(destroy, cublasLtDestroy)                                                  \
  X(descCreate, cublasLtMatmulDescCreate)                                      \
  X(descDestroy, cublasLtMatmulDescDestroy)                                    \
  X(descSetAttribute, cublasLtMatmulDescSetAttribute)                          \
  X(layoutCreate, cublasLtMatrixLayoutCreate)                                  \
  X(layoutDestroy, cublasLtMatrixLayoutDestroy)                                \
  X(preferenceCreate, cublasLtMatmulPreferenceCreate)                          \
  X(preferenceDestroy, cublasLtMatmulPreferenceDestroy)                        \
  X(preferenceSetAttribute, cublasLtMatmulPreferenceSetAttribute)              \
  X(algoGetHeuristic, cublasLtMatmulAlgoGetHeuristic)                          \
  X(matmul, cublasLtMatmul)

/// Pointers to the cuBLASLt functions, named after them without the prefix.
struct CublasLtApi {
#define DSV3_DECLARE_CUBLASLT_MEMBER(member, symbol)                           \
  decltype(&::symbol) member = nullptr;
  DSV3_CUBLASLT_FUNCTIONS(DSV3_DECLARE_CUBLASLT_MEMBER)
#undef DSV3_DECLARE_CUBLASLT_MEMBER
};

/// Where CublasLt::open looks, in order: the dynamic loader's search path
/// (LD_LIBRARY_PATH, the ld.so cache) and then the CUDA toolkit's usual
/// folders, CUDA 13 before 12.
std::vector<std::string> defaultCublasLtLibraries();

class CublasLt {
public:
  /// Opens the first of `candidates` that loads and resolves every function
  /// of DSV3_CUBLASLT_FUNCTIONS. The error names every path tried and why
  /// each failed.
  static StatusOr<std::unique_ptr<CublasLt>>
  open(const std::vector<std::string> &candidates = defaultCublasLtLibraries());
  /// Destroys the handle, then closes the library.
  ~CublasLt();
  CublasLt(const CublasLt &) = delete;
  CublasLt &operator=(const CublasLt &) = delete;

  const CublasLtApi &api() const { return api_; }
  /// The path that loaded, as given to dlopen.
  const std::string &path() const { return path_; }
  /// cublasLtGetVersion: major * 10000 + minor * 100 + patch (130100 for
  /// 13.1.0).
  size_t version() const { return api_.getVersion(); }
  /// "13.1.0".
  std::string versionText() const;

  /// Creates the handle on the current CUDA context (once: later calls do
  /// nothing).
  Status createHandle();
  /// Null until createHandle succeeded.
  cublasLtHandle_t handle() const { return handle_; }

  /// Success, or "CALL: CUBLAS_STATUS_... (description)".
  Status check(cublasStatus_t status, std::string_view call) const;

private:
  CublasLt() = default;

  void *library_ = nullptr;
  std::string path_;
  CublasLtApi api_;
  cublasLtHandle_t handle_ = nullptr;
};

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_CUBLASLT_H
