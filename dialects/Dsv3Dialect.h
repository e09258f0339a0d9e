//===- Dsv3Dialect.h - the dsv3 dialect ---------------------------*- C++ -*-===//

#ifndef DSV3_DIALECTS_DSV3DIALECT_H
#define DSV3_DIALECTS_DSV3DIALECT_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/Operation.h"

namespace dsv3 {
/// A kernel op's step guard: "fresh" runs only on steps with no resumed run
/// (every sequence's rows start at position 0), "resumed" only on the
/// others. Code generation guards the op's launches accordingly.
inline constexpr llvm::StringLiteral kStepGuardAttrName = "dsv3.when";
inline constexpr llvm::StringLiteral kFreshStepGuard = "fresh";
inline constexpr llvm::StringLiteral kResumedStepGuard = "resumed";

/// dsv3-plan-memory allocates every step-sized value (T or B rows) in whole
/// groups of this many rows, so that a library GEMM (the plan's Gemm step:
/// cuBLASLt's block-scaled GEMM takes rows in groups of 16) may compute the
/// rows past the step's, which nobody reads.
inline constexpr int64_t kStepRowGroup = 16;

/// Whether `a` and `b` run on the same steps (the same step guard, or none):
/// only such ops may be fused into one.
inline bool sameStepGuard(mlir::Operation *a, mlir::Operation *b) {
  return a->getAttr(kStepGuardAttrName) == b->getAttr(kStepGuardAttrName);
}

/// Puts `from`'s step guard, if any, on `to` (an op fused from it).
inline void copyStepGuard(mlir::Operation *from, mlir::Operation *to) {
  if (mlir::Attribute guard = from->getAttr(kStepGuardAttrName))
    to->setAttr(kStepGuardAttrName, guard);
}

/// Parsers for the custom attribute parameters of Dsv3Base.td.
mlir::FailureOr<llvm::APFloat> parseF64Parameter(mlir::AsmParser &parser);
mlir::FailureOr<bool> parseBoolParameter(mlir::AsmParser &parser);
} // namespace dsv3

#include "dialects/Dsv3Dialect.h.inc"
#include "dialects/Dsv3Enums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Dsv3Attrs.h.inc"

#endif // DSV3_DIALECTS_DSV3DIALECT_H
