//===- Driver.h - the CUDA driver API, loaded at run time ----------*- C++ -*-===//
//
// The runtime calls the CUDA driver through function pointers that it looks
// up when a Device opens: dlopen("libcuda.so.1"), then cuGetProcAddress for
// each entry point at the version of the headers we compile against. Nothing
// links libcuda, so every runtime binary starts (and its CPU unit tests run)
// on machines without an NVIDIA driver; only opening a Device needs one, and
// its absence is an ordinary error message.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_DRIVER_H
#define DSV3_RUNTIME_EXEC_DRIVER_H

#include "runtime/Status.h"

#include <cuda.h>

#include <memory>
#include <string>
#include <string_view>

namespace dsv3::exec {

// Every driver function the runtime calls: (member, driver name). The
// member's type is the header's prototype (cuda.h maps names such as
// cuMemAlloc to their current version, cuMemAlloc_v2), and cuGetProcAddress
// returns that same version for CUDA_VERSION.
#define DSV3_CUDA_DRIVER_FUNCTIONS(X)                                          \
  X(init, cuInit)                                                              \
  X(driverGetVersion, cuDriverGetVersion)                                      \
  X(getErrorName, cuGetErrorName)                                              \
  X(getErrorString, cuGetErrorString)                                          \
  X(deviceGetCount, cuDeviceGetCount)                                          \
  X(deviceGet, cuDeviceGet)                                                    \
  X(deviceGetName, cuDeviceGetName)                                            \
  X(deviceGetAttribute, cuDeviceGetAttribute)                                  \
  X(deviceTotalMem, cuDeviceTotalMem)                                          \
  X(devicePrimaryCtxRetain, cuDevicePrimaryCtxRetain)                          \
  X(devicePrimaryCtxRelease, cuDevicePrimaryCtxRelease)                        \
  X(ctxSetCurrent, cuCtxSetCurrent)                                            \
  X(memGetInfo, cuMemGetInfo)                                                  \
  X(memAlloc, cuMemAlloc)                                                      \
  X(memFree, cuMemFree)                                                        \
  X(memHostAlloc, cuMemHostAlloc)                                              \
  X(memFreeHost, cuMemFreeHost)                                                \
  X(memcpyHtoDAsync, cuMemcpyHtoDAsync)                                        \
  X(memcpyDtoHAsync, cuMemcpyDtoHAsync)                                        \
  X(memcpyDtoDAsync, cuMemcpyDtoDAsync)                                        \
  X(memsetD8Async, cuMemsetD8Async)                                            \
  X(streamCreate, cuStreamCreate)                                              \
  X(streamDestroy, cuStreamDestroy)                                            \
  X(streamSynchronize, cuStreamSynchronize)                                    \
  X(eventCreate, cuEventCreate)                                                \
  X(eventDestroy, cuEventDestroy)                                              \
  X(eventRecord, cuEventRecord)                                                \
  X(eventSynchronize, cuEventSynchronize)                                      \
  X(eventElapsedTime, cuEventElapsedTime)                                      \
  X(moduleLoadData, cuModuleLoadData)                                          \
  X(moduleUnload, cuModuleUnload)                                              \
  X(moduleGetFunction, cuModuleGetFunction)                                    \
  X(moduleGetGlobal, cuModuleGetGlobal)                                        \
  X(funcSetAttribute, cuFuncSetAttribute)                                      \
  X(launchKernel, cuLaunchKernel)                                              \
  X(launchKernelEx, cuLaunchKernelEx)                                          \
  X(tensorMapEncodeTiled, cuTensorMapEncodeTiled)                              \
  X(streamBeginCapture, cuStreamBeginCapture)                                  \
  X(streamEndCapture, cuStreamEndCapture)                                      \
  X(graphInstantiateWithFlags, cuGraphInstantiateWithFlags)                    \
  X(graphLaunch, cuGraphLaunch)                                                \
  X(graphDestroy, cuGraphDestroy)                                              \
  X(graphExecDestroy, cuGraphExecDestroy)

/// Pointers to the driver's functions; all set once CudaDriver::load succeeds.
struct DriverApi {
#define DSV3_DECLARE_DRIVER_MEMBER(member, symbol)                             \
  decltype(&symbol) member = nullptr;
  DSV3_CUDA_DRIVER_FUNCTIONS(DSV3_DECLARE_DRIVER_MEMBER)
#undef DSV3_DECLARE_DRIVER_MEMBER
};

/// The loaded driver library and its function table.
class CudaDriver {
public:
  /// Loads libcuda.so.1, resolves every function and calls cuInit(0).
  static StatusOr<std::unique_ptr<CudaDriver>> load();
  ~CudaDriver();
  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

  const DriverApi &api() const { return api_; }

  /// Success for CUDA_SUCCESS; otherwise "CALL: CUDA_ERROR_NAME (description)".
  Status check(CUresult result, std::string_view call) const;

private:
  CudaDriver() = default;

  void *library_ = nullptr;
  DriverApi api_;
};

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_DRIVER_H
