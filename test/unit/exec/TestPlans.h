//===- TestPlans.h - small plans built in the tests ----------------*- C++ -*-===//
//
// A plain description of a plan (PlanSpec) that tests edit field by field to
// break one thing at a time, and the flatbuffers builder calls that turn it
// into plan bytes. smallPlan() is a valid plan of a tiny model exercising
// every transform, argument kind (a tensor map included) and size unit;
// gemmPlan() adds a cuBLASLt Gemm step to it.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TEST_UNIT_EXEC_TESTPLANS_H
#define DSV3_TEST_UNIT_EXEC_TESTPLANS_H

#include "runtime/plan/PlanVersion.h"
#include "runtime/plan/Plan_generated.h"

#include <optional>
#include <string>
#include <vector>

namespace dsv3::testing {

using namespace dsv3::plan;

struct SourceSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

struct WeightSpec {
  WeightTransform transform;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<SourceSpec> sources;
  std::vector<int64_t> block;
};

struct ConstantSpec {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

struct KernelSpec {
  uint32_t module;
  std::string name, instance;
};

/// A TensorMap argument's TensorMapArg.
struct MapSpec {
  DType dtype = DType::BF16;
  std::vector<Size> dims;
  std::vector<uint32_t> box;
  uint32_t swizzleBytes = 0;
};

struct ArgSpec {
  ArgKind kind = ArgKind::Buffer;
  Space space = Space::Null;
  int64_t index = 0;
  SizeUnit unit = SizeUnit::Constant;
  int64_t multiplier = 0;
  bool hasSize = true;
  double value = 0;
  std::optional<MapSpec> map = std::nullopt;
};

inline ArgSpec arenaArg(int64_t offset) {
  return {ArgKind::Buffer, Space::Arena, offset};
}
inline ArgSpec weightArg(int64_t index) {
  return {ArgKind::Buffer, Space::Weight, index};
}
inline ArgSpec constantArg(int64_t index) {
  return {ArgKind::Buffer, Space::Constant, index};
}
inline ArgSpec inputArg(StepInput input) {
  return {ArgKind::Buffer, Space::Input, static_cast<int64_t>(input)};
}
inline ArgSpec kvCacheArg(int64_t layer) {
  return {ArgKind::Buffer, Space::KvCache, layer};
}
inline ArgSpec nullArg() { return {ArgKind::Buffer, Space::Null, 0}; }
inline ArgSpec intArg(SizeUnit unit, int64_t multiplier) {
  ArgSpec arg;
  arg.kind = ArgKind::Int;
  arg.unit = unit;
  arg.multiplier = multiplier;
  return arg;
}
inline ArgSpec floatArg(double value) {
  ArgSpec arg;
  arg.kind = ArgKind::Float;
  arg.value = value;
  return arg;
}
/// A tensor map over the buffer `buffer` points at.
inline ArgSpec tensorMapArg(ArgSpec buffer, MapSpec map) {
  buffer.kind = ArgKind::TensorMap;
  buffer.map = std::move(map);
  return buffer;
}
inline Size constantSize(int64_t value) {
  return Size(SizeUnit::Constant, value);
}

struct LaunchSpec {
  std::string op;
  uint32_t kernel;
  std::vector<LaunchDim> grid;
  std::vector<int32_t> block;
  uint32_t sharedBytes = 0;
  std::vector<ArgSpec> args;
  std::optional<SizeRange> when = std::nullopt;
  std::optional<SizeRange> alsoWhen = std::nullopt;
};

/// A Gemm step (plan.fbs): c[M, n] = a[M, k] · b[n, k]ᵀ. An absent operand
/// (nullopt) is written as a missing field.
struct GemmSpec {
  std::string op;
  std::optional<ArgSpec> a, aScales, b, bScales, c;
  Size rows = Size(SizeUnit::Tokens, 1);
  bool hasRows = true;
  uint32_t rowAlignment = 16;
  int64_t n = 0, k = 0;
  DType cDtype = DType::F32;
  std::optional<SizeRange> when = std::nullopt;
  std::optional<SizeRange> alsoWhen = std::nullopt;
};

struct OutputSpec {
  uint64_t offset;
  DType dtype;
  Size rows;
  int64_t rowElements;
};

struct EntrySpec {
  std::string name;
  uint64_t arenaBytes;
  std::vector<StepInput> inputs;
  std::vector<OutputSpec> outputs;
  std::vector<LaunchSpec> launches;
  /// Overrides the step type of every launch (to write Step::NONE).
  bool writeNoneSteps = false;
  /// Steps after the launches: step launches.size() + g is gemms[g].
  std::vector<GemmSpec> gemms = {};
};

struct PlanSpec {
  uint32_t schemaVersion = kSchemaVersion;
  std::string identifier = "DSV3";
  bool hasTarget = true, hasLimits = true, hasModel = true;
  std::string arch = "sm_90a";
  int computeMajor = 9, computeMinor = 0;
  int64_t maxTokens = 64, maxSequences = 4;
  int32_t pageSize = 16;
  int64_t vocab = 32, hidden = 16;
  int32_t layers = 2, mtpLayers = 1, cacheRow = 24, topK = 2;
  std::vector<WeightSpec> weights;
  std::vector<ConstantSpec> constants;
  std::vector<size_t> moduleSizes;
  std::vector<KernelSpec> kernels;
  std::vector<EntrySpec> entries;
  int32_t sampler = -1;
};

inline LaunchDim dim(SizeUnit unit, int64_t multiplier, int64_t divisor = 1,
                     int64_t offset = 0) {
  return LaunchDim(unit, multiplier, divisor, offset);
}
inline LaunchDim one() { return dim(SizeUnit::Constant, 1); }

/// A valid plan of a tiny two-layer model with one MTP layer.
inline PlanSpec smallPlan() {
  PlanSpec spec;
  spec.weights = {
      {WeightTransform::Copy, DType::BF16, {32, 16},
       {{"model.embed_tokens.weight", DType::BF16, {32, 16}}}, {}},
      // 40 x 20 in blocks of 32 x 8: partial blocks in both directions.
      {WeightTransform::DequantizeBf16, DType::BF16, {40, 20},
       {{"model.layers.0.self_attn.kv_b_proj.weight", DType::F8_E4M3, {40, 20}},
        {"model.layers.0.self_attn.kv_b_proj.weight_scale_inv", DType::F32, {2, 3}}},
       {32, 8}},
      {WeightTransform::Stack, DType::F8_E4M3, {2, 8, 16},
       {{"model.layers.1.mlp.experts.0.up_proj.weight", DType::F8_E4M3, {8, 16}},
        {"model.layers.1.mlp.experts.1.up_proj.weight", DType::F8_E4M3, {8, 16}}},
       {}},
  };
  spec.constants = {{DType::F32, {4}, std::vector<uint8_t>(16, 0x3F)}};
  spec.moduleSizes = {64};
  spec.kernels = {
      {0, "_Z5embedILi16EEvPKiPK13__nv_bfloat16PS2_i", "dsv3k::embed<16>"},
      {0, "_Z8rms_normILi16EEvPK13__nv_bfloat16iS2_PS0_iif", "dsv3k::rms_norm<16>"},
      {0, "_Z13sample_tokensILi32EEvPKfiPiifyy", "dsv3k::sample_tokens<32>"},
  };
  spec.sampler = 2;
  const std::vector<StepInput> inputs = {StepInput::Tokens, StepInput::Positions,
                                         StepInput::TokenSeq, StepInput::BlockTable,
                                         StepInput::LastRows};
  const std::vector<LaunchSpec> launches = {
      {"embed", 0, {dim(SizeUnit::Tokens, 1), one(), one()}, {128, 1, 1}, 0,
       {inputArg(StepInput::Tokens), weightArg(0), arenaArg(0),
        intArg(SizeUnit::Tokens, 1)}},
      {"rms_norm", 1, {dim(SizeUnit::Tokens, 1, 64), dim(SizeUnit::Constant, 4), one()},
       {256, 1, 1}, 0,
       {arenaArg(0), intArg(SizeUnit::Constant, 16), weightArg(1), arenaArg(4096),
        intArg(SizeUnit::Tokens, 8), floatArg(1e-6),
        // The stacked experts [E=2, N=8, K=16] seen through TMA.
        tensorMapArg(weightArg(2), {DType::F8_E4M3,
                                    {constantSize(16), constantSize(8),
                                     constantSize(2)},
                                    {16, 8, 1},
                                    32})}},
      {"kv_write", 1, {dim(SizeUnit::Sequences, 3, 2, 1), one(), one()}, {128, 2, 1},
       1024,
       {kvCacheArg(2), nullArg(), inputArg(StepInput::BlockTable),
        intArg(SizeUnit::PagesPerSequence, 1), constantArg(0), floatArg(0.5)}},
  };
  spec.entries = {
      {"prefill", 65536, inputs,
       {{32768, DType::F32, Size(SizeUnit::Sequences, 1), 32}}, launches},
      {"decode", 32768, inputs,
       {{16384, DType::F32, Size(SizeUnit::Sequences, 1), 32}}, {launches[0]}},
  };
  return spec;
}

/// smallPlan() with a Gemm step after prefill's launches (step 3):
/// fp8_gemm, n 256, k 512 (4 blocks of 128), F32 out, rows T aligned to 16,
/// b = weight#3 (F8_E4M3 [256, 512]) and b_scales = weight#4 (F32 [2, 4]),
/// a, a_scales and c in a prefill arena of 256 KiB: at the limits (T = 64)
/// a is 32768 bytes at arena+0, a_scales 1024 at arena+32768, c 65536 at
/// arena+65536.
inline PlanSpec gemmPlan() {
  PlanSpec spec = smallPlan();
  spec.weights.push_back(
      {WeightTransform::Copy, DType::F8_E4M3, {256, 512},
       {{"model.layers.0.mlp.down_proj.weight", DType::F8_E4M3, {256, 512}}},
       {}});
  spec.weights.push_back(
      {WeightTransform::Copy, DType::F32, {2, 4},
       {{"model.layers.0.mlp.down_proj.weight_scale_inv", DType::F32, {2, 4}}},
       {}});
  EntrySpec &prefill = spec.entries[0];
  prefill.arenaBytes = 262144;
  GemmSpec gemm;
  gemm.op = "fp8_gemm";
  gemm.a = arenaArg(0);
  gemm.aScales = arenaArg(32768);
  gemm.b = weightArg(3);
  gemm.bScales = weightArg(4);
  gemm.c = arenaArg(65536);
  gemm.n = 256;
  gemm.k = 512;
  prefill.gemms.push_back(gemm);
  return spec;
}

inline flatbuffers::Offset<Arg> buildArg(flatbuffers::FlatBufferBuilder &b,
                                         const ArgSpec &arg) {
  Size size(arg.unit, arg.multiplier);
  flatbuffers::Offset<TensorMapArg> map;
  if (arg.map)
    map = CreateTensorMapArgDirect(b, arg.map->dtype, &arg.map->dims,
                                   &arg.map->box, arg.map->swizzleBytes);
  return CreateArg(b, arg.kind, arg.space, arg.index,
                   arg.hasSize ? &size : nullptr, arg.value, map);
}

/// The plan bytes of `spec`.
inline std::vector<uint8_t> buildPlan(const PlanSpec &spec) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<Weight>> weights;
  for (const WeightSpec &weight : spec.weights) {
    std::vector<flatbuffers::Offset<CheckpointTensor>> sources;
    for (const SourceSpec &source : weight.sources)
      sources.push_back(CreateCheckpointTensorDirect(b, source.name.c_str(),
                                                     source.dtype, &source.shape));
    weights.push_back(CreateWeightDirect(b, &sources, weight.transform,
                                         weight.dtype, &weight.shape,
                                         weight.block.empty() ? nullptr
                                                              : &weight.block));
  }
  std::vector<flatbuffers::Offset<Constant>> constants;
  for (const ConstantSpec &constant : spec.constants)
    constants.push_back(CreateConstantDirect(b, constant.dtype, &constant.shape,
                                             &constant.data));
  std::vector<flatbuffers::Offset<Module>> modules;
  for (size_t size : spec.moduleSizes) {
    std::vector<uint8_t> cubin(size);
    for (size_t i = 0; i < size; ++i)
      cubin[i] = static_cast<uint8_t>(i * 7 + 1);
    modules.push_back(CreateModuleDirect(b, &cubin));
  }
  std::vector<flatbuffers::Offset<Kernel>> kernels;
  for (const KernelSpec &kernel : spec.kernels)
    kernels.push_back(CreateKernelDirect(b, kernel.module, kernel.name.c_str(),
                                         kernel.instance.c_str()));
  std::vector<flatbuffers::Offset<EntryPoint>> entries;
  for (const EntrySpec &entry : spec.entries) {
    std::vector<flatbuffers::Offset<Output>> outputs;
    for (const OutputSpec &output : entry.outputs)
      outputs.push_back(CreateOutput(b, output.offset, output.dtype, &output.rows,
                                     output.rowElements));
    std::vector<Step> types;
    std::vector<flatbuffers::Offset<void>> steps;
    for (const LaunchSpec &launch : entry.launches) {
      std::vector<flatbuffers::Offset<Arg>> args;
      for (const ArgSpec &arg : launch.args)
        args.push_back(buildArg(b, arg));
      steps.push_back(CreateLaunchDirect(b, launch.kernel, &launch.grid,
                                         &launch.block, launch.sharedBytes,
                                         &args, launch.op.c_str(),
                                         launch.when ? &*launch.when : nullptr,
                                         launch.alsoWhen ? &*launch.alsoWhen : nullptr)
                          .Union());
      types.push_back(entry.writeNoneSteps ? Step::NONE : Step::Launch);
    }
    for (const GemmSpec &gemm : entry.gemms) {
      auto arg = [&](const std::optional<ArgSpec> &spec) {
        return spec ? buildArg(b, *spec) : flatbuffers::Offset<Arg>();
      };
      steps.push_back(CreateGemmDirect(
                          b, arg(gemm.a), arg(gemm.aScales), arg(gemm.b),
                          arg(gemm.bScales), arg(gemm.c),
                          gemm.hasRows ? &gemm.rows : nullptr, gemm.rowAlignment,
                          gemm.n, gemm.k, gemm.cDtype, gemm.op.c_str(),
                          gemm.when ? &*gemm.when : nullptr,
                          gemm.alsoWhen ? &*gemm.alsoWhen : nullptr)
                          .Union());
      types.push_back(Step::Gemm);
    }
    entries.push_back(CreateEntryPointDirect(b, entry.name.c_str(),
                                             entry.arenaBytes, &entry.inputs,
                                             &outputs, &types, &steps));
  }
  auto target = spec.hasTarget
                    ? CreateTargetDirect(b, spec.arch.c_str(), spec.computeMajor,
                                         spec.computeMinor)
                    : 0;
  auto limits = spec.hasLimits ? CreateLimits(b, spec.maxTokens,
                                              spec.maxSequences, spec.pageSize)
                               : 0;
  auto model = spec.hasModel
                   ? CreateModel(b, spec.vocab, spec.hidden, spec.layers,
                                 spec.mtpLayers, spec.cacheRow, spec.topK)
                   : 0;
  auto plan = CreatePlanDirect(b, spec.schemaVersion, target, limits, model,
                               &weights, &constants, &modules, &kernels,
                               &entries, spec.sampler);
  b.Finish(plan, spec.identifier.c_str());
  return std::vector<uint8_t>(b.GetBufferPointer(),
                              b.GetBufferPointer() + b.GetSize());
}

} // namespace dsv3::testing

#endif // DSV3_TEST_UNIT_EXEC_TESTPLANS_H
