//===- Driver.cpp - the CUDA driver API, loaded at run time ---------------===//

#include "runtime/exec/Driver.h"

#include <dlfcn.h>

namespace dsv3::exec {

namespace {
/// cuGetProcAddress as of CUDA 12 (with the query result), looked up by its
/// exported name; every other function is found through it.
using GetProcAddressFn = CUresult (*)(const char *, void **, int, cuuint64_t,
                                      CUdriverProcAddressQueryResult *);
} // namespace

StatusOr<std::unique_ptr<CudaDriver>> CudaDriver::load() {
  std::unique_ptr<CudaDriver> driver(new CudaDriver());
  driver->library_ = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver->library_) {
    const char *reason = ::dlerror();
    return Status::error("cannot load the CUDA driver (libcuda.so.1): {}; is "
                         "an NVIDIA driver installed?",
                         reason ? reason : "unknown error");
  }
  auto getProcAddress = reinterpret_cast<GetProcAddressFn>(
      ::dlsym(driver->library_, "cuGetProcAddress_v2"));
  if (!getProcAddress)
    return Status::error("the CUDA driver (libcuda.so.1) has no "
                         "cuGetProcAddress_v2: it is older than CUDA 12; this "
                         "runtime needs a driver for CUDA {}.{} or later",
                         CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);

  auto resolve = [&](const char *symbol, void **function) -> Status {
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult result = getProcAddress(symbol, function, CUDA_VERSION,
                                     CU_GET_PROC_ADDRESS_DEFAULT, &found);
    if (result == CUDA_SUCCESS && found == CU_GET_PROC_ADDRESS_SUCCESS &&
        *function)
      return Status::success();
    if (found == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT)
      return Status::error("the CUDA driver is too old: {} needs a driver for "
                           "CUDA {}.{} or later",
                           symbol, CUDA_VERSION / 1000,
                           CUDA_VERSION % 1000 / 10);
    return Status::error("the CUDA driver lacks {} (cuGetProcAddress result "
                         "{}, query result {})",
                         symbol, static_cast<int>(result),
                         static_cast<int>(found));
  };
#define DSV3_RESOLVE_DRIVER_MEMBER(member, symbol)                             \
  DSV3_RETURN_IF_ERROR(                                                        \
      resolve(#symbol, reinterpret_cast<void **>(&driver->api_.member)));
  DSV3_CUDA_DRIVER_FUNCTIONS(DSV3_RESOLVE_DRIVER_MEMBER)
#undef DSV3_RESOLVE_DRIVER_MEMBER

  DSV3_RETURN_IF_ERROR(driver->check(driver->api_.init(0), "cuInit"));
  return driver;
}

CudaDriver::~CudaDriver() {
  if (library_)
    ::dlclose(library_);
}

Status CudaDriver::check(CUresult result, std::string_view call) const {
  if (result == CUDA_SUCCESS)
    return Status::success();
  const char *name = nullptr, *description = nullptr;
  if (api_.getErrorName)
    api_.getErrorName(result, &name);
  if (api_.getErrorString)
    api_.getErrorString(result, &description);
  return Status::error("{}: {} ({})", call,
                       name ? name : fmt::format("CUDA error {}",
                                                 static_cast<int>(result)),
                       description ? description : "no description");
}

} // namespace dsv3::exec
