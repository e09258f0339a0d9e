//===- Compiler.cpp - config.json to a verified dsv3 module ---------------===//

#include "compiler/Compiler.h"

#include "dialects/Dsv3Dialect.h"
#include "frontend/ModuleBuilder.h"
#include "dialects/Dsv3Ops.h"
#include "targets/cuda/CodeGen.h"
#include "targets/cuda/CudaArch.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace dsv3 {

void registerDsv3Dialects(DialectRegistry &registry) {
  registry.insert<Dsv3Dialect, func::FuncDialect, arith::ArithDialect>();
}

llvm::Expected<OwningOpRef<ModuleOp>>
compileModelConfig(MLIRContext &context, const ModelConfig &config,
                   const CompileOptions &options) {
  if (!lookupCudaArch(options.target))
    return llvm::createStringError(
        "unknown target '%s' (supported: %s)", options.target.c_str(),
        supportedCudaArchList().c_str());

  ModelConfig effective = config;
  if (options.weights == WeightFormat::Bf16)
    effective.fp8.reset();
  else if (options.weights == WeightFormat::Fp8 && !effective.fp8)
    effective.fp8 = Fp8Quantization();
  OwningOpRef<ModuleOp> module = buildModelModule(context, effective);
  (*module)->setAttr(kTargetAttrName,
                     StringAttr::get(&context, options.target));
  if (failed(verify(*module)))
    return llvm::createStringError("%s: the module built from this "
                                   "configuration failed verification",
                                   config.sourceName.c_str());
  return module;
}

LogicalResult lowerToKernelOps(ModuleOp module, const CompileOptions &options) {
  PassManager pm(module.getContext());
  DecomposeOptions decompose;
  decompose.quantizeActivations = options.quantizeActivations;
  pm.addPass(createDecompose(decompose));
  // The direct prefill path needs mla_prefill.cuh's shared memory: a target
  // with less attends every prefill step on the latent cache.
  const CudaArch *arch = lookupCudaArch(options.target);
  bool directFits = true;
  module.walk([&](MlaOp mla) {
    MlaShapeAttr shape = mla.getShape();
    directFits &= arch && mlaPrefillAttentionFits(*arch, shape.getQkNopeHeadDim(),
                                                  shape.getQkRopeHeadDim(),
                                                  shape.getVHeadDim());
  });
  AbsorbMlaOptions absorb;
  bool direct = options.prefillAttention == CompileOptions::PrefillAttention::Direct ||
                (options.prefillAttention == CompileOptions::PrefillAttention::Auto &&
                 options.quantizeActivations);
  absorb.prefillDirect = direct && directFits;
  absorb.quantizeActivations = options.quantizeActivations;
  pm.addPass(createAbsorbMla(absorb));
  pm.addPass(createFuseResidualNorm());
  pm.addPass(createCSEPass());
  pm.addPass(createFuseNormQuant());
  pm.addPass(createPairGemms());
  PlanMemoryOptions memory;
  memory.maxTokens = options.maxTokens;
  memory.maxSequences = options.maxSequences;
  pm.addPass(createPlanMemory(memory));
  return pm.run(module);
}

} // namespace dsv3
