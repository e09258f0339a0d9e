//===- WeightChecks.h - checking graph ops against their weights -*- C++ -*-===//
//
// Graph ops name their weights by symbol; these helpers resolve a symbol to a
// `dsv3.weight` and check its shape and element type, with messages that name
// the op's attribute, the checkpoint tensor and both shapes.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_DIALECTS_WEIGHTCHECKS_H
#define DSV3_DIALECTS_WEIGHTCHECKS_H

#include "dialects/Dsv3Ops.h"

namespace dsv3 {

/// What a weight is used as, which decides the element types it may have.
enum class WeightUse {
  Projection, ///< a matrix multiplied with activations: FP8 (block-scaled) or float
  Dense,      ///< a float tensor that is never FP8 (norms, embedding, router, head)
  Fp32,       ///< an fp32 vector (the router's correction bias)
};

class WeightChecker {
public:
  WeightChecker(mlir::Operation *op, mlir::SymbolTableCollection &tables)
      : op(op), tables(tables) {}

  /// Resolves `ref` (the op's attribute `role`) to a dsv3.weight.
  mlir::FailureOr<WeightOp> lookup(llvm::StringRef role,
                                   mlir::FlatSymbolRefAttr ref);

  /// Resolves `ref` and checks that its shape is `shape` (a dynamic extent
  /// matches anything) and its element type suits `use`. `why` explains the
  /// expected shape in the message.
  mlir::LogicalResult expect(llvm::StringRef role, mlir::FlatSymbolRefAttr ref,
                             llvm::ArrayRef<int64_t> shape, WeightUse use,
                             llvm::StringRef why);

private:
  mlir::Operation *op;
  mlir::SymbolTableCollection &tables;
};

/// The static extent of the last dimension of `value`'s tensor type, or
/// ShapedType::kDynamic.
int64_t lastDimOf(mlir::Value value);

} // namespace dsv3

#endif // DSV3_DIALECTS_WEIGHTCHECKS_H
