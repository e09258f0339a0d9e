//===- Engine.h - a plan and a checkpoint, ready to generate ---*- C++ -*-===//
//
// Everything a generation needs, opened in the order that fails early:
//   open():  the plan (verified), its sampler kernel's signature, and every
//            checkpoint tensor it reads (present, dtype, shape) — no GPU;
//   start(): the GPU checked against the plan (architecture, free memory for
//            weights, arena, inputs, KV cache and sampler counts), then the
//            weights uploaded, the KV cache and the executor created.
// Between the two the caller sizes the KV cache from its prompts.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_GENERATE_ENGINE_H
#define DSV3_RUNTIME_GENERATE_ENGINE_H

#include "runtime/Checkpoint.h"
#include "runtime/exec/Device.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/KvCache.h"
#include "runtime/exec/WeightLoader.h"
#include "runtime/generate/Generator.h"
#include "runtime/plan/PlanFile.h"

#include <memory>
#include <optional>
#include <string>

namespace dsv3::generate {

struct EngineStartOptions {
  int device = 0;                  ///< CUDA's numbering
  int64_t kvPages = 1;             ///< pages of the plan's page size
  int64_t maxPagesPerSequence = 1; ///< the widest block table a step uploads
  int64_t samplerCountRows = 0;    ///< sequences that may sample with penalties
  bool synchronizeEachLaunch = false;
  bool cudaGraphs = true; ///< decode steps captured and replayed as CUDA graphs
  bool dependentLaunches = true; ///< kernels overlap their predecessors' tails
};

class Engine {
public:
  static StatusOr<std::unique_ptr<Engine>> open(const std::string &planPath,
                                                const std::string &checkpointDir);

  /// Checks the GPU, then loads weights and creates the KV cache and the
  /// executor.
  Status start(const EngineStartOptions &options);
  /// After start(): one line naming the GPU and the memory the plan needs.
  const std::string &deviceSummary() const { return deviceSummary_; }

  /// After start(), on a thread other than the one that called it, before
  /// that thread runs steps: makes the GPU's context current there.
  Status makeCurrentOnThisThread() const;

  const plan::Plan &plan() const { return planFile_.plan(); }
  ModelLimits limits() const { return ModelLimits::of(plan()); }
  bool hasSampler() const { return plan().sampler() >= 0; }

  // After start():
  exec::Executor &executor() { return *executor_; }
  exec::PageAllocator &pages() { return cache_->pages(); }
  ModelSteps &steps() { return *steps_; }

private:
  Engine(plan::PlanFile planFile, Checkpoint checkpoint)
      : planFile_(std::move(planFile)), checkpoint_(std::move(checkpoint)) {}

  plan::PlanFile planFile_;
  Checkpoint checkpoint_;
  std::unique_ptr<exec::Device> device_;
  std::optional<exec::DeviceWeights> weights_;
  std::optional<exec::KvCache> cache_;
  std::unique_ptr<exec::Executor> executor_;
  std::unique_ptr<ExecutorSteps> steps_;
  std::string deviceSummary_;
};

} // namespace dsv3::generate

#endif // DSV3_RUNTIME_GENERATE_ENGINE_H
