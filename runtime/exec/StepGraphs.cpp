//===- StepGraphs.cpp - steps captured once, replayed as CUDA graphs ------===//

#include "runtime/exec/StepGraphs.h"

#include <cstdio>

namespace dsv3::exec {

StepGraphCache::~StepGraphCache() {
  for (auto &[key, graph] : graphs_)
    destroy(graph.exec);
}

void StepGraphCache::destroy(CUgraphExec exec) const {
  Status destroyed = device_.check(device_.api().graphExecDestroy(exec),
                                   "cuGraphExecDestroy");
  if (!destroyed.ok())
    std::fprintf(stderr, "dsv3: warning: %s\n", destroyed.message().c_str());
}

void StepGraphCache::evictLeastRecentlyUsed() {
  auto oldest = graphs_.begin();
  for (auto it = graphs_.begin(); it != graphs_.end(); ++it)
    if (it->second.lastUse < oldest->second.lastUse)
      oldest = it;
  if (oldest == graphs_.end())
    return;
  destroy(oldest->second.exec);
  graphs_.erase(oldest);
}

StatusOr<CUgraphExec>
StepGraphCache::capture(const std::function<Status()> &queueStep) {
  const DriverApi &api = device_.api();
  // Thread-local mode: other threads (an HTTP server's, say) may call the
  // driver meanwhile; only this thread's calls are restricted.
  DSV3_RETURN_IF_ERROR(device_.check(
      api.streamBeginCapture(device_.stream(),
                             CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
      "cuStreamBeginCapture"));
  Status queued = queueStep();
  CUgraph graph = nullptr;
  // The capture must end whatever happened, or the stream stays capturing.
  Status ended = device_.check(api.streamEndCapture(device_.stream(), &graph),
                               "cuStreamEndCapture");
  auto destroyGraph = [&] {
    if (graph)
      (void)api.graphDestroy(graph);
  };
  if (!queued.ok()) {
    destroyGraph();
    return queued.withPrefix("capturing a step into a CUDA graph: ");
  }
  if (!ended.ok()) {
    destroyGraph();
    return ended;
  }
  CUgraphExec exec = nullptr;
  Status instantiated = device_.check(
      api.graphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiate");
  destroyGraph(); // the executable graph does not need it
  if (!instantiated.ok())
    return instantiated;
  ++captures_;
  return exec;
}

Status StepGraphCache::launch(const StepGraphKey &key,
                              const std::function<Status()> &queueStep,
                              const std::function<Status()> &beforeCapture) {
  auto found = graphs_.find(key);
  if (found == graphs_.end()) {
    if (capacity_ == 0)
      return queueStep();
    if (beforeCapture)
      DSV3_RETURN_IF_ERROR(beforeCapture());
    if (graphs_.size() >= capacity_)
      evictLeastRecentlyUsed();
    DSV3_ASSIGN_OR_RETURN(CUgraphExec exec, capture(queueStep));
    found = graphs_.emplace(key, CachedGraph{exec, 0}).first;
  }
  found->second.lastUse = ++useClock_;
  return device_.check(device_.api().graphLaunch(found->second.exec,
                                                 device_.stream()),
                       "cuGraphLaunch");
}

} // namespace dsv3::exec
