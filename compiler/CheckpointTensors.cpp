//===- CheckpointTensors.cpp - the checkpoint tensors a module reads ------===//

#include "compiler/CheckpointTensors.h"

#include "dialects/Dsv3Ops.h"

using namespace mlir;

namespace dsv3 {

/// The safetensors dtype name of a weight element type.
static StringRef safetensorsDtype(Type element) {
  if (element.isBF16())
    return "BF16";
  if (element.isF16())
    return "F16";
  if (element.isF32())
    return "F32";
  if (llvm::isa<Float8E4M3FNType>(element))
    return "F8_E4M3";
  return "?";
}

std::vector<CheckpointTensor> listCheckpointTensors(ModuleOp module) {
  std::vector<CheckpointTensor> tensors;
  for (WeightOp weight : module.getOps<WeightOp>()) {
    RankedTensorType type = weight.getTensorType();
    CheckpointTensor &tensor = tensors.emplace_back();
    tensor.name = weight.getSymName().str();
    tensor.dtype = safetensorsDtype(type.getElementType()).str();
    tensor.shape.assign(type.getShape().begin(), type.getShape().end());
    if (std::optional<BlockScaleAttr> scale = weight.getScale()) {
      CheckpointTensor &scales = tensors.emplace_back();
      scales.name = scale->getTensor().str();
      scales.dtype = "F32";
      scales.shape = {scale->getScaleRows(), scale->getScaleCols()};
      scales.scaleOf = weight.getSymName().str();
      scales.blockRows = scale->getBlockRows();
      scales.blockCols = scale->getBlockCols();
    }
  }
  return tensors;
}

} // namespace dsv3
