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

/// A block-scaled FP8 GEMM that cuBLASLt runs (plan.fbs Gemm): c[M, n] =
/// a[M, k] · b[n, k]ᵀ with a's scales block-major ([k/128][M]), M = rows
/// rounded up to rowGroup.
struct LibraryGemm {
  KernelArg a, aScales, b, bScales, c;
  SizeExpr rows;
  int64_t rowGroup = 16;
  int64_t n = 0, k = 0;
  std::string cDtype; ///< as DeviceWeight::dtype: F32 or BF16
};

/// One step of an entry point: a kernel launch, or (when `library` is set) a
/// library GEMM, which uses only `library`, `op` and the conditions.
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
  std::optional<LibraryGemm> library;
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
  /// Kernels record when they start (common.cuh's DSV3_TIMELINE).
  bool timeline = false;

  /// The translation unit that NVRTC compiles: every kernel header.
  std::string source() const;
};

struct CodeGenOptions {
  int64_t pageSize = 64;
  int64_t vocabSize = 0;
  /// The plan's step limits (dsv3-plan-memory's): scratch buffers are sized
  /// for them.
  int64_t maxTokens = 8192, maxSequences = 256;
  /// Dense FP8 x FP8 GEMMs may run as cuBLASLt's block-scaled GEMM (plan
  /// Gemm steps) where the target's tuning table says it is faster.
  bool libraryGemms = true;
  /// > 0: from this many rows on every FP8 x FP8 GEMM cuBLASLt can take,
  /// whatever the tuning table says (to test the library path on small
  /// models and short prompts).
  int64_t libraryGemmMinRows = 0;
  /// Every kernel records the moment it passes its wait (dsv3-bench
  /// --timeline); for diagnosis, it costs an atomic per kernel.
  bool timeline = false;
};

/// Builds the program of a lowered module for `arch` (its tuning bounds pick
/// the kernel variants); errors name the op at fault.
llvm::Expected<CudaProgram> generateCudaProgram(mlir::ModuleOp module,
                                                const CudaArch &arch,
                                                const CodeGenOptions &options);

/// Whether `arch` gives mla_prefill.cuh's attention the shared memory it
/// needs at this head shape (sm_89's 99 KB per block does not suffice at
/// DeepSeek-V3's): dsv3c attends prefill steps directly only if so.
bool mlaPrefillAttentionFits(const CudaArch &arch, int64_t nope, int64_t rope, int64_t v);

} // namespace dsv3

#endif // DSV3_TARGETS_CUDA_CODEGEN_H
