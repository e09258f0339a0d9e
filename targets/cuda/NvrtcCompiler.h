//===- NvrtcCompiler.h - kernel templates to cubin, in process ----*- C++ -*-===//
//
// The code generator writes one CUDA translation unit per module that includes
// kernel templates from targets/cuda/kernels/ and names the instances it needs
// ("dsv3k::rms_norm<7168>"). NVRTC compiles it for the target architecture
// without a GPU; the templates are embedded in the binary, so dsv3c needs only
// the CUDA toolkit's headers and libnvrtc at compile time.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TARGETS_CUDA_NVRTCCOMPILER_H
#define DSV3_TARGETS_CUDA_NVRTCCOMPILER_H

#include "targets/cuda/CudaArch.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace dsv3 {

/// A kernel template file embedded in the binary, by its path in the tree.
struct EmbeddedSource {
  const char *path;     ///< e.g. "targets/cuda/kernels/norm.cuh"
  const char *contents;
};

/// Every file under targets/cuda/kernels/.
llvm::ArrayRef<EmbeddedSource> embeddedKernelSources();

struct CompiledCudaModule {
  std::vector<char> cubin;
  /// The mangled name of each requested instance, in request order.
  std::vector<std::string> loweredNames;
};

/// Compiles `source` (which may include any embedded kernel template by its
/// tree path) for `arch` and instantiates each of `instances`, a name
/// expression such as "dsv3k::rms_norm<7168>". The error carries NVRTC's log.
llvm::Expected<CompiledCudaModule>
compileCudaModule(llvm::StringRef source, const CudaArch &arch,
                  llvm::ArrayRef<std::string> instances);

} // namespace dsv3

#endif // DSV3_TARGETS_CUDA_NVRTCCOMPILER_H
