//===- Decompose.cpp - graph ops to kernel ops over token rows ------------===//

#include "passes/Passes.h"

#include "dialects/Dsv3Ops.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

namespace dsv3 {
#define GEN_PASS_DEF_DECOMPOSE
#include "passes/Passes.h.inc"
} // namespace dsv3

using namespace mlir;
using namespace dsv3;

namespace {

constexpr int64_t kDynamic = ShapedType::kDynamic;

/// The run-time inputs of a step (see the pass description).
struct StepInputs {
  Value tokens, positions, tokenSeq, blockTable, lastRows;
};

/// Rebuilds one entry point's body in step form.
class EntryLowering {
public:
  EntryLowering(SymbolTable &symbols, OpBuilder &builder, StepInputs inputs,
                bool quantizeActivations)
      : symbols(symbols), b(builder), inputs(inputs),
        quantizeActivations(quantizeActivations) {}

  IRMapping mapping;

  LogicalResult lower(Operation *op);

private:
  Type rowsType(int64_t cols, Type element) {
    return RankedTensorType::get({kDynamic, cols}, element);
  }
  /// GEMM inputs and the cache are bf16; everything else (GEMM outputs, the
  /// residual stream, attention's latents) is f32, so that the only bf16
  /// roundings are where a bf16 GEMM or the cache needs them.
  Type bf16Rows(int64_t cols) { return rowsType(cols, b.getBF16Type()); }
  Type f32Rows(int64_t cols) { return rowsType(cols, b.getF32Type()); }
  static int64_t colsOf(Value v) {
    return llvm::cast<RankedTensorType>(v.getType()).getDimSize(1);
  }
  Value map(Value graphValue) { return mapping.lookup(graphValue); }
  /// x as a GEMM reads it: bf16 (normalized rows already are).
  Value gemmInput(Value x, Location loc) {
    if (llvm::cast<RankedTensorType>(x.getType()).getElementType().isBF16())
      return x;
    return b.create<ConvertOp>(loc, bf16Rows(colsOf(x)), x);
  }

  WeightOp weightDecl(FlatSymbolRefAttr ref) {
    return symbols.lookup<WeightOp>(ref.getValue());
  }
  ValueRange weightRef(FlatSymbolRefAttr ref);
  Value denseWeight(FlatSymbolRefAttr ref, Location loc);
  Value normalize(Value x, FlatSymbolRefAttr weight, FloatAttr eps, Location loc);
  Value linear(Value x, FlatSymbolRefAttr weight, Location loc,
               Type outElement = {});
  Value swigluMlp(Value x, FlatSymbolRefAttr gate, FlatSymbolRefAttr up,
                  FlatSymbolRefAttr down, Location loc, Type outElement = {});

  LogicalResult lowerMla(MlaOp op);
  LogicalResult lowerMoe(MoeOp op);

  SymbolTable &symbols;
  OpBuilder &b;
  StepInputs inputs;
  /// FP8-weight GEMMs take FP8 activations (act_quant, swiglu_quant) rather
  /// than bf16 ones.
  bool quantizeActivations;
  /// One weight_ref per weight and entry point, created at first use (which
  /// dominates every later use in the straight-line body).
  llvm::StringMap<SmallVector<Value, 2>> weightValues;
};

ValueRange EntryLowering::weightRef(FlatSymbolRefAttr ref) {
  auto [it, inserted] = weightValues.try_emplace(ref.getValue());
  if (inserted) {
    WeightOp decl = weightDecl(ref);
    SmallVector<Type, 2> types = {decl.getType()};
    if (std::optional<BlockScaleAttr> scale = decl.getScale())
      types.push_back(RankedTensorType::get(
          {scale->getScaleRows(), scale->getScaleCols()}, b.getF32Type()));
    auto op = b.create<WeightRefOp>(decl.getLoc(), types, ref);
    it->second.assign(op.getResults().begin(), op.getResults().end());
  }
  return it->second;
}

/// A weight as a bf16 tensor: FP8 weights are dequantized (at load time, once
/// the plan is built).
Value EntryLowering::denseWeight(FlatSymbolRefAttr ref, Location loc) {
  WeightOp decl = weightDecl(ref);
  ValueRange values = weightRef(ref);
  std::optional<BlockScaleAttr> scale = decl.getScale();
  if (!scale)
    return values[0];
  return b.create<DequantOp>(
      loc,
      RankedTensorType::get(decl.getTensorType().getShape(), b.getBF16Type()),
      values[0], values[1],
      b.getDenseI64ArrayAttr({scale->getBlockRows(), scale->getBlockCols()}));
}

Value EntryLowering::normalize(Value x, FlatSymbolRefAttr weight, FloatAttr eps,
                               Location loc) {
  return b.create<NormalizeOp>(loc, bf16Rows(colsOf(x)), x, weightRef(weight)[0],
                               eps);
}

/// x * W^T: fp8_gemm for a block-scaled weight, of x itself or (when
/// quantizing activations) of act_quant(x) with activation blocks following
/// the weight's column blocks; bf16_gemm for a bf16 weight.
Value EntryLowering::linear(Value x, FlatSymbolRefAttr weight, Location loc,
                            Type outElement) {
  if (!outElement)
    outElement = b.getF32Type();
  x = gemmInput(x, loc);
  WeightOp decl = weightDecl(weight);
  int64_t n = decl.getTensorType().getDimSize(0);
  int64_t k = decl.getTensorType().getDimSize(1);
  ValueRange values = weightRef(weight);
  std::optional<BlockScaleAttr> scale = decl.getScale();
  if (!scale)
    return b.create<Bf16GemmOp>(loc, rowsType(n, outElement), x, values[0]);
  int64_t blockCols = scale->getBlockCols();
  DenseI64ArrayAttr block =
      b.getDenseI64ArrayAttr({scale->getBlockRows(), blockCols});
  if (!quantizeActivations)
    return b.create<Fp8GemmOp>(loc, rowsType(n, outElement), x, Value(),
                               values[0], values[1], block);
  auto quant = b.create<ActQuantOp>(
      loc, rowsType(k, b.getType<Float8E4M3FNType>()),
      rowsType(llvm::divideCeil(k, blockCols), b.getF32Type()), x,
      b.getI64IntegerAttr(blockCols));
  return b.create<Fp8GemmOp>(loc, rowsType(n, outElement), quant.getOutput(),
                             quant.getScales(), values[0], values[1], block);
}

/// down(silu(gate(x)) * up(x)); when quantizing the activations of an FP8
/// down projection the product is quantized as it is formed, from bf16 gate
/// and up rows (what DeepSeek's FP8 GEMMs return; half the bytes of f32
/// between the GEMMs and the quantization). The down projection returns
/// `outElement` (default f32).
Value EntryLowering::swigluMlp(Value x, FlatSymbolRefAttr gate,
                               FlatSymbolRefAttr up, FlatSymbolRefAttr down,
                               Location loc, Type outElement) {
  if (!outElement)
    outElement = b.getF32Type();
  WeightOp downDecl = weightDecl(down);
  std::optional<BlockScaleAttr> scale = downDecl.getScale();
  if (!scale || !quantizeActivations) {
    Value g = linear(x, gate, loc), u = linear(x, up, loc);
    return linear(b.create<SwigluOp>(loc, bf16Rows(colsOf(g)), g, u), down, loc,
                  outElement);
  }
  Value g = linear(x, gate, loc, b.getBF16Type());
  Value u = linear(x, up, loc, b.getBF16Type());
  int64_t width = llvm::cast<RankedTensorType>(g.getType()).getDimSize(1);
  int64_t blockCols = scale->getBlockCols();
  auto quant = b.create<SwigluQuantOp>(
      loc, rowsType(width, b.getType<Float8E4M3FNType>()),
      rowsType(llvm::divideCeil(width, blockCols), b.getF32Type()), g, u,
      b.getI64IntegerAttr(blockCols));
  ValueRange values = weightRef(down);
  return b.create<Fp8GemmOp>(
      loc, rowsType(downDecl.getTensorType().getDimSize(0), outElement),
      quant.getOutput(), quant.getScales(), values[0], values[1],
      b.getDenseI64ArrayAttr({scale->getBlockRows(), blockCols}));
}

LogicalResult EntryLowering::lowerMla(MlaOp op) {
  Location loc = op.getLoc();
  Value x = gemmInput(map(op.getInput()), loc);
  MlaShapeAttr shape = op.getShape();
  Value q;
  if (shape.hasQLora()) {
    Value compressed = linear(x, op.getQAProjAttr(), loc);
    q = linear(normalize(compressed, op.getQALayernormAttr(), op.getEpsAttr(), loc),
               op.getQBProjAttr(), loc);
  } else {
    q = linear(x, op.getQProjAttr(), loc);
  }
  Value kvA = linear(x, op.getKvAProjWithMqaAttr(), loc);
  Value attention = b.create<MlaCoreOp>(
      loc, bf16Rows(shape.getHeads() * shape.getVHeadDim()), q, kvA,
      weightRef(op.getKvALayernormAttr())[0],
      denseWeight(op.getKvBProjAttr(), loc), map(op.getPositions()),
      inputs.tokenSeq, inputs.blockTable, op.getLayerAttr(), shape,
      op.getRope(), op.getSoftmaxScaleAttr(), op.getEpsAttr());
  mapping.map(op.getResult(), linear(attention, op.getOProjAttr(), loc));
  return success();
}

LogicalResult EntryLowering::lowerMoe(MoeOp op) {
  Location loc = op.getLoc();
  Value x = gemmInput(map(op.getInput()), loc);
  RoutingAttr routing = op.getRouting();
  int64_t experts = routing.getExperts(), topK = routing.getTopK();
  Type i32Rows = RankedTensorType::get({kDynamic}, b.getI32Type());

  Value logits = linear(x, op.getRouterAttr(), loc, b.getF32Type());
  Value bias;
  if (FlatSymbolRefAttr biasRef = op.getCorrectionBiasAttr())
    bias = weightRef(biasRef)[0];
  auto route = b.create<MoeRouteOp>(
      loc, rowsType(topK, b.getI32Type()), rowsType(topK, b.getF32Type()),
      logits, bias, routing);
  auto align = b.create<MoeAlignOp>(
      loc, RankedTensorType::get({experts + 1}, b.getI32Type()), i32Rows,
      i32Rows, route.getIds(), b.getI64IntegerAttr(experts));

  // experts = [gate_0, up_0, down_0, gate_1, ...]: stack each projection.
  auto stacked = [&](int which) {
    SmallVector<Attribute> refs;
    for (int64_t e = 0; e < experts; ++e)
      refs.push_back(op.getExperts()[3 * e + which]);
    WeightOp first = weightDecl(llvm::cast<FlatSymbolRefAttr>(refs[0]));
    RankedTensorType type = first.getTensorType();
    SmallVector<Type, 2> types = {RankedTensorType::get(
        {experts, type.getDimSize(0), type.getDimSize(1)}, type.getElementType())};
    if (std::optional<BlockScaleAttr> scale = first.getScale())
      types.push_back(RankedTensorType::get(
          {experts, scale->getScaleRows(), scale->getScaleCols()},
          b.getF32Type()));
    return std::make_pair(
        b.create<StackedWeightRefOp>(loc, types, b.getArrayAttr(refs)), first);
  };
  auto [gate, gateDecl] = stacked(0);
  auto [up, upDecl] = stacked(1);
  auto [down, downDecl] = stacked(2);
  int64_t width = gateDecl.getTensorType().getDimSize(0);
  int64_t hidden = downDecl.getTensorType().getDimSize(0);

  // Routed rows reach the gate and up GEMMs through align's token list; the
  // down GEMM reads the products in routed order.
  Value expertOut;
  std::optional<BlockScaleAttr> scale = gateDecl.getScale();
  if (scale && quantizeActivations) {
    int64_t blockCols = scale->getBlockCols();
    DenseI64ArrayAttr block =
        b.getDenseI64ArrayAttr({scale->getBlockRows(), blockCols});
    int64_t k = gateDecl.getTensorType().getDimSize(1);
    auto quant = b.create<ActQuantOp>(
        loc, rowsType(k, b.getType<Float8E4M3FNType>()),
        rowsType(llvm::divideCeil(k, blockCols), b.getF32Type()), x,
        b.getI64IntegerAttr(blockCols));
    // bf16 products, as DeepSeek's FP8 GEMMs return them: half the bytes
    // of f32 to write and read again, the largest traffic of a long prefill
    // (8192 tokens x top-8 rows of 7168).
    auto project = [&](StackedWeightRefOp weights) {
      return b.create<GroupedGemmOp>(
          loc, bf16Rows(width), quant.getOutput(), quant.getScales(),
          align.getTokens(), weights.getResult(0), weights.getResult(1),
          align.getOffsets(), block);
    };
    Value g = project(gate), u = project(up);
    auto product = b.create<SwigluQuantOp>(
        loc, rowsType(width, b.getType<Float8E4M3FNType>()),
        rowsType(llvm::divideCeil(width, blockCols), b.getF32Type()), g, u,
        b.getI64IntegerAttr(blockCols));
    expertOut = b.create<GroupedGemmOp>(
        loc, bf16Rows(hidden), product.getOutput(), product.getScales(),
        Value(), down.getResult(0), down.getResult(1), align.getOffsets(),
        block);
  } else {
    // bf16 activations, with FP8 (block-scaled) or bf16 weights.
    DenseI64ArrayAttr block =
        scale ? b.getDenseI64ArrayAttr(
                    {scale->getBlockRows(), scale->getBlockCols()})
              : b.getDenseI64ArrayAttr({1, 1});
    auto project = [&](Value input, Value gather, StackedWeightRefOp weights,
                       int64_t outCols) {
      return b.create<GroupedGemmOp>(
          loc, f32Rows(outCols), input, Value(), gather, weights.getResult(0),
          scale ? weights.getResult(1) : Value(), align.getOffsets(), block);
    };
    Value g = project(x, align.getTokens(), gate, width);
    Value u = project(x, align.getTokens(), up, width);
    Value product = b.create<SwigluOp>(loc, bf16Rows(width), g, u);
    expertOut = project(product, Value(), down, hidden);
  }

  Value shared;
  if (std::optional<ArrayAttr> refs = op.getSharedExperts())
    // moe_combine takes the shared expert's rows in the routed ones' type.
    shared = swigluMlp(x, llvm::cast<FlatSymbolRefAttr>((*refs)[0]),
                       llvm::cast<FlatSymbolRefAttr>((*refs)[1]),
                       llvm::cast<FlatSymbolRefAttr>((*refs)[2]), loc,
                       llvm::cast<RankedTensorType>(expertOut.getType()).getElementType());
  mapping.map(op.getResult(),
              b.create<MoeCombineOp>(loc, f32Rows(hidden), expertOut,
                                     align.getRows(), route.getWeights(), shared)
                  .getResult());
  return success();
}

LogicalResult EntryLowering::lower(Operation *op) {
  Location loc = op->getLoc();
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](EmbedOp embed) {
        Value table = weightRef(embed.getTableAttr())[0];
        // The residual stream starts as the f32 embedding rows.
        mapping.map(embed.getResult(),
                    b.create<GatherOp>(loc, f32Rows(colsOf(table)), table,
                                       map(embed.getTokens()))
                        .getResult());
        return success();
      })
      .Case([&](RmsNormOp norm) {
        mapping.map(norm.getResult(), normalize(map(norm.getInput()),
                                                norm.getWeightAttr(),
                                                norm.getEpsAttr(), loc));
        return success();
      })
      .Case([&](arith::AddFOp add) {
        mapping.map(add.getResult(),
                    b.create<arith::AddFOp>(loc, map(add.getLhs()),
                                            map(add.getRhs()))
                        .getResult());
        return success();
      })
      .Case([&](MlaOp mla) { return lowerMla(mla); })
      .Case([&](DenseMlpOp mlp) {
        mapping.map(mlp.getResult(),
                    swigluMlp(gemmInput(map(mlp.getInput()), loc), mlp.getGateProjAttr(),
                              mlp.getUpProjAttr(), mlp.getDownProjAttr(), loc));
        return success();
      })
      .Case([&](MoeOp moe) { return lowerMoe(moe); })
      .Case([&](MtpOp mtp) {
        Value embedding = normalize(map(mtp.getEmbedding()), mtp.getEnormAttr(),
                                    mtp.getEpsAttr(), loc);
        Value hidden = normalize(map(mtp.getHidden()), mtp.getHnormAttr(),
                                 mtp.getEpsAttr(), loc);
        int64_t width =
            llvm::cast<RankedTensorType>(hidden.getType()).getDimSize(1);
        Value both =
            b.create<ConcatOp>(loc, bf16Rows(2 * width), embedding, hidden);
        mapping.map(mtp.getResult(), linear(both, mtp.getEhProjAttr(), loc));
        return success();
      })
      .Case([&](LmHeadOp head) {
        // Only each sequence's last token needs logits.
        Value x = map(head.getInput());
        Value last = b.create<GatherOp>(loc, x.getType(), x, inputs.lastRows);
        mapping.map(head.getResult(),
                    linear(last, head.getHeadAttr(), loc, b.getF32Type()));
        return success();
      })
      .Case([&](func::ReturnOp ret) {
        SmallVector<Value> results;
        for (Value v : ret.getOperands())
          results.push_back(map(v));
        b.create<func::ReturnOp>(loc, results);
        return success();
      })
      .Default([&](Operation *other) {
        return other->emitOpError("has no lowering to kernel ops");
      });
}

/// Flattens a graph tensor type [batch, seq, ...] to rows [?, ...].
Type flattenBatch(Type type) {
  auto tensor = llvm::cast<RankedTensorType>(type);
  SmallVector<int64_t> shape = {kDynamic};
  llvm::append_range(shape, tensor.getShape().drop_front(2));
  return RankedTensorType::get(shape, tensor.getElementType());
}

struct DecomposePass : public dsv3::impl::DecomposeBase<DecomposePass> {
  using DecomposeBase::DecomposeBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> entries(module.getOps<func::FuncOp>());
    for (func::FuncOp entry : entries)
      if (failed(lowerEntry(symbols, entry)))
        return signalPassFailure();
  }

  LogicalResult lowerEntry(SymbolTable &symbols, func::FuncOp graph) {
    FunctionType graphType = graph.getFunctionType();
    // Main entries take (tokens, positions); MTP entries (hidden, tokens,
    // positions). All graph inputs are [batch, seq, ...].
    bool isMtp = graphType.getNumInputs() == 3;
    auto isBatchBySeq = [](Type type) {
      auto tensor = llvm::dyn_cast<RankedTensorType>(type);
      return tensor && tensor.getRank() >= 2;
    };
    if ((graphType.getNumInputs() != 2 && !isMtp) ||
        !llvm::all_of(graphType.getInputs(), isBatchBySeq) ||
        !llvm::all_of(graphType.getResults(), isBatchBySeq))
      return graph.emitOpError("is not a dsv3 entry point: expected "
                               "[batch, seq, ...] tensors in and out");
    OpBuilder b(graph);
    Type i32Rows = RankedTensorType::get({kDynamic}, b.getI32Type());
    Type table = RankedTensorType::get({kDynamic, kDynamic}, b.getI32Type());
    SmallVector<Type> inputs;
    if (isMtp)
      inputs.push_back(flattenBatch(graphType.getInput(0)));
    inputs.append({i32Rows, i32Rows, i32Rows, table, i32Rows});
    SmallVector<Type> results;
    for (Type t : graphType.getResults())
      results.push_back(flattenBatch(t));

    auto step = b.create<func::FuncOp>(graph.getLoc(), graph.getSymName(),
                                       b.getFunctionType(inputs, results));
    // Name each step input, for memory planning and the runtime.
    SmallVector<StringRef> roles;
    if (isMtp)
      roles.push_back("hidden");
    roles.append({"tokens", "positions", "token_seq", "block_table", "last_rows"});
    for (auto [index, role] : llvm::enumerate(roles))
      step.setArgAttr(index, kStepInputAttrName, b.getStringAttr(role));
    Block *body = step.addEntryBlock();
    unsigned first = isMtp ? 1 : 0;
    StepInputs stepInputs{body->getArgument(first), body->getArgument(first + 1),
                          body->getArgument(first + 2),
                          body->getArgument(first + 3),
                          body->getArgument(first + 4)};
    b.setInsertionPointToStart(body);
    EntryLowering lowering(symbols, b, stepInputs, quantizeActivations);
    Block &graphBody = graph.getBody().front();
    if (isMtp)
      lowering.mapping.map(graphBody.getArgument(0), body->getArgument(0));
    lowering.mapping.map(graphBody.getArgument(first), stepInputs.tokens);
    lowering.mapping.map(graphBody.getArgument(first + 1), stepInputs.positions);
    for (Operation &op : graphBody)
      if (failed(lowering.lower(&op))) {
        step.erase();
        return failure();
      }
    // Results take the kernel-level precision of what is returned (the
    // hidden rows are the f32 residual stream).
    auto ret = llvm::cast<func::ReturnOp>(body->getTerminator());
    step.setType(b.getFunctionType(inputs, ret.getOperandTypes()));
    symbols.erase(graph);
    symbols.insert(step);
    return success();
  }
};

} // namespace
