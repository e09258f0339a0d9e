//===- BenchOptions.h - dsv3-bench's command line ------------------*- C++ -*-===//

#ifndef DSV3_TOOLS_BENCH_BENCHOPTIONS_H
#define DSV3_TOOLS_BENCH_BENCHOPTIONS_H

#include "tools/dsv3-bench/StepCost.h"

#include <string>
#include <vector>

namespace dsv3::bench {

struct BenchOptions {
  std::string planPath;
  std::vector<Workload> workloads;
  std::string label;          ///< default: the plan file's name without .plan
  int warmup = 2;             ///< untimed steps before the timed ones
  int minSteps = 3;           ///< timed steps at least ...
  int maxSteps = 50;          ///< ... and at most,
  double secondsPerWorkload = 10; ///< stopping once past this much step time
  int profileSteps = 1;       ///< steps of the per-launch profiling pass
  uint64_t seed = 0;
  int device = 0;
  std::string jsonPath;       ///< also write the results as JSON here
  uint64_t copyBytes = 1ull << 30;
  int64_t gemmSize = 8192;
  bool measureGemmPeaks = true;
  bool cudaGraphs = true;     ///< decode steps replayed as CUDA graphs
  bool dependentLaunches = true; ///< kernels overlap their predecessors' tails
  bool costOnly = false;      ///< print the floors' bytes and FLOPs, no GPU
  /// Kernels (parts of instance names) whose launches every step leaves out:
  /// the step time without them, for attribution (--omit-kernel).
  std::vector<std::string> omitKernels;
  /// Steps of the timeline pass (--timeline-steps; 0: none): a plan compiled
  /// with dsv3c --timeline records when each kernel starts, and the bench
  /// prints each kernel's share of the step as it runs (CUDA graphs and all).
  int timelineSteps = 0;
};

/// The --help text.
const char *benchUsage();

/// Parses argv; `help` is set for --help (nothing else is then checked).
Status parseBenchOptions(int argc, const char *const *argv,
                         BenchOptions &options, bool &help);

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_BENCHOPTIONS_H
