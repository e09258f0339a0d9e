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


/// Each row of `latent` times kv_b: per-head keys and values, bf16. An FP8
/// kv_b (dequantized at load for the absorbed products) multiplies FP8
/// latents when activations are quantized.
Value expand(OpBuilder &b, Location loc, Value latent, Value kvB,
             bool quantizeActivations) {
  auto kvBType = llvm::cast<RankedTensorType>(kvB.getType());
  auto rows = [&](int64_t cols, Type element) {
    return RankedTensorType::get({ShapedType::kDynamic, cols}, element);
  };
  Type bf16 = b.getBF16Type();
  auto dequant = kvB.getDefiningOp<DequantOp>();
  if (!quantizeActivations || !dequant)
    return b.create<Bf16GemmOp>(loc, rows(kvBType.getDimSize(0), bf16), latent, kvB);
  int64_t k = kvBType.getDimSize(1), blockCols = dequant.getBlock()[1];
  auto quant = b.create<ActQuantOp>(loc, rows(k, b.getType<Float8E4M3FNType>()),
                                    rows(llvm::divideCeil(k, blockCols), b.getF32Type()),
                                    latent, b.getI64IntegerAttr(blockCols));
  return b.create<Fp8GemmOp>(loc, rows(kvBType.getDimSize(0), bf16), quant.getOutput(),
                             quant.getScales(), dequant.getInput(), dequant.getScales(),
                             dequant.getBlockAttr());
}

void absorb(MlaCoreOp core, bool prefillDirect, bool quantizeActivations) {
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
  auto entry = core->getParentOfType<func::FuncOp>();
  if (prefillDirect && entry && entry.getName() == "prefill") {
    for (Value absorbed : {qLatent, latent, out})
      absorbed.getDefiningOp()->setAttr(kStepGuardAttrName,
                                        b.getStringAttr(kResumedStepGuard));
    int64_t kvLora = shape.getKvLoraRank();
    Value normalized = b.create<NormalizeOp>(
        loc, RankedTensorType::get({ShapedType::kDynamic, kvLora}, b.getBF16Type()),
        core.getKvA(), core.getKvNorm(), core.getEpsAttr());
    Value expanded = expand(b, loc, normalized, core.getKvB(), quantizeActivations);
    Value direct = b.create<MlaPrefillAttentionOp>(
        loc, out.getType(), q, expanded, core.getPositions(),
        core.getTokenSeq(), core.getBlockTable(), out, core.getLayerAttr(),
        shape, core.getSoftmaxScaleAttr());
    // Everything from the normalization to the attention (act_quant too).
    for (Operation *fresh = normalized.getDefiningOp();
         fresh != direct.getDefiningOp()->getNextNode(); fresh = fresh->getNextNode())
      fresh->setAttr(kStepGuardAttrName, b.getStringAttr(kFreshStepGuard));
    out = direct;
  }
  core.replaceAllUsesWith(out);
  core.erase();
}

struct AbsorbMlaPass : public dsv3::impl::AbsorbMlaBase<AbsorbMlaPass> {
  using AbsorbMlaBase::AbsorbMlaBase;

  void runOnOperation() override {
    SmallVector<MlaCoreOp> cores;
    getOperation().walk([&](MlaCoreOp core) { cores.push_back(core); });
    for (MlaCoreOp core : cores)
      absorb(core, prefillDirect, quantizeActivations);
  }
};

} // namespace
