//===- ModelSummary.cpp - what a dsv3 module holds, in a few lines --------===//

#include "compiler/ModelSummary.h"

#include "compiler/CheckpointTensors.h"
#include "compiler/Compiler.h"
#include "dialects/Dsv3Ops.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

namespace dsv3 {

static int64_t elementBytes(Type element) {
  return std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8);
}

/// The layer index of a per-layer checkpoint name ("model.layers.<i>.…").
static std::optional<int64_t> layerOfWeight(StringRef name) {
  if (!name.consume_front("model.layers."))
    return std::nullopt;
  int64_t layer;
  if (name.consumeInteger(10, layer))
    return std::nullopt;
  return layer;
}

using ScaleTable = ArrayRef<std::pair<double, const char *>>;

/// `count` in the largest unit of `scales` it reaches: 684.49 B, 3.12 MB.
static std::string scaled(double count, ScaleTable scales) {
  for (auto [scale, suffix] : scales)
    if (count >= scale)
      return llvm::formatv("{0:F2} {1}", count / scale, suffix).str();
  return std::to_string(static_cast<int64_t>(count));
}

static std::string humanCount(double count) {
  static const std::pair<double, const char *> kScales[] = {
      {1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
  return scaled(count, kScales);
}

static std::string humanBytes(double bytes) {
  static const std::pair<double, const char *> kScales[] = {
      {1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
  return scaled(bytes, kScales) + (bytes < 1e3 ? " bytes" : "");
}

void printModuleSummary(ModuleOp module, raw_ostream &os) {
  auto prefill = module.lookupSymbol<func::FuncOp>("prefill");
  int64_t mainLayers = 0, denseLayers = 0, moeLayers = 0;
  MlaOp firstAttention;
  MoeOp firstMoe;
  if (prefill) {
    prefill.walk([&](Operation *op) {
      if (auto mla = llvm::dyn_cast<MlaOp>(op)) {
        ++mainLayers;
        if (!firstAttention)
          firstAttention = mla;
      } else if (llvm::isa<DenseMlpOp>(op)) {
        ++denseLayers;
      } else if (auto moe = llvm::dyn_cast<MoeOp>(op)) {
        ++moeLayers;
        if (!firstMoe)
          firstMoe = moe;
      }
    });
  }

  SmallVector<StringRef> entries;
  int64_t mtpModules = 0;
  for (auto func : module.getOps<func::FuncOp>()) {
    entries.push_back(func.getSymName());
    if (func.getSymName().starts_with("mtp_draft"))
      ++mtpModules;
  }

  int64_t tensors = 0, scales = 0, params = 0, mtpParams = 0, bytes = 0;
  for (WeightOp weight : module.getOps<WeightOp>()) {
    RankedTensorType type = weight.getTensorType();
    ++tensors;
    params += type.getNumElements();
    bytes += type.getNumElements() * elementBytes(type.getElementType());
    if (std::optional<BlockScaleAttr> scale = weight.getScale()) {
      ++scales;
      bytes += scale->getScaleRows() * scale->getScaleCols() * 4;
    }
    std::optional<int64_t> layer = layerOfWeight(weight.getSymName());
    if (layer && *layer >= mainLayers)
      mtpParams += type.getNumElements();
  }

  auto line = [&](StringRef key) -> raw_ostream & {
    return os << llvm::formatv("{0,-13}", key);
  };
  if (auto fileLoc = llvm::dyn_cast<FileLineColLoc>(module.getLoc()))
    line("config") << fileLoc.getFilename().getValue() << "\n";
  if (auto target = module->getAttrOfType<StringAttr>(kTargetAttrName))
    line("target") << target.getValue() << "\n";
  line("entry points");
  llvm::interleave(
      entries, os, [&](StringRef name) { os << "@" << name; }, " ");
  os << "\n";
  line("layers") << mainLayers << " (" << denseLayers << " dense, " << moeLayers
                 << " MoE) + " << mtpModules << " MTP\n";
  if (firstAttention) {
    MlaShapeAttr s = firstAttention.getShape();
    line("attention") << "MLA, " << s.getHeads() << " heads, q_lora_rank "
                      << s.getQLoraRank() << ", kv_lora_rank "
                      << s.getKvLoraRank() << ", qk_head_dim "
                      << s.getQkNopeHeadDim() << "+" << s.getQkRopeHeadDim()
                      << ", v_head_dim " << s.getVHeadDim() << "\n";
  }
  if (firstMoe) {
    RoutingAttr r = firstMoe.getRouting();
    line("experts") << r.getExperts() << " routed (top-" << r.getTopK() << "; "
                    << r.getGroups() << (r.getGroups() == 1 ? " group" : " groups")
                    << ", keep " << r.getTopkGroups()
                    << "; " << stringifyRoutingMethod(r.getMethod()) << ", "
                    << stringifyRoutingScore(r.getScore()) << ")";
    // Shared experts are stored as one SwiGLU of n_shared x expert width.
    auto width = [&](Attribute ref) {
      auto weight = module.lookupSymbol<WeightOp>(
          llvm::cast<FlatSymbolRefAttr>(ref).getValue());
      return weight ? weight.getTensorType().getDimSize(0) : 0;
    };
    int64_t expertWidth = width(firstMoe.getExperts()[0]);
    int64_t sharedWidth = 0;
    if (auto shared = firstMoe.getSharedExperts())
      sharedWidth = width((*shared)[0]);
    os << ", " << (expertWidth ? sharedWidth / expertWidth : 0)
       << " shared, expert width " << expertWidth << "\n";
  }
  line("weights") << tensors << " tensors + " << scales
                  << " FP8 block scales = " << tensors + scales
                  << " checkpoint tensors\n";
  line("parameters") << params << " (" << humanCount(params) << "; "
                     << humanCount(params - mtpParams) << " main, "
                     << humanCount(mtpParams) << " MTP), "
                     << humanBytes(bytes) << " as stored\n";
}

void printCheckpointTensors(ModuleOp module, raw_ostream &os) {
  for (const CheckpointTensor &tensor : listCheckpointTensors(module)) {
    os << tensor.name << " " << tensor.dtype << " [";
    llvm::interleaveComma(tensor.shape, os);
    os << "]\n";
  }
}

} // namespace dsv3
