//===- WeightChecks.cpp - checking graph ops against their weights --------===//

#include "dialects/WeightChecks.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace dsv3;

int64_t dsv3::lastDimOf(Value value) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  if (type.getRank() == 0)
    return ShapedType::kDynamic;
  return type.getShape().back();
}

static void printShape(InFlightDiagnostic &diag, ArrayRef<int64_t> shape) {
  llvm::interleave(
      shape, [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          diag << "?";
        else
          diag << d;
      },
      [&] { diag << "x"; });
}

FailureOr<WeightOp> WeightChecker::lookup(StringRef role, FlatSymbolRefAttr ref) {
  Operation *symbol = tables.lookupNearestSymbolFrom(op, ref);
  if (!symbol)
    return op->emitOpError() << "'" << role << "' refers to " << ref
                             << ", which is not declared";
  auto weight = llvm::dyn_cast<WeightOp>(symbol);
  if (!weight)
    return op->emitOpError() << "'" << role << "' refers to " << ref
                             << ", which is a '" << symbol->getName()
                             << "', not a dsv3.weight";
  return weight;
}

LogicalResult WeightChecker::expect(StringRef role, FlatSymbolRefAttr ref,
                                    ArrayRef<int64_t> shape, WeightUse use,
                                    StringRef why) {
  FailureOr<WeightOp> weight = lookup(role, ref);
  if (failed(weight))
    return failure();
  RankedTensorType type = weight->getTensorType();
  bool shapeMatches =
      type.getRank() == static_cast<int64_t>(shape.size()) &&
      llvm::all_of(llvm::zip(type.getShape(), shape), [](auto dims) {
        auto [have, want] = dims;
        return ShapedType::isDynamic(want) || have == want;
      });
  if (!shapeMatches) {
    InFlightDiagnostic diag = op->emitOpError();
    diag << "'" << role << "' weight " << ref << " has shape ";
    printShape(diag, type.getShape());
    diag << " but this op needs ";
    printShape(diag, shape);
    diag << " (" << why << ")";
    return diag;
  }
  Type element = type.getElementType();
  bool isFp8 = llvm::isa<Float8E4M3FNType>(element);
  switch (use) {
  case WeightUse::Projection:
    return success();
  case WeightUse::Dense:
    if (isFp8)
      return op->emitOpError() << "'" << role << "' weight " << ref
                               << " is FP8, but it is read as a plain float "
                                  "tensor (bf16, f16 or f32)";
    return success();
  case WeightUse::Fp32:
    if (!element.isF32())
      return op->emitOpError() << "'" << role << "' weight " << ref
                               << " must be f32, got " << element;
    return success();
  }
  llvm_unreachable("unknown WeightUse");
}
