//===- Dsv3KernelOps.cpp - invariants of the kernel-level ops -------------===//

#include "dialects/Dsv3Ops.h"
#include "dialects/WeightChecks.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace dsv3;

namespace {

/// Two extents agree if either is dynamic or they are equal.
bool agree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

ArrayRef<int64_t> shapeOf(Value value) {
  return llvm::cast<RankedTensorType>(value.getType()).getShape();
}

/// Checks that `value` (named `what`) has shape `want` (dynamic entries match
/// anything), with a message printing both.
LogicalResult expectShape(Operation *op, StringRef what, Value value,
                          ArrayRef<int64_t> want) {
  ArrayRef<int64_t> have = shapeOf(value);
  if (have.size() == want.size() &&
      llvm::all_of(llvm::zip(have, want),
                   [](auto d) { return agree(std::get<0>(d), std::get<1>(d)); }))
    return success();
  auto print = [](InFlightDiagnostic &diag, ArrayRef<int64_t> shape) {
    llvm::interleave(
        shape,
        [&](int64_t d) {
          if (ShapedType::isDynamic(d))
            diag << "?";
          else
            diag << d;
        },
        [&] { diag << "x"; });
  };
  InFlightDiagnostic diag = op->emitOpError() << what << " has shape ";
  print(diag, have);
  diag << ", expected ";
  print(diag, want);
  return diag;
}

int64_t ceilDiv(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) ? a : (a + b - 1) / b;
}

constexpr int64_t kDynamic = ShapedType::kDynamic;

LogicalResult verifyPositiveEps(Operation *op, double eps) {
  if (!(eps > 0))
    return op->emitOpError() << "eps must be positive, got " << eps;
  return success();
}

} // namespace

LogicalResult GatherOp::verify() {
  ArrayRef<int64_t> table = shapeOf(getTable());
  if (table.size() != 2)
    return emitOpError() << "table must be a matrix";
  Type tableElement = getTable().getType().getElementType();
  Type resultElement = getResult().getType().getElementType();
  // A bf16 table may be gathered into f32 rows (exact: the residual stream).
  if (tableElement != resultElement && !resultElement.isF32())
    return emitOpError() << "result element type must be the table's or f32";
  return failure(
      failed(expectShape(*this, "indices", getIndices(), {kDynamic})) ||
      failed(expectShape(*this, "result", getResult(),
                         {shapeOf(getIndices())[0], table[1]})));
}

/// The input and weight of a normalization of each row's leading channels,
/// and its eps: the normalized shape, [rows, weight's channels].
static FailureOr<std::pair<int64_t, int64_t>>
verifyNormInput(Operation *op, Value inputValue, Value weightValue, double eps) {
  ArrayRef<int64_t> input = shapeOf(inputValue), weight = shapeOf(weightValue);
  if (input.size() != 2)
    return op->emitOpError() << "input must be rows x channels";
  if (weight.size() != 1 || weight[0] < 1 ||
      (!ShapedType::isDynamic(input[1]) && weight[0] > input[1]))
    return op->emitOpError() << "weight must be a vector of at most the input's "
                             << input[1] << " channels";
  if (failed(verifyPositiveEps(op, eps)))
    return failure();
  return std::make_pair(input[0], weight[0]);
}

LogicalResult NormalizeOp::verify() {
  auto shape = verifyNormInput(*this, getInput(), getWeight(), getEps().convertToDouble());
  if (failed(shape))
    return failure();
  return expectShape(*this, "result", getResult(), {shape->first, shape->second});
}

/// The residual, delta and weight of a residual addition before a
/// normalization, and its eps: the rows' shape.
static FailureOr<ArrayRef<int64_t>> verifyAddNormInput(Operation *op, Value residualValue,
                                                       Value delta, Value weight, double eps) {
  ArrayRef<int64_t> residual = shapeOf(residualValue);
  if (residual.size() != 2)
    return op->emitOpError() << "residual must be rows x channels";
  if (failed(expectShape(op, "weight", weight, {residual[1]})) ||
      failed(expectShape(op, "delta", delta, residual)) || failed(verifyPositiveEps(op, eps)))
    return failure();
  return residual;
}

LogicalResult AddNormalizeOp::verify() {
  auto residual = verifyAddNormInput(*this, getResidual(), getDelta(), getWeight(),
                                     getEps().convertToDouble());
  if (failed(residual))
    return failure();
  return expectShape(*this, "normalized", getNormalized(), *residual);
}

/// The output and scales of a normalization quantized in `block`-channel
/// blocks: [rows, channels] and [rows, channels / block], whole blocks.
static LogicalResult verifyNormQuant(Operation *op, int64_t rows, int64_t channels,
                                     int64_t block, Value output, Value scales) {
  if (block <= 0 || channels % block != 0)
    return op->emitOpError() << "block " << block << " must divide the "
                             << channels << " normalized channels";
  return failure(failed(expectShape(op, "output", output, {rows, channels})) ||
                 failed(expectShape(op, "scales", scales, {rows, channels / block})));
}

LogicalResult NormalizeQuantOp::verify() {
  auto shape = verifyNormInput(*this, getInput(), getWeight(), getEps().convertToDouble());
  if (failed(shape))
    return failure();
  return verifyNormQuant(*this, shape->first, shape->second, getBlock(), getOutput(),
                         getScales());
}

LogicalResult AddNormalizeQuantOp::verify() {
  auto residual = verifyAddNormInput(*this, getResidual(), getDelta(), getWeight(),
                                     getEps().convertToDouble());
  if (failed(residual))
    return failure();
  return verifyNormQuant(*this, (*residual)[0], (*residual)[1], getBlock(), getOutput(),
                         getScales());
}

LogicalResult SwigluOp::verify() {
  return expectShape(*this, "result", getResult(), shapeOf(getGate()));
}

LogicalResult Bf16GemmOp::verify() {
  ArrayRef<int64_t> lhs = shapeOf(getLhs()), rhs = shapeOf(getRhs());
  if (lhs.size() != 2 || rhs.size() != 2)
    return emitOpError() << "lhs and rhs must be matrices";
  if (!getRhs().getType().getElementType().isBF16() ||
      !getLhs().getType().getElementType().isBF16())
    return emitOpError() << "operands must be bf16";
  return failure(failed(expectShape(*this, "rhs", getRhs(), {kDynamic, lhs[1]})) ||
                 failed(expectShape(*this, "result", getResult(),
                                    {lhs[0], rhs[0]})));
}

LogicalResult SwigluQuantOp::verify() {
  int64_t block = getBlock();
  if (block <= 0)
    return emitOpError() << "block must be positive, got " << block;
  ArrayRef<int64_t> gate = shapeOf(getGate());
  if (gate.size() != 2)
    return emitOpError() << "gate must be rows x channels";
  return failure(failed(expectShape(*this, "output", getOutput(), gate)) ||
                 failed(expectShape(*this, "scales", getScales(),
                                    {gate[0], ceilDiv(gate[1], block)})));
}

LogicalResult MlaCoreOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t heads = s.getHeads();
  int64_t tokens = shapeOf(getQ()).empty() ? kDynamic : shapeOf(getQ())[0];
  int64_t kvLora = s.getKvLoraRank();
  if (getLayerAttr().getInt() < 0)
    return emitOpError() << "layer must be non-negative";
  return failure(
      failed(expectShape(*this, "q", getQ(),
                         {kDynamic, heads * s.getQkHeadDim()})) ||
      failed(expectShape(*this, "kv_a", getKvA(),
                         {tokens, kvLora + s.getQkRopeHeadDim()})) ||
      failed(expectShape(*this, "kv_norm", getKvNorm(), {kvLora})) ||
      failed(expectShape(*this, "kv_b", getKvB(),
                         {heads * (s.getQkNopeHeadDim() + s.getVHeadDim()),
                          kvLora})) ||
      failed(expectShape(*this, "positions", getPositions(), {tokens})) ||
      failed(expectShape(*this, "token_seq", getTokenSeq(), {tokens})) ||
      failed(expectShape(*this, "block_table", getBlockTable(),
                         {kDynamic, kDynamic})) ||
      failed(expectShape(*this, "result", getResult(),
                         {tokens, heads * s.getVHeadDim()})) ||
      failed(verifyPositiveEps(*this, getEps().convertToDouble())));
}

LogicalResult
StackedWeightRefOp::verifySymbolUses(SymbolTableCollection &tables) {
  WeightChecker checker(*this, tables);
  ArrayAttr weights = getWeights();
  if (weights.empty())
    return emitOpError() << "needs at least one weight";
  FailureOr<WeightOp> first =
      checker.lookup("weights", llvm::cast<FlatSymbolRefAttr>(weights[0]));
  if (failed(first))
    return failure();
  for (Attribute ref : weights.getValue().drop_front()) {
    FailureOr<WeightOp> weight =
        checker.lookup("weights", llvm::cast<FlatSymbolRefAttr>(ref));
    if (failed(weight))
      return failure();
    if (weight->getType() != first->getType() ||
        weight->getScale().has_value() != first->getScale().has_value() ||
        (weight->getScale() &&
         (weight->getScale()->getScaleRows() != first->getScale()->getScaleRows() ||
          weight->getScale()->getScaleCols() != first->getScale()->getScaleCols())))
      return emitOpError() << ref << " differs in type or scales from "
                           << weights[0] << "; stacked weights must match";
  }
  int64_t count = weights.size();
  RankedTensorType type = first->getTensorType();
  SmallVector<int64_t> stacked = {count};
  llvm::append_range(stacked, type.getShape());
  SmallVector<Type, 2> expected = {
      RankedTensorType::get(stacked, type.getElementType())};
  if (std::optional<BlockScaleAttr> scale = first->getScale())
    expected.push_back(RankedTensorType::get(
        {count, scale->getScaleRows(), scale->getScaleCols()},
        Float32Type::get(getContext())));
  if (TypeRange(getResultTypes()) != TypeRange(expected)) {
    InFlightDiagnostic diag = emitOpError() << "results must be ";
    llvm::interleaveComma(expected, diag);
    return diag;
  }
  return success();
}

LogicalResult MoeRouteOp::verify() {
  RoutingAttr routing = getRouting();
  int64_t experts = routing.getExperts(), topK = routing.getTopK();
  bool needsBias = routing.getMethod() == RoutingMethod::noaux_tc;
  if (needsBias != static_cast<bool>(getBias()))
    return emitOpError() << (needsBias ? "noaux_tc routing needs a bias"
                                       : "only noaux_tc routing takes a bias");
  int64_t tokens = shapeOf(getLogits()).empty() ? kDynamic : shapeOf(getLogits())[0];
  if (failed(expectShape(*this, "logits", getLogits(), {kDynamic, experts})) ||
      (getBias() && failed(expectShape(*this, "bias", getBias(), {experts}))))
    return failure();
  return failure(failed(expectShape(*this, "ids", getIds(), {tokens, topK})) ||
                 failed(expectShape(*this, "weights", getWeights(),
                                    {tokens, topK})));
}

LogicalResult MoeAlignOp::verify() {
  ArrayRef<int64_t> ids = shapeOf(getIds());
  if (ids.size() != 2)
    return emitOpError() << "ids must be tokens x top_k";
  if (getExperts() < 1)
    return emitOpError() << "experts must be positive";
  int64_t routed = ShapedType::isDynamic(ids[0]) ? kDynamic : ids[0] * ids[1];
  return failure(
      failed(expectShape(*this, "offsets", getOffsets(),
                         {static_cast<int64_t>(getExperts()) + 1})) ||
      failed(expectShape(*this, "tokens", getTokens(), {routed})) ||
      failed(expectShape(*this, "rows", getRows(), {routed})));
}

namespace {

/// The checks of grouped_gemm, for it and each product of
/// grouped_gemm_pair: `member` ("", "0", "1") follows "rhs" and "result" in
/// the messages.
LogicalResult verifyGroupedGemm(Operation *op, Value lhsValue, Value lhsScales, Value gather,
                                Value rhsValue, Value rhsScales, Value offsets,
                                ArrayRef<int64_t> block, Value result, StringRef member) {
  std::string rhsName = ("rhs" + member).str(), resultName = ("result" + member).str();
  ArrayRef<int64_t> lhs = shapeOf(lhsValue), rhs = shapeOf(rhsValue);
  if (lhs.size() != 2 || rhs.size() != 3)
    return op->emitOpError() << "lhs must be rows x K and " << rhsName << " experts x N x K";
  if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
    return op->emitOpError() << "block must be two positive sizes [rows, cols]";
  Type lhsElement = llvm::cast<RankedTensorType>(lhsValue.getType()).getElementType();
  Type rhsElement = llvm::cast<RankedTensorType>(rhsValue.getType()).getElementType();
  // FP8 x FP8, bf16 x FP8 (weight-only scales) or bf16 x bf16.
  bool fp8 = llvm::isa<Float8E4M3FNType>(rhsElement);
  bool quantizedLhs = llvm::isa<Float8E4M3FNType>(lhsElement);
  if ((!fp8 && !rhsElement.isBF16()) || (!quantizedLhs && !lhsElement.isBF16()) ||
      (quantizedLhs && !fp8))
    return op->emitOpError() << "operands must be FP8 x FP8, bf16 x FP8 or bf16 x bf16";
  if (quantizedLhs != static_cast<bool>(lhsScales) || fp8 != static_cast<bool>(rhsScales))
    return op->emitOpError() << "FP8 operands need scales and bf16 operands take none";
  int64_t experts = rhs[0], n = rhs[1], k = rhs[2];
  int64_t rows = gather ? shapeOf(gather)[0] : lhs[0];
  if (failed(expectShape(op, "lhs", lhsValue, {kDynamic, k})) ||
      failed(expectShape(op, "offsets", offsets, {experts + 1})) ||
      failed(expectShape(op, resultName, result, {rows, n})))
    return failure();
  if (gather && failed(expectShape(op, "gather", gather, {kDynamic})))
    return failure();
  if (!fp8)
    return success();
  return failure(
      (quantizedLhs && failed(expectShape(op, "lhs scales", lhsScales,
                                          {lhs[0], ceilDiv(k, block[1])}))) ||
      failed(expectShape(op, rhsName + " scales", rhsScales,
                         {experts, ceilDiv(n, block[0]), ceilDiv(k, block[1])})));
}

} // namespace

LogicalResult GroupedGemmOp::verify() {
  return verifyGroupedGemm(*this, getLhs(), getLhsScales(), getGather(), getRhs(),
                           getRhsScales(), getOffsets(), getBlock(), getResult(), "");
}

LogicalResult GroupedGemmPairOp::verify() {
  if (getResult0().getType().getElementType() != getResult1().getType().getElementType())
    return emitOpError() << "result0 and result1 must have one element type";
  return failure(failed(verifyGroupedGemm(*this, getLhs(), getLhsScales(), getGather(),
                                          getRhs0(), getRhs0Scales(), getOffsets(), getBlock(),
                                          getResult0(), "0")) ||
                 failed(verifyGroupedGemm(*this, getLhs(), getLhsScales(), getGather(),
                                          getRhs1(), getRhs1Scales(), getOffsets(), getBlock(),
                                          getResult1(), "1")));
}

LogicalResult Fp8GemmPairOp::verify() {
  if (getResult0().getType().getElementType() != getResult1().getType().getElementType())
    return emitOpError() << "result0 and result1 must have one element type";
  return failure(failed(verifyFp8Gemm(*this, getLhs(), getLhsScales(), getRhs0(),
                                      getRhs0Scales(), getBlock(), getResult0(), "0")) ||
                 failed(verifyFp8Gemm(*this, getLhs(), getLhsScales(), getRhs1(),
                                      getRhs1Scales(), getBlock(), getResult1(), "1")));
}

LogicalResult MoeCombineOp::verify() {
  ArrayRef<int64_t> weights = shapeOf(getWeights());
  ArrayRef<int64_t> expertOut = shapeOf(getExpertOut());
  if (weights.size() != 2 || expertOut.size() != 2)
    return emitOpError() << "weights must be tokens x top_k and expert_out rows x hidden";
  if (getShared() && getShared().getType().getElementType() !=
                         getExpertOut().getType().getElementType())
    return emitOpError() << "shared and expert_out must have one element type";
  int64_t routed =
      ShapedType::isDynamic(weights[0]) ? kDynamic : weights[0] * weights[1];
  return failure(
      failed(expectShape(*this, "expert_out", getExpertOut(), {routed, kDynamic})) ||
      failed(expectShape(*this, "rows", getRows(), {routed})) ||
      (getShared() && failed(expectShape(*this, "shared", getShared(),
                                         {weights[0], expertOut[1]}))) ||
      failed(expectShape(*this, "result", getResult(),
                         {weights[0], expertOut[1]})));
}

LogicalResult ConvertOp::verify() {
  return expectShape(*this, "result", getResult(), shapeOf(getInput()));
}

LogicalResult ConcatOp::verify() {
  ArrayRef<int64_t> lhs = shapeOf(getLhs()), rhs = shapeOf(getRhs());
  if (lhs.size() != 2 || rhs.size() != 2)
    return emitOpError() << "operands must be rows x columns";
  int64_t cols = ShapedType::isDynamic(lhs[1]) || ShapedType::isDynamic(rhs[1])
                     ? kDynamic
                     : lhs[1] + rhs[1];
  return failure(failed(expectShape(*this, "rhs", getRhs(), {lhs[0], kDynamic})) ||
                 failed(expectShape(*this, "result", getResult(), {lhs[0], cols})));
}

/// The shapes every absorbed-MLA op checks: q `[T, heads * (nope + rope)]`,
/// kv_b `[heads * (nope + v), kv_lora]`.
static int64_t qWidth(MlaShapeAttr s) { return s.getHeads() * s.getQkHeadDim(); }
static SmallVector<int64_t, 2> kvBShape(MlaShapeAttr s) {
  return {s.getHeads() * (s.getQkNopeHeadDim() + s.getVHeadDim()),
          s.getKvLoraRank()};
}

LogicalResult RopeQOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t tokens = shapeOf(getQ()).empty() ? kDynamic : shapeOf(getQ())[0];
  return failure(
      failed(expectShape(*this, "q", getQ(), {kDynamic, qWidth(s)})) ||
      failed(expectShape(*this, "positions", getPositions(), {tokens})) ||
      failed(expectShape(*this, "inv_freq", getInvFreq(),
                         {s.getQkRopeHeadDim() / 2})));
}

LogicalResult MlaAbsorbQOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t tokens = shapeOf(getQ()).empty() ? kDynamic : shapeOf(getQ())[0];
  return failure(
      failed(expectShape(*this, "q", getQ(), {kDynamic, qWidth(s)})) ||
      failed(expectShape(*this, "kv_b", getKvB(), kvBShape(s))) ||
      failed(expectShape(*this, "result", getResult(),
                         {tokens, s.getHeads() * s.getKvLoraRank()})));
}

LogicalResult KvWriteOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t tokens = shapeOf(getKvA()).empty() ? kDynamic : shapeOf(getKvA())[0];
  if (getLayerAttr().getInt() < 0)
    return emitOpError() << "layer must be non-negative";
  return failure(
      failed(expectShape(*this, "kv_a", getKvA(),
                         {kDynamic, s.getKvLoraRank() + s.getQkRopeHeadDim()})) ||
      failed(expectShape(*this, "kv_norm", getKvNorm(), {s.getKvLoraRank()})) ||
      failed(expectShape(*this, "positions", getPositions(), {tokens})) ||
      failed(expectShape(*this, "token_seq", getTokenSeq(), {tokens})) ||
      failed(expectShape(*this, "block_table", getBlockTable(),
                         {kDynamic, kDynamic})) ||
      failed(expectShape(*this, "inv_freq", getInvFreq(),
                         {s.getQkRopeHeadDim() / 2})) ||
      failed(verifyPositiveEps(*this, getEps().convertToDouble())));
}

LogicalResult MlaAttentionOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t latent = s.getHeads() * s.getKvLoraRank();
  int64_t tokens = shapeOf(getQLat()).empty() ? kDynamic : shapeOf(getQLat())[0];
  if (getLayerAttr().getInt() < 0)
    return emitOpError() << "layer must be non-negative";
  return failure(
      failed(expectShape(*this, "q_lat", getQLat(), {kDynamic, latent})) ||
      failed(expectShape(*this, "q", getQ(), {tokens, qWidth(s)})) ||
      failed(expectShape(*this, "positions", getPositions(), {tokens})) ||
      failed(expectShape(*this, "token_seq", getTokenSeq(), {tokens})) ||
      failed(expectShape(*this, "block_table", getBlockTable(),
                         {kDynamic, kDynamic})) ||
      failed(expectShape(*this, "result", getResult(), {tokens, latent})));
}

LogicalResult MlaPrefillAttentionOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t tokens = shapeOf(getQ()).empty() ? kDynamic : shapeOf(getQ())[0];
  if (getLayerAttr().getInt() < 0)
    return emitOpError() << "layer must be non-negative";
  if (!llvm::cast<RankedTensorType>(getInto().getType()).getElementType().isBF16())
    return emitOpError() << "result must be bf16 (the output projection's input)";
  if (!llvm::cast<RankedTensorType>(getKv().getType()).getElementType().isBF16())
    return emitOpError() << "kv must be bf16";
  return failure(
      failed(expectShape(*this, "q", getQ(), {tokens, qWidth(s)})) ||
      failed(expectShape(*this, "kv", getKv(), {tokens, kvBShape(s)[0]})) ||
      failed(expectShape(*this, "positions", getPositions(), {tokens})) ||
      failed(expectShape(*this, "token_seq", getTokenSeq(), {tokens})) ||
      failed(expectShape(*this, "block_table", getBlockTable(),
                         {kDynamic, kDynamic})) ||
      failed(expectShape(*this, "into", getInto(),
                         {tokens, s.getHeads() * s.getVHeadDim()})));
}

LogicalResult MlaAbsorbOutOp::verify() {
  MlaShapeAttr s = getShape();
  int64_t tokens =
      shapeOf(getLatent()).empty() ? kDynamic : shapeOf(getLatent())[0];
  return failure(
      failed(expectShape(*this, "latent", getLatent(),
                         {kDynamic, s.getHeads() * s.getKvLoraRank()})) ||
      failed(expectShape(*this, "kv_b", getKvB(), kvBShape(s))) ||
      failed(expectShape(*this, "result", getResult(),
                         {tokens, s.getHeads() * s.getVHeadDim()})));
}
