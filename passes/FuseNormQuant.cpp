//===- FuseNormQuant.cpp - RMS norm and FP8 quantization in one kernel ----===//

#include "passes/Passes.h"

#include "dialects/Dsv3Dialect.h"
#include "dialects/Dsv3Ops.h"

#include "mlir/IR/Builders.h"

namespace dsv3 {
#define GEN_PASS_DEF_FUSENORMQUANT
#include "passes/Passes.h.inc"
} // namespace dsv3

using namespace mlir;
using namespace dsv3;

namespace {

/// The one act_quant that reads `normalized`, when nothing else does and its
/// blocks divide the row; null otherwise (a bf16 reader such as the router
/// needs the row in memory anyway).
ActQuantOp soleQuantization(Value normalized, int64_t channels) {
  if (!normalized.hasOneUse())
    return nullptr;
  auto quant = llvm::dyn_cast<ActQuantOp>(*normalized.getUsers().begin());
  if (!quant || channels % quant.getBlock() != 0 ||
      !llvm::cast<RankedTensorType>(normalized.getType()).getElementType().isBF16())
    return nullptr;
  return quant;
}

struct FuseNormQuantPass : public dsv3::impl::FuseNormQuantBase<FuseNormQuantPass> {
  void runOnOperation() override {
    SmallVector<Operation *> norms;
    getOperation().walk([&](Operation *op) {
      if (llvm::isa<NormalizeOp, AddNormalizeOp>(op))
        norms.push_back(op);
    });
    for (Operation *op : norms) {
      // The fused op takes the normalization's place: its operands are
      // defined there, and the quantization's users follow it.
      OpBuilder b(op);
      if (auto norm = llvm::dyn_cast<NormalizeOp>(op)) {
        int64_t channels = llvm::cast<RankedTensorType>(norm.getType()).getDimSize(1);
        ActQuantOp quant = soleQuantization(norm.getResult(), channels);
        if (!quant || !sameStepGuard(norm, quant))
          continue;
        auto fused = b.create<NormalizeQuantOp>(
            norm.getLoc(), quant.getOutput().getType(), quant.getScales().getType(),
            norm.getInput(), norm.getWeight(), norm.getEpsAttr(), quant.getBlockAttr());
        copyStepGuard(norm, fused);
        quant.replaceAllUsesWith(fused.getResults());
        quant.erase();
        norm.erase();
        continue;
      }
      auto norm = llvm::cast<AddNormalizeOp>(op);
      int64_t channels = llvm::cast<RankedTensorType>(norm.getSum().getType()).getDimSize(1);
      ActQuantOp quant = soleQuantization(norm.getNormalized(), channels);
      if (!quant || !sameStepGuard(norm, quant))
        continue;
      auto fused = b.create<AddNormalizeQuantOp>(
          norm.getLoc(), norm.getSum().getType(), quant.getOutput().getType(),
          quant.getScales().getType(), norm.getResidual(), norm.getDelta(),
          norm.getWeight(), norm.getEpsAttr(), quant.getBlockAttr());
      copyStepGuard(norm, fused);
      quant.replaceAllUsesWith(ValueRange{fused.getOutput(), fused.getScales()});
      norm.getSum().replaceAllUsesWith(fused.getSum());
      quant.erase();
      norm.erase();
    }
  }
};

} // namespace
