//===- NvrtcCompiler.cpp - kernel templates to cubin, in process ----------===//

#include "targets/cuda/NvrtcCompiler.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <nvrtc.h>

namespace dsv3 {

static const EmbeddedSource kEmbeddedSources[] = {
#include "targets/cuda/EmbeddedKernelSources.inc"
};

llvm::ArrayRef<EmbeddedSource> embeddedKernelSources() {
  return kEmbeddedSources;
}

namespace {
/// Owns an nvrtcProgram.
class Program {
public:
  ~Program() {
    if (program)
      nvrtcDestroyProgram(&program);
  }
  nvrtcProgram program = nullptr;
};
} // namespace

static llvm::Error nvrtcError(llvm::StringRef what, nvrtcResult result,
                              llvm::StringRef log = "") {
  std::string message =
      llvm::formatv("NVRTC {0} failed: {1}", what, nvrtcGetErrorString(result));
  if (!log.empty())
    message += "\n" + log.str();
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Expected<CompiledCudaModule>
compileCudaModule(llvm::StringRef source, const CudaArch &arch,
                  llvm::ArrayRef<std::string> instances) {
  if (!llvm::sys::fs::is_directory(DSV3_CUDA_INCLUDE_DIR))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the CUDA toolkit headers are missing from " DSV3_CUDA_INCLUDE_DIR
        " (NVRTC needs cuda_bf16.h and cuda_fp8.h)");

  std::vector<const char *> headerContents, headerNames;
  for (const EmbeddedSource &file : embeddedKernelSources()) {
    headerNames.push_back(file.path);
    headerContents.push_back(file.contents);
  }
  Program program;
  std::string sourceText = source.str();
  if (nvrtcResult r = nvrtcCreateProgram(
          &program.program, sourceText.c_str(), "dsv3_module.cu",
          static_cast<int>(headerNames.size()), headerContents.data(),
          headerNames.data());
      r != NVRTC_SUCCESS)
    return nvrtcError("program creation", r);
  for (const std::string &instance : instances)
    if (nvrtcResult r =
            nvrtcAddNameExpression(program.program, instance.c_str());
        r != NVRTC_SUCCESS)
      return nvrtcError(("naming '" + instance + "'").c_str(), r);

  std::string archOption = ("--gpu-architecture=" + arch.name).str();
  const char *options[] = {archOption.c_str(), "-std=c++17",
                           "-I" DSV3_CUDA_INCLUDE_DIR,
                           "-I" DSV3_CUDA_INCLUDE_DIR "/cccl"};
  nvrtcResult compiled = nvrtcCompileProgram(
      program.program, static_cast<int>(std::size(options)), options);
  size_t logSize = 0;
  nvrtcGetProgramLogSize(program.program, &logSize);
  std::string log(logSize, '\0');
  if (logSize)
    nvrtcGetProgramLog(program.program, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n'))
    log.pop_back();
  if (compiled != NVRTC_SUCCESS)
    return nvrtcError(("compilation for " + arch.name).str(), compiled, log);

  CompiledCudaModule module;
  size_t cubinSize = 0;
  if (nvrtcResult r = nvrtcGetCUBINSize(program.program, &cubinSize);
      r != NVRTC_SUCCESS)
    return nvrtcError("cubin size", r);
  module.cubin.resize(cubinSize);
  if (nvrtcResult r = nvrtcGetCUBIN(program.program, module.cubin.data());
      r != NVRTC_SUCCESS)
    return nvrtcError("cubin", r);
  for (const std::string &instance : instances) {
    const char *lowered = nullptr;
    if (nvrtcResult r = nvrtcGetLoweredName(program.program, instance.c_str(),
                                            &lowered);
        r != NVRTC_SUCCESS)
      return nvrtcError(("lowered name of '" + instance + "'").c_str(), r);
    module.loweredNames.push_back(lowered);
  }
  return module;
}

} // namespace dsv3
