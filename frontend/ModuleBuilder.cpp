//===- ModuleBuilder.cpp - ModelConfig to a dsv3 graph module -------------===//

#include "frontend/ModuleBuilder.h"

#include "dialects/Dsv3Ops.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

namespace dsv3 {

std::string mtpDraftFunctionName(int64_t index) {
  return index == 0 ? std::string("mtp_draft")
                    : llvm::formatv("mtp_draft_{0}", index).str();
}

namespace {

/// How a checkpoint tensor is stored.
enum class Storage {
  Quantizable, ///< FP8 with block scales in an FP8 checkpoint, else BF16
  Bf16,        ///< always BF16 (embeddings, norms, router, heads, eh_proj)
  F32,         ///< always fp32 (the router's correction bias)
};

class ModuleBuilder {
public:
  ModuleBuilder(MLIRContext &context, const ModelConfig &config)
      : config(config), builder(&context),
        loc(FileLineColLoc::get(&context, config.sourceName, 0, 0)) {}

  OwningOpRef<ModuleOp> build();

private:
  /// Declares (once) and returns the weight named `name`.
  FlatSymbolRefAttr weight(const Twine &name, ArrayRef<int64_t> shape,
                           Storage storage);

  Value decoderLayer(Value hidden, Value positions, int64_t layer);
  Value attention(Value input, Value positions, int64_t layer);
  Value feedForward(Value input, int64_t layer);
  Value rmsNorm(Value input, const Twine &weightName);
  Value residualAdd(Value residual, Value update);
  void buildMainEntry(StringRef name);
  void buildMtpEntry(int64_t index);

  Type hiddenType() {
    return RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic,
                                  config.hiddenSize},
                                 builder.getBF16Type());
  }
  Type tokenType() {
    return RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                                 builder.getI32Type());
  }
  Type logitsType() {
    return RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic,
                                  config.vocabSize},
                                 builder.getF32Type());
  }
  std::string layerPrefix(int64_t layer) const {
    return llvm::formatv("model.layers.{0}.", layer).str();
  }

  const ModelConfig &config;
  OpBuilder builder;
  Location loc;
  ModuleOp module;
  /// The last weight declared: the next goes after it, so that declarations
  /// come in order of first use and before the entry points.
  Operation *lastWeight = nullptr;
  llvm::StringMap<FlatSymbolRefAttr> declared;
};

} // namespace

FlatSymbolRefAttr ModuleBuilder::weight(const Twine &nameTwine,
                                        ArrayRef<int64_t> shape,
                                        Storage storage) {
  std::string name = nameTwine.str();
  if (auto it = declared.find(name); it != declared.end())
    return it->second;

  Type element = builder.getBF16Type();
  BlockScaleAttr scale;
  if (storage == Storage::F32) {
    element = builder.getF32Type();
  } else if (storage == Storage::Quantizable && config.fp8) {
    element = builder.getType<Float8E4M3FNType>();
    int64_t blockRows = config.fp8->blockRows, blockCols = config.fp8->blockCols;
    scale = BlockScaleAttr::get(
        builder.getContext(), blockRows, blockCols, name + "_scale_inv",
        llvm::divideCeil(shape[0], blockRows),
        llvm::divideCeil(shape[1], blockCols));
  }
  OpBuilder::InsertionGuard guard(builder);
  if (lastWeight)
    builder.setInsertionPointAfter(lastWeight);
  else
    builder.setInsertionPointToStart(module.getBody());
  auto op = builder.create<WeightOp>(
      loc, builder.getStringAttr(name),
      TypeAttr::get(RankedTensorType::get(shape, element)), scale);
  lastWeight = op;
  auto ref = FlatSymbolRefAttr::get(op.getSymNameAttr());
  declared[name] = ref;
  return ref;
}

Value ModuleBuilder::rmsNorm(Value input, const Twine &weightName) {
  return builder.create<RmsNormOp>(
      loc, input.getType(), input,
      weight(weightName, {config.hiddenSize}, Storage::Bf16),
      builder.getF64FloatAttr(config.rmsNormEps));
}

Value ModuleBuilder::residualAdd(Value residual, Value update) {
  return builder.create<arith::AddFOp>(loc, residual, update);
}

Value ModuleBuilder::attention(Value input, Value positions, int64_t layer) {
  std::string p = layerPrefix(layer) + "self_attn.";
  int64_t hidden = config.hiddenSize, heads = config.numAttentionHeads;
  int64_t qLora = config.qLoraRank.value_or(0);
  auto shape = MlaShapeAttr::get(builder.getContext(), heads, qLora,
                                 config.kvLoraRank, config.qkNopeHeadDim,
                                 config.qkRopeHeadDim, config.vHeadDim);
  YarnRopeScaling noYarn;
  noYarn.originalMaxPositionEmbeddings = config.maxPositionEmbeddings;
  const YarnRopeScaling &yarn = config.yarn ? *config.yarn : noYarn;
  using llvm::APFloat;
  auto rope = RopeAttr::get(
      builder.getContext(), APFloat(config.ropeTheta),
      APFloat(config.yarn ? yarn.factor : 1.0),
      yarn.originalMaxPositionEmbeddings, APFloat(yarn.betaFast),
      APFloat(yarn.betaSlow), APFloat(yarn.mscale), APFloat(yarn.mscaleAllDim));

  int64_t qOut = heads * config.qkHeadDim();
  FlatSymbolRefAttr qProj, qA, qANorm, qB;
  if (qLora > 0) {
    qA = weight(p + "q_a_proj.weight", {qLora, hidden}, Storage::Quantizable);
    qANorm = weight(p + "q_a_layernorm.weight", {qLora}, Storage::Bf16);
    qB = weight(p + "q_b_proj.weight", {qOut, qLora}, Storage::Quantizable);
  } else {
    qProj = weight(p + "q_proj.weight", {qOut, hidden}, Storage::Quantizable);
  }
  int64_t kvLora = config.kvLoraRank;
  FlatSymbolRefAttr kvA =
      weight(p + "kv_a_proj_with_mqa.weight",
             {kvLora + config.qkRopeHeadDim, hidden}, Storage::Quantizable);
  FlatSymbolRefAttr kvANorm =
      weight(p + "kv_a_layernorm.weight", {kvLora}, Storage::Bf16);
  FlatSymbolRefAttr kvB =
      weight(p + "kv_b_proj.weight",
             {heads * (config.qkNopeHeadDim + config.vHeadDim), kvLora},
             Storage::Quantizable);
  FlatSymbolRefAttr o = weight(p + "o_proj.weight",
                               {hidden, heads * config.vHeadDim},
                               Storage::Quantizable);
  return builder.create<MlaOp>(
      loc, input.getType(), input, positions, builder.getI64IntegerAttr(layer),
      shape, rope, builder.getF64FloatAttr(config.softmaxScale()),
      builder.getF64FloatAttr(config.rmsNormEps), qProj, qA, qANorm, qB, kvA,
      kvANorm, kvB, o);
}

Value ModuleBuilder::feedForward(Value input, int64_t layer) {
  std::string p = layerPrefix(layer) + "mlp.";
  int64_t hidden = config.hiddenSize;
  auto swiGlu = [&](const std::string &prefix, int64_t width) {
    return std::array<FlatSymbolRefAttr, 3>{
        weight(prefix + "gate_proj.weight", {width, hidden},
               Storage::Quantizable),
        weight(prefix + "up_proj.weight", {width, hidden}, Storage::Quantizable),
        weight(prefix + "down_proj.weight", {hidden, width},
               Storage::Quantizable)};
  };

  if (!config.isMoeLayer(layer)) {
    auto [gate, up, down] = swiGlu(p, config.intermediateSize);
    return builder.create<DenseMlpOp>(loc, input.getType(), input, gate, up,
                                      down);
  }

  int64_t experts = config.nRoutedExperts;
  FlatSymbolRefAttr router =
      weight(p + "gate.weight", {experts, hidden}, Storage::Bf16);
  FlatSymbolRefAttr bias;
  if (config.topkMethod == TopkMethod::NoAuxTc)
    bias = weight(p + "gate.e_score_correction_bias", {experts}, Storage::F32);
  SmallVector<Attribute> expertRefs;
  expertRefs.reserve(3 * experts);
  for (int64_t e = 0; e < experts; ++e)
    for (FlatSymbolRefAttr ref :
         swiGlu(llvm::formatv("{0}experts.{1}.", p, e).str(),
                config.moeIntermediateSize))
      expertRefs.push_back(ref);
  ArrayAttr shared;
  if (config.nSharedExperts > 0) {
    auto refs = swiGlu(p + "shared_experts.",
                       config.nSharedExperts * config.moeIntermediateSize);
    shared = builder.getArrayAttr({refs[0], refs[1], refs[2]});
  }

  RoutingMethod method = RoutingMethod::greedy;
  if (config.topkMethod == TopkMethod::GroupLimitedGreedy)
    method = RoutingMethod::group_limited_greedy;
  else if (config.topkMethod == TopkMethod::NoAuxTc)
    method = RoutingMethod::noaux_tc;
  RoutingScore score = config.scoringFunc == ScoringFunc::Sigmoid
                           ? RoutingScore::sigmoid
                           : RoutingScore::softmax;
  auto routing = RoutingAttr::get(
      builder.getContext(), experts, config.numExpertsPerTok, config.nGroup,
      config.topkGroup, method, score, config.normTopkProb,
      llvm::APFloat(config.routedScalingFactor));
  return builder.create<MoeOp>(loc, input.getType(), input, routing, router,
                               bias, builder.getArrayAttr(expertRefs), shared);
}

Value ModuleBuilder::decoderLayer(Value hidden, Value positions, int64_t layer) {
  std::string p = layerPrefix(layer);
  Value attn =
      attention(rmsNorm(hidden, p + "input_layernorm.weight"), positions, layer);
  hidden = residualAdd(hidden, attn);
  Value mlp =
      feedForward(rmsNorm(hidden, p + "post_attention_layernorm.weight"), layer);
  return residualAdd(hidden, mlp);
}

void ModuleBuilder::buildMainEntry(StringRef name) {
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(module.getBody());
  auto func = builder.create<func::FuncOp>(
      loc, name,
      builder.getFunctionType({tokenType(), tokenType()},
                              {logitsType(), hiddenType()}));
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  Value tokens = body->getArgument(0), positions = body->getArgument(1);

  FlatSymbolRefAttr table =
      weight("model.embed_tokens.weight", {config.vocabSize, config.hiddenSize},
             Storage::Bf16);
  Value hidden = builder.create<EmbedOp>(loc, hiddenType(), tokens, table);
  for (int64_t layer = 0; layer < config.numHiddenLayers; ++layer)
    hidden = decoderLayer(hidden, positions, layer);
  Value normed = rmsNorm(hidden, "model.norm.weight");
  // Tied embeddings reuse the embedding table as the head.
  FlatSymbolRefAttr head =
      config.tieWordEmbeddings
          ? table
          : weight("lm_head.weight", {config.vocabSize, config.hiddenSize},
                   Storage::Bf16);
  Value logits = builder.create<LmHeadOp>(loc, logitsType(), normed, head);
  builder.create<func::ReturnOp>(loc, ValueRange{logits, hidden});
}

void ModuleBuilder::buildMtpEntry(int64_t index) {
  int64_t layer = config.numHiddenLayers + index;
  std::string p = layerPrefix(layer);
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(module.getBody());
  // (previous depth's hidden state, next tokens, positions) -> (logits, hidden)
  auto func = builder.create<func::FuncOp>(
      loc, mtpDraftFunctionName(index),
      builder.getFunctionType({hiddenType(), tokenType(), tokenType()},
                              {logitsType(), hiddenType()}));
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  Value previous = body->getArgument(0), tokens = body->getArgument(1),
        positions = body->getArgument(2);

  int64_t hidden = config.hiddenSize;
  Value embedding = builder.create<EmbedOp>(
      loc, hiddenType(), tokens,
      weight(p + "embed_tokens.weight", {config.vocabSize, hidden},
             Storage::Bf16));
  // Declared one statement at a time so that their order does not depend on
  // the compiler's argument evaluation order.
  FlatSymbolRefAttr enorm = weight(p + "enorm.weight", {hidden}, Storage::Bf16);
  FlatSymbolRefAttr hnorm = weight(p + "hnorm.weight", {hidden}, Storage::Bf16);
  // The released DeepSeek-V3 checkpoint keeps eh_proj in BF16.
  FlatSymbolRefAttr ehProj =
      weight(p + "eh_proj.weight", {hidden, 2 * hidden}, Storage::Bf16);
  Value combined = builder.create<MtpOp>(
      loc, hiddenType(), previous, embedding, enorm, hnorm, ehProj,
      builder.getF64FloatAttr(config.rmsNormEps));
  Value out = decoderLayer(combined, positions, layer);
  Value normed = rmsNorm(out, p + "shared_head.norm.weight");
  Value logits = builder.create<LmHeadOp>(
      loc, logitsType(), normed,
      weight(p + "shared_head.head.weight", {config.vocabSize, hidden},
             Storage::Bf16));
  builder.create<func::ReturnOp>(loc, ValueRange{logits, out});
}

OwningOpRef<ModuleOp> ModuleBuilder::build() {
  OwningOpRef<ModuleOp> owned = ModuleOp::create(loc);
  module = *owned;
  // @prefill and @decode compute the same graph; later passes lower them
  // differently (decode attends over the latent cache with absorbed weights).
  buildMainEntry("prefill");
  buildMainEntry("decode");
  for (int64_t i = 0; i < config.numNextnPredictLayers; ++i)
    buildMtpEntry(i);
  return owned;
}

OwningOpRef<ModuleOp> buildModelModule(MLIRContext &context,
                                       const ModelConfig &config) {
  context.loadDialect<Dsv3Dialect, func::FuncDialect, arith::ArithDialect>();
  return ModuleBuilder(context, config).build();
}

} // namespace dsv3
