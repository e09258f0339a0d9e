//===- dsv3-bench.cpp - time a plan's steps against measured floors -------===//
//
// dsv3-bench PLAN --workload decode:B:CONTEXT|prefill:B:LENGTH ... [options]
//
// Issue 5's benchmark. Everything that needs no GPU is checked first (the
// plan, the workloads against its limits, a random distribution for every
// weight); then the GPU against the plan and the memory all workloads need.
// The ceilings are measured before anything else is allocated; then the
// weights are allocated from the plan's layout and filled on the GPU, the KV
// cache filled with random latents, and each workload run through the same
// Executor as dsv3-run: warm-up, timed steps, a per-launch profiling pass.
// `--help` says what is timed and what the floor counts (BenchOptions.cpp).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Device.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/KvCache.h"
#include "runtime/exec/WeightLoader.h"
#include "runtime/plan/PlanFile.h"
#include "tools/dsv3-bench/BenchOptions.h"
#include "tools/dsv3-bench/BenchReport.h"
#include "tools/dsv3-bench/Ceilings.h"
#include "tools/dsv3-bench/RandomFiller.h"
#include "tools/dsv3-bench/StepCost.h"
#include "tools/dsv3-bench/WeightFill.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

using dsv3::Status;
using dsv3::StatusOr;
namespace bench = dsv3::bench;
namespace exec = dsv3::exec;
namespace plan = dsv3::plan;

namespace {

int fail(const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "dsv3-bench: error: %s\n", message.c_str());
  return 1;
}

template <typename... Args>
void progress(fmt::format_string<Args...> format, Args &&...args) {
  std::fprintf(stderr, "dsv3-bench: %s\n",
               fmt::format(format, std::forward<Args>(args)...).c_str());
  std::fflush(stderr);
}

/// Times each launch (and cuBLASLt GEMM) of the runs it observes: an event
/// pair around each, read after the step. Events are created as needed and
/// reused.
class LaunchProfiler : public exec::LaunchObserver {
public:
  explicit LaunchProfiler(const exec::Device &device) : device_(device) {}

  Status beforeLaunch(std::string_view) override {
    while (events_.size() <= next_) {
      DSV3_ASSIGN_OR_RETURN(exec::DeviceEvent start, device_.createEvent(true));
      DSV3_ASSIGN_OR_RETURN(exec::DeviceEvent stop, device_.createEvent(true));
      events_.emplace_back(std::move(start), std::move(stop));
    }
    return record(events_[next_].first);
  }
  Status afterLaunch(std::string_view name) override {
    DSV3_RETURN_IF_ERROR(record(events_[next_].second));
    if (names_.size() <= next_)
      names_.emplace_back(name);
    else
      names_[next_] = name;
    ++next_;
    return Status::success();
  }

  /// Adds the launches recorded since the last call to `times` (waiting for
  /// the GPU) and starts over.
  Status collect(bench::KernelTimes &times) {
    for (size_t i = 0; i < next_; ++i) {
      DSV3_RETURN_IF_ERROR(device_.check(
          device_.api().eventSynchronize(events_[i].second.handle()),
          "cuEventSynchronize (profiled launch)"));
      float milliseconds = 0;
      DSV3_RETURN_IF_ERROR(device_.check(
          device_.api().eventElapsedTime(&milliseconds,
                                         events_[i].first.handle(),
                                         events_[i].second.handle()),
          "cuEventElapsedTime (profiled launch)"));
      times.add(names_[i], milliseconds);
    }
    ++times.steps;
    next_ = 0;
    return Status::success();
  }

private:
  Status record(const exec::DeviceEvent &event) {
    return device_.check(
        device_.api().eventRecord(event.handle(), device_.stream()),
        "cuEventRecord (profiling)");
  }

  const exec::Device &device_;
  std::vector<std::pair<exec::DeviceEvent, exec::DeviceEvent>> events_;
  /// The observed steps' names (kernel instances, Gemm display names), in
  /// order; kept between steps so that their storage is reused.
  std::vector<std::string> names_;
  size_t next_ = 0;
};

/// How the plan's FP8 matrices are multiplied, as the floor counts them.
const char *activationNote(const bench::PlanModel &model) {
  if (model.fp8MatrixParams + model.fp8ExpertParams == 0)
    return "no FP8 weights";
  return model.fp8Activations
             ? "FP8 weights x FP8 activations (FLOPs at the FP8 peak)"
             : "FP8 weights x BF16 activations (FLOPs at the BF16 peak)";
}

/// Pages one sequence of `workload` needs: its context and new tokens.
int64_t pagesPerSequence(const plan::Plan &plan, const bench::Workload &workload) {
  const int64_t pageSize = plan.limits()->page_size();
  return (workload.context + workload.newTokens + pageSize - 1) / pageSize;
}

/// The checks that need no GPU: each workload fits the plan, every weight
/// has a random distribution, and every --omit-kernel names a kernel (or a
/// Gemm step, by its display name).
Status checkRequest(const plan::Plan &plan, const bench::BenchOptions &options) {
  const plan::Limits &limits = *plan.limits();
  for (const bench::Workload &workload : options.workloads) {
    if (!exec::findEntryPoint(plan, workload.entryPoint()))
      return Status::error("{}: workload '{}' needs entry point '{}', which "
                           "the plan lacks",
                           options.planPath, workload.name(),
                           workload.entryPoint());
    if (workload.tokens() > limits.max_tokens())
      return Status::error("{}: workload '{}' runs {} tokens in one step, but "
                           "the plan takes at most {} (dsv3c --max-tokens)",
                           options.planPath, workload.name(), workload.tokens(),
                           limits.max_tokens());
    if (workload.sequences > limits.max_sequences())
      return Status::error("{}: workload '{}' runs {} sequences, but the plan "
                           "takes at most {} (dsv3c --max-sequences)",
                           options.planPath, workload.name(),
                           workload.sequences, limits.max_sequences());
  }
  for (size_t w = 0; w < (plan.weights() ? plan.weights()->size() : 0); ++w) {
    StatusOr<bench::FillSpec> fill = bench::weightFill(plan, w, options.seed);
    if (!fill.ok())
      return fill.status().withPrefix(options.planPath + ": ");
  }
  std::vector<std::string> names;
  for (size_t k = 0; k < (plan.kernels() ? plan.kernels()->size() : 0); ++k)
    if (const auto *instance = plan.kernels()->Get(k)->instance())
      names.push_back(instance->str());
  for (const plan::EntryPoint *entry : *plan.entry_points())
    for (size_t s = 0; entry->steps() && s < entry->steps()->size(); ++s)
      if (entry->steps_type()->Get(s) == plan::Step::Gemm)
        names.push_back(
            exec::gemmDisplayName(*entry->steps()->GetAs<plan::Gemm>(s)));
  for (const std::string &part : options.omitKernels) {
    const bool found =
        std::any_of(names.begin(), names.end(), [&](const std::string &name) {
          return name.find(part) != std::string::npos;
        });
    if (!found)
      return Status::error("{}: --omit-kernel '{}' matches no kernel of the plan "
                           "(dsv3-plan dump lists them)",
                           options.planPath, part);
  }
  return Status::success();
}

/// The inputs of one step of `workload`: sequence b is cache sequence b,
/// fed random tokens at positions context .. context + newTokens - 1.
Status buildInputs(const plan::Plan &plan, const bench::Workload &workload,
                   exec::KvCache &cache, std::mt19937_64 &random,
                   exec::StepInputs &inputs) {
  std::vector<int64_t> sequences;
  std::uniform_int_distribution<int32_t> token(
      0, static_cast<int32_t>(plan.model()->vocab_size() - 1));
  for (int64_t b = 0; b < workload.sequences; ++b) {
    sequences.push_back(b);
    DSV3_RETURN_IF_ERROR(
        cache.pages().reserve(b, workload.context + workload.newTokens));
    for (int64_t i = 0; i < workload.newTokens; ++i) {
      inputs.tokens.push_back(token(random));
      inputs.positions.push_back(static_cast<int32_t>(workload.context + i));
      inputs.tokenSeq.push_back(static_cast<int32_t>(b));
    }
    inputs.lastRows.push_back(static_cast<int32_t>(inputs.tokens.size() - 1));
  }
  inputs.pagesPerSequence = pagesPerSequence(plan, workload);
  return cache.pages().fillBlockTable(sequences, inputs.pagesPerSequence,
                                      inputs.blockTable);
}

/// --timeline-steps: `steps` more runs of a plan compiled with dsv3c
/// --timeline, then per kernel of the step the mean time from its start
/// (when it passed its wait: its predecessor done) to the next kernel's
/// start, printed in launch order and summed by kernel. The last kernel's
/// time runs to the next step's first kernel, host gaps included.
Status printTimeline(const exec::Device &device, exec::Executor &executor,
                     const bench::Workload &workload, const exec::StepInputs &inputs,
                     int steps, const std::string &what) {
  DSV3_ASSIGN_OR_RETURN(auto slots, executor.kernelGlobal("dsv3_timeline"));
  DSV3_ASSIGN_OR_RETURN(auto next, executor.kernelGlobal("dsv3_timeline_next"));
  DSV3_RETURN_IF_ERROR(device.check(
      device.api().memsetD8Async(next.first, 0, sizeof(uint32_t), device.stream()),
      "cuMemsetD8Async (timeline)"));
  for (int i = 0; i < steps; ++i)
    DSV3_RETURN_IF_ERROR(executor.run(workload.entryPoint(), inputs));
  uint32_t recorded = 0;
  DSV3_RETURN_IF_ERROR(device.check(
      device.api().memcpyDtoHAsync(&recorded, next.first, sizeof recorded, device.stream()),
      "cuMemcpyDtoHAsync (timeline count)"));
  DSV3_RETURN_IF_ERROR(device.synchronize("the timeline steps"));
  DSV3_ASSIGN_OR_RETURN(std::vector<std::string> kernels, executor.lastRunKernels());
  const size_t perStep = kernels.size();
  const size_t capacity = slots.second / sizeof(uint64_t);
  if (perStep == 0 || recorded != perStep * steps || recorded > capacity)
    return Status::error("{}: the timeline recorded {} kernel starts for {} steps of {} "
                         "kernels (at most {} fit)",
                         what, recorded, steps, perStep, capacity);
  std::vector<uint64_t> starts(recorded);
  DSV3_RETURN_IF_ERROR(device.check(
      device.api().memcpyDtoHAsync(starts.data(), slots.first,
                                   starts.size() * sizeof(uint64_t), device.stream()),
      "cuMemcpyDtoHAsync (timeline)"));
  DSV3_RETURN_IF_ERROR(device.synchronize("reading the timeline"));
  // Nanoseconds from kernel i's start to the next start, summed over steps
  // (the last kernel of the last step has no next start).
  std::vector<double> total(perStep, 0);
  std::vector<int> counted(perStep, 0);
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    total[i % perStep] += static_cast<double>(starts[i + 1] - starts[i]);
    ++counted[i % perStep];
  }
  double stepUs = 0;
  for (size_t i = 0; i < perStep; ++i)
    stepUs += total[i] / std::max(counted[i], 1) / 1e3;
  std::printf("\ntimeline %s: %zu kernels a step, mean over %d steps, %.1f us a step "
              "(kernel start to next kernel start)\n",
              what.c_str(), perStep, steps, stepUs);
  std::map<std::string, std::pair<double, int>> byKernel;
  for (size_t i = 0; i < perStep; ++i) {
    const double us = total[i] / std::max(counted[i], 1) / 1e3;
    std::printf("  %4zu %8.2f us  %s\n", i, us, kernels[i].c_str());
    auto &[sum, launches] = byKernel[kernels[i]];
    sum += us;
    ++launches;
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> sorted(byKernel.begin(),
                                                                      byKernel.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto &a, const auto &b) { return a.second.first > b.second.first; });
  std::printf("timeline %s by kernel (us a step, launches, share):\n", what.c_str());
  for (const auto &[kernel, entry] : sorted)
    std::printf("  %8.2f us %3d  %5.1f%%  %s\n", entry.first, entry.second,
                100.0 * entry.first / stepUs, kernel.c_str());
  return Status::success();
}

/// Warm-up, timed steps, the logits check and the profiling pass.
StatusOr<bench::WorkloadResult>
runWorkload(const exec::Device &device, const plan::Plan &plan,
            exec::Executor &executor, exec::KvCache &cache,
            const bench::PlanModel &model, const bench::Ceilings &ceilings,
            const bench::BenchOptions &options, const bench::Workload &workload) {
  bench::WorkloadResult result;
  result.label = options.label;
  result.workload = workload;
  result.warmup = options.warmup;
  result.cost = bench::stepCost(model, workload);
  result.floor = bench::floorOf(result.cost, ceilings);

  for (int64_t b = 0; b < plan.limits()->max_sequences(); ++b)
    cache.pages().release(b);
  std::mt19937_64 random(options.seed);
  exec::StepInputs inputs;
  DSV3_RETURN_IF_ERROR(buildInputs(plan, workload, cache, random, inputs));
  const std::string what = options.label + " " + workload.name();
  DSV3_ASSIGN_OR_RETURN(bench::EventTimer timer, bench::EventTimer::create(device));

  // One step, then its logits: a step that faulted or produced NaN must not
  // pass for a fast one.
  auto timedStep = [&]() -> StatusOr<double> {
    DSV3_RETURN_IF_ERROR(timer.start());
    DSV3_RETURN_IF_ERROR(executor.run(workload.entryPoint(), inputs));
    DSV3_RETURN_IF_ERROR(timer.stop());
    return timer.elapsedMs();
  };
  double firstMs = 0;
  for (int i = 0; i < std::max(options.warmup, 1); ++i) {
    DSV3_ASSIGN_OR_RETURN(double milliseconds, timedStep());
    if (i == 0)
      firstMs = milliseconds;
    if (i < options.warmup)
      continue;
    result.stepMs.push_back(milliseconds); // --warmup 0: the first step counts
  }
  DSV3_ASSIGN_OR_RETURN(std::vector<float> logits, executor.readLogits());
  result.logits = static_cast<int64_t>(logits.size());
  result.nonFiniteLogits =
      std::count_if(logits.begin(), logits.end(),
                    [](float value) { return !std::isfinite(value); });
  progress("{}: first step {:.1f} ms, {} of {} logits not finite; timing",
           what, firstMs, result.nonFiniteLogits, result.logits);

  double totalMs = 0;
  for (double milliseconds : result.stepMs)
    totalMs += milliseconds;
  while (static_cast<int>(result.stepMs.size()) < options.maxSteps &&
         (static_cast<int>(result.stepMs.size()) < options.minSteps ||
          totalMs < options.secondsPerWorkload * 1e3)) {
    DSV3_ASSIGN_OR_RETURN(double milliseconds, timedStep());
    result.stepMs.push_back(milliseconds);
    totalMs += milliseconds;
  }

  LaunchProfiler profiler(device);
  executor.setLaunchObserver(&profiler);
  Status profiled = Status::success();
  for (int i = 0; i < options.profileSteps && profiled.ok(); ++i) {
    profiled = executor.run(workload.entryPoint(), inputs);
    if (profiled.ok())
      profiled = profiler.collect(result.kernels);
  }
  executor.setLaunchObserver(nullptr);
  DSV3_RETURN_IF_ERROR(profiled);
  if (options.timelineSteps > 0)
    DSV3_RETURN_IF_ERROR(
        printTimeline(device, executor, workload, inputs, options.timelineSteps, what));
  progress("{}: median {:.3f} ms of {} steps, floor {:.3f} ms ({:.1f}x)", what,
           result.medianMs(), result.stepMs.size(), result.floor.seconds() * 1e3,
           result.ratio());
  return result;
}

Status run(const bench::BenchOptions &options) {
  // Without a GPU: the plan, the workloads, the weights' distributions.
  DSV3_ASSIGN_OR_RETURN(plan::PlanFile planFile,
                        plan::PlanFile::open(options.planPath));
  const plan::Plan &plan = planFile.plan();
  DSV3_RETURN_IF_ERROR(checkRequest(plan, options));
  DSV3_ASSIGN_OR_RETURN(bench::PlanModel model, bench::analyzePlan(plan));
  if (options.costOnly) {
    std::printf("%s: %lld attention heads, %lld routed experts (top %lld), "
                "%s\n",
                options.planPath.c_str(), static_cast<long long>(model.heads),
                static_cast<long long>(model.experts),
                static_cast<long long>(model.topK), activationNote(model));
    for (const bench::Workload &workload : options.workloads)
      std::printf("%s %s: %s\n", options.label.c_str(), workload.name().c_str(),
                  bench::formatCost(bench::stepCost(model, workload)).c_str());
    return Status::success();
  }

  int64_t numPages = 1, widestSequence = 1;
  for (const bench::Workload &workload : options.workloads) {
    const int64_t pages = pagesPerSequence(plan, workload);
    widestSequence = std::max(widestSequence, pages);
    numPages = std::max(numPages, pages * workload.sequences);
  }

  // The GPU, checked before anything is allocated on it.
  DSV3_ASSIGN_OR_RETURN(std::unique_ptr<exec::Device> device,
                        exec::Device::open(options.device));
  DSV3_ASSIGN_OR_RETURN(plan::DeviceInfo info, device->queryInfo());
  const plan::MemoryNeeds needs = plan::memoryNeeds(
      plan, exec::kvCacheBytes(plan, numPages), widestSequence);
  DSV3_RETURN_IF_ERROR(plan::checkDevice(plan, info, needs)
                           .withPrefix(fmt::format("GPU {} ({}): ",
                                                   options.device, info.name)));
  int driverVersion = 0;
  DSV3_RETURN_IF_ERROR(device->check(
      device->api().driverGetVersion(&driverVersion), "cuDriverGetVersion"));

  bench::RunInfo runInfo;
  runInfo.device = fmt::format("{}, compute {}.{}, {} SMs, {:.1f} GB", info.name,
                               info.compute_major, info.compute_minor,
                               info.sm_count, info.total_bytes / 1e9);
  runInfo.driver = fmt::format("CUDA driver {}.{}", driverVersion / 1000,
                               driverVersion % 1000 / 10);
  runInfo.plan = fmt::format(
      "{}: {}, {} layers + {} MTP, max {} tokens and {} sequences per step, "
      "page {} tokens, {:.2f} GB of weights, {}",
      options.planPath, plan.target()->arch()->str(), plan.model()->num_layers(),
      plan.model()->num_mtp_layers(), plan.limits()->max_tokens(),
      plan.limits()->max_sequences(), plan.limits()->page_size(),
      needs.weights / 1e9, activationNote(model));
  runInfo.weights = fmt::format(
      "random, generated on the GPU (seed {}): matrices N(0, 1/in), FP8 as "
      "e4m3 codes x block scales, norms U(0.9, 1.1), embedding and head "
      "N(0, 1)",
      options.seed);
  runInfo.context = "decode context = random N(0, 1) bf16 latents written into "
                    "the KV-cache pages (not prefilled); each timed decode "
                    "step writes and attends at the same position; " +
                    std::string(options.cudaGraphs
                                    ? "steps of at most max_sequences tokens "
                                      "replayed as CUDA graphs (captured in "
                                      "the warm-up)"
                                    : "no CUDA graphs (--no-cuda-graphs)") +
                    (!plan.target()->dependent_launches() ? ""
                     : options.dependentLaunches
                         ? "; kernels launched to overlap their predecessors' tails"
                         : "; no dependent launches (--no-dependent-launches)");
  if (!options.omitKernels.empty())
    runInfo.context += fmt::format(
        "; OMITTED: every launch of the kernels containing '{}' (--omit-kernel), "
        "so the steps compute wrong results and their times only attribute cost",
        fmt::join(options.omitKernels, "', '"));
  progress("{}; {}", runInfo.device, runInfo.driver);

  DSV3_ASSIGN_OR_RETURN(std::unique_ptr<bench::RandomFiller> filler,
                        bench::RandomFiller::create(*device, info.sm_count));

  // The ceilings, while the device is otherwise empty.
  constexpr int kCeilingRepetitions = 10;
  DSV3_ASSIGN_OR_RETURN(runInfo.ceilings.copyBytesPerSecond,
                        bench::measureCopyBandwidth(*device, options.copyBytes,
                                                    kCeilingRepetitions));
  runInfo.copySource = fmt::format(
      "read + written, cuMemcpyDtoD of {:.2f} GB, median of {}",
      options.copyBytes / 1e9, kCeilingRepetitions);
  bench::GemmPeaks peaks;
  if (options.measureGemmPeaks) {
    DSV3_ASSIGN_OR_RETURN(peaks,
                          bench::measureGemmPeaks(*device, *filler,
                                                  options.gemmSize,
                                                  kCeilingRepetitions));
  } else {
    peaks.description = "not measured (--no-gemm-peaks)";
  }
  if (peaks.measured) {
    runInfo.ceilings.bf16FlopsPerSecond = peaks.bf16FlopsPerSecond;
    runInfo.ceilings.fp8FlopsPerSecond = peaks.fp8FlopsPerSecond;
    runInfo.ceilings.gemmSource = peaks.description;
  } else {
    runInfo.ceilings.bf16FlopsPerSecond = 754e12;
    runInfo.ceilings.fp8FlopsPerSecond = 1417e12;
    runInfo.ceilings.gemmSource =
        "NOT MEASURED here, issue 5's H100 figures; " + peaks.description;
  }
  progress("ceilings: {:.2f} TB/s copy, {:.0f} TFLOP/s BF16, {:.0f} TFLOP/s "
           "FP8 ({})",
           runInfo.ceilings.copyBytesPerSecond / 1e12,
           runInfo.ceilings.bf16FlopsPerSecond / 1e12,
           runInfo.ceilings.fp8FlopsPerSecond / 1e12,
           runInfo.ceilings.gemmSource);

  DSV3_ASSIGN_OR_RETURN(exec::DeviceWeights weights,
                        exec::allocateWeights(*device, plan));
  DSV3_RETURN_IF_ERROR(filler->fillWeights(plan, weights, options.seed));
  DSV3_ASSIGN_OR_RETURN(exec::KvCache cache,
                        exec::KvCache::create(*device, plan, numPages));
  DSV3_RETURN_IF_ERROR(filler->fillKvCache(plan, cache, numPages, options.seed));
  exec::ExecutorOptions executorOptions;
  executorOptions.maxPagesPerSequence = widestSequence;
  if (!options.cudaGraphs)
    executorOptions.cudaGraphMaxTokens = 0;
  executorOptions.dependentLaunches = options.dependentLaunches;
  executorOptions.omitKernels = options.omitKernels;
  DSV3_ASSIGN_OR_RETURN(
      std::unique_ptr<exec::Executor> executor,
      exec::Executor::create(*device, plan, weights, cache, executorOptions));
  progress("{:.2f} GB of random weights and {} KV-cache pages on the GPU",
           needs.weights / 1e9, numPages);
  if (options.timelineSteps > 0 && !executor->kernelGlobal("dsv3_timeline").ok())
    return Status::error("{}: --timeline-steps needs a plan compiled with dsv3c --timeline "
                         "(its kernels record when they start)",
                         options.planPath);

  std::vector<bench::WorkloadResult> results;
  for (const bench::Workload &workload : options.workloads) {
    DSV3_ASSIGN_OR_RETURN(bench::WorkloadResult result,
                          runWorkload(*device, plan, *executor, cache, model,
                                      runInfo.ceilings, options, workload));
    results.push_back(std::move(result));
  }

  std::fputs(bench::formatTable(runInfo, results).c_str(), stdout);
  std::fflush(stdout);
  if (!options.jsonPath.empty()) {
    std::ofstream json(options.jsonPath);
    json << bench::formatJson(runInfo, results);
    json.close();
    if (!json)
      return Status::error("{}: cannot write the JSON results",
                           options.jsonPath);
  }
  // With kernels omitted the logits are garbage by design: nothing to check.
  for (const bench::WorkloadResult &result : results)
    if (result.nonFiniteLogits > 0 && options.omitKernels.empty())
      return Status::error("{} {}: {} of {} logits are not finite: the step "
                           "computed garbage, its time means nothing",
                           result.label, result.workload.name(),
                           result.nonFiniteLogits, result.logits);
  return Status::success();
}

} // namespace

int main(int argc, char **argv) {
  bench::BenchOptions options;
  bool help = false;
  Status parsed = bench::parseBenchOptions(argc, argv, options, help);
  if (help) {
    std::fputs(bench::benchUsage(), stdout);
    return 0;
  }
  if (!parsed.ok())
    return fail(parsed.message());
  Status status = run(options);
  if (!status.ok())
    return fail(status.message());
  return 0;
}
