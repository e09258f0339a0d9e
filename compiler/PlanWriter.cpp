//===- PlanWriter.cpp - a CudaProgram and its cubin as a plan file --------===//

#include "compiler/PlanWriter.h"

#include "runtime/plan/PlanVersion.h"
#include "runtime/plan/Plan_generated.h"

#include "llvm/ADT/StringSwitch.h"

namespace dsv3 {

namespace fb = flatbuffers;
namespace pl = dsv3::plan;

static pl::DType planDtype(const std::string &name) {
  return llvm::StringSwitch<pl::DType>(name)
      .Case("BF16", pl::DType::BF16)
      .Case("F16", pl::DType::F16)
      .Case("F32", pl::DType::F32)
      .Case("F8_E4M3", pl::DType::F8_E4M3)
      .Default(pl::DType::I32);
}

static pl::SizeUnit planUnit(SizeUnit unit) {
  switch (unit) {
  case SizeUnit::Constant:
    return pl::SizeUnit::Constant;
  case SizeUnit::Tokens:
    return pl::SizeUnit::Tokens;
  case SizeUnit::Sequences:
    return pl::SizeUnit::Sequences;
  case SizeUnit::PagesPerSequence:
    return pl::SizeUnit::PagesPerSequence;
  case SizeUnit::ResumedRuns:
    return pl::SizeUnit::ResumedRuns;
  }
  return pl::SizeUnit::Constant;
}

static pl::Size planSize(SizeExpr size) {
  return pl::Size(planUnit(size.unit), size.multiplier);
}

static fb::Offset<pl::Arg> writeArg(fb::FlatBufferBuilder &b, const KernelArg &arg) {
  pl::Size size = planSize(arg.size);
  switch (arg.kind) {
  case KernelArg::Int:
    return pl::CreateArg(b, pl::ArgKind::Int, pl::Space::Null, 0, &size);
  case KernelArg::Float:
    return pl::CreateArg(b, pl::ArgKind::Float, pl::Space::Null, 0, nullptr, arg.value);
  default:
    break;
  }
  pl::Space space = pl::Space::Null;
  switch (arg.kind) {
  case KernelArg::Arena:
    space = pl::Space::Arena;
    break;
  case KernelArg::Weight:
    space = pl::Space::Weight;
    break;
  case KernelArg::Constant:
    space = pl::Space::Constant;
    break;
  case KernelArg::Input:
    space = pl::Space::Input;
    break;
  case KernelArg::KvCache:
    space = pl::Space::KvCache;
    break;
  default:
    break;
  }
  if (!arg.tensorMap)
    return pl::CreateArg(b, pl::ArgKind::Buffer, space, arg.index);
  const TensorMapSpec &map = *arg.tensorMap;
  std::vector<pl::Size> dims;
  for (const SizeExpr &dim : map.dims)
    dims.push_back(planSize(dim));
  std::vector<uint32_t> box(map.box.begin(), map.box.end());
  auto tensorMap = pl::CreateTensorMapArgDirect(b, planDtype(map.dtype), &dims, &box,
                                                map.swizzleBytes);
  return pl::CreateArg(b, pl::ArgKind::TensorMap, space, arg.index, nullptr, 0, tensorMap);
}

std::vector<uint8_t> buildPlan(const CudaProgram &program,
                               const CompiledCudaModule &module,
                               const CudaArch &arch, const ModelConfig &config,
                               const PlanLimits &limits) {
  fb::FlatBufferBuilder b(1 << 20);

  std::vector<fb::Offset<pl::Weight>> weights;
  for (const DeviceWeight &weight : program.weights) {
    std::vector<fb::Offset<pl::CheckpointTensor>> sources;
    for (const CheckpointSource &source : weight.sources)
      sources.push_back(pl::CreateCheckpointTensorDirect(
          b, source.name.c_str(), planDtype(source.dtype), &source.shape));
    pl::WeightTransform transform =
        weight.transform == WeightTransformKind::Stack ? pl::WeightTransform::Stack
        : weight.transform == WeightTransformKind::DequantizeBf16
            ? pl::WeightTransform::DequantizeBf16
            : pl::WeightTransform::Copy;
    weights.push_back(pl::CreateWeightDirect(b, &sources, transform,
                                             planDtype(weight.dtype), &weight.shape,
                                             &weight.block));
  }

  std::vector<fb::Offset<pl::Constant>> constants;
  for (const DeviceConstant &constant : program.constants)
    constants.push_back(pl::CreateConstantDirect(b, planDtype(constant.dtype),
                                                 &constant.shape, &constant.data));

  std::vector<uint8_t> cubin(module.cubin.begin(), module.cubin.end());
  std::vector<fb::Offset<pl::Module>> modules = {pl::CreateModuleDirect(b, &cubin)};

  std::vector<fb::Offset<pl::Kernel>> kernels;
  for (size_t i = 0; i < program.instances.size(); ++i)
    kernels.push_back(pl::CreateKernelDirect(b, 0, module.loweredNames[i].c_str(),
                                             program.instances[i].c_str()));

  std::vector<fb::Offset<pl::EntryPoint>> entries;
  for (const EntryProgram &entry : program.entries) {
    std::vector<pl::StepInput> inputs;
    for (StepInputRole role : entry.inputs)
      inputs.push_back(static_cast<pl::StepInput>(role));
    std::vector<fb::Offset<pl::Output>> outputs;
    for (const EntryOutput &output : entry.outputs) {
      pl::Size rows = planSize(output.rows);
      outputs.push_back(pl::CreateOutput(b, output.offset, planDtype(output.dtype), &rows,
                                         output.rowElements));
    }
    std::vector<pl::Step> stepTypes;
    std::vector<fb::Offset<void>> steps;
    for (const KernelLaunch &launch : entry.launches) {
      auto range = [](const KernelLaunch::Condition &condition) {
        return pl::SizeRange(planUnit(condition.size.unit), condition.size.multiplier,
                             condition.min, condition.max);
      };
      pl::SizeRange when = range(launch.when), alsoWhen = range(launch.alsoWhen);
      if (const std::optional<LibraryGemm> &gemm = launch.library) {
        pl::Size rows = planSize(gemm->rows);
        auto a = writeArg(b, gemm->a), aScales = writeArg(b, gemm->aScales);
        auto bArg = writeArg(b, gemm->b), bScales = writeArg(b, gemm->bScales);
        auto c = writeArg(b, gemm->c);
        stepTypes.push_back(pl::Step::Gemm);
        steps.push_back(pl::CreateGemmDirect(
                            b, a, aScales, bArg, bScales, c, &rows,
                            static_cast<uint32_t>(gemm->rowGroup), gemm->n, gemm->k,
                            planDtype(gemm->cDtype), launch.op.c_str(),
                            launch.when.present() ? &when : nullptr,
                            launch.alsoWhen.present() ? &alsoWhen : nullptr)
                            .Union());
        continue;
      }
      std::vector<pl::LaunchDim> grid;
      for (const LaunchDimExpr &d : launch.grid)
        grid.emplace_back(planUnit(d.unit), d.multiplier, d.divisor, d.offset);
      std::vector<int32_t> block(launch.block, launch.block + 3);
      std::vector<fb::Offset<pl::Arg>> args;
      for (const KernelArg &arg : launch.args)
        args.push_back(writeArg(b, arg));
      stepTypes.push_back(pl::Step::Launch);
      steps.push_back(pl::CreateLaunchDirect(
                          b, launch.kernel, &grid, &block, launch.sharedBytes, &args,
                          launch.op.c_str(), launch.when.present() ? &when : nullptr,
                          launch.alsoWhen.present() ? &alsoWhen : nullptr)
                          .Union());
    }
    entries.push_back(pl::CreateEntryPointDirect(b, entry.name.c_str(), entry.arenaBytes,
                                                 &inputs, &outputs, &stepTypes, &steps));
  }

  auto target = pl::CreateTargetDirect(b, arch.name.str().c_str(), arch.computeMajor,
                                       arch.computeMinor, arch.dependentLaunches);
  auto planLimits = pl::CreateLimits(b, limits.maxTokens, limits.maxSequences,
                                     static_cast<int32_t>(limits.pageSize));
  int topK = config.nRoutedExperts > 0 ? static_cast<int>(config.numExpertsPerTok) : 0;
  auto model = pl::CreateModel(
      b, config.vocabSize, config.hiddenSize, static_cast<int32_t>(config.numHiddenLayers),
      static_cast<int32_t>(config.numNextnPredictLayers),
      static_cast<int32_t>(config.kvLoraRank + config.qkRopeHeadDim), topK);
  auto plan = pl::CreatePlanDirect(b, pl::kSchemaVersion, target, planLimits, model,
                                   &weights, &constants, &modules, &kernels, &entries,
                                   program.sampler);
  pl::FinishPlanBuffer(b, plan);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

} // namespace dsv3
