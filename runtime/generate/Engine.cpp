//===- Engine.cpp - a plan and a checkpoint, ready to generate ------------===//

#include "runtime/generate/Engine.h"

namespace dsv3::generate {

StatusOr<std::unique_ptr<Engine>> Engine::open(const std::string &planPath,
                                               const std::string &checkpointDir) {
  DSV3_ASSIGN_OR_RETURN(plan::PlanFile planFile, plan::PlanFile::open(planPath));
  DSV3_RETURN_IF_ERROR(exec::checkSamplerKernel(planFile.plan())
                           .withPrefix(planPath + ": "));
  DSV3_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::open(checkpointDir));
  DSV3_RETURN_IF_ERROR(exec::checkWeightSources(planFile.plan(), checkpoint));
  return std::unique_ptr<Engine>(
      new Engine(std::move(planFile), std::move(checkpoint)));
}

Status Engine::start(const EngineStartOptions &options) {
  const plan::Plan &plan = this->plan();
  DSV3_ASSIGN_OR_RETURN(device_, exec::Device::open(options.device));
  DSV3_ASSIGN_OR_RETURN(plan::DeviceInfo info, device_->queryInfo());
  plan::MemoryNeeds needs =
      plan::memoryNeeds(plan, exec::kvCacheBytes(plan, options.kvPages),
                        options.maxPagesPerSequence);
  // The sampler's count buffer is the executor's: count it with the inputs.
  const uint64_t countBytes =
      hasSampler() ? exec::samplerCountBytes(plan, options.samplerCountRows) : 0;
  needs.stepInputs += countBytes;
  DSV3_RETURN_IF_ERROR(plan::checkDevice(plan, info, needs)
                           .withPrefix(fmt::format("GPU {} ({}): ",
                                                   options.device, info.name)));
  deviceSummary_ = fmt::format(
      "{}, compute {}.{}, {} SMs; plan {} needs {:.2f} GB (KV cache {} pages, "
      "{:.2f} GB; sampler counts {:.2f} GB) of {:.2f} GB free",
      info.name, info.compute_major, info.compute_minor, info.sm_count,
      plan.target()->arch()->str(), needs.total() / 1e9, options.kvPages,
      needs.kvCache / 1e9, countBytes / 1e9, info.free_bytes / 1e9);

  DSV3_ASSIGN_OR_RETURN(
      weights_, exec::loadWeights(*device_, plan, checkpoint_,
                                  exec::WeightLoadOptions{}));
  DSV3_ASSIGN_OR_RETURN(cache_,
                        exec::KvCache::create(*device_, plan, options.kvPages));
  exec::ExecutorOptions executorOptions;
  executorOptions.maxPagesPerSequence = options.maxPagesPerSequence;
  executorOptions.synchronizeEachLaunch = options.synchronizeEachLaunch;
  if (!options.cudaGraphs)
    executorOptions.cudaGraphMaxTokens = 0;
  executorOptions.dependentLaunches = options.dependentLaunches;
  executorOptions.samplerCountRows = hasSampler() ? options.samplerCountRows : 0;
  DSV3_ASSIGN_OR_RETURN(executor_,
                        exec::Executor::create(*device_, plan, *weights_, *cache_,
                                               executorOptions));
  steps_ = std::make_unique<ExecutorSteps>(*executor_, hasSampler());
  return Status::success();
}

Status Engine::makeCurrentOnThisThread() const {
  if (!device_)
    return Status::error("the engine is not started: no GPU to make current");
  return device_->makeCurrent();
}

} // namespace dsv3::generate
