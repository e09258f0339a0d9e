//===- CodeGen.h - kernel ops to template instances and launches -*- C++ -*-===//
//
// Turns a lowered, memory-planned module (after dsv3-plan-memory) into a
// CudaProgram: the kernel template instances to compile, the device weights
// and constants they read, and per entry point the launches in order, each
// argument resolved to an arena offset, a weight, a constant, a step input, a
// layer's KV cache, or a size of the step. The plan writer serializes it;
// NvrtcCompiler compiles its source.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TARGETS_CUDA_CODEGEN_H
#define DSV3_TARGETS_CUDA_CODEGEN_H

#include "targets/cuda/CudaArch.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dsv3 {

/// Run-time sizes of a step (plan.fbs SizeUnit).
enum class SizeUnit { Constant, Tokens, Sequences, PagesPerSequence, ResumedRuns };

/// multiplier x size(unit).
struct SizeExpr {
  SizeUnit unit = SizeUnit::Constant;
  int64_t multiplier = 1;
};

/// ceil(multiplier x size(unit) / divisor) + offset.
struct LaunchDimExpr {
  SizeUnit unit = SizeUnit::Constant;
  int64_t multiplier = 1, divisor = 1, offset = 0;
};

enum class StepInputRole { Hidden, Tokens, Positions, TokenSeq, BlockTable, LastRows };

enum class WeightTransformKind { Copy, Stack, DequantizeBf16 };

struct CheckpointSource {
  std::string name, dtype; // dtype: safetensors name (BF16, F32, F8_E4M3)
  std::vector<int64_t> shape;
};

/// One device tensor filled at load time.
struct DeviceWeight {
  std::vector<CheckpointSource> sources;
  WeightTransformKind transform = WeightTransformKind::Copy;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<int64_t> block; ///< DequantizeBf16: the scale block
};

struct DeviceConstant {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

/// A buffer seen through a TMA tensor map (plan.fbs TensorMapArg): the
/// runtime encodes it for each step's sizes and the kernel takes the 128-byte
/// CUtensorMap by value (a `const __grid_constant__` parameter).
struct TensorMapSpec {
  std::string dtype; ///< as DeviceWeight::dtype: BF16, F16, F32, F8_E4M3, I32
  /// Extents in elements, innermost first; the tensor is dense row-major.
  llvm::SmallVector<SizeExpr, 3> dims;
  /// The box (tile) one copy moves, in elements, innermost first.
  llvm::SmallVector<uint32_t, 3> box;
  unsigned swizzleBytes = 0; ///< 0 (none), 32, 64 or 128
};

struct KernelArg {
  enum Kind { Arena, Weight, Constant, Input, KvCache, Null, Int, Float };
  Kind kind = Null;
  int64_t index = 0; ///< Arena: byte offset; Weight/Constant: index; Input: role; KvCache: layer
  SizeExpr size;     ///< Int
  double value = 0;  ///< Float
  /// Arena, Weight, Constant, Input, KvCache: when set, the kernel takes a
  /// tensor map over the buffer instead of its address.
  std::optional<TensorMapSpec> tensorMap;

  static KernelArg make(Kind kind, int64_t index = 0) {
    KernelArg arg;
    arg.kind = kind;
    arg.index = index;
    return arg;
  }
};

struct KernelLaunch {
  unsigned kernel = 0; ///< index into CudaProgram::instances
  LaunchDimExpr grid[3];
  int block[3] = {1, 1, 1};
  unsigned sharedBytes = 0; ///< dynamic shared memory
  std::vector<KernelArg> args;
  std::string op; ///< the kernel op's name
  /// Runs only when min <= size <= max, for `when` and `alsoWhen` both
  /// (size Constant with multiplier 0: no condition). `when` picks a
  /// candidate kernel by rows; `alsoWhen` is the op's step guard.
  struct Condition {
    SizeExpr size{SizeUnit::Constant, 0};
    int64_t min = 0, max = 0;
    bool present() const { return size.multiplier != 0; }
  };
  Condition when, alsoWhen;
};

struct EntryOutput {
  uint64_t offset = 0;
  std::string dtype;
  SizeExpr rows;
  int64_t rowElements = 0;
};

struct EntryProgram {
  std::string name;
  uint64_t arenaBytes = 0;
  std::vector<StepInputRole> inputs;
  std::vector<EntryOutput> outputs;
  std::vector<KernelLaunch> launches;
};

struct CudaProgram {
  std::vector<std::string> instances; ///< "dsv3k::rms_norm<7168>"
  std::vector<DeviceWeight> weights;
  std::vector<DeviceConstant> constants;
  std::vector<EntryProgram> entries;
  int sampler = -1; ///< instance of sample_tokens<vocab>
  int64_t pageSize = 64;

  /// The translation unit that NVRTC compiles: every kernel header.
  std::string source() const;
};

/// Builds the program of a lowered module for `arch` (its tuning bounds pick
/// the kernel variants); errors name the op at fault.
llvm::Expected<CudaProgram> generateCudaProgram(mlir::ModuleOp module,
                                                const CudaArch &arch,
                                                int64_t pageSize,
                                                int64_t vocabSize);

/// Whether `arch` gives mla_prefill.cuh's attention the shared memory it
/// needs at this head shape (sm_89's 99 KB per block does not suffice at
/// DeepSeek-V3's): dsv3c attends prefill steps directly only if so.
bool mlaPrefillAttentionFits(const CudaArch &arch, int64_t nope, int64_t rope, int64_t v);

} // namespace dsv3

#endif // DSV3_TARGETS_CUDA_CODEGEN_H
