//===- Compiler.h - config.json to a verified dsv3 module ---------*- C++ -*-===//
//
// The pipeline `dsv3c` runs: read the configuration, build the graph-level
// module, record the target and verify everything (ops against the weights
// they name). Later stages (passes, code generation, plan) grow here.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_COMPILER_COMPILER_H
#define DSV3_COMPILER_COMPILER_H

#include "frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace dsv3 {

/// Which checkpoint weight format to compile for.
enum class WeightFormat {
  FromConfig, ///< FP8 when the config has a quantization_config, else BF16
  Bf16,       ///< BF16 weights without scales (DeepSeek's fp8_cast_bf16 output)
  Fp8,        ///< FP8 weights with the config's block size, 128x128 by default
};

struct CompileOptions {
  /// A name from supportedCudaArchs().
  std::string target = "sm_90a";
  WeightFormat weights = WeightFormat::FromConfig;
  /// GEMMs with FP8 weights quantize their activations to FP8 (DeepSeek's
  /// training-time scheme) instead of reading bf16 ones (dsv3-decompose).
  bool quantizeActivations = false;
  /// How the prefill entry point attends new prompts: with kv_b-expanded
  /// keys and values (dsv3-absorb-mla's prefill-direct: fewer FLOPs, one
  /// more bf16 rounding of the keys and values) or on the latent cache, as
  /// steps that continue a sequence always do. Auto: direct when
  /// activations are quantized to FP8 (whose error dwarfs that rounding),
  /// absorbed with bf16 activations.
  enum class PrefillAttention { Auto, Direct, Absorbed };
  PrefillAttention prefillAttention = PrefillAttention::Auto;
  /// Step limits the plan is sized for (dsv3-plan-memory).
  int64_t maxTokens = 8192;
  int64_t maxSequences = 256;
};

/// Tokens per page of the latent KV cache.
inline constexpr int64_t kKvCachePageSize = 64;

/// The module attribute that records the target architecture.
inline constexpr llvm::StringLiteral kTargetAttrName = "dsv3.target";

/// Registers every dialect a dsv3 module may contain.
void registerDsv3Dialects(mlir::DialectRegistry &registry);

/// Compiles `config` to a verified graph-level module. Verifier diagnostics
/// go to the context's handler; the returned error says which stage failed.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
compileModelConfig(mlir::MLIRContext &context, const ModelConfig &config,
                   const CompileOptions &options);

/// Lowers a verified graph module in place to memory-planned kernel ops:
/// dsv3-decompose, dsv3-absorb-mla, dsv3-fuse-residual-norm, CSE,
/// dsv3-plan-memory. Diagnostics go to the context's handler.
mlir::LogicalResult lowerToKernelOps(mlir::ModuleOp module,
                                     const CompileOptions &options);

} // namespace dsv3

#endif // DSV3_COMPILER_COMPILER_H
