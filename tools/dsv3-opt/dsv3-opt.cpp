//===- dsv3-opt.cpp - mlir-opt with the dsv3 dialect ----------------------===//
//
// Parses, verifies, transforms and prints dsv3 modules; the lit tests drive
// the dialect and the passes through it.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "passes/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  dsv3::registerDsv3Dialects(registry);
  // MLIR's generic passes (canonicalize, cse, symbol-dce, ...) run on dsv3 IR.
  mlir::registerTransformsPasses();
  dsv3::registerDsv3Passes();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "dsv3-opt: the dsv3 dialect's optimizer driver\n", registry));
}
