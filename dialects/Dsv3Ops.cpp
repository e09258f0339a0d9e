//===- Dsv3Ops.cpp - dsv3 operation invariants ----------------------------===//

#include "dialects/Dsv3Ops.h"
#include "dialects/WeightChecks.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace dsv3;

#define GET_OP_CLASSES
#include "dialects/Dsv3Ops.cpp.inc"

static int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Two extents agree if either is dynamic or they are equal.
static bool extentsAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static bool shapesAgree(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  return a.size() == b.size() &&
         llvm::all_of(llvm::zip(a, b), [](auto dims) {
           return extentsAgree(std::get<0>(dims), std::get<1>(dims));
         });
}

static ArrayRef<int64_t> shapeOf(Value value) {
  return llvm::cast<RankedTensorType>(value.getType()).getShape();
}

//===----------------------------------------------------------------------===//
// WeightOp / WeightRefOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  RankedTensorType type = getTensorType();
  if (type.getRank() < 1 || type.getRank() > 2)
    return emitOpError() << "weight must be a vector or a matrix, got rank "
                         << type.getRank();
  Type element = type.getElementType();
  if (!element.isBF16() && !element.isF16() && !element.isF32() &&
      !llvm::isa<Float8E4M3FNType>(element))
    return emitOpError() << "unsupported weight element type " << element
                         << " (expected bf16, f16, f32 or f8E4M3FN)";
  bool isFp8 = llvm::isa<Float8E4M3FNType>(element);
  std::optional<BlockScaleAttr> scale = getScale();
  if (isFp8 && !scale)
    return emitOpError() << "FP8 weight needs a block scale";
  if (!scale)
    return success();
  if (!isFp8)
    return emitOpError() << "only FP8 weights carry block scales, this one is "
                         << element;
  if (type.getRank() != 2)
    return emitOpError() << "block-scaled weight must be a matrix";
  int64_t rows = type.getDimSize(0), cols = type.getDimSize(1);
  int64_t wantRows = ceilDiv(rows, scale->getBlockRows());
  int64_t wantCols = ceilDiv(cols, scale->getBlockCols());
  if (scale->getScaleRows() != wantRows || scale->getScaleCols() != wantCols)
    return emitOpError() << "scale shape " << scale->getScaleRows() << "x"
                         << scale->getScaleCols() << " does not cover "
                         << rows << "x" << cols << " in "
                         << scale->getBlockRows() << "x"
                         << scale->getBlockCols() << " blocks (expected "
                         << wantRows << "x" << wantCols << ")";
  if (scale->getTensor() == getSymName())
    return emitOpError() << "scale tensor must differ from the weight itself";
  return success();
}

LogicalResult
WeightRefOp::verifySymbolUses(SymbolTableCollection &tables) {
  WeightChecker checker(*this, tables);
  FailureOr<WeightOp> weight = checker.lookup("weight", getWeightAttr());
  if (failed(weight))
    return failure();
  SmallVector<Type, 2> expected = {weight->getType()};
  if (std::optional<BlockScaleAttr> scale = weight->getScale())
    expected.push_back(RankedTensorType::get(
        {scale->getScaleRows(), scale->getScaleCols()},
        Float32Type::get(getContext())));
  if (TypeRange(getResultTypes()) != TypeRange(expected)) {
    InFlightDiagnostic diag = emitOpError() << "results must be ";
    llvm::interleaveComma(expected, diag);
    return diag << " to match " << getWeightAttr();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// EmbedOp
//===----------------------------------------------------------------------===//

LogicalResult EmbedOp::verify() {
  ArrayRef<int64_t> tokens = shapeOf(getTokens());
  ArrayRef<int64_t> result = shapeOf(getResult());
  if (result.size() != tokens.size() + 1 ||
      !shapesAgree(result.drop_back(), tokens))
    return emitOpError() << "result must be the token shape plus a hidden "
                            "dimension";
  return success();
}

LogicalResult EmbedOp::verifySymbolUses(SymbolTableCollection &tables) {
  return WeightChecker(*this, tables)
      .expect("table", getTableAttr(),
              {ShapedType::kDynamic, lastDimOf(getResult())}, WeightUse::Dense,
              "vocab x hidden");
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyEps(Operation *op, double eps) {
  if (!(eps > 0))
    return op->emitOpError() << "eps must be positive, got " << eps;
  return success();
}

LogicalResult RmsNormOp::verify() {
  return verifyEps(*this, getEps().convertToDouble());
}

LogicalResult RmsNormOp::verifySymbolUses(SymbolTableCollection &tables) {
  return WeightChecker(*this, tables)
      .expect("weight", getWeightAttr(), {lastDimOf(getInput())},
              WeightUse::Dense, "one gain per channel");
}

//===----------------------------------------------------------------------===//
// MlaOp
//===----------------------------------------------------------------------===//

LogicalResult MlaOp::verify() {
  MlaShapeAttr shape = getShape();
  bool hasDirectQuery = getQProj().has_value();
  bool hasLoraQuery = getQAProj() || getQALayernorm() || getQBProj();
  if (shape.hasQLora()) {
    if (hasDirectQuery)
      return emitOpError() << "has q_lora_rank " << shape.getQLoraRank()
                           << " but also a direct 'q' projection";
    if (!getQAProj() || !getQALayernorm() || !getQBProj())
      return emitOpError() << "has q_lora_rank " << shape.getQLoraRank()
                           << " and needs 'q_a', 'q_a_norm' and 'q_b'";
  } else {
    if (hasLoraQuery)
      return emitOpError() << "has no query LoRA (q_lora_rank 0) but names "
                              "'q_a', 'q_a_norm' or 'q_b'";
    if (!hasDirectQuery)
      return emitOpError() << "has no query LoRA (q_lora_rank 0) and needs a "
                              "direct 'q' projection";
  }
  if (getLayerAttr().getInt() < 0)
    return emitOpError() << "layer must be non-negative, got "
                         << getLayerAttr().getInt();
  if (!(getSoftmaxScale().convertToDouble() > 0))
    return emitOpError() << "softmax_scale must be positive";
  ArrayRef<int64_t> input = shapeOf(getInput());
  if (input.empty() || !shapesAgree(input.drop_back(), shapeOf(getPositions())))
    return emitOpError() << "positions must have the input's shape without "
                            "its hidden dimension";
  return verifyEps(*this, getEps().convertToDouble());
}

LogicalResult MlaOp::verifySymbolUses(SymbolTableCollection &tables) {
  MlaShapeAttr s = getShape();
  WeightChecker checker(*this, tables);
  int64_t hidden = lastDimOf(getInput());
  int64_t heads = s.getHeads();
  int64_t qOut = heads * s.getQkHeadDim();
  if (s.hasQLora()) {
    int64_t rank = s.getQLoraRank();
    if (failed(checker.expect("q_a", getQAProjAttr(), {rank, hidden},
                              WeightUse::Projection, "q_lora_rank x hidden")) ||
        failed(checker.expect("q_a_norm", getQALayernormAttr(), {rank},
                              WeightUse::Dense, "q_lora_rank")) ||
        failed(checker.expect("q_b", getQBProjAttr(), {qOut, rank},
                              WeightUse::Projection,
                              "heads * (qk_nope_head_dim + qk_rope_head_dim) "
                              "x q_lora_rank")))
      return failure();
  } else if (failed(checker.expect("q", getQProjAttr(), {qOut, hidden},
                                   WeightUse::Projection,
                                   "heads * (qk_nope_head_dim + "
                                   "qk_rope_head_dim) x hidden"))) {
    return failure();
  }
  int64_t kvLora = s.getKvLoraRank();
  return success(
      succeeded(checker.expect(
          "kv_a", getKvAProjWithMqaAttr(),
          {kvLora + s.getQkRopeHeadDim(), hidden}, WeightUse::Projection,
          "kv_lora_rank + qk_rope_head_dim x hidden")) &&
      succeeded(checker.expect("kv_a_norm", getKvALayernormAttr(), {kvLora},
                               WeightUse::Dense, "kv_lora_rank")) &&
      succeeded(checker.expect(
          "kv_b", getKvBProjAttr(),
          {heads * (s.getQkNopeHeadDim() + s.getVHeadDim()), kvLora},
          WeightUse::Projection,
          "heads * (qk_nope_head_dim + v_head_dim) x kv_lora_rank")) &&
      succeeded(checker.expect("o", getOProjAttr(),
                               {hidden, heads * s.getVHeadDim()},
                               WeightUse::Projection,
                               "hidden x heads * v_head_dim")));
}

//===----------------------------------------------------------------------===//
// DenseMlpOp / MoeOp
//===----------------------------------------------------------------------===//

/// Checks one SwiGLU's three projections: gate and up are `width x hidden`,
/// down is `hidden x width`. `width` may be dynamic on entry (taken from the
/// gate projection) and is returned so that every expert can be held to the
/// first one's width.
static FailureOr<int64_t> checkSwiGlu(WeightChecker &checker, StringRef what,
                                      FlatSymbolRefAttr gate,
                                      FlatSymbolRefAttr up,
                                      FlatSymbolRefAttr down, int64_t hidden,
                                      int64_t width) {
  std::string gateRole = (what + " gate").str();
  FailureOr<WeightOp> gateWeight = checker.lookup(gateRole, gate);
  if (failed(gateWeight))
    return failure();
  if (ShapedType::isDynamic(width) && gateWeight->getTensorType().getRank() == 2)
    width = gateWeight->getTensorType().getDimSize(0);
  if (failed(checker.expect(gateRole, gate, {width, hidden},
                            WeightUse::Projection, "intermediate x hidden")) ||
      failed(checker.expect((what + " up").str(), up, {width, hidden},
                            WeightUse::Projection, "intermediate x hidden")) ||
      failed(checker.expect((what + " down").str(), down, {hidden, width},
                            WeightUse::Projection, "hidden x intermediate")))
    return failure();
  return width;
}

LogicalResult DenseMlpOp::verifySymbolUses(SymbolTableCollection &tables) {
  WeightChecker checker(*this, tables);
  return checkSwiGlu(checker, "mlp", getGateProjAttr(), getUpProjAttr(),
                     getDownProjAttr(), lastDimOf(getInput()),
                     ShapedType::kDynamic);
}

LogicalResult MoeOp::verify() {
  RoutingAttr routing = getRouting();
  if (static_cast<int64_t>(getExperts().size()) != 3 * routing.getExperts())
    return emitOpError() << "'experts' must list gate, up and down for each of "
                         << routing.getExperts() << " experts ("
                         << 3 * routing.getExperts() << " symbols), got "
                         << getExperts().size();
  if (auto shared = getSharedExperts(); shared && shared->size() != 3)
    return emitOpError() << "'shared' must list gate, up and down (3 symbols), "
                            "got "
                         << shared->size();
  bool needsBias = routing.getMethod() == RoutingMethod::noaux_tc;
  if (needsBias != getCorrectionBias().has_value())
    return emitOpError() << (needsBias ? "noaux_tc routing needs a 'bias'"
                                       : "only noaux_tc routing takes a 'bias'");
  return success();
}

LogicalResult MoeOp::verifySymbolUses(SymbolTableCollection &tables) {
  WeightChecker checker(*this, tables);
  int64_t hidden = lastDimOf(getInput());
  int64_t experts = getRouting().getExperts();
  if (failed(checker.expect("router", getRouterAttr(), {experts, hidden},
                            WeightUse::Dense, "experts x hidden")))
    return failure();
  if (auto bias = getCorrectionBiasAttr();
      bias && failed(checker.expect("bias", bias, {experts}, WeightUse::Fp32,
                                    "one per expert")))
    return failure();
  auto symbols = getExperts().getAsRange<FlatSymbolRefAttr>();
  auto it = symbols.begin();
  int64_t width = ShapedType::kDynamic;
  for (int64_t e = 0; e < experts; ++e) {
    FlatSymbolRefAttr gate = *it++, up = *it++, down = *it++;
    FailureOr<int64_t> expertWidth = checkSwiGlu(
        checker, ("expert " + llvm::Twine(e)).str(), gate, up, down, hidden,
        width);
    if (failed(expertWidth))
      return failure();
    width = *expertWidth;
  }
  if (auto shared = getSharedExperts()) {
    auto refs = llvm::to_vector(shared->getAsRange<FlatSymbolRefAttr>());
    if (failed(checkSwiGlu(checker, "shared", refs[0], refs[1], refs[2], hidden,
                           ShapedType::kDynamic)))
      return failure();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// MtpOp / LmHeadOp
//===----------------------------------------------------------------------===//

LogicalResult MtpOp::verify() {
  return verifyEps(*this, getEps().convertToDouble());
}

LogicalResult MtpOp::verifySymbolUses(SymbolTableCollection &tables) {
  WeightChecker checker(*this, tables);
  int64_t hidden = lastDimOf(getHidden());
  int64_t doubled = ShapedType::isDynamic(hidden) ? hidden : 2 * hidden;
  return success(
      succeeded(checker.expect("enorm", getEnormAttr(), {hidden},
                               WeightUse::Dense, "one gain per channel")) &&
      succeeded(checker.expect("hnorm", getHnormAttr(), {hidden},
                               WeightUse::Dense, "one gain per channel")) &&
      succeeded(checker.expect("eh_proj", getEhProjAttr(), {hidden, doubled},
                               WeightUse::Projection, "hidden x 2 * hidden")));
}

LogicalResult LmHeadOp::verify() {
  ArrayRef<int64_t> input = shapeOf(getInput());
  ArrayRef<int64_t> result = shapeOf(getResult());
  if (input.empty() || input.size() != result.size() ||
      !shapesAgree(input.drop_back(), result.drop_back()))
    return emitOpError() << "result must be the input shape with the hidden "
                            "dimension replaced by the vocabulary";
  return success();
}

LogicalResult LmHeadOp::verifySymbolUses(SymbolTableCollection &tables) {
  return WeightChecker(*this, tables)
      .expect("head", getHeadAttr(),
              {lastDimOf(getResult()), lastDimOf(getInput())}, WeightUse::Dense,
              "vocab x hidden");
}

//===----------------------------------------------------------------------===//
// FP8 kernel ops
//===----------------------------------------------------------------------===//

LogicalResult ActQuantOp::verify() {
  int64_t block = getBlock();
  if (block <= 0)
    return emitOpError() << "block must be positive, got " << block;
  ArrayRef<int64_t> input = shapeOf(getInput());
  ArrayRef<int64_t> output = shapeOf(getOutput());
  ArrayRef<int64_t> scales = shapeOf(getScales());
  if (input.empty())
    return emitOpError() << "input must have at least one dimension";
  if (!shapesAgree(input, output))
    return emitOpError() << "output must have the input's shape";
  int64_t channels = input.back();
  int64_t wantScales =
      ShapedType::isDynamic(channels) ? channels : ceilDiv(channels, block);
  SmallVector<int64_t> want(input.drop_back());
  want.push_back(wantScales);
  if (!shapesAgree(scales, want))
    return emitOpError() << "scales must have one entry per token per " << block
                         << " channels (last dimension " << wantScales << ")";
  return success();
}

/// Checks that `scales` has shape ceil(rows/blockRows) x ceil(cols/blockCols).
static LogicalResult verifyBlockScales(Operation *op, StringRef what,
                                       ArrayRef<int64_t> matrix,
                                       ArrayRef<int64_t> scales,
                                       int64_t blockRows, int64_t blockCols) {
  auto blocks = [](int64_t extent, int64_t block) {
    return ShapedType::isDynamic(extent) ? extent : ceilDiv(extent, block);
  };
  int64_t want[2] = {blocks(matrix[0], blockRows), blocks(matrix[1], blockCols)};
  if (!shapesAgree(scales, want))
    return op->emitOpError()
           << what << " scales must be " << want[0] << "x" << want[1]
           << " (one per " << blockRows << "x" << blockCols << " block)";
  return success();
}

static LogicalResult verifyBlock(Operation *op, ArrayRef<int64_t> block) {
  if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
    return op->emitOpError() << "block must be two positive sizes [rows, cols]";
  return success();
}

LogicalResult DequantOp::verify() {
  if (failed(verifyBlock(*this, getBlock())))
    return failure();
  ArrayRef<int64_t> input = shapeOf(getInput());
  if (input.size() != 2)
    return emitOpError() << "input must be a matrix";
  if (!shapesAgree(input, shapeOf(getOutput())))
    return emitOpError() << "output must have the input's shape";
  return verifyBlockScales(*this, "weight", input, shapeOf(getScales()),
                           getBlock()[0], getBlock()[1]);
}

LogicalResult dsv3::verifyFp8Gemm(Operation *op, Value lhsValue, Value lhsScales,
                                  Value rhsValue, Value rhsScales, ArrayRef<int64_t> block,
                                  Value result, StringRef member) {
  if (failed(verifyBlock(op, block)))
    return failure();
  std::string rhsName = ("rhs" + member).str(), resultName = ("result" + member).str();
  ArrayRef<int64_t> lhs = shapeOf(lhsValue);
  ArrayRef<int64_t> rhs = shapeOf(rhsValue);
  if (lhs.size() != 2 || rhs.size() != 2)
    return op->emitOpError() << "lhs and " << rhsName << " must be matrices";
  if (!extentsAgree(lhs[1], rhs[1]))
    return op->emitOpError() << "contraction sizes differ: lhs has " << lhs[1]
                             << " columns, " << rhsName << " " << rhs[1];
  int64_t blockN = block[0], blockK = block[1];
  bool quantizedLhs =
      llvm::isa<Float8E4M3FNType>(llvm::cast<RankedTensorType>(lhsValue.getType()).getElementType());
  if (quantizedLhs != static_cast<bool>(lhsScales))
    return op->emitOpError() << (quantizedLhs ? "FP8 lhs needs scales"
                                              : "bf16 lhs takes no scales");
  // Activations are scaled per row, so their row block is 1.
  if ((quantizedLhs &&
       failed(verifyBlockScales(op, "lhs", lhs, shapeOf(lhsScales), 1, blockK))) ||
      failed(verifyBlockScales(op, rhsName, rhs, shapeOf(rhsScales), blockN, blockK)))
    return failure();
  int64_t want[2] = {lhs[0], rhs[0]};
  if (!shapesAgree(shapeOf(result), want))
    return op->emitOpError() << resultName << " must be lhs rows x " << rhsName << " rows";
  return success();
}

LogicalResult Fp8GemmOp::verify() {
  return verifyFp8Gemm(*this, getLhs(), getLhsScales(), getRhs(), getRhsScales(), getBlock(),
                       getResult(), "");
}
