//===- PlanFile.cpp - open, verify and size a plan ------------------------===//

#include "runtime/plan/PlanFile.h"

#include "runtime/plan/PlanDump.h"

#include <algorithm>
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

namespace dsv3::plan {

uint64_t dtypeBytes(DType dtype) {
  switch (dtype) {
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F8_E4M3:
    return 1;
  }
  return 0;
}

int64_t numElements(const flatbuffers::Vector<int64_t> *shape) {
  int64_t count = 1;
  if (shape)
    for (int64_t dim : *shape)
      count *= dim;
  return count;
}

uint64_t weightBytes(const Plan &plan, size_t index) {
  const Weight *weight = plan.weights()->Get(index);
  return static_cast<uint64_t>(numElements(weight->shape())) *
         dtypeBytes(weight->dtype());
}

WeightLayout layoutWeights(const Plan &plan) {
  WeightLayout layout;
  uint64_t offset = 0;
  if (plan.weights())
    for (size_t i = 0; i < plan.weights()->size(); ++i) {
      layout.weightOffsets.push_back(offset);
      offset += alignToDevice(weightBytes(plan, i));
    }
  if (plan.constants())
    for (const Constant *constant : *plan.constants()) {
      layout.constantOffsets.push_back(offset);
      offset += alignToDevice(constant->data() ? constant->data()->size() : 0);
    }
  layout.totalBytes = offset;
  return layout;
}

uint64_t largestArenaBytes(const Plan &plan) {
  uint64_t largest = 0;
  if (plan.entry_points())
    for (const EntryPoint *entry : *plan.entry_points())
      largest = std::max<uint64_t>(largest, entry->arena_bytes());
  return largest;
}

uint64_t stepInputBytes(const Plan &plan, int64_t pagesPerSequence) {
  const uint64_t maxTokens = plan.limits()->max_tokens();
  const uint64_t maxSequences = plan.limits()->max_sequences();
  bool readsHidden = false;
  if (plan.entry_points())
    for (const EntryPoint *entry : *plan.entry_points())
      if (entry->inputs())
        for (StepInput input : *entry->inputs())
          readsHidden |= input == StepInput::Hidden;
  uint64_t bytes = 3 * alignToDevice(maxTokens * 4) // tokens, positions, token_seq
                   + alignToDevice(maxSequences * 4) // last_rows
                   + alignToDevice(maxSequences * 4) // sampled tokens
                   + alignToDevice(maxSequences *
                                   static_cast<uint64_t>(pagesPerSequence) * 4);
  if (readsHidden)
    bytes += alignToDevice(maxTokens * plan.model()->hidden_size() * 2);
  return bytes;
}

//===----------------------------------------------------------------------===//
// Verification
//===----------------------------------------------------------------------===//

namespace {

std::string plural(uint64_t count, const char *noun) {
  return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

/// The file identifier bytes as text, non-printable bytes escaped.
std::string printableIdentifier(const uint8_t *bytes) {
  std::string text;
  for (int i = 0; i < 4; ++i) {
    unsigned char c = bytes[i];
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '\'')
      text += static_cast<char>(c);
    else
      text += fmt::format("\\x{:02x}", c);
  }
  return text;
}

template <typename T>
std::string formatShape(const flatbuffers::Vector<T> *shape) {
  std::string text = "[";
  if (shape)
    for (size_t i = 0; i < shape->size(); ++i)
      text += (i ? ", " : "") + std::to_string(shape->Get(i));
  return text + "]";
}

bool sameShape(const flatbuffers::Vector<int64_t> *a,
               const flatbuffers::Vector<int64_t> *b) {
  if (a->size() != b->size())
    return false;
  for (size_t i = 0; i < a->size(); ++i)
    if (a->Get(i) != b->Get(i))
      return false;
  return true;
}

bool validDType(DType dtype) { return dtypeBytes(dtype) != 0; }
bool validUnit(SizeUnit unit) {
  return unit >= SizeUnit::MIN && unit <= SizeUnit::MAX;
}

/// a * b, or nullopt on int64 overflow.
std::optional<int64_t> multiply(int64_t a, int64_t b) {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product))
    return std::nullopt;
  return product;
}

/// The CUDA grid limits per dimension (x, y, z).
constexpr int64_t kMaxGrid[3] = {2147483647, 65535, 65535};

class PlanVerifier {
public:
  PlanVerifier(const Plan &plan, const std::string &name)
      : plan(plan), file(name) {}

  Status run();

private:
  Status checkHeaderTables();
  Status checkWeight(size_t index);
  Status checkConstant(size_t index);
  Status checkKernels();
  Status checkEntryPoint(size_t index);
  Status checkLaunch(const std::string &where, const EntryPoint &entry,
                     const Launch &launch);
  Status checkArg(const std::string &where, const EntryPoint &entry,
                  const Launch &launch, const Arg &arg);
  Status checkBuffer(const std::string &where, const EntryPoint &entry,
                     const Arg &arg);
  Status checkTensorMap(const std::string &where, const EntryPoint &entry,
                        const Launch &launch, const Arg &arg);
  /// A step's `when` and `also_when` (absent ones pass).
  Status checkSizeGuards(const std::string &where, const SizeRange *when,
                         const SizeRange *alsoWhen);
  Status checkGemm(const std::string &where, const EntryPoint &entry,
                   const Gemm &gemm);
  /// The largest value multiplier x size(unit) takes while a step guarded
  /// by `when` runs (at the limits, or at the top of the `when` range), or
  /// nullopt when unbounded (P) or on overflow.
  std::optional<int64_t> largestWhileRunning(const SizeRange *when,
                                             SizeUnit unit,
                                             int64_t multiplier) const;
  /// Bytes from `arg`'s address to the end of its buffer where the plan
  /// knows them (arena, weight, constant), or nullopt.
  std::optional<uint64_t> bytesAvailable(const EntryPoint &entry,
                                         const Arg &arg) const;
  /// multiplier x (the largest value of unit), or nullopt on overflow.
  std::optional<int64_t> atLimits(SizeUnit unit, int64_t multiplier) const;

  size_t weightCount() const {
    return plan.weights() ? plan.weights()->size() : 0;
  }
  size_t constantCount() const {
    return plan.constants() ? plan.constants()->size() : 0;
  }
  size_t moduleCount() const {
    return plan.modules() ? plan.modules()->size() : 0;
  }
  size_t kernelCount() const {
    return plan.kernels() ? plan.kernels()->size() : 0;
  }

  const Plan &plan;
  const std::string &file;
};

std::optional<int64_t> PlanVerifier::atLimits(SizeUnit unit,
                                              int64_t multiplier) const {
  switch (unit) {
  case SizeUnit::Constant:
    return multiplier;
  case SizeUnit::Tokens:
    return multiply(multiplier, plan.limits()->max_tokens());
  case SizeUnit::Sequences:
    return multiply(multiplier, plan.limits()->max_sequences());
  case SizeUnit::PagesPerSequence:
    return std::nullopt; // no limit in the plan; checked at run time
  case SizeUnit::ResumedRuns:
    // Each run holds at least one token.
    return multiply(multiplier, plan.limits()->max_tokens());
  }
  return std::nullopt;
}

Status PlanVerifier::checkHeaderTables() {
  const Target *target = plan.target();
  if (!target)
    return Status::error("{}: the plan has no target", file);
  if (!target->arch() || target->arch()->size() == 0)
    return Status::error("{}: target: arch is empty", file);
  if (target->compute_major() < 1 || target->compute_minor() < 0)
    return Status::error("{}: target {}: compute capability {}.{} is invalid",
                         file, target->arch()->str(), target->compute_major(),
                         target->compute_minor());
  const Limits *limits = plan.limits();
  if (!limits)
    return Status::error("{}: the plan has no limits", file);
  if (limits->max_tokens() < 1)
    return Status::error("{}: limits: max_tokens is {}, must be at least 1",
                         file, limits->max_tokens());
  if (limits->max_tokens() > std::numeric_limits<int32_t>::max())
    return Status::error("{}: limits: max_tokens {} does not fit in 32 bits",
                         file, limits->max_tokens());
  if (limits->max_sequences() < 1)
    return Status::error("{}: limits: max_sequences is {}, must be at least 1",
                         file, limits->max_sequences());
  if (limits->max_sequences() > std::numeric_limits<int32_t>::max())
    return Status::error("{}: limits: max_sequences {} does not fit in 32 bits",
                         file, limits->max_sequences());
  if (limits->page_size() < 1)
    return Status::error("{}: limits: page_size is {}, must be at least 1",
                         file, limits->page_size());
  const Model *model = plan.model();
  if (!model)
    return Status::error("{}: the plan has no model", file);
  if (model->vocab_size() < 1 ||
      model->vocab_size() > std::numeric_limits<int32_t>::max())
    return Status::error("{}: model: vocab_size {} is not in [1, 2^31)", file,
                         model->vocab_size());
  if (model->hidden_size() < 1 ||
      model->hidden_size() > std::numeric_limits<int32_t>::max())
    return Status::error("{}: model: hidden_size {} is not in [1, 2^31)", file,
                         model->hidden_size());
  if (model->num_layers() < 1)
    return Status::error("{}: model: num_layers is {}, must be at least 1",
                         file, model->num_layers());
  if (model->num_mtp_layers() < 0)
    return Status::error("{}: model: num_mtp_layers is {}, must not be negative",
                         file, model->num_mtp_layers());
  if (model->cache_row_elements() < 1)
    return Status::error(
        "{}: model: cache_row_elements is {}, must be at least 1", file,
        model->cache_row_elements());
  if (model->top_k() < 0)
    return Status::error("{}: model: top_k is {}, must not be negative", file,
                         model->top_k());
  return Status::success();
}

/// Checks a shape: present, non-negative dims, numel x elementBytes fits in
/// 63 bits. `what` names it in messages.
Status checkShape(const std::string &what,
                  const flatbuffers::Vector<int64_t> *shape,
                  uint64_t elementBytes) {
  if (!shape)
    return Status::error("{}: shape is missing", what);
  int64_t bytes = static_cast<int64_t>(elementBytes);
  for (int64_t dim : *shape) {
    if (dim < 0)
      return Status::error("{}: shape {} has a negative dimension", what,
                           formatShape(shape));
    std::optional<int64_t> product = multiply(bytes, dim);
    if (!product)
      return Status::error("{}: shape {} is too large", what,
                           formatShape(shape));
    bytes = *product;
  }
  return Status::success();
}

Status PlanVerifier::checkWeight(size_t index) {
  const Weight *weight = plan.weights()->Get(index);
  const auto *sources = weight->sources();
  std::string what = fmt::format("{}: weight {}", file, index);
  if (sources && sources->size() > 0 && sources->Get(0)->name())
    what += fmt::format(" ({})", sources->Get(0)->name()->str());
  if (!validDType(weight->dtype()))
    return Status::error("{}: dtype {} is not a DType", what,
                         static_cast<int>(weight->dtype()));
  DSV3_RETURN_IF_ERROR(
      checkShape(what, weight->shape(), dtypeBytes(weight->dtype())));
  if (!sources || sources->size() == 0)
    return Status::error("{}: no checkpoint sources", what);
  for (size_t s = 0; s < sources->size(); ++s) {
    const CheckpointTensor *source = sources->Get(s);
    std::string sourceWhat = fmt::format("{}: source {}", what, s);
    if (!source->name() || source->name()->size() == 0)
      return Status::error("{}: name is empty", sourceWhat);
    if (!validDType(source->dtype()))
      return Status::error("{}: dtype {} is not a DType", sourceWhat,
                           static_cast<int>(source->dtype()));
    DSV3_RETURN_IF_ERROR(checkShape(sourceWhat, source->shape(),
                                    dtypeBytes(source->dtype())));
  }
  const CheckpointTensor *first = sources->Get(0);
  const int64_t deviceElements = numElements(weight->shape());
  switch (weight->transform()) {
  case WeightTransform::Copy:
    if (sources->size() != 1)
      return Status::error("{}: Copy takes 1 source, got {}", what,
                           sources->size());
    if (first->dtype() != weight->dtype())
      return Status::error("{}: Copy from {} to {} (Copy keeps the dtype)",
                           what, EnumNameDType(first->dtype()),
                           EnumNameDType(weight->dtype()));
    if (numElements(first->shape()) != deviceElements)
      return Status::error("{}: Copy of {} into {}: element counts differ",
                           what, formatShape(first->shape()),
                           formatShape(weight->shape()));
    return Status::success();
  case WeightTransform::Stack: {
    for (size_t s = 1; s < sources->size(); ++s) {
      const CheckpointTensor *source = sources->Get(s);
      if (source->dtype() != first->dtype() ||
          !sameShape(source->shape(), first->shape()))
        return Status::error(
            "{}: Stack source {} ({} {}) differs from source 0 ({} {})", what,
            s, EnumNameDType(source->dtype()), formatShape(source->shape()),
            EnumNameDType(first->dtype()), formatShape(first->shape()));
    }
    if (first->dtype() != weight->dtype())
      return Status::error("{}: Stack from {} to {} (Stack keeps the dtype)",
                           what, EnumNameDType(first->dtype()),
                           EnumNameDType(weight->dtype()));
    std::optional<int64_t> stacked =
        multiply(numElements(first->shape()), sources->size());
    if (!stacked || *stacked != deviceElements)
      return Status::error(
          "{}: Stack of {} x {} into {}: element counts differ", what,
          sources->size(), formatShape(first->shape()),
          formatShape(weight->shape()));
    return Status::success();
  }
  case WeightTransform::DequantizeBf16: {
    if (sources->size() != 2)
      return Status::error(
          "{}: DequantizeBf16 takes 2 sources (tensor, scales), got {}", what,
          sources->size());
    const CheckpointTensor *scales = sources->Get(1);
    if (first->dtype() != DType::F8_E4M3 || scales->dtype() != DType::F32)
      return Status::error("{}: DequantizeBf16 needs an F8_E4M3 tensor and "
                           "F32 scales, got {} and {}",
                           what, EnumNameDType(first->dtype()),
                           EnumNameDType(scales->dtype()));
    if (weight->dtype() != DType::BF16)
      return Status::error("{}: DequantizeBf16 produces BF16, the weight is {}",
                           what, EnumNameDType(weight->dtype()));
    if (first->shape()->size() != 2)
      return Status::error("{}: DequantizeBf16 needs a 2-D tensor, got {}",
                           what, formatShape(first->shape()));
    const auto *block = weight->block();
    if (!block || block->size() != 2 || block->Get(0) < 1 || block->Get(1) < 1)
      return Status::error("{}: DequantizeBf16 block must be [rows, cols] of "
                           "positive sizes, got {}",
                           what, formatShape(block));
    const int64_t rows = first->shape()->Get(0), cols = first->shape()->Get(1);
    const int64_t blockRows = block->Get(0), blockCols = block->Get(1);
    const int64_t scaleRows = (rows + blockRows - 1) / blockRows;
    const int64_t scaleCols = (cols + blockCols - 1) / blockCols;
    if (scales->shape()->size() != 2 || scales->shape()->Get(0) != scaleRows ||
        scales->shape()->Get(1) != scaleCols)
      return Status::error("{}: scales of {} in blocks of {} must be [{}, {}], "
                           "got {}",
                           what, formatShape(first->shape()),
                           formatShape(block), scaleRows, scaleCols,
                           formatShape(scales->shape()));
    if (rows * cols != deviceElements)
      return Status::error("{}: DequantizeBf16 of {} into {}: element counts "
                           "differ",
                           what, formatShape(first->shape()),
                           formatShape(weight->shape()));
    return Status::success();
  }
  }
  return Status::error("{}: transform {} is not a WeightTransform", what,
                       static_cast<int>(weight->transform()));
}

Status PlanVerifier::checkConstant(size_t index) {
  const Constant *constant = plan.constants()->Get(index);
  std::string what = fmt::format("{}: constant {}", file, index);
  if (!validDType(constant->dtype()))
    return Status::error("{}: dtype {} is not a DType", what,
                         static_cast<int>(constant->dtype()));
  DSV3_RETURN_IF_ERROR(
      checkShape(what, constant->shape(), dtypeBytes(constant->dtype())));
  uint64_t expected = static_cast<uint64_t>(numElements(constant->shape())) *
                      dtypeBytes(constant->dtype());
  uint64_t actual = constant->data() ? constant->data()->size() : 0;
  if (actual != expected)
    return Status::error("{}: {} {} needs {} bytes of data, has {}", what,
                         EnumNameDType(constant->dtype()),
                         formatShape(constant->shape()), expected, actual);
  return Status::success();
}

Status PlanVerifier::checkKernels() {
  for (size_t m = 0; m < moduleCount(); ++m) {
    const Module *module = plan.modules()->Get(m);
    if (!module->cubin() || module->cubin()->size() == 0)
      return Status::error("{}: module {}: cubin is empty", file, m);
  }
  for (size_t k = 0; k < kernelCount(); ++k) {
    const Kernel *kernel = plan.kernels()->Get(k);
    std::string what = fmt::format("{}: kernel {}", file, k);
    if (kernel->instance())
      what += fmt::format(" ({})", kernel->instance()->str());
    if (kernel->module_() >= moduleCount())
      return Status::error("{}: module {} out of range (the plan has {})", what,
                           kernel->module_(), plural(moduleCount(), "module"));
    if (!kernel->name() || kernel->name()->size() == 0)
      return Status::error("{}: name is empty", what);
  }
  int32_t sampler = plan.sampler();
  if (sampler < -1 || (sampler >= 0 && static_cast<size_t>(sampler) >= kernelCount()))
    return Status::error("{}: sampler: kernel {} out of range (the plan has {})",
                         file, sampler, plural(kernelCount(), "kernel"));
  return Status::success();
}

Status PlanVerifier::checkBuffer(const std::string &where,
                                 const EntryPoint &entry, const Arg &arg) {
  const int64_t index = arg.index();
  switch (arg.space()) {
  case Space::Arena:
    if (index < 0 || static_cast<uint64_t>(index) >= entry.arena_bytes())
      return Status::error("{}: arena offset {} is outside the arena ({} "
                           "bytes)",
                           where, index, entry.arena_bytes());
    return Status::success();
  case Space::Weight:
    if (index < 0 || static_cast<uint64_t>(index) >= weightCount())
      return Status::error("{}: weight {} out of range (the plan has {})",
                           where, index, plural(weightCount(), "weight"));
    return Status::success();
  case Space::Constant:
    if (index < 0 || static_cast<uint64_t>(index) >= constantCount())
      return Status::error("{}: constant {} out of range (the plan has {})",
                           where, index, plural(constantCount(), "constant"));
    return Status::success();
  case Space::Input: {
    if (index < static_cast<int64_t>(StepInput::MIN) ||
        index > static_cast<int64_t>(StepInput::MAX))
      return Status::error("{}: input {} is not a StepInput", where, index);
    StepInput input = static_cast<StepInput>(index);
    bool listed = false;
    if (entry.inputs())
      for (StepInput declared : *entry.inputs())
        listed |= declared == input;
    if (!listed)
      return Status::error("{}: input '{}' is not among the entry point's "
                           "inputs",
                           where, stepInputName(input));
    return Status::success();
  }
  case Space::KvCache: {
    const int64_t layers = static_cast<int64_t>(plan.model()->num_layers()) +
                           plan.model()->num_mtp_layers();
    if (index < 0 || index >= layers)
      return Status::error("{}: KV-cache layer {} out of range (the model "
                           "has {})",
                           where, index, plural(layers, "cache layer"));
    return Status::success();
  }
  case Space::Null:
    return Status::success();
  }
  return Status::error("{}: space {} is not a Space", where,
                       static_cast<int>(arg.space()));
}

std::optional<int64_t>
PlanVerifier::largestWhileRunning(const SizeRange *when, SizeUnit unit,
                                  int64_t multiplier) const {
  if (unit == SizeUnit::PagesPerSequence)
    return std::nullopt;
  std::optional<int64_t> value = atLimits(unit, multiplier);
  if (when && when->unit() == unit && unit != SizeUnit::Constant) {
    std::optional<int64_t> inRange =
        multiply(multiplier, when->max() / when->multiplier());
    if (inRange)
      value = value ? std::min(*value, *inRange) : *inRange;
  }
  return value;
}

std::optional<uint64_t> PlanVerifier::bytesAvailable(const EntryPoint &entry,
                                                     const Arg &arg) const {
  // checkBuffer accepted the index.
  const int64_t index = arg.index();
  switch (arg.space()) {
  case Space::Arena:
    return entry.arena_bytes() - static_cast<uint64_t>(index);
  case Space::Weight:
    return weightBytes(plan, static_cast<size_t>(index));
  case Space::Constant: {
    const Constant *constant = plan.constants()->Get(index);
    return constant->data() ? constant->data()->size() : 0;
  }
  default: // inputs and KV-cache layers are sized at run time
    return std::nullopt;
  }
}

/// Whether TMA can copy elements of `dtype` (cuTensorMapEncodeTiled takes a
/// CUtensorMapDataType; FP8 travels as UINT8).
bool hasTensorMapType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
  case DType::F16:
  case DType::F32:
  case DType::I32:
  case DType::F8_E4M3:
    return true;
  }
  return false;
}

// TMA's limits (cuTensorMapEncodeTiled): rank, box extents, extents and
// strides, and the 16-byte granule of global addresses, strides and the
// innermost box row.
constexpr uint32_t kMaxTensorMapBox = 256;
constexpr int64_t kMaxTensorMapDim = int64_t{1} << 32;
constexpr int64_t kMaxTensorMapStride = int64_t{1} << 40;
constexpr int64_t kTensorMapGranule = 16;

Status PlanVerifier::checkTensorMap(const std::string &where,
                                    const EntryPoint &entry,
                                    const Launch &launch, const Arg &arg) {
  const TensorMapArg *map = arg.tensor_map();
  if (!map)
    return Status::error("{}: tensor map argument without a tensor_map", where);
  if (arg.space() == Space::Null)
    return Status::error("{}: a tensor map needs a buffer, but its space is "
                         "Null",
                         where);
  DSV3_RETURN_IF_ERROR(checkBuffer(where, entry, arg));
  const std::string what = where + ": tensor_map";
  if (!validDType(map->dtype()) || !hasTensorMapType(map->dtype()))
    return Status::error("{}: dtype {} has no CUtensorMap data type", what,
                         static_cast<int>(map->dtype()));
  const auto *dims = map->dims();
  const auto *box = map->box();
  const size_t rank = dims ? dims->size() : 0;
  const size_t boxRank = box ? box->size() : 0;
  if (rank < 1 || rank > kMaxTensorMapRank)
    return Status::error("{}: dims {} has {} entries, needs 1 to {}", what,
                         formatSizes(dims), rank, kMaxTensorMapRank);
  if (boxRank != rank)
    return Status::error("{}: box {} has {} entries, but dims {} has {}", what,
                         formatShape(box), boxRank, formatSizes(dims), rank);
  const uint32_t swizzle = map->swizzle_bytes();
  if (swizzle != 0 && swizzle != 32 && swizzle != 64 && swizzle != 128)
    return Status::error("{}: swizzle_bytes {} is not 0, 32, 64 or 128", what,
                         swizzle);
  for (size_t i = 0; i < rank; ++i)
    if (box->Get(i) < 1 || box->Get(i) > kMaxTensorMapBox)
      return Status::error("{}: box[{}] = {} is not in 1..{}", what, i,
                           box->Get(i), kMaxTensorMapBox);
  const int64_t elementBytes = static_cast<int64_t>(dtypeBytes(map->dtype()));
  const int64_t rowBytes = box->Get(0) * elementBytes;
  if (rowBytes % kTensorMapGranule != 0)
    return Status::error("{}: box[0] = {} {} elements is {} bytes, not a "
                         "multiple of {}",
                         what, box->Get(0), EnumNameDType(map->dtype()),
                         rowBytes, kTensorMapGranule);
  if (swizzle != 0 && rowBytes > swizzle)
    return Status::error("{}: box[0] = {} {} elements is {} bytes, more than "
                         "the {}-byte swizzle span",
                         what, box->Get(0), EnumNameDType(map->dtype()),
                         rowBytes, swizzle);

  // Strides are products of the inner extents, so the smallest ones are
  // those at a size of 1 (T = B = P = 1, a step the plan must run): if they
  // are multiples of 16 bytes, so are those of every step. Extents and
  // strides must stay within TMA's limits wherever the launch runs.
  int64_t strideAtOne = elementBytes; // bytes between indices of dims[i]
  std::optional<int64_t> strideAtLimits = elementBytes; // nullopt: unbounded
  bool variable = false;
  for (size_t i = 0; i < rank; ++i) {
    const Size &dim = *dims->Get(i);
    if (!validUnit(dim.unit()))
      return Status::error("{}: dims[{}]: unit {} is not a SizeUnit", what, i,
                           static_cast<int>(dim.unit()));
    if (dim.multiplier() < 1)
      return Status::error("{}: dims[{}] = {} must be positive", what, i,
                           formatSize(dim.unit(), dim.multiplier()));
    std::optional<int64_t> largest =
        largestWhileRunning(launch.when(), dim.unit(), dim.multiplier());
    if (dim.unit() != SizeUnit::PagesPerSequence &&
        (!largest || *largest > kMaxTensorMapDim))
      return Status::error("{}: dims[{}] = {} exceeds TMA's limit of 2^32 at "
                           "the plan's limits",
                           what, i, formatSize(dim.unit(), dim.multiplier()));
    if (i > 0) {
      if (strideAtOne % kTensorMapGranule != 0)
        return Status::error("{}: dims {}: the stride of dims[{}] is {} "
                             "bytes{}, not a multiple of {}",
                             what, formatSizes(dims), i, strideAtOne,
                             variable ? " when T, B and P are 1" : "",
                             kTensorMapGranule);
      if (strideAtLimits && *strideAtLimits >= kMaxTensorMapStride)
        return Status::error("{}: dims {}: the stride of dims[{}] is {} bytes "
                             "at the plan's limits, not below TMA's limit of "
                             "2^40",
                             what, formatSizes(dims), i, *strideAtLimits);
    }
    std::optional<int64_t> next = multiply(strideAtOne, dim.multiplier());
    if (!next)
      return Status::error("{}: dims {} is too large", what, formatSizes(dims));
    strideAtOne = *next;
    if (strideAtLimits && largest) {
      strideAtLimits = multiply(*strideAtLimits, *largest);
      if (!strideAtLimits)
        return Status::error("{}: dims {} is too large at the plan's limits",
                             what, formatSizes(dims));
    } else {
      strideAtLimits = std::nullopt;
    }
    variable |= dim.unit() != SizeUnit::Constant;
  }

  // The tensor must lie inside its buffer where the plan knows the buffer's
  // size (inputs and KV-cache layers are sized at run time, and so are
  // P-sized tensors).
  const int64_t index = arg.index();
  if (arg.space() == Space::Arena && index % kTensorMapGranule != 0)
    return Status::error("{}: arena offset {} is not a multiple of {} (TMA "
                         "reads from 16-byte aligned addresses)",
                         what, index, kTensorMapGranule);
  const std::optional<uint64_t> available = bytesAvailable(entry, arg);
  const std::optional<int64_t> &tensorBytes = strideAtLimits;
  if (available && tensorBytes &&
      static_cast<uint64_t>(*tensorBytes) > *available)
    return Status::error("{}: {} {} is {} bytes at the plan's limits, more "
                         "than the {} bytes {}",
                         what, EnumNameDType(map->dtype()), formatSizes(dims),
                         *tensorBytes, *available,
                         arg.space() == Space::Arena
                             ? "from its offset to the arena's end"
                             : "of its buffer");
  return Status::success();
}

Status PlanVerifier::checkArg(const std::string &where, const EntryPoint &entry,
                              const Launch &launch, const Arg &arg) {
  switch (arg.kind()) {
  case ArgKind::Buffer:
    return checkBuffer(where, entry, arg);
  case ArgKind::TensorMap:
    return checkTensorMap(where, entry, launch, arg);
  case ArgKind::Int: {
    const Size *size = arg.size();
    if (!size)
      return Status::error("{}: int argument without a size", where);
    if (!validUnit(size->unit()))
      return Status::error("{}: size unit {} is not a SizeUnit", where,
                           static_cast<int>(size->unit()));
    // Kernels take ints: the value must fit at every step size up to the
    // limits (P has none in the plan; the executor checks it per step).
    const int64_t multiplier = size->multiplier();
    bool fits = multiplier >= std::numeric_limits<int32_t>::min() &&
                multiplier <= std::numeric_limits<int32_t>::max();
    if (fits && size->unit() != SizeUnit::PagesPerSequence) {
      std::optional<int64_t> value = atLimits(size->unit(), multiplier);
      fits = value && *value >= std::numeric_limits<int32_t>::min() &&
             *value <= std::numeric_limits<int32_t>::max();
    }
    if (!fits)
      return Status::error("{}: int {} does not fit in 32 bits at the limits",
                           where, formatSize(size->unit(), multiplier));
    return Status::success();
  }
  case ArgKind::Float: {
    const double value = arg.value();
    if (!std::isfinite(value) ||
        std::fabs(value) > std::numeric_limits<float>::max())
      return Status::error("{}: float {} is not a finite float", where, value);
    return Status::success();
  }
  }
  return Status::error("{}: kind {} is not an ArgKind", where,
                       static_cast<int>(arg.kind()));
}

Status PlanVerifier::checkSizeGuards(const std::string &where,
                                     const SizeRange *when,
                                     const SizeRange *alsoWhen) {
  for (const auto &[name, range] :
       {std::pair{"when", when}, std::pair{"also_when", alsoWhen}})
    if (range && (!validUnit(range->unit()) || range->multiplier() < 1 ||
                  range->min() > range->max()))
      return Status::error(
          "{}: {}: {} <= {} x unit {} <= {} is not a valid range", where, name,
          range->min(), range->multiplier(), static_cast<int>(range->unit()),
          range->max());
  return Status::success();
}

Status PlanVerifier::checkLaunch(const std::string &where,
                                 const EntryPoint &entry,
                                 const Launch &launch) {
  if (launch.kernel() >= kernelCount())
    return Status::error("{}: kernel {} out of range (the plan has {})", where,
                         launch.kernel(), plural(kernelCount(), "kernel"));
  const auto *grid = launch.grid();
  size_t gridDims = grid ? grid->size() : 0;
  if (gridDims != 3)
    return Status::error("{}: grid has {}, needs 3", where,
                         plural(gridDims, "dimension"));
  static const char *const kAxis[3] = {"x", "y", "z"};
  const SizeRange *when = launch.when();
  DSV3_RETURN_IF_ERROR(checkSizeGuards(where, when, launch.also_when()));
  for (int d = 0; d < 3; ++d) {
    const LaunchDim *dim = grid->Get(d);
    if (!validUnit(dim->unit()))
      return Status::error("{}: grid.{}: unit {} is not a SizeUnit", where,
                           kAxis[d], static_cast<int>(dim->unit()));
    if (dim->divisor() < 1)
      return Status::error("{}: grid.{}: divisor {} must be at least 1", where,
                           kAxis[d], dim->divisor());
    if (dim->multiplier() < 0)
      return Status::error("{}: grid.{}: multiplier {} must not be negative",
                           where, kAxis[d], dim->multiplier());
    if (dim->unit() == SizeUnit::PagesPerSequence)
      continue; // bounded at run time
    std::optional<int64_t> numerator =
        atLimits(dim->unit(), dim->multiplier());
    // A guarded launch only runs while its size stays in range.
    if (numerator && when && when->unit() == dim->unit() &&
        dim->unit() != SizeUnit::Constant)
      numerator = std::min(*numerator,
                           dim->multiplier() * (when->max() / when->multiplier()));
    int64_t value = 0;
    bool fits = numerator.has_value();
    if (fits) {
      value = *numerator / dim->divisor() + (*numerator % dim->divisor() != 0);
      fits = !__builtin_add_overflow(value, dim->offset(), &value) &&
             value <= kMaxGrid[d];
    }
    if (!fits)
      return Status::error("{}: grid.{} = {} exceeds CUDA's limit of {} at the "
                           "plan's limits",
                           where, kAxis[d], formatLaunchDim(*dim), kMaxGrid[d]);
  }
  const auto *block = launch.block();
  size_t blockDims = block ? block->size() : 0;
  if (blockDims != 3)
    return Status::error("{}: block has {}, needs 3", where,
                         plural(blockDims, "dimension"));
  int64_t threads = 1;
  for (int d = 0; d < 3; ++d) {
    if (block->Get(d) < 1)
      return Status::error("{}: block.{} is {}, must be at least 1", where,
                           kAxis[d], block->Get(d));
    threads *= block->Get(d);
  }
  if (threads > 1024)
    return Status::error("{}: block ({}, {}, {}) has {} threads, more than "
                         "1024",
                         where, block->Get(0), block->Get(1), block->Get(2),
                         threads);
  if (launch.args())
    for (size_t a = 0; a < launch.args()->size(); ++a)
      DSV3_RETURN_IF_ERROR(checkArg(fmt::format("{}: arg {}", where, a), entry,
                                    launch, *launch.args()->Get(a)));
  return Status::success();
}

/// `dtype`'s name, or its number when it is not a DType.
std::string dtypeName(DType dtype) {
  return validDType(dtype) ? EnumNameDType(dtype)
                           : std::to_string(static_cast<int>(dtype));
}

/// cuBLASLt's block scaling: one scale per 128 columns (and per 128 x 128
/// block of the weight), with the scales' K blocks a multiple of 4.
constexpr int64_t kGemmScaleBlock = 128;
constexpr int64_t kGemmScaleBlocksOfK = 4;
/// cuBLASLt's FP8 GEMMs read rows and operands at 16-byte aligned addresses.
constexpr int64_t kGemmGranule = 16;

Status PlanVerifier::checkGemm(const std::string &where,
                               const EntryPoint &entry, const Gemm &gemm) {
  DSV3_RETURN_IF_ERROR(checkSizeGuards(where, gemm.when(), gemm.also_when()));
  const int64_t n = gemm.n(), k = gemm.k();
  if (n < 1)
    return Status::error("{}: n is {}, must be at least 1", where, n);
  if (k < 1)
    return Status::error("{}: k is {}, must be at least 1", where, k);
  if (k % kGemmGranule != 0)
    return Status::error("{}: k {} is not a multiple of {} (cuBLASLt reads "
                         "FP8 rows of 16-byte multiples)",
                         where, k, kGemmGranule);
  const int64_t kBlocks = (k + kGemmScaleBlock - 1) / kGemmScaleBlock;
  const int64_t nBlocks = (n + kGemmScaleBlock - 1) / kGemmScaleBlock;
  if (kBlocks % kGemmScaleBlocksOfK != 0)
    return Status::error("{}: k {} is {} blocks of {}, not a multiple of {} "
                         "(cuBLASLt's block-scaled GEMMs need that)",
                         where, k, kBlocks, kGemmScaleBlock,
                         kGemmScaleBlocksOfK);
  const DType cDtype = gemm.c_dtype();
  if (cDtype != DType::F32 && cDtype != DType::BF16)
    return Status::error("{}: c_dtype {} is not F32 or BF16", where,
                         dtypeName(cDtype));
  const uint32_t alignment = gemm.row_alignment();
  if (alignment < 1 || (alignment & (alignment - 1)) != 0)
    return Status::error("{}: row_alignment {} is not a power of two", where,
                         alignment);
  const Size *rows = gemm.rows();
  if (!rows)
    return Status::error("{}: rows is missing", where);
  if (!validUnit(rows->unit()))
    return Status::error("{}: rows: unit {} is not a SizeUnit", where,
                         static_cast<int>(rows->unit()));
  const std::string rowsText = formatSize(rows->unit(), rows->multiplier());
  if (rows->multiplier() < 1)
    return Status::error("{}: rows {}: multiplier {} must be at least 1",
                         where, rowsText, rows->multiplier());
  if (rows->unit() == SizeUnit::PagesPerSequence)
    return Status::error("{}: rows {} count pages, which the plan does not "
                         "bound; a Gemm's rows are a multiple of T, B or 1",
                         where, rowsText);
  // M at the largest step the Gemm runs for, rounded up as the runtime does.
  std::optional<int64_t> maxRows =
      largestWhileRunning(gemm.when(), rows->unit(), rows->multiplier());
  int64_t m = 0;
  if (!maxRows ||
      __builtin_add_overflow(*maxRows, int64_t{alignment} - 1, &m))
    return Status::error("{}: rows {} overflow at the plan's limits", where,
                         rowsText);
  m = m / alignment * alignment;

  const int64_t cBytes = static_cast<int64_t>(dtypeBytes(cDtype));
  auto product = [](std::initializer_list<int64_t> factors) {
    std::optional<int64_t> value = 1;
    for (int64_t factor : factors)
      if (value)
        value = multiply(*value, factor);
    return value;
  };
  const struct {
    const char *name;
    const Arg *arg;
    DType dtype;
    std::string shape; // the tensor at the plan's limits
    std::optional<int64_t> bytes;
    bool perRow; // its size depends on M
  } operands[] = {
      {"a", gemm.a(), DType::F8_E4M3, fmt::format("[{}, {}]", m, k),
       product({m, k}), true},
      {"a_scales", gemm.a_scales(), DType::F32,
       fmt::format("[{}, {}]", kBlocks, m), product({kBlocks, m, 4}), true},
      {"b", gemm.b(), DType::F8_E4M3, fmt::format("[{}, {}]", n, k),
       product({n, k}), false},
      {"b_scales", gemm.b_scales(), DType::F32,
       fmt::format("[{}, {}]", nBlocks, kBlocks), product({nBlocks, kBlocks, 4}),
       false},
      {"c", gemm.c(), cDtype, fmt::format("[{}, {}]", m, n),
       product({m, n, cBytes}), true},
  };
  for (const auto &operand : operands) {
    const std::string what = fmt::format("{}: {}", where, operand.name);
    if (!operand.arg)
      return Status::error("{} is missing", what);
    const Arg &arg = *operand.arg;
    if (arg.kind() != ArgKind::Buffer)
      return Status::error("{}: kind {} is not Buffer (a Gemm's operands are "
                           "plain buffers)",
                           what,
                           arg.kind() >= ArgKind::MIN && arg.kind() <= ArgKind::MAX
                               ? EnumNameArgKind(arg.kind())
                               : std::to_string(static_cast<int>(arg.kind())));
    if (arg.space() == Space::Null)
      return Status::error("{}: space is Null, but a Gemm reads or writes "
                           "every operand",
                           what);
    DSV3_RETURN_IF_ERROR(checkBuffer(what, entry, arg));
    if (arg.space() == Space::Arena && arg.index() % kGemmGranule != 0)
      return Status::error("{}: arena offset {} is not a multiple of {} "
                           "(cuBLASLt reads 16-byte aligned addresses)",
                           what, arg.index(), kGemmGranule);
    // Weights and constants say what they hold; arena bytes do not.
    std::optional<DType> held;
    if (arg.space() == Space::Weight)
      held = plan.weights()->Get(arg.index())->dtype();
    else if (arg.space() == Space::Constant)
      held = plan.constants()->Get(arg.index())->dtype();
    if (held && *held != operand.dtype)
      return Status::error("{}: {} {} is {}, but a Gemm's {} is {}", what,
                           arg.space() == Space::Weight ? "weight" : "constant",
                           arg.index(), dtypeName(*held), operand.name,
                           EnumNameDType(operand.dtype));
    const std::optional<uint64_t> available = bytesAvailable(entry, arg);
    if (!available)
      continue;
    if (!operand.bytes || static_cast<uint64_t>(*operand.bytes) > *available)
      return Status::error(
          "{}: {} {} is {} bytes{}, more than the {} bytes {}", what,
          EnumNameDType(operand.dtype), operand.shape,
          operand.bytes ? std::to_string(*operand.bytes) : "too many",
          operand.perRow
              ? fmt::format(" at the plan's limits (rows {} rounded up to {})",
                            rowsText, alignment)
              : "",
          *available,
          arg.space() == Space::Arena ? "from its offset to the arena's end"
                                      : "of its buffer");
  }
  return Status::success();
}

Status PlanVerifier::checkEntryPoint(size_t index) {
  const EntryPoint *entry = plan.entry_points()->Get(index);
  if (!entry->name() || entry->name()->size() == 0)
    return Status::error("{}: entry point {}: name is empty", file, index);
  const std::string where =
      fmt::format("{}: entry point '{}'", file, entry->name()->str());
  std::set<StepInput> inputs;
  if (entry->inputs())
    for (StepInput input : *entry->inputs()) {
      if (input < StepInput::MIN || input > StepInput::MAX)
        return Status::error("{}: input {} is not a StepInput", where,
                             static_cast<int>(input));
      if (!inputs.insert(input).second)
        return Status::error("{}: input '{}' is listed twice", where,
                             stepInputName(input));
    }
  if (entry->outputs())
    for (size_t o = 0; o < entry->outputs()->size(); ++o) {
      const Output *output = entry->outputs()->Get(o);
      std::string what = fmt::format("{}: output {}", where, o);
      if (!validDType(output->dtype()))
        return Status::error("{}: dtype {} is not a DType", what,
                             static_cast<int>(output->dtype()));
      const Size *rows = output->rows();
      if (!rows || !validUnit(rows->unit()) ||
          rows->unit() == SizeUnit::PagesPerSequence || rows->multiplier() < 0)
        return Status::error("{}: rows must be a non-negative multiple of T, "
                             "B or 1",
                             what);
      if (output->row_elements() < 0)
        return Status::error("{}: row_elements {} is negative", what,
                             output->row_elements());
      std::optional<int64_t> maxRows = atLimits(rows->unit(), rows->multiplier());
      std::optional<int64_t> elements =
          maxRows ? multiply(*maxRows, output->row_elements()) : std::nullopt;
      std::optional<int64_t> bytes =
          elements ? multiply(*elements, dtypeBytes(output->dtype()))
                   : std::nullopt;
      uint64_t end = 0;
      if (!bytes ||
          __builtin_add_overflow(output->offset(), static_cast<uint64_t>(*bytes),
                                 &end) ||
          end > entry->arena_bytes())
        return Status::error(
            "{}: {} [{}, {}] at arena+{} does not fit in the arena ({} bytes) "
            "at the plan's limits",
            what, EnumNameDType(output->dtype()),
            formatSize(rows->unit(), rows->multiplier()),
            output->row_elements(), output->offset(), entry->arena_bytes());
      if (o == 0 && plan.sampler() >= 0 && output->dtype() != DType::F32)
        return Status::error("{}: the sampler reads output 0 as F32 logits, "
                             "but it is {}",
                             what, EnumNameDType(output->dtype()));
    }
  const auto *types = entry->steps_type();
  const auto *steps = entry->steps();
  const size_t stepCount = steps ? steps->size() : 0;
  for (size_t s = 0; s < stepCount; ++s) {
    switch (types->Get(s)) {
    case Step::Launch: {
      const Launch *launch = steps->GetAs<Launch>(s);
      std::string op = launch->op() ? launch->op()->str() : "";
      DSV3_RETURN_IF_ERROR(
          checkLaunch(fmt::format("{} step {} ({})", where, s, op), *entry,
                      *launch));
      break;
    }
    case Step::Gemm: {
      const Gemm *gemm = steps->GetAs<Gemm>(s);
      std::string op = gemm->op() ? gemm->op()->str() : "";
      DSV3_RETURN_IF_ERROR(checkGemm(
          fmt::format("{} step {} ({})", where, s, op), *entry, *gemm));
      break;
    }
    case Step::NONE:
    default:
      return Status::error("{} step {}: step type {} is not one this runtime "
                           "runs",
                           where, s, static_cast<int>(types->Get(s)));
    }
  }
  return Status::success();
}

Status PlanVerifier::run() {
  DSV3_RETURN_IF_ERROR(checkHeaderTables());
  for (size_t w = 0; w < weightCount(); ++w)
    DSV3_RETURN_IF_ERROR(checkWeight(w));
  for (size_t c = 0; c < constantCount(); ++c)
    DSV3_RETURN_IF_ERROR(checkConstant(c));
  DSV3_RETURN_IF_ERROR(checkKernels());
  size_t entries = plan.entry_points() ? plan.entry_points()->size() : 0;
  if (entries == 0)
    return Status::error("{}: the plan has no entry points", file);
  std::set<std::string> names;
  for (size_t e = 0; e < entries; ++e) {
    DSV3_RETURN_IF_ERROR(checkEntryPoint(e));
    std::string name = plan.entry_points()->Get(e)->name()->str();
    if (!names.insert(name).second)
      return Status::error("{}: entry point '{}' appears twice", file, name);
  }
  return Status::success();
}

} // namespace

Status verifyPlan(const uint8_t *data, size_t size, const std::string &name) {
  // A root offset and the identifier: the least a flatbuffer can be.
  if (size < 8)
    return Status::error("{}: not a dsv3 plan: {} is too short", name,
                         plural(size, "byte"));
  if (size >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return Status::error("{}: {} bytes is more than a flatbuffer can hold", name,
                         size);
  if (!PlanBufferHasIdentifier(data))
    return Status::error("{}: not a dsv3 plan: the file identifier is '{}', "
                         "expected '{}'",
                         name, printableIdentifier(data + 4), PlanIdentifier());
  // Real plans hold ~100k tables (weights, their sources, launch arguments);
  // the default cap of a million is too close for the largest models.
  flatbuffers::Verifier verifier(data, size, /*max_depth=*/64,
                                 /*max_tables=*/100000000);
  if (!VerifyPlanBuffer(verifier))
    return Status::error("{}: corrupt or truncated plan: the flatbuffer fails "
                         "verification ({})",
                         name, plural(size, "byte"));
  const Plan *plan = GetPlan(data);
  if (plan->schema_version() != kSchemaVersion)
    return Status::error("{}: plan schema version {}, but this runtime reads "
                         "version {} (rebuild the plan with a matching dsv3c)",
                         name, plan->schema_version(), kSchemaVersion);
  return PlanVerifier(*plan, name).run();
}

StatusOr<PlanFile> PlanFile::fromBytes(std::vector<uint8_t> bytes,
                                       std::string name) {
  DSV3_RETURN_IF_ERROR(verifyPlan(bytes.data(), bytes.size(), name));
  return PlanFile(std::move(bytes), std::move(name));
}

StatusOr<PlanFile> PlanFile::open(const std::string &path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return Status::error("{}: cannot open: {}", path, std::strerror(errno));
  std::streamoff size = in.tellg();
  if (size < 0)
    return Status::error("{}: cannot read its size", path);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char *>(bytes.data()), size))
    return Status::error("{}: read failed after {} of {} bytes", path,
                         in.gcount(), size);
  return fromBytes(std::move(bytes), path);
}

//===----------------------------------------------------------------------===//
// The device check
//===----------------------------------------------------------------------===//

bool targetRunsOn(const Target &target, int computeMajor, int computeMinor) {
  const std::string arch = target.arch() ? target.arch()->str() : "";
  const bool archSpecific = !arch.empty() && arch.back() == 'a';
  if (archSpecific)
    return computeMajor == target.compute_major() &&
           computeMinor == target.compute_minor();
  return computeMajor == target.compute_major() &&
         computeMinor >= target.compute_minor();
}

bool hasGemmSteps(const Plan &plan) {
  if (plan.entry_points())
    for (const EntryPoint *entry : *plan.entry_points())
      if (entry->steps_type())
        for (Step type : *entry->steps_type())
          if (type == Step::Gemm)
            return true;
  return false;
}

MemoryNeeds memoryNeeds(const Plan &plan, uint64_t kvCacheBytes,
                        int64_t pagesPerSequence) {
  MemoryNeeds needs;
  needs.gemmWorkspace = hasGemmSteps(plan) ? kGemmWorkspaceBytes : 0;
  needs.weights = layoutWeights(plan).totalBytes;
  needs.arena = alignToDevice(largestArenaBytes(plan));
  needs.stepInputs = stepInputBytes(plan, pagesPerSequence);
  needs.kvCache = kvCacheBytes;
  return needs;
}

Status checkDevice(const Plan &plan, const DeviceInfo &device,
                   const MemoryNeeds &needs) {
  const Target &target = *plan.target();
  if (!targetRunsOn(target, device.compute_major, device.compute_minor)) {
    const std::string arch = target.arch()->str();
    const bool archSpecific = arch.back() == 'a';
    return Status::error(
        "the plan is compiled for {} (compute capability {}.{}{}), but {} has "
        "compute capability {}.{}; recompile with dsv3c --target for this GPU",
        arch, target.compute_major(), target.compute_minor(),
        archSpecific ? " exactly" : fmt::format(" to {}.x", target.compute_major()),
        device.name, device.compute_major, device.compute_minor);
  }
  if (needs.total() > device.free_bytes)
    return Status::error(
        "plan needs {} bytes (weights {}, arena {}, step inputs {}, KV cache "
        "{}{}) but the GPU has {} free",
        needs.total(), needs.weights, needs.arena, needs.stepInputs,
        needs.kvCache,
        needs.gemmWorkspace
            ? fmt::format(", cuBLASLt workspace {}", needs.gemmWorkspace)
            : "",
        device.free_bytes);
  return Status::success();
}

} // namespace dsv3::plan
