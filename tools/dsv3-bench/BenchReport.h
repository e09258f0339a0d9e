//===- BenchReport.h - dsv3-bench's results as a table and as JSON -*- C++ -*-===//
//
// One WorkloadResult per workload: its timed steps, its floor and the
// profiling pass's kernel times. formatTable prints what a person reads
// (the ceilings first, then one row per workload, then one detail line per
// workload); formatJson the same numbers for scripts.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_BENCH_BENCHREPORT_H
#define DSV3_TOOLS_BENCH_BENCHREPORT_H

#include "tools/dsv3-bench/KernelClass.h"
#include "tools/dsv3-bench/StepCost.h"

#include <string>
#include <vector>

namespace dsv3::bench {

/// The median of `values` (0 when empty).
double median(std::vector<double> values);

struct WorkloadResult {
  std::string label; ///< the run's label (e.g. W1)
  Workload workload;
  int warmup = 0;
  std::vector<double> stepMs; ///< every timed step
  StepCost cost;
  Floor floor;
  KernelTimes kernels; ///< the profiling pass (kernels.steps steps)
  int64_t logits = 0, nonFiniteLogits = 0; ///< output 0 after a warm-up step

  double medianMs() const;
  /// median / floor (0 when the floor is 0).
  double ratio() const;
  /// Kernel time of one profiled step over the median step time.
  double kernelShareOfStep() const;
};

/// What the table's header says about the run.
struct RunInfo {
  std::string device;  ///< "NVIDIA H100 80GB HBM3, compute 9.0, 132 SMs"
  std::string driver;  ///< "CUDA driver 13.0"
  std::string plan;    ///< "w1.plan: sm_90a, 4 layers, max 8192 tokens, ..."
  std::string weights; ///< how the weights were made
  std::string context; ///< how the KV-cache context was made
  std::string copySource; ///< how copy bandwidth was measured
  Ceilings ceilings;
};

/// "4.253 GB (weights 4.248, KV cache 0.005), 0.0093 TFLOP (FP8xFP8 0.0080,
/// attention 0.0001), 8.0 distinct experts per MoE layer".
std::string formatCost(const StepCost &cost);

std::string formatTable(const RunInfo &info,
                        const std::vector<WorkloadResult> &results);
std::string formatJson(const RunInfo &info,
                       const std::vector<WorkloadResult> &results);

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_BENCHREPORT_H
