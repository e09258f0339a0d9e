//===- BenchReport.cpp - dsv3-bench's results as a table and as JSON ------===//

#include "tools/dsv3-bench/BenchReport.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace dsv3::bench {

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle]
                           : (values[middle - 1] + values[middle]) / 2;
}

double WorkloadResult::medianMs() const { return median(stepMs); }

double WorkloadResult::ratio() const {
  const double floorMs = floor.seconds() * 1e3;
  return floorMs > 0 ? medianMs() / floorMs : 0;
}

double WorkloadResult::kernelShareOfStep() const {
  const double stepMs = medianMs();
  return stepMs > 0 && kernels.steps > 0
             ? kernels.totalMs() / kernels.steps / stepMs
             : 0;
}

namespace {

/// The `count` templates with the most time, as "name 41.2%".
std::string topKernels(const KernelTimes &kernels, size_t count) {
  std::vector<std::pair<double, std::string>> byTime;
  for (const auto &[name, timeAndLaunches] : kernels.templates)
    byTime.emplace_back(timeAndLaunches.first, name);
  std::sort(byTime.rbegin(), byTime.rend());
  const double total = kernels.totalMs();
  std::string text;
  for (size_t i = 0; i < byTime.size() && i < count && total > 0; ++i)
    text += fmt::format("{}{} {:.1f}%", i ? ", " : "", byTime[i].second,
                        100 * byTime[i].first / total);
  return text;
}

std::string ceilingsLine(const RunInfo &info) {
  const Ceilings &c = info.ceilings;
  std::string fp8 = c.fp8FlopsPerSecond > 0
                        ? fmt::format("{:.0f}", c.fp8FlopsPerSecond / 1e12)
                        : std::string("none (FP8 FLOPs count at the BF16 peak)");
  return fmt::format("copy {:.2f} TB/s ({}); BF16 GEMM {:.0f} TFLOP/s, FP8 "
                     "GEMM {} TFLOP/s ({})",
                     c.copyBytesPerSecond / 1e12, info.copySource,
                     c.bf16FlopsPerSecond / 1e12, fp8, c.gemmSource);
}

} // namespace

std::string formatCost(const StepCost &cost) {
  return fmt::format(
      "{:.3f} GB (weights {:.3f}, KV cache {:.3f}), {:.4f} TFLOP (FP8xFP8 "
      "{:.4f}, attention {:.4f}){}",
      cost.bytes() / 1e9, cost.weightBytes / 1e9, cost.kvCacheBytes / 1e9,
      cost.flops() / 1e12, cost.fp8Flops / 1e12, cost.attentionFlops / 1e12,
      cost.distinctExperts > 0
          ? fmt::format(", {:.1f} distinct experts per MoE layer",
                        cost.distinctExperts)
          : std::string());
}

std::string formatTable(const RunInfo &info,
                        const std::vector<WorkloadResult> &results) {
  std::string out;
  out += fmt::format("plan      {}\n", info.plan);
  out += fmt::format("device    {}, {}\n", info.device, info.driver);
  out += fmt::format("weights   {}\n", info.weights);
  out += fmt::format("context   {}\n", info.context);
  out += fmt::format("ceilings  {}\n", ceilingsLine(info));
  out += "floor     max(bytes / copy bandwidth, FLOPs / GEMM peak): weights "
         "read (routed experts: the expected distinct experts hit), KV cache "
         "read and written; activations not counted\n\n";
  out += fmt::format("{:<6} {:<24} {:>5} {:>10} {:>9} {:<7} {:>7} {:>8} "
                     "{:>7}  {:>6} {:>6} {:>6} {:>6} {:>6}  {:>7}\n",
                     "label", "workload", "steps", "median ms", "floor ms",
                     "bound", "ratio", "TFLOP/s", "GB/s", "GEMM", "attn",
                     "MoE", "norm", "rest", "kernels");
  for (const WorkloadResult &r : results) {
    const double seconds = r.medianMs() * 1e-3;
    std::string shares;
    for (size_t c = 0; c < kKernelClassCount; ++c)
      shares += fmt::format(" {:>5.1f}%",
                            100 * r.kernels.share(static_cast<KernelClass>(c)));
    out += fmt::format(
        "{:<6} {:<24} {:>5} {:>10.3f} {:>9.3f} {:<7} {:>6.1f}x {:>8.1f} "
        "{:>7.0f} {} {:>7.0f}%\n",
        r.label, r.workload.name(), r.stepMs.size(), r.medianMs(),
        r.floor.seconds() * 1e3, r.floor.memoryBound() ? "memory" : "compute",
        r.ratio(), seconds > 0 ? r.cost.flops() / seconds / 1e12 : 0,
        seconds > 0 ? r.cost.bytes() / seconds / 1e9 : 0, shares,
        100 * r.kernelShareOfStep());
  }
  out += "\n(GEMM attn MoE norm rest: shares of kernel time by class, from a "
         "separate pass timing each launch; kernels: that pass's kernel time "
         "over the median step, the rest being launch gaps, uploads and "
         "fills)\n";
  for (const WorkloadResult &r : results) {
    const auto [lowest, highest] =
        std::minmax_element(r.stepMs.begin(), r.stepMs.end());
    out += fmt::format(
        "{} {}: {}; steps {:.3f}-{:.3f} ms after {} warm-up{}; {}; top "
        "kernels: {}\n",
        r.label, r.workload.name(), formatCost(r.cost),
        r.stepMs.empty() ? 0 : *lowest, r.stepMs.empty() ? 0 : *highest,
        r.warmup, r.warmup == 1 ? "" : "s",
        r.nonFiniteLogits == 0
            ? fmt::format("all {} logits finite", r.logits)
            : fmt::format("{} of {} logits NOT finite", r.nonFiniteLogits,
                          r.logits),
        topKernels(r.kernels, 4));
  }
  return out;
}

std::string formatJson(const RunInfo &info,
                       const std::vector<WorkloadResult> &results) {
  nlohmann::json run;
  run["plan"] = info.plan;
  run["device"] = info.device;
  run["driver"] = info.driver;
  run["weights"] = info.weights;
  run["context"] = info.context;
  run["ceilings"] = {
      {"copy_bytes_per_second", info.ceilings.copyBytesPerSecond},
      {"copy_source", info.copySource},
      {"bf16_flops_per_second", info.ceilings.bf16FlopsPerSecond},
      {"fp8_flops_per_second", info.ceilings.fp8FlopsPerSecond},
      {"gemm_source", info.ceilings.gemmSource}};
  nlohmann::json workloads = nlohmann::json::array();
  for (const WorkloadResult &r : results) {
    nlohmann::json classes, templates, instances;
    for (size_t c = 0; c < kKernelClassCount; ++c)
      classes[kernelClassName(static_cast<KernelClass>(c))] = r.kernels.classMs[c];
    for (const auto &[name, timeAndLaunches] : r.kernels.templates)
      templates[name] = {{"ms", timeAndLaunches.first},
                         {"launches", timeAndLaunches.second}};
    for (const auto &[name, timeAndLaunches] : r.kernels.instances)
      instances[name] = {{"ms", timeAndLaunches.first},
                         {"launches", timeAndLaunches.second}};
    workloads.push_back(
        {{"label", r.label},
         {"workload", r.workload.name()},
         {"entry_point", r.workload.entryPoint()},
         {"sequences", r.workload.sequences},
         {"new_tokens", r.workload.newTokens},
         {"context", r.workload.context},
         {"warmup", r.warmup},
         {"step_ms", r.stepMs},
         {"median_ms", r.medianMs()},
         {"floor_ms", r.floor.seconds() * 1e3},
         {"floor_memory_ms", r.floor.memorySeconds * 1e3},
         {"floor_compute_ms", r.floor.computeSeconds * 1e3},
         {"ratio", r.ratio()},
         {"bytes", r.cost.bytes()},
         {"weight_bytes", r.cost.weightBytes},
         {"kv_cache_bytes", r.cost.kvCacheBytes},
         {"flops", r.cost.flops()},
         {"fp8_flops", r.cost.fp8Flops},
         {"attention_flops", r.cost.attentionFlops},
         {"distinct_experts", r.cost.distinctExperts},
         {"logits", r.logits},
         {"non_finite_logits", r.nonFiniteLogits},
         {"profiled_steps", r.kernels.steps},
         {"kernel_ms_by_class", classes},
         {"kernel_ms_by_template", templates},
         {"kernel_ms_by_instance", instances}});
  }
  run["workloads"] = workloads;
  return run.dump(2) + "\n";
}

} // namespace dsv3::bench
