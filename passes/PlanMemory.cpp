//===- PlanMemory.cpp - one arena per entry point, reused by liveness -----===//

#include "passes/Passes.h"

#include "dialects/Dsv3Ops.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

namespace dsv3 {
#define GEN_PASS_DEF_PLANMEMORY
#include "passes/Passes.h.inc"
} // namespace dsv3

using namespace mlir;
using namespace dsv3;

namespace {

constexpr int64_t kArenaAlignment = 256;

/// How many rows a value has: `multiplier` times the step's tokens (T) or
/// sequences (B), or a constant.
struct RowBound {
  enum Unit { Constant, Tokens, Sequences } unit = Constant;
  int64_t multiplier = 1;

  std::string str() const {
    StringRef name = unit == Tokens ? "T" : "B";
    if (unit == Constant)
      return std::to_string(multiplier);
    return multiplier == 1 ? name.str()
                           : llvm::formatv("{0}*{1}", multiplier, name).str();
  }
};

class EntryPlanner {
public:
  EntryPlanner(func::FuncOp entry, int64_t maxTokens, int64_t maxSequences)
      : entry(entry), maxTokens(maxTokens), maxSequences(maxSequences) {}

  LogicalResult run();

private:
  FailureOr<RowBound> rowsOf(Value value);
  bool inArena(Operation *op);

  func::FuncOp entry;
  int64_t maxTokens, maxSequences;
  llvm::DenseMap<Value, RowBound> rows;
  /// Ops computed from weights and constants alone (dequantized weights):
  /// they run once at load time, not per step.
  llvm::DenseSet<Operation *> loadTime;
};

/// The operand whose space an op's result takes, or null: rope_q rotates
/// its input in place; mla_prefill_attention writes the buffer of the
/// absorbed path's result, which runs instead of it on other steps.
Value inPlaceOperand(Operation *op) {
  if (auto rope = llvm::dyn_cast<RopeQOp>(op))
    return rope.getQ();
  if (auto attention = llvm::dyn_cast<MlaPrefillAttentionOp>(op))
    return attention.getInto();
  return nullptr;
}

bool EntryPlanner::inArena(Operation *op) {
  if (llvm::isa<WeightRefOp, StackedWeightRefOp, arith::ConstantOp>(op)) {
    loadTime.insert(op);
    return false;
  }
  if (op->getNumOperands() > 0 &&
      llvm::all_of(op->getOperands(), [&](Value v) {
        Operation *def = v.getDefiningOp();
        return def && loadTime.contains(def);
      })) {
    loadTime.insert(op);
    return false;
  }
  return op->getNumResults() > 0;
}

FailureOr<RowBound> EntryPlanner::rowsOf(Value value) {
  if (auto it = rows.find(value); it != rows.end())
    return it->second;
  auto type = llvm::cast<RankedTensorType>(value.getType());
  RowBound bound;
  if (type.getRank() >= 1 && !type.isDynamicDim(0)) {
    bound.multiplier = type.getDimSize(0);
  } else if (auto arg = llvm::dyn_cast<BlockArgument>(value)) {
    auto role = entry.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                   kStepInputAttrName);
    if (!role)
      return entry.emitOpError() << "argument " << arg.getArgNumber()
                                 << " has no " << kStepInputAttrName
                                 << " role (run dsv3-decompose first)";
    bool perSequence =
        role.getValue() == "block_table" || role.getValue() == "last_rows";
    bound.unit = perSequence ? RowBound::Sequences : RowBound::Tokens;
  } else {
    Operation *op = value.getDefiningOp();
    FailureOr<RowBound> derived =
        llvm::TypeSwitch<Operation *, FailureOr<RowBound>>(op)
            .Case([&](GatherOp gather) { return rowsOf(gather.getIndices()); })
            .Case([&](MoeAlignOp align) -> FailureOr<RowBound> {
              FailureOr<RowBound> tokens = rowsOf(align.getIds());
              if (failed(tokens))
                return failure();
              RowBound routed = *tokens;
              routed.multiplier *=
                  llvm::cast<RankedTensorType>(align.getIds().getType())
                      .getDimSize(1);
              return routed;
            })
            .Case<GroupedGemmOp, GroupedGemmPairOp>([&](auto gemm) {
              return rowsOf(gemm.getGather() ? gemm.getGather() : gemm.getLhs());
            })
            .Case([&](MoeCombineOp combine) {
              return rowsOf(combine.getWeights());
            })
            .Default([&](Operation *other) -> FailureOr<RowBound> {
              // Row-wise ops keep the rows of their first operand.
              if (other->getNumOperands() == 0)
                return other->emitOpError("has rows of unknown bound");
              return rowsOf(other->getOperand(0));
            });
    if (failed(derived))
      return failure();
    bound = *derived;
  }
  rows[value] = bound;
  return bound;
}

LogicalResult EntryPlanner::run() {
  Block &body = entry.getBody().front();
  llvm::DenseMap<Operation *, int64_t> position;
  int64_t index = 0;
  for (Operation &op : body)
    position[&op] = index++;
  int64_t end = index;

  struct Interval {
    SmallVector<Value, 2> values; // more than one when an op works in place
    int64_t start, last, bytes;
    int64_t offset = -1;
  };
  SmallVector<Interval> intervals;
  llvm::DenseMap<Value, size_t> intervalOf;
  llvm::DenseMap<Operation *, SmallVector<std::string>> rowNames;
  auto lastUse = [&](Value value, int64_t from) {
    int64_t last = from;
    for (Operation *user : value.getUsers())
      last = std::max(last, llvm::isa<func::ReturnOp>(user) ? end
                                                            : position[user]);
    return last;
  };
  for (Operation &op : body) {
    if (!inArena(&op))
      continue;
    // The result takes the in-place operand's space, which the operand must
    // not need afterwards.
    if (Value operand = inPlaceOperand(&op)) {
      Value result = op.getResult(0);
      auto it = intervalOf.find(operand);
      if (it == intervalOf.end())
        return op.emitOpError("writes in place, so its operand must be an "
                              "activation of this entry point");
      Interval &shared = intervals[it->second];
      if (shared.last != position[&op])
        return op.emitOpError("writes in place, but its operand is read "
                              "again after it");
      shared.last = lastUse(result, position[&op]);
      shared.values.push_back(result);
      intervalOf[result] = it->second;
      FailureOr<RowBound> bound = rowsOf(result);
      if (failed(bound))
        return failure();
      rowNames[&op].push_back(bound->str());
      continue;
    }
    for (Value result : op.getResults()) {
      FailureOr<RowBound> bound = rowsOf(result);
      if (failed(bound))
        return failure();
      auto type = llvm::cast<RankedTensorType>(result.getType());
      int64_t maxRows = bound->multiplier *
                        (bound->unit == RowBound::Tokens      ? maxTokens
                         : bound->unit == RowBound::Sequences ? maxSequences
                                                              : 1);
      // Step-sized values hold their rows in whole groups (kStepRowGroup).
      if (bound->unit != RowBound::Constant)
        maxRows = llvm::alignTo(maxRows, kStepRowGroup);
      int64_t perRow = type.getElementTypeBitWidth() / 8;
      for (int64_t d : type.getShape().drop_front())
        perRow *= d;
      intervalOf[result] = intervals.size();
      intervals.push_back({{result},
                           position[&op],
                           lastUse(result, position[&op]),
                           static_cast<int64_t>(
                               llvm::alignTo(maxRows * perRow, kArenaAlignment))});
      rowNames[&op].push_back(bound->str());
    }
  }

  // First fit over the values live at each definition.
  SmallVector<Interval *> live;
  int64_t peak = 0;
  for (Interval &interval : intervals) {
    llvm::erase_if(live, [&](Interval *other) {
      return other->last < interval.start;
    });
    llvm::sort(live, [](Interval *a, Interval *b) { return a->offset < b->offset; });
    int64_t offset = 0;
    for (Interval *other : live) {
      if (offset + interval.bytes <= other->offset)
        break;
      offset = std::max(offset, other->offset + other->bytes);
    }
    interval.offset = offset;
    peak = std::max(peak, offset + interval.bytes);
    live.push_back(&interval);
  }

  Builder b(entry.getContext());
  llvm::MapVector<Operation *, SmallVector<int64_t>> offsets;
  // Results in op order: walk the ops, not the intervals.
  for (Operation &op : body)
    for (Value result : op.getResults())
      if (auto it = intervalOf.find(result); it != intervalOf.end())
        offsets[&op].push_back(intervals[it->second].offset);
  for (auto &[op, list] : offsets) {
    op->setAttr("dsv3.offsets", b.getDenseI64ArrayAttr(list));
    SmallVector<Attribute> names;
    for (const std::string &name : rowNames[op])
      names.push_back(b.getStringAttr(name));
    op->setAttr("dsv3.rows", b.getArrayAttr(names));
  }
  entry->setAttr("dsv3.arena_bytes", b.getI64IntegerAttr(peak));
  return success();
}

struct PlanMemoryPass : public dsv3::impl::PlanMemoryBase<PlanMemoryPass> {
  using PlanMemoryBase::PlanMemoryBase;

  void runOnOperation() override {
    if (maxTokens < 1 || maxSequences < 1 || maxSequences > maxTokens) {
      getOperation().emitError()
          << "dsv3-plan-memory needs 1 <= max-sequences <= max-tokens, got "
          << maxSequences << " and " << maxTokens;
      return signalPassFailure();
    }
    for (func::FuncOp entry : getOperation().getOps<func::FuncOp>())
      if (failed(EntryPlanner(entry, maxTokens, maxSequences).run()))
        return signalPassFailure();
  }
};

} // namespace
