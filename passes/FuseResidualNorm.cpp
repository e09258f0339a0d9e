//===- FuseResidualNorm.cpp - residual add + RMS norm in one kernel -------===//

#include "passes/Passes.h"

#include "dialects/Dsv3Ops.h"

#include "mlir/IR/Builders.h"

namespace dsv3 {
#define GEN_PASS_DEF_FUSERESIDUALNORM
#include "passes/Passes.h.inc"
} // namespace dsv3

using namespace mlir;
using namespace dsv3;

namespace {

struct FuseResidualNormPass
    : public dsv3::impl::FuseResidualNormBase<FuseResidualNormPass> {
  void runOnOperation() override {
    SmallVector<arith::AddFOp> adds;
    getOperation().walk([&](arith::AddFOp add) { adds.push_back(add); });
    for (arith::AddFOp add : adds) {
      NormalizeOp norm;
      for (Operation *user : add->getUsers())
        if (auto candidate = llvm::dyn_cast<NormalizeOp>(user);
            candidate && candidate.getInput() == add.getResult()) {
          norm = candidate;
          break;
        }
      if (!norm)
        continue;
      // The fused op sits where the normalization was, so its weight is
      // defined; the addition's operands dominate it as they did the add.
      OpBuilder b(norm);
      auto fused = b.create<AddNormalizeOp>(
          norm.getLoc(), add.getType(), norm.getType(), add.getLhs(),
          add.getRhs(), norm.getWeight(), norm.getEpsAttr());
      norm.replaceAllUsesWith(fused.getNormalized());
      norm.erase();
      // Uses of the sum between the add and the norm keep the add.
      add.getResult().replaceUsesWithIf(fused.getSum(), [&](OpOperand &use) {
        return fused->isBeforeInBlock(use.getOwner());
      });
      if (add->use_empty())
        add.erase();
    }
  }
};

} // namespace
