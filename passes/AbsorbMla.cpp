//===- AbsorbMla.cpp - MLA on the latent cache with kv_b absorbed ---------===//

#include "passes/Passes.h"

#include "dialects/Dsv3Ops.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

namespace dsv3 {
#define GEN_PASS_DEF_ABSORBMLA
#include "passes/Passes.h.inc"
} // namespace dsv3

using namespace mlir;
using namespace dsv3;

namespace {

void absorb(MlaCoreOp core) {
  OpBuilder b(core);
  Location loc = core.getLoc();
  MlaShapeAttr shape = core.getShape();
  RopeAttr rope = core.getRope();
  int64_t ropeDim = shape.getQkRopeHeadDim();
  SmallVector<float> frequencies = rope.getInverseFrequencies(ropeDim);
  auto frequencyType = RankedTensorType::get({ropeDim / 2}, b.getF32Type());
  Value invFreq = b.create<arith::ConstantOp>(
      loc, DenseElementsAttr::get(frequencyType, ArrayRef<float>(frequencies)));
  FloatAttr ropeScale = b.getF64FloatAttr(rope.getAttentionFactor());
  int64_t heads = shape.getHeads();
  // The latent queries and attention outputs keep the queries' precision
  // (f32 after an f32-output projection); only the cache is bf16.
  Type element = llvm::cast<RankedTensorType>(core.getQ().getType()).getElementType();
  auto rows = [&](int64_t cols) {
    return RankedTensorType::get({ShapedType::kDynamic, cols}, element);
  };

  Value q = b.create<RopeQOp>(loc, core.getQ().getType(), core.getQ(),
                              core.getPositions(), invFreq, shape, ropeScale);
  Value qLatent = b.create<MlaAbsorbQOp>(
      loc, rows(heads * shape.getKvLoraRank()), q, core.getKvB(), shape);
  b.create<KvWriteOp>(loc, core.getKvA(), core.getKvNorm(), core.getPositions(),
                      core.getTokenSeq(), core.getBlockTable(), invFreq,
                      core.getLayerAttr(), shape, ropeScale, core.getEpsAttr());
  Value latent = b.create<MlaAttentionOp>(
      loc, qLatent.getType(), qLatent, q, core.getPositions(),
      core.getTokenSeq(), core.getBlockTable(), core.getLayerAttr(), shape,
      core.getSoftmaxScaleAttr());
  Value out = b.create<MlaAbsorbOutOp>(loc, core.getType(), latent,
                                       core.getKvB(), shape);
  core.replaceAllUsesWith(out);
  core.erase();
}

struct AbsorbMlaPass : public dsv3::impl::AbsorbMlaBase<AbsorbMlaPass> {
  void runOnOperation() override {
    SmallVector<MlaCoreOp> cores;
    getOperation().walk([&](MlaCoreOp core) { cores.push_back(core); });
    for (MlaCoreOp core : cores)
      absorb(core);
  }
};

} // namespace
