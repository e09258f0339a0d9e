//===- PlanWriter.h - a CudaProgram and its cubin as a plan file -*- C++ -*-===//

#ifndef DSV3_COMPILER_PLANWRITER_H
#define DSV3_COMPILER_PLANWRITER_H

#include "frontend/ModelConfig.h"
#include "targets/cuda/CodeGen.h"
#include "targets/cuda/NvrtcCompiler.h"

#include <cstdint>
#include <vector>

namespace dsv3 {

struct PlanLimits {
  int64_t maxTokens = 8192;
  int64_t maxSequences = 256;
  int64_t pageSize = 64;
};

/// Serializes the program, its compiled module and the model's sizes into a
/// verified plan buffer (runtime/plan/Plan.fbs).
std::vector<uint8_t> buildPlan(const CudaProgram &program,
                               const CompiledCudaModule &module,
                               const CudaArch &arch, const ModelConfig &config,
                               const PlanLimits &limits);

} // namespace dsv3

#endif // DSV3_COMPILER_PLANWRITER_H
