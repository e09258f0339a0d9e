//===- StepGraphs.h - steps captured once, replayed as CUDA graphs -*- C++ -*-===//
//
// A decode step is a hundred or more short kernels; queuing each with
// cuLaunchKernel costs the host a few microseconds, which at batch 1 is a
// large part of the step. Everything a step queues depends only on its entry
// point and its sizes (T, B, P): kernel arguments are device addresses fixed
// when the executor prepared the plan, or ints resolved from the sizes, and
// the step's inputs are read from device buffers at fixed addresses. So the
// executor captures a step's work once per (entry point, T, B, P) into a
// graph and replays it with one cuGraphLaunch afterwards.
//
// The cache holds at most `capacity` instantiated graphs and drops the one
// used longest ago when full. A capture that fails (a launch refused while
// capturing) leaves nothing behind and returns the launch's error.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_STEPGRAPHS_H
#define DSV3_RUNTIME_EXEC_STEPGRAPHS_H

#include "runtime/Status.h"
#include "runtime/exec/Device.h"
#include "runtime/exec/LaunchStep.h"

#include <cstdint>
#include <functional>
#include <map>
#include <tuple>

namespace dsv3::exec {

/// What a captured step depends on.
struct StepGraphKey {
  /// The plan's entry point (the plan outlives the cache): a pointer, so
  /// that a replayed step builds no string.
  const plan::EntryPoint *entryPoint = nullptr;
  StepSizes sizes;

  bool operator<(const StepGraphKey &other) const {
    return std::tie(entryPoint, sizes.tokens, sizes.sequences,
                    sizes.pagesPerSequence, sizes.resumedRuns) <
           std::tie(other.entryPoint, other.sizes.tokens, other.sizes.sequences,
                    other.sizes.pagesPerSequence, other.sizes.resumedRuns);
  }
};

class StepGraphCache {
public:
  StepGraphCache(const Device &device, size_t capacity)
      : device_(device), capacity_(capacity) {}
  ~StepGraphCache();
  StepGraphCache(const StepGraphCache &) = delete;
  StepGraphCache &operator=(const StepGraphCache &) = delete;

  /// Queues the graph of `key` on the device's stream, capturing it first
  /// from what `queueStep` queues there if the cache does not hold it.
  /// `queueStep` must queue on the device's stream only and must not wait
  /// for the GPU. `beforeCapture` (when set) runs just before a capture,
  /// outside it: for host work the step needs once per size that should
  /// not happen while the stream captures (cuBLASLt's heuristic).
  Status launch(const StepGraphKey &key,
                const std::function<Status()> &queueStep,
                const std::function<Status()> &beforeCapture = nullptr);

  size_t size() const { return graphs_.size(); }
  /// Graphs captured so far (a replay of a held graph is not one).
  int64_t captures() const { return captures_; }

private:
  struct CachedGraph {
    CUgraphExec exec = nullptr;
    uint64_t lastUse = 0;
  };
  StatusOr<CUgraphExec> capture(const std::function<Status()> &queueStep);
  void evictLeastRecentlyUsed();
  void destroy(CUgraphExec exec) const;

  const Device &device_;
  size_t capacity_;
  std::map<StepGraphKey, CachedGraph> graphs_;
  uint64_t useClock_ = 0;
  int64_t captures_ = 0;
};

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_STEPGRAPHS_H
