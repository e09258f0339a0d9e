//===- CublasLt.cpp - cuBLASLt, loaded at run time ------------------------===//

#include "runtime/exec/CublasLt.h"

#include <dlfcn.h>

namespace dsv3::exec {

std::vector<std::string> defaultCublasLtLibraries() {
  return {"libcublasLt.so.13",
          "/usr/local/cuda/lib64/libcublasLt.so.13",
          "/usr/local/cuda/targets/x86_64-linux/lib/libcublasLt.so.13",
          "libcublasLt.so.12",
          "/usr/local/cuda/lib64/libcublasLt.so.12"};
}

StatusOr<std::unique_ptr<CublasLt>>
CublasLt::open(const std::vector<std::string> &candidates) {
  std::unique_ptr<CublasLt> lt(new CublasLt());
  std::string tried;
  auto note = [&](const std::string &candidate, const std::string &why) {
    tried += fmt::format("{}{} ({})", tried.empty() ? "" : "; ", candidate, why);
  };
  for (const std::string &candidate : candidates) {
    void *library = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char *error = ::dlerror();
      note(candidate, error ? error : "not found");
      continue;
    }
    // A library without one of the functions (an older cuBLASLt) is passed
    // over like a missing one: a later candidate may have them all.
    CublasLtApi api;
    const char *missing = nullptr;
#define DSV3_RESOLVE_CUBLASLT_MEMBER(member, symbol)                           \
  if (!missing) {                                                              \
    api.member =                                                               \
        reinterpret_cast<decltype(api.member)>(::dlsym(library, #symbol));     \
    if (!api.member)                                                           \
      missing = #symbol;                                                       \
  }
    DSV3_CUBLASLT_FUNCTIONS(DSV3_RESOLVE_CUBLASLT_MEMBER)
#undef DSV3_RESOLVE_CUBLASLT_MEMBER
    if (missing) {
      note(candidate, fmt::format("loaded, but it has no {}", missing));
      ::dlclose(library);
      continue;
    }
    lt->library_ = library;
    lt->path_ = candidate;
    lt->api_ = api;
    return lt;
  }
  if (candidates.empty())
    return Status::error("cannot load libcublasLt: no library paths to try");
  return Status::error("cannot load libcublasLt: tried {}", tried);
}

CublasLt::~CublasLt() {
  if (handle_)
    api_.destroy(handle_);
  if (library_)
    ::dlclose(library_);
}

std::string CublasLt::versionText() const {
  const size_t number = version();
  return fmt::format("{}.{}.{}", number / 10000, number / 100 % 100,
                     number % 100);
}

Status CublasLt::createHandle() {
  if (handle_)
    return Status::success();
  cublasLtHandle_t handle = nullptr;
  DSV3_RETURN_IF_ERROR(check(api_.create(&handle), "cublasLtCreate"));
  handle_ = handle;
  return Status::success();
}

Status CublasLt::check(cublasStatus_t status, std::string_view call) const {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status::success();
  const char *name = api_.getStatusName ? api_.getStatusName(status) : nullptr;
  const char *description =
      api_.getStatusString ? api_.getStatusString(status) : nullptr;
  return Status::error(
      "{}: {} ({})", call,
      name ? std::string(name)
           : fmt::format("cuBLAS status {}", static_cast<int>(status)),
      description ? description : "no description");
}

} // namespace dsv3::exec
