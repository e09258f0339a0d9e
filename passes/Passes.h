//===- Passes.h - dsv3 passes -------------------------------------*- C++ -*-===//

#ifndef DSV3_PASSES_PASSES_H
#define DSV3_PASSES_PASSES_H

#include "dialects/Dsv3Dialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace dsv3 {

/// The argument attribute naming a step input of a lowered entry point:
/// "hidden", "tokens", "positions", "token_seq", "block_table", "last_rows".
inline constexpr llvm::StringLiteral kStepInputAttrName = "dsv3.input";

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace dsv3

#endif // DSV3_PASSES_PASSES_H
