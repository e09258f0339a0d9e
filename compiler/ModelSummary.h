//===- ModelSummary.h - what a dsv3 module holds, in a few lines -*- C++ -*-===//

#ifndef DSV3_COMPILER_MODELSUMMARY_H
#define DSV3_COMPILER_MODELSUMMARY_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace dsv3 {

/// Prints entry points, layer kinds, attention and expert shapes, weight and
/// parameter counts of a verified graph-level module. Everything is read off
/// the module itself, not the configuration it came from.
void printModuleSummary(mlir::ModuleOp module, llvm::raw_ostream &os);

/// Prints every checkpoint tensor the module names, one per line:
/// `<name> <safetensors dtype> [<shape>]`, FP8 scales after their weight.
void printCheckpointTensors(mlir::ModuleOp module, llvm::raw_ostream &os);

} // namespace dsv3

#endif // DSV3_COMPILER_MODELSUMMARY_H
