//===- Executor.cpp - runs a plan's entry points on a device --------------===//

#include "runtime/exec/Executor.h"

#include "runtime/plan/PlanDump.h"

#include <algorithm>
#include <cstring>

namespace dsv3::exec {

using plan::StepInput;

namespace {

bool entryReads(const plan::EntryPoint &entry, StepInput input) {
  if (entry.inputs())
    for (StepInput listed : *entry.inputs())
      if (listed == input)
        return true;
  return false;
}

/// Bytes of the device buffer for `input` at the plan's limits.
uint64_t inputCapacity(const plan::Plan &plan, StepInput input,
                       int64_t maxPagesPerSequence) {
  const uint64_t maxTokens = plan.limits()->max_tokens();
  const uint64_t maxSequences = plan.limits()->max_sequences();
  switch (input) {
  case StepInput::Tokens:
  case StepInput::Positions:
  case StepInput::TokenSeq:
    return maxTokens * sizeof(int32_t);
  case StepInput::LastRows:
    return maxSequences * sizeof(int32_t);
  case StepInput::BlockTable:
    return maxSequences * static_cast<uint64_t>(maxPagesPerSequence) *
           sizeof(int32_t);
  case StepInput::Hidden:
    return maxTokens * static_cast<uint64_t>(plan.model()->hidden_size()) *
           sizeof(uint16_t);
  }
  return 0;
}

/// The host bytes of `input` in `inputs`.
std::pair<const void *, uint64_t> inputBytes(const StepInputs &inputs,
                                             StepInput input) {
  auto of = [](const auto &vector) {
    return std::pair<const void *, uint64_t>(
        vector.data(), vector.size() * sizeof(vector[0]));
  };
  switch (input) {
  case StepInput::Tokens:
    return of(inputs.tokens);
  case StepInput::Positions:
    return of(inputs.positions);
  case StepInput::TokenSeq:
    return of(inputs.tokenSeq);
  case StepInput::LastRows:
    return of(inputs.lastRows);
  case StepInput::BlockTable:
    return of(inputs.blockTable);
  case StepInput::Hidden:
    return of(inputs.hidden);
  }
  return {nullptr, 0};
}

/// "entry point 'decode' step 3 (rms_norm)": how errors name a step.
std::string stepWhere(const plan::EntryPoint &entry, size_t step,
                      const flatbuffers::String *op) {
  return fmt::format("entry point '{}' step {} ({})",
                     entry.name()->string_view(), step,
                     op ? op->string_view() : "");
}

/// The plan's first Gemm step, as stepWhere names it; empty when it has
/// none (and needs no cuBLASLt).
std::string firstGemmStep(const plan::Plan &plan) {
  for (const plan::EntryPoint *entry : *plan.entry_points())
    for (size_t s = 0; entry->steps() && s < entry->steps()->size(); ++s)
      if (entry->steps_type()->Get(s) == plan::Step::Gemm)
        return stepWhere(*entry, s, entry->steps()->GetAs<plan::Gemm>(s)->op());
  return "";
}

std::string entryPointNames(const plan::Plan &plan) {
  std::string names;
  for (const plan::EntryPoint *entry : *plan.entry_points())
    names += (names.empty() ? "" : ", ") + entry->name()->str();
  return names;
}

} // namespace

const plan::EntryPoint *findEntryPoint(const plan::Plan &plan,
                                       std::string_view name) {
  if (plan.entry_points())
    for (const plan::EntryPoint *entry : *plan.entry_points())
      if (entry->name()->string_view() == name)
        return entry;
  return nullptr;
}

Status checkStepInputs(const plan::Plan &plan, const plan::EntryPoint &entry,
                       const StepInputs &inputs, int64_t numPages,
                       int64_t maxPagesPerSequence, StepSizes &sizes) {
  const std::string where =
      fmt::format("entry point '{}'", entry.name()->string_view());
  const int64_t T = static_cast<int64_t>(inputs.tokens.size());
  const int64_t B = static_cast<int64_t>(inputs.lastRows.size());
  const plan::Limits &limits = *plan.limits();
  if (T < 1)
    return Status::error("{}: a step needs at least one token", where);
  if (T > limits.max_tokens())
    return Status::error("{}: a step of {} tokens is more than the plan's "
                         "max_tokens ({})",
                         where, T, limits.max_tokens());
  if (B < 1)
    return Status::error("{}: a step needs at least one sequence (last_rows "
                         "is empty)",
                         where);
  if (B > limits.max_sequences())
    return Status::error("{}: a step of {} sequences is more than the plan's "
                         "max_sequences ({})",
                         where, B, limits.max_sequences());
  auto checkLength = [&](StepInput input, int64_t actual,
                         int64_t expected) -> Status {
    if (actual != expected)
      return Status::error("{}: input '{}' has {} values, expected {}", where,
                           plan::stepInputName(input), actual, expected);
    return Status::success();
  };

  const int64_t vocab = plan.model()->vocab_size();
  if (entryReads(entry, StepInput::Tokens))
    for (int64_t t = 0; t < T; ++t)
      if (inputs.tokens[t] < 0 || inputs.tokens[t] >= vocab)
        return Status::error("{}: input 'tokens': token {} is {}, outside the "
                             "vocabulary (0..{})",
                             where, t, inputs.tokens[t], vocab - 1);
  const bool readsPositions = entryReads(entry, StepInput::Positions);
  if (readsPositions) {
    DSV3_RETURN_IF_ERROR(checkLength(StepInput::Positions,
                                     inputs.positions.size(), T));
    for (int64_t t = 0; t < T; ++t)
      if (inputs.positions[t] < 0)
        return Status::error("{}: input 'positions': token {} has position {}",
                             where, t, inputs.positions[t]);
  }
  const bool readsTokenSeq = entryReads(entry, StepInput::TokenSeq);
  if (readsTokenSeq) {
    DSV3_RETURN_IF_ERROR(
        checkLength(StepInput::TokenSeq, inputs.tokenSeq.size(), T));
    for (int64_t t = 0; t < T; ++t)
      if (inputs.tokenSeq[t] < 0 || inputs.tokenSeq[t] >= B)
        return Status::error("{}: input 'token_seq': token {} is in sequence "
                             "{}, but the step has {} (0..{})",
                             where, t, inputs.tokenSeq[t], B, B - 1);
  }
  if (entryReads(entry, StepInput::LastRows))
    for (int64_t b = 0; b < B; ++b)
      if (inputs.lastRows[b] < 0 || inputs.lastRows[b] >= T)
        return Status::error("{}: input 'last_rows': sequence {} ends at row "
                             "{}, but the step has {} tokens",
                             where, b, inputs.lastRows[b], T);
  const int64_t P = inputs.pagesPerSequence;
  if (entryReads(entry, StepInput::BlockTable)) {
    if (P < 1 || P > maxPagesPerSequence)
      return Status::error("{}: the block table is {} pages wide; it must be "
                           "1 to {}",
                           where, P, maxPagesPerSequence);
    DSV3_RETURN_IF_ERROR(
        checkLength(StepInput::BlockTable, inputs.blockTable.size(), B * P));
    for (int64_t i = 0; i < B * P; ++i) {
      const int32_t page = inputs.blockTable[i];
      if (page != kUnusedPage && (page < 0 || page >= numPages))
        return Status::error("{}: input 'block_table': sequence {} entry {} "
                             "is page {}, but the cache has {} pages",
                             where, i / P, i % P, page, numPages);
    }
    if (readsPositions && readsTokenSeq) {
      // Attention reads every position 0..p of a token's sequence: all of
      // those pages must be real.
      std::vector<int64_t> lastPosition(B, -1);
      for (int64_t t = 0; t < T; ++t)
        lastPosition[inputs.tokenSeq[t]] = std::max<int64_t>(
            lastPosition[inputs.tokenSeq[t]], inputs.positions[t]);
      const int64_t pageSize = plan.limits()->page_size();
      for (int64_t b = 0; b < B; ++b) {
        if (lastPosition[b] < 0)
          continue;
        const int64_t pages = lastPosition[b] / pageSize + 1;
        if (pages > P)
          return Status::error("{}: sequence {} reaches position {}, beyond "
                               "its block table of {} pages of {} tokens",
                               where, b, lastPosition[b], P, pageSize);
        for (int64_t p = 0; p < pages; ++p)
          if (inputs.blockTable[b * P + p] == kUnusedPage)
            return Status::error("{}: input 'block_table': sequence {} reaches "
                                 "position {} but has no page at entry {}",
                                 where, b, lastPosition[b], p);
      }
    }
  }
  if (entryReads(entry, StepInput::Hidden))
    DSV3_RETURN_IF_ERROR(checkLength(StepInput::Hidden, inputs.hidden.size(),
                                     T * plan.model()->hidden_size()));
  sizes.tokens = T;
  sizes.sequences = B;
  sizes.pagesPerSequence = P;
  sizes.resumedRuns = readsPositions && readsTokenSeq
                          ? countResumedRuns(inputs.positions, inputs.tokenSeq)
                          : 0;
  return Status::success();
}

int64_t graphBlockTableWidth(int64_t pages, int64_t maxPages) {
  int64_t width = 1;
  while (width < pages)
    width *= 2;
  return std::max(pages, std::min(width, maxPages));
}

void padBlockTable(const std::vector<int32_t> &table, int64_t sequences,
                   int64_t pages, int64_t width, std::vector<int32_t> &padded) {
  padded.assign(static_cast<size_t>(sequences * width), kUnusedPage);
  for (int64_t b = 0; b < sequences; ++b)
    std::copy_n(table.begin() + b * pages, pages, padded.begin() + b * width);
}

std::string samplerKernelName(int64_t vocab) {
  return fmt::format(
      "_ZN5dsv3k13sample_tokensILi{}EEEvPKfiPKNS_14SamplingParamsEPiS6_i", vocab);
}

Status checkSamplerKernel(const plan::Plan &plan) {
  if (plan.sampler() < 0)
    return Status::success();
  const plan::Kernel &kernel = *plan.kernels()->Get(plan.sampler());
  const std::string expected = samplerKernelName(plan.model()->vocab_size());
  if (kernel.name()->string_view() != expected)
    return Status::error(
        "the plan's sampler kernel {} ({}) is not the one this runtime "
        "launches ({}): the plan comes from another dsv3c; rebuild it",
        plan.sampler(), kernel.name()->string_view(), expected);
  return Status::success();
}

uint64_t samplerCountBytes(const plan::Plan &plan, int64_t rows) {
  return static_cast<uint64_t>(rows) *
         static_cast<uint64_t>(plan.model()->vocab_size()) * sizeof(int32_t);
}

//===----------------------------------------------------------------------===//
// Executor
//===----------------------------------------------------------------------===//

StatusOr<std::unique_ptr<Executor>>
Executor::create(const Device &device, const plan::Plan &plan,
                 const DeviceWeights &weights, const KvCache &cache,
                 const ExecutorOptions &options) {
  const int64_t numPages = cache.pages().numPages();
  DSV3_RETURN_IF_ERROR(checkSamplerKernel(plan));
  if (options.samplerCountRows > 0 && plan.sampler() < 0)
    return Status::error("sampler count rows asked for ({}), but the plan has "
                         "no sampler kernel",
                         options.samplerCountRows);
  // cuBLASLt first: a plan that needs it fails before anything is loaded
  // or allocated when it is missing.
  const std::string firstGemm = firstGemmStep(plan);
  std::unique_ptr<CublasLt> cublasLt;
  if (!firstGemm.empty()) {
    StatusOr<std::unique_ptr<CublasLt>> opened = CublasLt::open();
    if (!opened.ok())
      return opened.status().withPrefix(firstGemm +
                                        ": a GEMM that cuBLASLt runs, but ");
    cublasLt = std::move(*opened);
  }
  std::unique_ptr<Executor> executor(
      new Executor(device, plan, numPages, options));
  DSV3_RETURN_IF_ERROR(executor->loadKernels());
  DSV3_RETURN_IF_ERROR(executor->allocateBuffers(
      options.maxPagesPerSequence > 0 ? options.maxPagesPerSequence
                                      : numPages));
  if (cublasLt) {
    StatusOr<std::unique_ptr<GemmContext>> gemms =
        GemmContext::create(device, std::move(cublasLt));
    if (!gemms.ok())
      return gemms.status().withPrefix(firstGemm + ": ");
    executor->gemms_ = std::move(*gemms);
  }
  DSV3_RETURN_IF_ERROR(executor->prepareEntryPoints(weights, cache));
  ExecutorOptions &chosen = executor->options_;
  if (chosen.cudaGraphMaxTokens < 0)
    chosen.cudaGraphMaxTokens = plan.limits()->max_sequences();
  if (chosen.cudaGraphMaxTokens > 0 && chosen.cudaGraphCapacity > 0)
    executor->graphs_ = std::make_unique<StepGraphCache>(
        device, static_cast<size_t>(chosen.cudaGraphCapacity));
  return executor;
}

Executor::~Executor() {
  graphs_.reset(); // the graphs launch the modules' and cuBLASLt's kernels
  gemms_.reset();
  for (CUmodule module : modules_) {
    Status unloaded = device_.check(device_.api().moduleUnload(module),
                                    "cuModuleUnload");
    if (!unloaded.ok())
      std::fprintf(stderr, "dsv3: warning: %s\n", unloaded.message().c_str());
  }
}

Status Executor::loadKernels() {
  const size_t moduleCount = plan_.modules() ? plan_.modules()->size() : 0;
  for (size_t m = 0; m < moduleCount; ++m) {
    const auto &cubin = *plan_.modules()->Get(m)->cubin();
    // The driver parses the cubin's ELF headers in place: give it an
    // 8-byte-aligned copy rather than a pointer into the flatbuffer.
    std::vector<uint64_t> image((cubin.size() + 7) / 8);
    std::memcpy(image.data(), cubin.data(), cubin.size());
    CUmodule module = nullptr;
    DSV3_RETURN_IF_ERROR(device_.check(
        device_.api().moduleLoadData(&module, image.data()),
        fmt::format("module {} ({} bytes of cubin): cuModuleLoadData", m,
                    cubin.size())));
    modules_.push_back(module);
  }
  const size_t kernelCount = plan_.kernels() ? plan_.kernels()->size() : 0;
  std::vector<unsigned> sharedBytes(kernelCount, 0);
  for (const plan::EntryPoint *entry : *plan_.entry_points())
    for (size_t s = 0; entry->steps() && s < entry->steps()->size(); ++s)
      if (entry->steps_type()->Get(s) == plan::Step::Launch) {
        const plan::Launch *launch = entry->steps()->GetAs<plan::Launch>(s);
        sharedBytes[launch->kernel()] =
            std::max(sharedBytes[launch->kernel()], launch->shared_bytes());
      }
  for (size_t k = 0; k < kernelCount; ++k) {
    const plan::Kernel &kernel = *plan_.kernels()->Get(k);
    const std::string what = fmt::format(
        "kernel {} ({}, {})", k,
        kernel.instance() ? kernel.instance()->str() : "", kernel.name()->str());
    CUfunction function = nullptr;
    DSV3_RETURN_IF_ERROR(device_.check(
        device_.api().moduleGetFunction(&function, modules_[kernel.module_()],
                                        kernel.name()->c_str()),
        what + ": cuModuleGetFunction"));
    // Above 48 KB a kernel must opt in to its dynamic shared memory.
    if (sharedBytes[k] > 48 * 1024)
      DSV3_RETURN_IF_ERROR(device_.check(
          device_.api().funcSetAttribute(
              function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              static_cast<int>(sharedBytes[k])),
          fmt::format("{}: cuFuncSetAttribute(max dynamic shared memory {})",
                      what, sharedBytes[k])));
    functions_.push_back(function);
  }
  return Status::success();
}

Status Executor::allocateBuffers(int64_t maxPagesPerSequence) {
  options_.maxPagesPerSequence = maxPagesPerSequence;
  const uint64_t arenaBytes = plan::largestArenaBytes(plan_);
  DSV3_ASSIGN_OR_RETURN(arena_, device_.allocate(arenaBytes, "the arena"));
  // Poisoned: a kernel reading arena bytes nobody wrote gets NaN.
  DSV3_RETURN_IF_ERROR(device_.fill(arena_.address(), 0xFF, arenaBytes));

  uint64_t stagingBytes = 0;
  for (StepInput input : plan::EnumValuesStepInput()) {
    bool read = false;
    for (const plan::EntryPoint *entry : *plan_.entry_points())
      read |= entryReads(*entry, input);
    if (!read)
      continue;
    const uint64_t bytes = inputCapacity(plan_, input, maxPagesPerSequence);
    DSV3_ASSIGN_OR_RETURN(
        inputBuffers_[static_cast<size_t>(input)],
        device_.allocate(bytes, fmt::format("step input '{}'",
                                            plan::stepInputName(input))));
    stagingBytes += plan::alignToDevice(bytes);
  }
  DSV3_ASSIGN_OR_RETURN(inputStaging_,
                        device_.allocatePinned(stagingBytes, "step inputs"));
  DSV3_ASSIGN_OR_RETURN(inputsCopied_, device_.createEvent());
  if (plan_.sampler() >= 0) {
    const uint64_t maxSequences = plan_.limits()->max_sequences();
    DSV3_ASSIGN_OR_RETURN(
        sampledTokens_,
        device_.allocate(maxSequences * sizeof(int32_t), "sampled tokens"));
    DSV3_ASSIGN_OR_RETURN(
        samplingParams_,
        device_.allocate(maxSequences * sizeof(sample::SamplingParams),
                         "sampling parameters"));
    if (options_.samplerCountRows > 0) {
      const uint64_t bytes =
          samplerCountBytes(plan_, options_.samplerCountRows);
      DSV3_ASSIGN_OR_RETURN(
          tokenCounts_, device_.allocate(bytes, "generated-token counts"));
      DSV3_RETURN_IF_ERROR(device_.fill(tokenCounts_.address(), 0, bytes));
    }
  }
  return device_.synchronize("poisoning the arena");
}

Status Executor::prepareEntryPoints(const DeviceWeights &weights,
                                    const KvCache &cache) {
  BufferAddresses addresses;
  addresses.arena = arena_.address();
  for (size_t w = 0; w < weights.weightCount(); ++w)
    addresses.weights.push_back(weights.weightAddress(w));
  for (size_t c = 0; c < weights.constantCount(); ++c)
    addresses.constants.push_back(weights.constantAddress(c));
  for (int layer = 0; layer < cache.layerCount(); ++layer)
    addresses.kvCacheLayers.push_back(cache.layerAddress(layer));
  for (size_t i = 0; i < inputBuffers_.size(); ++i)
    addresses.inputs[i] = inputBuffers_[i].address();

  // The plan's kernels await their predecessors (griddepcontrol, sm_90+):
  // each may then be launched to overlap the previous one's tail.
  const bool dependentLaunches =
      options_.dependentLaunches && plan_.target()->dependent_launches();
  for (const plan::EntryPoint *entry : *plan_.entry_points()) {
    PreparedEntry prepared;
    prepared.entry = entry;
    const size_t stepCount = entry->steps() ? entry->steps()->size() : 0;
    for (size_t s = 0; s < stepCount; ++s) {
      PreparedStep step;
      step.kind = entry->steps_type()->Get(s);
      switch (step.kind) {
      case plan::Step::Launch: {
        const plan::Launch &launch = *entry->steps()->GetAs<plan::Launch>(s);
        DSV3_ASSIGN_OR_RETURN(
            step.launch,
            prepareLaunch(launch, addresses, stepWhere(*entry, s, launch.op())));
        step.launch.function = functions_[launch.kernel()];
        step.launch.dependentLaunch = dependentLaunches;
        const plan::Kernel *kernel = plan_.kernels()->Get(launch.kernel());
        step.launch.name = kernel->instance() ? kernel->instance()->str()
                                              : kernel->name()->str();
        // Matched against the instance only, as dsv3-bench checks them.
        step.launch.omitted = omitted(
            kernel->instance() ? kernel->instance()->string_view() : "");
        break;
      }
      case plan::Step::Gemm: {
        const plan::Gemm &gemm = *entry->steps()->GetAs<plan::Gemm>(s);
        DSV3_ASSIGN_OR_RETURN(
            step.gemm,
            prepareGemm(gemm, addresses, stepWhere(*entry, s, gemm.op())));
        step.gemm.omitted = omitted(step.gemm.name);
        break;
      }
      case plan::Step::NONE:
      default:
        return Status::error("entry point '{}' step {}: unknown step type {}",
                             entry->name()->string_view(), s,
                             static_cast<int>(step.kind));
      }
      prepared.steps.push_back(std::move(step));
    }
    entries_.emplace(entry->name()->str(), std::move(prepared));
  }
  return Status::success();
}

bool Executor::omitted(std::string_view name) const {
  return std::any_of(options_.omitKernels.begin(), options_.omitKernels.end(),
                     [&](const std::string &part) {
                       return name.find(part) != std::string_view::npos;
                     });
}

bool Executor::PreparedStep::chosen(const StepSizes &sizes) const {
  switch (kind) {
  case plan::Step::Launch:
    return launchChosen(launch, sizes);
  case plan::Step::Gemm:
    return gemmChosen(gemm, sizes);
  default:
    return true; // queueStep reports it
  }
}

const std::string &Executor::PreparedStep::name() const {
  return kind == plan::Step::Gemm ? gemm.name : launch.name;
}

const std::string &Executor::PreparedStep::where() const {
  return kind == plan::Step::Gemm ? gemm.where : launch.where;
}

bool Executor::hasEntryPoint(std::string_view name) const {
  return entries_.find(name) != entries_.end();
}

Status Executor::uploadInputs(const plan::EntryPoint &entry,
                              const StepInputs &inputs,
                              const std::vector<int32_t> *blockTable) {
  // The staging buffer is rewritten: the previous step's copies out of it
  // must have finished.
  if (inputsInFlight_) {
    DSV3_RETURN_IF_ERROR(device_.check(
        device_.api().eventSynchronize(inputsCopied_.handle()),
        "cuEventSynchronize on the previous step's inputs"));
    inputsInFlight_ = false;
  }
  uint64_t offset = 0;
  for (StepInput input : *entry.inputs()) {
    auto [source, bytes] = inputBytes(inputs, input);
    if (input == StepInput::BlockTable && blockTable) {
      source = blockTable->data();
      bytes = blockTable->size() * sizeof(int32_t);
    }
    const DeviceBuffer &target = inputBuffers_[static_cast<size_t>(input)];
    uint8_t *staged = inputStaging_.data() + offset;
    std::memcpy(staged, source, bytes);
    DSV3_RETURN_IF_ERROR(
        device_.copyToDevice(target.address(), staged, bytes)
            .withPrefix(fmt::format("uploading input '{}': ",
                                    plan::stepInputName(input))));
    offset += plan::alignToDevice(target.size());
  }
  DSV3_RETURN_IF_ERROR(device_.check(
      device_.api().eventRecord(inputsCopied_.handle(), device_.stream()),
      "cuEventRecord after the step inputs"));
  inputsInFlight_ = true;
  return Status::success();
}

bool Executor::capturesGraph(const StepSizes &sizes) const {
  return graphs_ && !observer_ && !options_.synchronizeEachLaunch &&
         sizes.tokens <= options_.cudaGraphMaxTokens;
}

Status Executor::prepareGemms(const PreparedEntry &prepared,
                              const StepSizes &sizes) {
  for (const PreparedStep &step : prepared.steps)
    if (step.kind == plan::Step::Gemm)
      DSV3_RETURN_IF_ERROR(gemms_->prepare(step.gemm, sizes));
  return Status::success();
}

Status Executor::queueStep(const PreparedEntry &prepared,
                           const StepSizes &sizes) {
  const plan::EntryPoint &entry = *prepared.entry;
  if (entry.outputs())
    for (const plan::Output *output : *entry.outputs()) {
      DSV3_ASSIGN_OR_RETURN(int32_t rows,
                            resolveInt(output->rows()->unit(),
                                       output->rows()->multiplier(), sizes));
      DSV3_RETURN_IF_ERROR(device_.fill(
          arena_.address() + output->offset(), 0xFF,
          static_cast<uint64_t>(rows) * output->row_elements() *
              plan::dtypeBytes(output->dtype())));
    }
  for (const PreparedStep &step : prepared.steps) {
    // Not this size's candidate (or omitted): nothing runs, and an observer
    // (the bench's per-launch timing) must not time it.
    if (!step.chosen(sizes))
      continue;
    if (observer_)
      DSV3_RETURN_IF_ERROR(observer_->beforeLaunch(step.name()));
    switch (step.kind) {
    case plan::Step::Launch:
      DSV3_RETURN_IF_ERROR(runLaunch(device_, step.launch, sizes, scratch_));
      break;
    case plan::Step::Gemm:
      DSV3_RETURN_IF_ERROR(runGemm(*gemms_, step.gemm, sizes));
      break;
    case plan::Step::NONE:
    default:
      return Status::error("entry point '{}': unknown step type {}",
                           entry.name()->string_view(),
                           static_cast<int>(step.kind));
    }
    if (observer_)
      DSV3_RETURN_IF_ERROR(observer_->afterLaunch(step.name()));
    if (options_.synchronizeEachLaunch)
      DSV3_RETURN_IF_ERROR(device_.synchronize(step.where()));
  }
  return Status::success();
}

Status Executor::run(std::string_view entryPoint, const StepInputs &inputs) {
  auto found = entries_.find(entryPoint);
  if (found == entries_.end())
    return Status::error("the plan has no entry point '{}' (it has: {})",
                         entryPoint, entryPointNames(plan_));
  const PreparedEntry &prepared = found->second;
  const plan::EntryPoint &entry = *prepared.entry;
  StepSizes sizes;
  DSV3_RETURN_IF_ERROR(checkStepInputs(plan_, entry, inputs, numPages_,
                                       options_.maxPagesPerSequence, sizes));
  lastEntry_ = nullptr; // until every step is queued
  const bool graphed = capturesGraph(sizes);
  const std::vector<int32_t> *blockTable = nullptr;
  if (graphed && entryReads(entry, StepInput::BlockTable)) {
    // The block table's width P is part of a graph's key; as a context grows
    // it widens by a page at a time. Padding it with unused pages to the
    // next power of two (the kernels only read the pages a position
    // reaches) keeps the graphs few.
    const int64_t padded =
        graphBlockTableWidth(sizes.pagesPerSequence, options_.maxPagesPerSequence);
    if (padded != sizes.pagesPerSequence) {
      padBlockTable(inputs.blockTable, sizes.sequences, sizes.pagesPerSequence, padded,
                    paddedBlockTable_);
      sizes.pagesPerSequence = padded;
      blockTable = &paddedBlockTable_;
    }
  }
  DSV3_RETURN_IF_ERROR(uploadInputs(entry, inputs, blockTable));
  if (graphed)
    DSV3_RETURN_IF_ERROR(graphs_->launch(
        StepGraphKey{prepared.entry, sizes},
        [&] { return queueStep(prepared, sizes); },
        [&] { return prepareGemms(prepared, sizes); }));
  else
    DSV3_RETURN_IF_ERROR(queueStep(prepared, sizes));
  lastEntry_ = &prepared;
  lastSizes_ = sizes;
  return Status::success();
}

StatusOr<std::pair<CUdeviceptr, size_t>>
Executor::kernelGlobal(const char *name) const {
  for (CUmodule module : modules_) {
    CUdeviceptr address = 0;
    size_t bytes = 0;
    if (device_.api().moduleGetGlobal(&address, &bytes, module, name) ==
        CUDA_SUCCESS)
      return std::make_pair(address, bytes);
  }
  return Status::error("the plan's kernels have no global '{}'", name);
}

StatusOr<std::vector<std::string>> Executor::lastRunKernels() const {
  if (!lastEntry_)
    return Status::error("no step has run to completion");
  std::vector<std::string> kernels;
  for (const PreparedStep &step : lastEntry_->steps) {
    if (step.kind != plan::Step::Launch || !step.chosen(lastSizes_))
      continue;
    bool empty = false;
    for (const plan::LaunchDim &dim : step.launch.grid) {
      DSV3_ASSIGN_OR_RETURN(int64_t extent, resolveLaunchDim(dim, lastSizes_));
      empty |= extent <= 0;
    }
    if (!empty)
      kernels.push_back(step.launch.name);
  }
  return kernels;
}

Status Executor::lastLogits(CUdeviceptr &address, int64_t &rows,
                            int64_t &columns) const {
  if (!lastEntry_)
    return Status::error("no step has run to completion: there are no logits");
  const plan::EntryPoint &entry = *lastEntry_->entry;
  if (!entry.outputs() || entry.outputs()->size() == 0)
    return Status::error("entry point '{}' has no outputs",
                         entry.name()->string_view());
  const plan::Output &output = *entry.outputs()->Get(0);
  if (output.dtype() != plan::DType::F32)
    return Status::error("entry point '{}': output 0 is {}, not F32 logits",
                         entry.name()->string_view(),
                         plan::EnumNameDType(output.dtype()));
  DSV3_ASSIGN_OR_RETURN(rows, resolveInt(output.rows()->unit(),
                                         output.rows()->multiplier(),
                                         lastSizes_));
  columns = output.row_elements();
  address = arena_.address() + output.offset();
  return Status::success();
}

StatusOr<std::vector<float>> Executor::readLogits() {
  CUdeviceptr address = 0;
  int64_t rows = 0, columns = 0;
  DSV3_RETURN_IF_ERROR(lastLogits(address, rows, columns));
  std::vector<float> logits(static_cast<size_t>(rows * columns));
  DSV3_RETURN_IF_ERROR(
      device_.copyToHost(logits.data(), address, logits.size() * sizeof(float)));
  DSV3_RETURN_IF_ERROR(device_.synchronize(fmt::format(
      "entry point '{}'", lastEntry_->entry->name()->string_view())));
  return logits;
}

StatusOr<std::vector<float>>
Executor::readLogitRows(const std::vector<int32_t> &rows, int64_t &columns) {
  CUdeviceptr address = 0;
  int64_t logitRows = 0;
  DSV3_RETURN_IF_ERROR(lastLogits(address, logitRows, columns));
  std::vector<float> logits(rows.size() * static_cast<size_t>(columns));
  const uint64_t rowBytes = static_cast<uint64_t>(columns) * sizeof(float);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= logitRows)
      return Status::error("logit row {} requested, but the last step of "
                           "entry point '{}' has {} rows",
                           rows[i], lastEntry_->entry->name()->string_view(),
                           logitRows);
    DSV3_RETURN_IF_ERROR(device_.copyToHost(logits.data() + i * columns,
                                            address + rows[i] * rowBytes,
                                            rowBytes));
  }
  DSV3_RETURN_IF_ERROR(device_.synchronize(fmt::format(
      "entry point '{}' (logit rows)", lastEntry_->entry->name()->string_view())));
  return logits;
}

StatusOr<std::vector<int32_t>>
Executor::sampleTokens(const std::vector<sample::SamplingParams> &rows) {
  if (plan_.sampler() < 0)
    return Status::error("the plan has no sampler kernel");
  CUdeviceptr logits = 0;
  int64_t logitRows = 0, columns = 0;
  DSV3_RETURN_IF_ERROR(lastLogits(logits, logitRows, columns));
  if (static_cast<int64_t>(rows.size()) != logitRows)
    return Status::error("sampling: {} rows of settings for {} rows of logits",
                         rows.size(), logitRows);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t countsRow = rows[r].countsRow;
    if (countsRow >= options_.samplerCountRows)
      return Status::error("sampling: row {} counts in row {}, but the count "
                           "buffer has {} rows",
                           r, countsRow, options_.samplerCountRows);
    if (rows[r].penalized() && countsRow < 0)
      return Status::error("sampling: row {} has presence or frequency "
                           "penalties but no row of generated-token counts",
                           r);
  }
  DSV3_RETURN_IF_ERROR(device_.copyToDevice(
      samplingParams_.address(), rows.data(),
      rows.size() * sizeof(sample::SamplingParams)));
  // sample_tokens<V>(const float *logits, int ld, const SamplingParams *params,
  //                  int *counts, int *tokens, int R)
  CUdeviceptr params = samplingParams_.address();
  CUdeviceptr counts = options_.samplerCountRows > 0 ? tokenCounts_.address() : 0;
  CUdeviceptr tokens = sampledTokens_.address();
  int ld = static_cast<int>(columns), R = static_cast<int>(logitRows);
  void *arguments[] = {&logits, &ld, &params, &counts, &tokens, &R};
  const plan::Kernel &kernel = *plan_.kernels()->Get(plan_.sampler());
  DSV3_RETURN_IF_ERROR(device_.check(
      device_.api().launchKernel(functions_[plan_.sampler()],
                                 static_cast<unsigned>(R), 1, 1, 1024, 1, 1, 0,
                                 device_.stream(), arguments, nullptr),
      fmt::format("sampler ({}): cuLaunchKernel grid ({}, 1, 1)",
                  kernel.instance() ? kernel.instance()->str() : "", R)));
  std::vector<int32_t> sampled(static_cast<size_t>(R));
  DSV3_RETURN_IF_ERROR(device_.copyToHost(sampled.data(), tokens,
                                          sampled.size() * sizeof(int32_t)));
  DSV3_RETURN_IF_ERROR(device_.synchronize(
      fmt::format("entry point '{}' and sampling",
                  lastEntry_->entry->name()->string_view())));
  return sampled;
}

Status Executor::clearTokenCounts(int64_t row) {
  if (row < 0 || row >= options_.samplerCountRows)
    return Status::error("generated-token counts: row {} outside the buffer's "
                         "{} rows",
                         row, options_.samplerCountRows);
  const uint64_t rowBytes = samplerCountBytes(plan_, 1);
  return device_.fill(tokenCounts_.address() + row * rowBytes, 0, rowBytes);
}

} // namespace dsv3::exec
