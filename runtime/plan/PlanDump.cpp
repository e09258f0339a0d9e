//===- PlanDump.cpp - a plan as readable, line-oriented text --------------===//

#include "runtime/plan/PlanDump.h"

#include "runtime/plan/PlanFile.h"

#include <fmt/format.h>

#include <limits>

namespace dsv3::plan {

const char *sizeUnitSymbol(SizeUnit unit) {
  switch (unit) {
  case SizeUnit::Constant:
    return "";
  case SizeUnit::Tokens:
    return "T";
  case SizeUnit::Sequences:
    return "B";
  case SizeUnit::PagesPerSequence:
    return "P";
  case SizeUnit::ResumedRuns:
    return "resumed";
  }
  return "?";
}

const char *stepInputName(StepInput input) {
  switch (input) {
  case StepInput::Hidden:
    return "hidden";
  case StepInput::Tokens:
    return "tokens";
  case StepInput::Positions:
    return "positions";
  case StepInput::TokenSeq:
    return "token_seq";
  case StepInput::BlockTable:
    return "block_table";
  case StepInput::LastRows:
    return "last_rows";
  }
  return "?";
}

std::string formatSize(SizeUnit unit, int64_t multiplier) {
  if (unit == SizeUnit::Constant || multiplier == 0)
    return std::to_string(multiplier);
  if (multiplier == 1)
    return sizeUnitSymbol(unit);
  return fmt::format("{}*{}", multiplier, sizeUnitSymbol(unit));
}

std::string formatLaunchDim(const LaunchDim &dim) {
  const int64_t divisor = dim.divisor() < 1 ? 1 : dim.divisor();
  if (dim.unit() == SizeUnit::Constant || dim.multiplier() == 0) {
    const int64_t numerator =
        dim.unit() == SizeUnit::Constant ? dim.multiplier() : 0;
    const int64_t quotient =
        numerator / divisor + (numerator % divisor > 0 ? 1 : 0);
    return std::to_string(quotient + dim.offset());
  }
  std::string text = formatSize(dim.unit(), dim.multiplier());
  if (divisor != 1)
    text = fmt::format("ceil({}/{})", text, divisor);
  if (dim.offset() > 0)
    text += fmt::format("+{}", dim.offset());
  else if (dim.offset() < 0)
    // Negated as unsigned, so that INT64_MIN prints too.
    text += fmt::format("-{}", uint64_t{0} - static_cast<uint64_t>(dim.offset()));
  return text;
}

std::string formatSizes(const flatbuffers::Vector<const Size *> *sizes) {
  std::string text = "[";
  if (sizes)
    for (size_t i = 0; i < sizes->size(); ++i)
      text += (i ? ", " : "") + formatSize(sizes->Get(i)->unit(),
                                           sizes->Get(i)->multiplier());
  return text + "]";
}

namespace {

/// Where a Buffer or TensorMap argument points: "arena+4096", "weight#3".
std::string formatBuffer(const Arg &arg) {
  switch (arg.space()) {
  case Space::Arena:
    return fmt::format("arena+{}", arg.index());
  case Space::Weight:
    return fmt::format("weight#{}", arg.index());
  case Space::Constant:
    return fmt::format("constant#{}", arg.index());
  case Space::Input:
    return fmt::format("input:{}",
                       stepInputName(static_cast<StepInput>(arg.index())));
  case Space::KvCache:
    return fmt::format("kv_cache[{}]", arg.index());
  case Space::Null:
    return "null";
  }
  return "?";
}

/// "map(weight#3 F8_E4M3 [7168, 8*T] box [128, 128] swizzle 128)".
std::string formatTensorMap(const Arg &arg) {
  const TensorMapArg *map = arg.tensor_map();
  if (!map)
    return fmt::format("map({} ?)", formatBuffer(arg));
  std::string box;
  if (map->box())
    for (size_t i = 0; i < map->box()->size(); ++i)
      box += (i ? ", " : "") + std::to_string(map->box()->Get(i));
  return fmt::format("map({} {} {} box [{}] swizzle {})", formatBuffer(arg),
                     EnumNameDType(map->dtype()), formatSizes(map->dims()), box,
                     map->swizzle_bytes());
}

} // namespace

std::string formatArg(const Arg &arg) {
  switch (arg.kind()) {
  case ArgKind::Buffer:
    return formatBuffer(arg);
  case ArgKind::TensorMap:
    return formatTensorMap(arg);
  case ArgKind::Int:
    return arg.size() ? "int " + formatSize(arg.size()->unit(),
                                            arg.size()->multiplier())
                      : "int ?";
  case ArgKind::Float:
    // As the kernel receives it: a float, printed shortest round-trip.
    return fmt::format("float {}", static_cast<float>(arg.value()));
  }
  return "?";
}

namespace {

std::string formatShape(const flatbuffers::Vector<int64_t> *shape) {
  std::string text = "[";
  if (shape)
    for (size_t i = 0; i < shape->size(); ++i)
      text += (i ? ", " : "") + std::to_string(shape->Get(i));
  return text + "]";
}

std::string formatSource(const CheckpointTensor &source) {
  return fmt::format("{} {} {}", source.name() ? source.name()->str() : "",
                     EnumNameDType(source.dtype()),
                     formatShape(source.shape()));
}

void dumpWeights(const Plan &plan, std::string &out) {
  const size_t count = plan.weights() ? plan.weights()->size() : 0;
  out += fmt::format("weights {}, {} bytes on the device\n", count,
                     layoutWeights(plan).totalBytes);
  for (size_t w = 0; w < count; ++w) {
    const Weight &weight = *plan.weights()->Get(w);
    const auto &sources = *weight.sources();
    out += fmt::format("weight#{} {} {} = ", w, EnumNameDType(weight.dtype()),
                       formatShape(weight.shape()));
    switch (weight.transform()) {
    case WeightTransform::Copy:
      out += "copy " + formatSource(*sources.Get(0));
      break;
    case WeightTransform::Stack:
      out += fmt::format("stack {}:", sources.size());
      for (size_t s = 0; s < sources.size(); ++s)
        out += (s ? ", " : " ") + formatSource(*sources.Get(s));
      break;
    case WeightTransform::DequantizeBf16:
      out += fmt::format("dequantize {} x {} in blocks {}",
                         formatSource(*sources.Get(0)),
                         formatSource(*sources.Get(1)),
                         formatShape(weight.block()));
      break;
    }
    out += "\n";
  }
}

/// A step's size guards: " when T <= 4096 and resumed <= 0", or nothing.
void appendSizeGuards(const SizeRange *when, const SizeRange *alsoWhen,
                      std::string &out) {
  const char *keyword = " when";
  for (const SizeRange *range : {when, alsoWhen}) {
    if (!range)
      continue;
    std::string rows = formatSize(range->unit(), range->multiplier());
    if (range->max() == std::numeric_limits<int64_t>::max())
      out += fmt::format("{} {} >= {}", keyword, rows, range->min());
    else if (range->min() <= 0)
      out += fmt::format("{} {} <= {}", keyword, rows, range->max());
    else
      out += fmt::format("{} {} <= {} <= {}", keyword, range->min(), rows,
                         range->max());
    keyword = " and";
  }
}

void dumpLaunch(const Plan &plan, size_t index, const Launch &launch,
                std::string &out) {
  const Kernel &kernel = *plan.kernels()->Get(launch.kernel());
  const auto &grid = *launch.grid();
  const auto &block = *launch.block();
  out += fmt::format(
      "  step#{} {} kernel#{} {} grid ({}, {}, {}) block ({}, {}, {}) shared {} "
      "args (",
      index, launch.op() ? launch.op()->str() : "", launch.kernel(),
      kernel.instance() ? kernel.instance()->str() : "",
      formatLaunchDim(*grid.Get(0)), formatLaunchDim(*grid.Get(1)),
      formatLaunchDim(*grid.Get(2)), block.Get(0), block.Get(1), block.Get(2),
      launch.shared_bytes());
  if (launch.args())
    for (size_t a = 0; a < launch.args()->size(); ++a)
      out += (a ? ", " : "") + formatArg(*launch.args()->Get(a));
  out += ")";
  appendSizeGuards(launch.when(), launch.also_when(), out);
  out += "\n";
}

void dumpGemm(size_t index, const Gemm &gemm, std::string &out) {
  auto arg = [](const Arg *arg) { return arg ? formatArg(*arg) : "?"; };
  out += fmt::format(
      "  step#{} {} cublasLt fp8 gemm n {} k {} {} rows {} align {} args ({}, "
      "{}, {}, {}, {})",
      index, gemm.op() ? gemm.op()->str() : "", gemm.n(), gemm.k(),
      EnumNameDType(gemm.c_dtype()),
      gemm.rows() ? formatSize(gemm.rows()->unit(), gemm.rows()->multiplier())
                  : "?",
      gemm.row_alignment(), arg(gemm.a()), arg(gemm.a_scales()), arg(gemm.b()),
      arg(gemm.b_scales()), arg(gemm.c()));
  appendSizeGuards(gemm.when(), gemm.also_when(), out);
  out += "\n";
}

void dumpEntryPoint(const Plan &plan, const EntryPoint &entry,
                    std::string &out) {
  const size_t steps = entry.steps() ? entry.steps()->size() : 0;
  out += fmt::format("entry {}: arena {} bytes, inputs", entry.name()->str(),
                     entry.arena_bytes());
  if (!entry.inputs() || entry.inputs()->size() == 0)
    out += " none";
  else
    for (StepInput input : *entry.inputs())
      out += fmt::format(" {}", stepInputName(input));
  out += fmt::format(", {} step{}\n", steps, steps == 1 ? "" : "s");
  if (entry.outputs())
    for (size_t o = 0; o < entry.outputs()->size(); ++o) {
      const Output &output = *entry.outputs()->Get(o);
      out += fmt::format(
          "  output#{} arena+{} {} [{}, {}]\n", o, output.offset(),
          EnumNameDType(output.dtype()),
          formatSize(output.rows()->unit(), output.rows()->multiplier()),
          output.row_elements());
    }
  for (size_t s = 0; s < steps; ++s) {
    switch (entry.steps_type()->Get(s)) {
    case Step::Launch:
      dumpLaunch(plan, s, *entry.steps()->GetAs<Launch>(s), out);
      break;
    case Step::Gemm:
      dumpGemm(s, *entry.steps()->GetAs<Gemm>(s), out);
      break;
    case Step::NONE:
    default:
      out += fmt::format("  step#{} unknown\n", s);
      break;
    }
  }
}

} // namespace

std::string dumpPlan(const Plan &plan) {
  std::string out;
  const Target &target = *plan.target();
  const Limits &limits = *plan.limits();
  const Model &model = *plan.model();
  out += fmt::format("plan schema {}\n", plan.schema_version());
  out += fmt::format("target {} compute {}.{}{}\n", target.arch()->str(),
                     target.compute_major(), target.compute_minor(),
                     target.dependent_launches() ? ", dependent launches" : "");
  out += fmt::format("limits max_tokens {}, max_sequences {}, page_size {}\n",
                     limits.max_tokens(), limits.max_sequences(),
                     limits.page_size());
  out += fmt::format("model vocab {}, hidden {}, layers {} + {} MTP, cache row "
                     "{}, top_k {}\n",
                     model.vocab_size(), model.hidden_size(), model.num_layers(),
                     model.num_mtp_layers(), model.cache_row_elements(),
                     model.top_k());
  dumpWeights(plan, out);

  const size_t constants = plan.constants() ? plan.constants()->size() : 0;
  out += fmt::format("constants {}\n", constants);
  for (size_t c = 0; c < constants; ++c) {
    const Constant &constant = *plan.constants()->Get(c);
    out += fmt::format("constant#{} {} {}\n", c, EnumNameDType(constant.dtype()),
                       formatShape(constant.shape()));
  }

  const size_t modules = plan.modules() ? plan.modules()->size() : 0;
  out += fmt::format("modules {}\n", modules);
  for (size_t m = 0; m < modules; ++m)
    out += fmt::format("module#{} cubin {} bytes\n", m,
                       plan.modules()->Get(m)->cubin()->size());

  const size_t kernels = plan.kernels() ? plan.kernels()->size() : 0;
  out += fmt::format("kernels {}\n", kernels);
  for (size_t k = 0; k < kernels; ++k) {
    const Kernel &kernel = *plan.kernels()->Get(k);
    out += fmt::format("kernel#{} module#{} {} {}\n", k, kernel.module_(),
                       kernel.instance() ? kernel.instance()->str() : "",
                       kernel.name()->str());
  }
  if (plan.sampler() >= 0)
    out += fmt::format("sampler kernel#{}\n", plan.sampler());
  else
    out += "sampler none\n";

  for (const EntryPoint *entry : *plan.entry_points())
    dumpEntryPoint(plan, *entry, out);
  return out;
}

} // namespace dsv3::plan
