//===- LaunchStep.h - the Launch step: a kernel on the stream ------*- C++ -*-===//
//
// A Launch names a kernel, its grid as affine functions of the step's sizes,
// its block, dynamic shared memory and arguments. The executor prepares each
// Launch once (buffer arguments become device addresses: arena base +
// offset, a weight, a constant, a step input, a KV-cache layer, or null) and
// per step resolves what depends on the step's sizes (int arguments and the
// grid) and queues it with cuLaunchKernel (cuLaunchKernelEx for a dependent
// launch). No host synchronization.
//
// Kernel parameters are what the kernel templates take: pointers (8 bytes),
// int (4 bytes, two's complement) and float (4 bytes). cuLaunchKernel reads
// each parameter's size from the cubin, so each value sits at the start of
// its own 8-byte slot.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_LAUNCHSTEP_H
#define DSV3_RUNTIME_EXEC_LAUNCHSTEP_H

#include "runtime/Status.h"
#include "runtime/exec/Device.h"
#include "runtime/plan/PlanFile.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace dsv3::exec {

/// The run-time sizes of one step.
struct StepSizes {
  int64_t tokens = 0;           ///< T
  int64_t sequences = 0;        ///< B
  int64_t pagesPerSequence = 0; ///< P, the block table's width
};

/// size(unit): T, B, P, or 1 for SizeUnit::Constant.
int64_t sizeValue(plan::SizeUnit unit, const StepSizes &sizes);

/// multiplier x size(unit) as a kernel's int; fails when it does not fit.
StatusOr<int32_t> resolveInt(plan::SizeUnit unit, int64_t multiplier,
                             const StepSizes &sizes);

/// ceil(multiplier x size(unit) / divisor) + offset. May be ≤ 0 (an empty
/// grid); fails only on 64-bit overflow.
StatusOr<int64_t> resolveLaunchDim(const plan::LaunchDim &dim,
                                   const StepSizes &sizes);

/// Device addresses of everything a buffer argument may point at.
struct BufferAddresses {
  CUdeviceptr arena = 0;
  std::vector<CUdeviceptr> weights;
  std::vector<CUdeviceptr> constants;
  std::vector<CUdeviceptr> kvCacheLayers;
  /// By plan::StepInput; 0 for inputs that have no buffer.
  std::array<CUdeviceptr, 6> inputs{};
};

/// The storage of one kernel parameter.
union KernelParam {
  CUdeviceptr pointer;
  int32_t integer;
  float real;
};

/// One argument, with everything that does not depend on the step resolved.
struct PreparedArg {
  enum class Kind { Pointer, Int, Float } kind = Kind::Pointer;
  KernelParam fixed{}; ///< Pointer and Float: the value
  plan::SizeUnit unit = plan::SizeUnit::Constant; ///< Int
  int64_t multiplier = 0;                          ///< Int
};

/// A Launch ready to run: the kernel's function and fixed arguments.
struct PreparedLaunch {
  std::string where; ///< "entry point 'decode' step 3 (rms_norm)", for errors
  uint32_t kernel = 0;
  CUfunction function = nullptr; ///< set by the executor after loading
  std::array<plan::LaunchDim, 3> grid;
  std::array<unsigned, 3> block{};
  unsigned sharedBytes = 0;
  std::vector<PreparedArg> args;
  /// The sizes this launch runs for; absent: all.
  std::optional<plan::SizeRange> when;
  /// Launched with programmatic stream serialization: its blocks may start
  /// while the previous kernel on the stream finishes (the plan's kernels
  /// wait for it first; Target.dependent_launches).
  bool dependentLaunch = false;
};

/// Resolves `launch` (from a verified plan) against `addresses`. Fails when
/// an argument points at a buffer the addresses lack (an input the executor
/// has no buffer for).
StatusOr<PreparedLaunch> prepareLaunch(const plan::Launch &launch,
                                       const BufferAddresses &addresses,
                                       std::string where);

/// A launch with every step-dependent value resolved.
struct ResolvedLaunch {
  std::array<int64_t, 3> grid{};
  bool empty = false; ///< some grid dimension ≤ 0: nothing to launch
  std::vector<KernelParam> params;
  /// cuLaunchKernel's kernelParams: &params[i].
  std::vector<void *> paramPointers;
};

/// Fills `out` for `sizes` (reusing its storage); `out.empty` when the grid
/// is empty or `sizes` fall outside the launch's `when` range. Fails when an
/// int does not fit in 32 bits or a grid dimension exceeds CUDA's limits.
Status resolveLaunch(const PreparedLaunch &launch, const StepSizes &sizes,
                     ResolvedLaunch &out);

/// Resolves and queues `launch` on the device's stream (nothing for an empty
/// grid). `scratch` is reused between calls to avoid allocations.
Status runLaunch(const Device &device, const PreparedLaunch &launch,
                 const StepSizes &sizes, ResolvedLaunch &scratch);

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_LAUNCHSTEP_H
