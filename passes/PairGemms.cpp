//===- PairGemms.cpp - two FP8 products of one input in one launch --------===//

#include "passes/Passes.h"

#include "dialects/Dsv3Dialect.h"
#include "dialects/Dsv3Ops.h"

#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseMap.h"

#include <tuple>

namespace dsv3 {
#define GEN_PASS_DEF_PAIRGEMMS
#include "passes/Passes.h.inc"
} // namespace dsv3

using namespace mlir;
using namespace dsv3;

namespace {

/// Whether `second`'s operands can all be had where `first` is: defined
/// before it, or by a pure op without operands (a weight reference), which
/// is then moved before it.
bool hoistOperands(Operation *first, Operation *second) {
  SmallVector<Operation *> moves;
  for (Value operand : second->getOperands()) {
    Operation *def = operand.getDefiningOp();
    if (!def || def->getBlock() != first->getBlock() || def->isBeforeInBlock(first))
      continue;
    if (def->getNumOperands() != 0 || !isPure(def))
      return false;
    moves.push_back(def);
  }
  for (Operation *def : moves)
    def->moveBefore(first);
  return true;
}

/// What two products must share to be paired: the input rows and their
/// scales, the rows' gather and expert offsets (grouped), the scale block,
/// the result's element type and the step guard.
using PairKey = std::tuple<Value, Value, Value, Value, Attribute, Type, Attribute>;

struct PairGemmsPass : public dsv3::impl::PairGemmsBase<PairGemmsPass> {
  void runOnOperation() override {
    SmallVector<Operation *> products;
    getOperation().walk([&](Operation *op) {
      if (auto gemm = llvm::dyn_cast<Fp8GemmOp>(op); gemm && gemm.getLhsScales())
        products.push_back(op);
      if (auto gemm = llvm::dyn_cast<GroupedGemmOp>(op); gemm && gemm.getLhsScales())
        products.push_back(op);
    });
    // The earlier product of each key still waiting for a partner.
    llvm::DenseMap<PairKey, Operation *> waiting;
    for (Operation *op : products) {
      PairKey key;
      if (auto gemm = llvm::dyn_cast<Fp8GemmOp>(op))
        key = {gemm.getLhs(), gemm.getLhsScales(), Value(), Value(), gemm.getBlockAttr(),
               gemm.getType().getElementType(), op->getAttr(kStepGuardAttrName)};
      else if (auto gemm = llvm::dyn_cast<GroupedGemmOp>(op))
        key = {gemm.getLhs(), gemm.getLhsScales(), gemm.getGather(), gemm.getOffsets(),
               gemm.getBlockAttr(), gemm.getType().getElementType(),
               op->getAttr(kStepGuardAttrName)};
      auto [it, inserted] = waiting.try_emplace(key, op);
      if (inserted)
        continue;
      Operation *first = it->second;
      waiting.erase(it);
      if (first->getBlock() != op->getBlock() || !hoistOperands(first, op))
        continue;
      pair(first, op);
    }
  }

  /// Replaces `first` and `second` (same kind, paired key) by one pair op at
  /// `first`'s place.
  void pair(Operation *first, Operation *second) {
    OpBuilder b(first);
    Location loc = b.getFusedLoc({first->getLoc(), second->getLoc()});
    Operation *paired;
    if (llvm::isa<Fp8GemmOp>(first)) {
      auto a = llvm::cast<Fp8GemmOp>(first), c = llvm::cast<Fp8GemmOp>(second);
      paired = b.create<Fp8GemmPairOp>(loc, TypeRange{a.getType(), c.getType()}, a.getLhs(),
                                       a.getLhsScales(), a.getRhs(), a.getRhsScales(),
                                       c.getRhs(), c.getRhsScales(), a.getBlockAttr());
    } else {
      auto a = llvm::cast<GroupedGemmOp>(first), c = llvm::cast<GroupedGemmOp>(second);
      paired = b.create<GroupedGemmPairOp>(
          loc, TypeRange{a.getType(), c.getType()}, a.getLhs(), a.getLhsScales(),
          a.getGather(), a.getRhs(), a.getRhsScales(), c.getRhs(), c.getRhsScales(),
          a.getOffsets(), a.getBlockAttr());
    }
    copyStepGuard(first, paired);
    first->getResult(0).replaceAllUsesWith(paired->getResult(0));
    second->getResult(0).replaceAllUsesWith(paired->getResult(1));
    first->erase();
    second->erase();
  }
};

} // namespace
