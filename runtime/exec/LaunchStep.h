//===- LaunchStep.h - the Launch step: a kernel on the stream ------*- C++ -*-===//
//
// A Launch names a kernel, its grid as affine functions of the step's sizes,
// its block, dynamic shared memory and arguments. The executor prepares each
// Launch once (buffer arguments become device addresses: arena base +
// offset, a weight, a constant, a step input, a KV-cache layer, or null) and
// per step resolves what depends on the step's sizes (int arguments, tensor
// maps and the grid) and queues it with cuLaunchKernel (cuLaunchKernelEx for
// a dependent launch). No host synchronization.
//
// Kernel parameters are what the kernel templates take: pointers (8 bytes),
// int (4 bytes, two's complement), float (4 bytes) and TMA tensor maps
// (CUtensorMap, 128 bytes, a `const __grid_constant__` parameter passed by
// value). cuLaunchKernel reads each parameter's size from the cubin, so each
// scalar sits at the start of its own 8-byte slot and each map in its own
// aligned 128 bytes.
//
// A tensor map describes a buffer whose extents may depend on the step (an
// activation of T rows), so it is encoded per step with
// cuTensorMapEncodeTiled, a host-only call that fills the 128 bytes. A CUDA
// graph copies the parameters when it captures a launch, so a replayed step
// keeps the maps of its own sizes.
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
#include <string_view>
#include <vector>

namespace dsv3::exec {

/// The run-time sizes of one step.
struct StepSizes {
  int64_t tokens = 0;           ///< T
  int64_t sequences = 0;        ///< B
  int64_t pagesPerSequence = 0; ///< P, the block table's width
  /// Runs that resume a sequence (plan::SizeUnit::ResumedRuns): see
  /// countResumedRuns.
  int64_t resumedRuns = 0;
};

/// The step's runs (longest stretches of rows of one sequence at consecutive
/// positions) whose first position is not 0. None: every key a token
/// attends to is a row of this step, `positions[t]` rows before it.
int64_t countResumedRuns(const std::vector<int32_t> &positions,
                         const std::vector<int32_t> &tokenSeq);

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

/// The device address a Buffer or TensorMap argument `arg` (of a verified
/// plan) points at; 0 for Space::Null. Fails when `addresses` lack the
/// buffer (an input the executor has no buffer for), naming `where` and
/// `argName` ("arg 3", "a_scales").
StatusOr<CUdeviceptr> resolveBufferAddress(const plan::Arg &arg,
                                           const BufferAddresses &addresses,
                                           std::string_view where,
                                           std::string_view argName);

/// Whether a step with these size guards (plan.fbs SizeRange: Launch.when,
/// also_when and the same on Gemm) runs at `sizes`: every present range
/// holds.
bool sizeGuardsHold(const std::optional<plan::SizeRange> &when,
                    const std::optional<plan::SizeRange> &alsoWhen,
                    const StepSizes &sizes);

/// The storage of one kernel parameter.
union KernelParam {
  CUdeviceptr pointer;
  int32_t integer;
  float real;
};

/// A TensorMap argument's tensor (plan.fbs TensorMapArg): dense row-major,
/// extents innermost first.
struct TensorMapShape {
  plan::DType dtype = plan::DType::BF16;
  size_t rank = 0;
  std::array<plan::Size, plan::kMaxTensorMapRank> dims{}; ///< extents, in elements
  std::array<uint32_t, plan::kMaxTensorMapRank> box{};    ///< one copy's tile
  uint32_t swizzleBytes = 0;                        ///< 0, 32, 64 or 128
};

/// One argument, with everything that does not depend on the step resolved.
struct PreparedArg {
  enum class Kind { Pointer, Int, Float, TensorMap } kind = Kind::Pointer;
  KernelParam fixed{}; ///< Pointer and Float: the value; TensorMap: the base
  plan::SizeUnit unit = plan::SizeUnit::Constant; ///< Int
  int64_t multiplier = 0;                          ///< Int
  TensorMapShape map;                              ///< TensorMap
};

/// A Launch ready to run: the kernel's function and fixed arguments.
struct PreparedLaunch {
  std::string where; ///< "entry point 'decode' step 3 (rms_norm)", for errors
  /// The kernel's template instance ("dsv3k::rms_norm<7168>", or its mangled
  /// name when the plan has none), set by the executor: what a launch
  /// observer reports.
  std::string name;
  uint32_t kernel = 0;
  CUfunction function = nullptr; ///< set by the executor after loading
  std::array<plan::LaunchDim, 3> grid;
  std::array<unsigned, 3> block{};
  unsigned sharedBytes = 0;
  std::vector<PreparedArg> args;
  /// The sizes this launch runs for (both must hold); absent: all.
  std::optional<plan::SizeRange> when, alsoWhen;
  /// Launched with programmatic stream serialization: its blocks may start
  /// while the previous kernel on the stream finishes (the plan's kernels
  /// wait for it first; Target.dependent_launches).
  bool dependentLaunch = false;
  /// Left out of every step (ExecutorOptions::omitKernels).
  bool omitted = false;
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
  /// Some grid dimension or tensor-map extent ≤ 0: nothing to launch.
  bool empty = false;
  std::vector<KernelParam> params;
  /// The encoded maps of the TensorMap arguments, in argument order.
  /// CUtensorMap is over-aligned (the driver needs 64 bytes), which the
  /// vector's allocation honors (C++17 aligned new).
  std::vector<CUtensorMap> maps;
  /// cuLaunchKernel's kernelParams: &params[i], or for a TensorMap argument
  /// its map in `maps`.
  std::vector<void *> paramPointers;
};

/// cuTensorMapEncodeTiled's signature: the executor passes the driver's
/// function, the tests a fake that records what it is asked for.
using TensorMapEncoder = decltype(&cuTensorMapEncodeTiled);

/// Whether `launch` is chosen for a step of these sizes: it is not omitted
/// and both of its size guards hold (another candidate kernel covers the
/// other sizes). A chosen launch may still have an empty grid.
bool launchChosen(const PreparedLaunch &launch, const StepSizes &sizes);

/// Fills `out` for `sizes` (reusing its storage), encoding each TensorMap
/// argument with `encode` (which only a launch with such arguments needs);
/// `out.empty` when the grid or a tensor map is empty or `sizes` fall
/// outside the launch's `when` range. Fails when an int does not fit in 32
/// bits, a grid dimension exceeds CUDA's limits or `encode` refuses a map.
/// Makes no other driver call, so it runs without a GPU.
Status resolveLaunch(const PreparedLaunch &launch, const StepSizes &sizes,
                     ResolvedLaunch &out, TensorMapEncoder encode);

/// Resolves (encoding tensor maps with the driver's cuTensorMapEncodeTiled)
/// and queues `launch` on the device's stream (nothing for an empty launch).
/// `scratch` is reused between calls to avoid allocations.
Status runLaunch(const Device &device, const PreparedLaunch &launch,
                 const StepSizes &sizes, ResolvedLaunch &scratch);

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_LAUNCHSTEP_H
