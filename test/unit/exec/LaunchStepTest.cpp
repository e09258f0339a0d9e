//===- LaunchStepTest.cpp - arguments, sizes and grids of a launch --------===//
//
// prepareLaunch turns buffer arguments into device addresses (arena base +
// offset, weight, constant, input, KV-cache layer, null); resolveLaunch then
// evaluates the int arguments, the tensor maps and the grid for a step's T, B
// and P. No CUDA call is made: addresses are made-up numbers and tensor maps
// go to a fake cuTensorMapEncodeTiled that records what it is asked for.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include "runtime/exec/LaunchStep.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

using namespace dsv3;
using namespace dsv3::exec;
using namespace dsv3::plan;
using namespace dsv3::testing;

namespace {

/// What one call of fakeEncode was given.
struct EncodeCall {
  CUtensorMap *map = nullptr;
  CUtensorMapDataType dataType{};
  cuuint32_t rank = 0;
  void *address = nullptr;
  std::vector<cuuint64_t> dims, strides;
  std::vector<cuuint32_t> box, elementStrides;
  CUtensorMapInterleave interleave{};
  CUtensorMapSwizzle swizzle{};
  CUtensorMapL2promotion l2Promotion{};
  CUtensorMapFloatOOBfill oobFill{};
};

// A TensorMapEncoder is a plain function pointer, so the fake keeps its
// record in statics (cleared by the fixture's SetUp).
std::vector<EncodeCall> encodeCalls;
CUresult encodeResult = CUDA_SUCCESS;

/// Records its arguments and marks the map it "encodes" with the tensor's
/// address, so that a test can tell which map a parameter points at.
CUresult fakeEncode(CUtensorMap *map, CUtensorMapDataType dataType,
                    cuuint32_t rank, void *address, const cuuint64_t *dims,
                    const cuuint64_t *strides, const cuuint32_t *box,
                    const cuuint32_t *elementStrides,
                    CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                    CUtensorMapL2promotion l2Promotion,
                    CUtensorMapFloatOOBfill oobFill) {
  encodeCalls.push_back(EncodeCall{map,
                                   dataType,
                                   rank,
                                   address,
                                   {dims, dims + rank},
                                   {strides, strides + rank - 1},
                                   {box, box + rank},
                                   {elementStrides, elementStrides + rank},
                                   interleave,
                                   swizzle,
                                   l2Promotion,
                                   oobFill});
  if (encodeResult != CUDA_SUCCESS)
    return encodeResult;
  std::memset(map, 0, sizeof *map);
  map->opaque[0] = reinterpret_cast<uintptr_t>(address);
  return CUDA_SUCCESS;
}

/// For launches without tensor maps.
constexpr TensorMapEncoder kNoEncoder = nullptr;

TEST(LaunchStepTest, SizeValues) {
  StepSizes sizes{100, 3, 7};
  EXPECT_EQ(sizeValue(SizeUnit::Constant, sizes), 1);
  EXPECT_EQ(sizeValue(SizeUnit::Tokens, sizes), 100);
  EXPECT_EQ(sizeValue(SizeUnit::Sequences, sizes), 3);
  EXPECT_EQ(sizeValue(SizeUnit::PagesPerSequence, sizes), 7);
}

TEST(LaunchStepTest, IntArguments) {
  StepSizes sizes{100, 3, 7};
  EXPECT_EQ(*resolveInt(SizeUnit::Tokens, 8, sizes), 800);
  EXPECT_EQ(*resolveInt(SizeUnit::Sequences, 1, sizes), 3);
  EXPECT_EQ(*resolveInt(SizeUnit::PagesPerSequence, 1, sizes), 7);
  EXPECT_EQ(*resolveInt(SizeUnit::Constant, 576, sizes), 576);
  EXPECT_EQ(*resolveInt(SizeUnit::Constant, -1, sizes), -1);
  StatusOr<int32_t> tooBig = resolveInt(SizeUnit::Tokens, 1 << 25, sizes);
  ASSERT_FALSE(tooBig.ok());
  EXPECT_EQ(tooBig.status().message(),
            "int 33554432*T does not fit in 32 bits at T=100, B=3, P=7");
}

TEST(LaunchStepTest, GridDimensions) {
  StepSizes sizes{65, 3, 7};
  EXPECT_EQ(*resolveLaunchDim(dim(SizeUnit::Tokens, 1, 64), sizes), 2);
  EXPECT_EQ(*resolveLaunchDim(dim(SizeUnit::Tokens, 1, 65), sizes), 1);
  EXPECT_EQ(*resolveLaunchDim(dim(SizeUnit::Tokens, 2, 64), sizes), 3);
  EXPECT_EQ(*resolveLaunchDim(dim(SizeUnit::Sequences, 3, 2, 1), sizes), 6);
  EXPECT_EQ(*resolveLaunchDim(dim(SizeUnit::Constant, 4), sizes), 4);
  EXPECT_EQ(*resolveLaunchDim(dim(SizeUnit::PagesPerSequence, 1, 1, -7), sizes),
            0);
  EXPECT_FALSE(
      resolveLaunchDim(dim(SizeUnit::Tokens, INT64_MAX / 2), sizes).ok());
}

/// The small plan's prefill launches, prepared against made-up addresses.
class PreparedLaunchTest : public ::testing::Test {
protected:
  void SetUp() override {
    bytes = buildPlan(smallPlan());
    ASSERT_TRUE(verifyPlan(bytes.data(), bytes.size(), "small.plan").ok());
    addresses.arena = 0x100000000;
    addresses.weights = {0x200000000, 0x200000400, 0x200000B00};
    addresses.constants = {0x200000C00};
    addresses.kvCacheLayers = {0x300000000, 0x310000000, 0x320000000};
    addresses.inputs[static_cast<size_t>(StepInput::Tokens)] = 0x400000000;
    addresses.inputs[static_cast<size_t>(StepInput::BlockTable)] = 0x400001000;
    encodeCalls.clear();
    encodeResult = CUDA_SUCCESS;
  }
  const Launch &launch(size_t step) const {
    return *GetPlan(bytes.data())
                ->entry_points()
                ->Get(0)
                ->steps()
                ->GetAs<Launch>(step);
  }
  PreparedLaunch prepare(size_t step) const {
    StatusOr<PreparedLaunch> prepared =
        prepareLaunch(launch(step), addresses, "step " + std::to_string(step));
    EXPECT_TRUE(prepared.ok()) << prepared.status().message();
    return prepared.ok() ? *prepared : PreparedLaunch();
  }

  std::vector<uint8_t> bytes;
  BufferAddresses addresses;
};

int32_t intParam(const ResolvedLaunch &resolved, size_t index) {
  int32_t value;
  std::memcpy(&value, resolved.paramPointers[index], sizeof value);
  return value;
}
float floatParam(const ResolvedLaunch &resolved, size_t index) {
  float value;
  std::memcpy(&value, resolved.paramPointers[index], sizeof value);
  return value;
}
CUdeviceptr pointerParam(const ResolvedLaunch &resolved, size_t index) {
  CUdeviceptr value;
  std::memcpy(&value, resolved.paramPointers[index], sizeof value);
  return value;
}

TEST_F(PreparedLaunchTest, ArgumentsAndGrid) {
  PreparedLaunch norm = prepare(1);
  EXPECT_EQ(norm.kernel, 1u);
  EXPECT_EQ(norm.block, (std::array<unsigned, 3>{256, 1, 1}));
  ResolvedLaunch resolved;
  Status status =
      resolveLaunch(norm, StepSizes{130, 2, 5}, resolved, fakeEncode);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(resolved.grid, (std::array<int64_t, 3>{3, 4, 1})); // ceil(130/64)
  EXPECT_FALSE(resolved.empty);
  ASSERT_EQ(resolved.paramPointers.size(), 7u);
  // (arena+0, int 16, weight#1, arena+4096, int 8*T, float 1e-06,
  //  map(weight#2 F8_E4M3 [16, 8, 2] box [16, 8, 1] swizzle 32))
  EXPECT_EQ(pointerParam(resolved, 0), 0x100000000u);
  EXPECT_EQ(intParam(resolved, 1), 16);
  EXPECT_EQ(pointerParam(resolved, 2), 0x200000400u);
  EXPECT_EQ(pointerParam(resolved, 3), 0x100000000u + 4096);
  EXPECT_EQ(intParam(resolved, 4), 8 * 130);
  EXPECT_EQ(floatParam(resolved, 5), 1e-6f);
  for (size_t a = 0; a < 6; ++a)
    EXPECT_EQ(resolved.paramPointers[a], &resolved.params[a]);
  ASSERT_EQ(resolved.maps.size(), 1u);
  EXPECT_EQ(resolved.paramPointers[6], &resolved.maps[0]);

  // The same launch at another step size reuses the storage.
  ASSERT_TRUE(
      resolveLaunch(norm, StepSizes{1, 1, 1}, resolved, fakeEncode).ok());
  EXPECT_EQ(resolved.grid, (std::array<int64_t, 3>{1, 4, 1}));
  EXPECT_EQ(intParam(resolved, 4), 8);
}

TEST_F(PreparedLaunchTest, EveryBufferSpace) {
  PreparedLaunch embed = prepare(0);
  PreparedLaunch kvWrite = prepare(2);
  ResolvedLaunch resolved;
  ASSERT_TRUE(
      resolveLaunch(embed, StepSizes{9, 2, 3}, resolved, kNoEncoder).ok());
  EXPECT_EQ(pointerParam(resolved, 0), 0x400000000u); // input:tokens
  EXPECT_EQ(pointerParam(resolved, 1), 0x200000000u); // weight#0
  EXPECT_EQ(intParam(resolved, 3), 9);                // int T
  ASSERT_TRUE(
      resolveLaunch(kvWrite, StepSizes{9, 2, 3}, resolved, kNoEncoder).ok());
  // grid ceil(3*B/2)+1 = 4, block (128, 2, 1), 1024 bytes of shared memory
  EXPECT_EQ(resolved.grid, (std::array<int64_t, 3>{4, 1, 1}));
  EXPECT_EQ(kvWrite.sharedBytes, 1024u);
  EXPECT_EQ(pointerParam(resolved, 0), 0x320000000u); // kv_cache[2]
  EXPECT_EQ(pointerParam(resolved, 1), 0u);           // null
  EXPECT_EQ(pointerParam(resolved, 2), 0x400001000u); // input:block_table
  EXPECT_EQ(intParam(resolved, 3), 3);                // int P
  EXPECT_EQ(pointerParam(resolved, 4), 0x200000C00u); // constant#0
  EXPECT_EQ(floatParam(resolved, 5), 0.5f);
}

TEST_F(PreparedLaunchTest, MissingInputBuffer) {
  addresses.inputs[static_cast<size_t>(StepInput::Tokens)] = 0;
  StatusOr<PreparedLaunch> prepared =
      prepareLaunch(launch(0), addresses, "entry point 'prefill' step 0 (embed)");
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.status().message(),
            "entry point 'prefill' step 0 (embed): arg 0: no buffer for input "
            "'tokens'");
}

TEST_F(PreparedLaunchTest, SizeRangeSelectsTheCandidate) {
  // A GEMM's two candidates: few routed rows (8*T <= 32) and the rest.
  PreparedLaunch few = prepare(1), many = prepare(1);
  few.when = plan::SizeRange(SizeUnit::Tokens, 8, 0, 32);
  many.when = plan::SizeRange(SizeUnit::Tokens, 8, 33, std::numeric_limits<int64_t>::max());
  ResolvedLaunch resolved;
  for (int64_t tokens : {1, 4, 5, 4096}) {
    ASSERT_TRUE(
        resolveLaunch(few, StepSizes{tokens, 1, 1}, resolved, fakeEncode).ok());
    bool fewRuns = !resolved.empty;
    ASSERT_TRUE(
        resolveLaunch(many, StepSizes{tokens, 1, 1}, resolved, fakeEncode).ok());
    bool manyRuns = !resolved.empty;
    EXPECT_EQ(fewRuns, tokens <= 4) << "T=" << tokens;
    EXPECT_NE(fewRuns, manyRuns) << "exactly one candidate runs at T=" << tokens;
    // What the executor asks before it (or the bench's per-launch timing)
    // touches a launch.
    EXPECT_EQ(launchChosen(few, StepSizes{tokens, 1, 1}), fewRuns) << "T=" << tokens;
    EXPECT_EQ(launchChosen(many, StepSizes{tokens, 1, 1}), manyRuns) << "T=" << tokens;
  }
}

TEST_F(PreparedLaunchTest, BothConditionsMustHold) {
  // An absorbed-attention candidate for T <= 32 that runs only on steps
  // resuming a sequence, and the direct path that runs only on fresh ones.
  PreparedLaunch absorbed = prepare(1), direct = prepare(1);
  absorbed.when = plan::SizeRange(SizeUnit::Tokens, 1, 0, 32);
  absorbed.alsoWhen = plan::SizeRange(SizeUnit::ResumedRuns, 1, 1,
                                      std::numeric_limits<int64_t>::max());
  direct.alsoWhen = plan::SizeRange(SizeUnit::ResumedRuns, 1, 0, 0);
  ResolvedLaunch resolved;
  struct Case {
    int64_t tokens, resumed;
    bool absorbedRuns, directRuns;
  };
  for (Case c : {Case{16, 0, false, true}, Case{16, 2, true, false},
                 Case{64, 1, false, false}, Case{64, 0, false, true}}) {
    StepSizes sizes{c.tokens, 1, 1, c.resumed};
    ASSERT_TRUE(resolveLaunch(absorbed, sizes, resolved, fakeEncode).ok());
    EXPECT_EQ(!resolved.empty, c.absorbedRuns) << "T=" << c.tokens << " resumed=" << c.resumed;
    ASSERT_TRUE(resolveLaunch(direct, sizes, resolved, fakeEncode).ok());
    EXPECT_EQ(!resolved.empty, c.directRuns) << "T=" << c.tokens << " resumed=" << c.resumed;
  }
}

TEST_F(PreparedLaunchTest, OmittedLaunchNeverRuns) {
  // ExecutorOptions::omitKernels (dsv3-bench --omit-kernel): whatever the
  // step's sizes, an omitted launch is empty; the same launch otherwise runs.
  PreparedLaunch launch = prepare(1);
  ResolvedLaunch resolved;
  for (int64_t tokens : {1, 4096}) {
    launch.omitted = false;
    ASSERT_TRUE(resolveLaunch(launch, StepSizes{tokens, 1, 1}, resolved, fakeEncode).ok());
    EXPECT_FALSE(resolved.empty) << "T=" << tokens;
    EXPECT_TRUE(launchChosen(launch, StepSizes{tokens, 1, 1}));
    launch.omitted = true;
    ASSERT_TRUE(resolveLaunch(launch, StepSizes{tokens, 1, 1}, resolved, fakeEncode).ok());
    EXPECT_TRUE(resolved.empty) << "T=" << tokens;
    EXPECT_FALSE(launchChosen(launch, StepSizes{tokens, 1, 1}));
  }
}

TEST(CountResumedRunsTest, RunsThatDoNotStartAtPositionZero) {
  // Three fresh prompts back to back.
  EXPECT_EQ(countResumedRuns({0, 1, 2, 0, 1, 0}, {0, 0, 0, 1, 1, 2}), 0);
  // A decode step: every token continues its sequence, except a new one.
  EXPECT_EQ(countResumedRuns({17, 0, 5}, {0, 1, 2}), 2);
  // A chunk that continues a prompt (positions 64..66) beside a fresh one.
  EXPECT_EQ(countResumedRuns({64, 65, 66, 0, 1}, {0, 0, 0, 1, 1}), 1);
  // A gap inside one sequence's rows starts a new run that resumes.
  EXPECT_EQ(countResumedRuns({0, 1, 3, 4}, {0, 0, 0, 0}), 1);
  // Positions 0, 1 of sequence 0, then sequence 1 at 2: the sequence change
  // breaks the run even though the positions continue.
  EXPECT_EQ(countResumedRuns({0, 1, 2}, {0, 0, 1}), 1);
  // A sequence split in two stretches: the second resumes.
  EXPECT_EQ(countResumedRuns({0, 1, 0, 2}, {0, 0, 1, 0}), 1);
  EXPECT_EQ(countResumedRuns({}, {}), 0);
}

TEST_F(PreparedLaunchTest, EmptyAndOversizedGrids) {
  PreparedLaunch norm = prepare(1);
  norm.grid[0] = dim(SizeUnit::PagesPerSequence, 1, 1, -1);
  ResolvedLaunch resolved;
  ASSERT_TRUE(
      resolveLaunch(norm, StepSizes{4, 1, 1}, resolved, fakeEncode).ok());
  EXPECT_TRUE(resolved.empty); // P - 1 = 0 blocks: skipped, not an error

  norm.grid[0] = dim(SizeUnit::Tokens, 1);
  norm.grid[1] = dim(SizeUnit::Tokens, 2);
  Status status =
      resolveLaunch(norm, StepSizes{40000, 1, 1}, resolved, fakeEncode);
  EXPECT_EQ(status.message(),
            "step 1: grid.y = 2*T = 80000 exceeds CUDA's limit of 65535");

  norm.grid[1] = one();
  norm.args[4].multiplier = 1 << 20;
  status = resolveLaunch(norm, StepSizes{4096, 1, 1}, resolved, fakeEncode);
  EXPECT_EQ(status.message(), "step 1: arg 4: int 1048576*T does not fit in "
                              "32 bits at T=4096, B=1, P=1");
}

void *address(CUdeviceptr pointer) {
  return reinterpret_cast<void *>(static_cast<uintptr_t>(pointer));
}

TEST_F(PreparedLaunchTest, TensorMapOverStackedWeight) {
  // map(weight#2 F8_E4M3 [16, 8, 2] box [16, 8, 1] swizzle 32): the experts
  // [E=2, N=8, K=16], innermost first.
  PreparedLaunch norm = prepare(1);
  const PreparedArg &arg = norm.args[6];
  EXPECT_EQ(arg.kind, PreparedArg::Kind::TensorMap);
  EXPECT_EQ(arg.fixed.pointer, 0x200000B00u);
  EXPECT_EQ(arg.map.dtype, DType::F8_E4M3);
  EXPECT_EQ(arg.map.rank, 3u);
  EXPECT_EQ(arg.map.swizzleBytes, 32u);
  ResolvedLaunch resolved;
  Status status = resolveLaunch(norm, StepSizes{130, 2, 5}, resolved, fakeEncode);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(encodeCalls.size(), 1u);
  const EncodeCall &call = encodeCalls[0];
  EXPECT_EQ(call.dataType, CU_TENSOR_MAP_DATA_TYPE_UINT8); // FP8 as bytes
  EXPECT_EQ(call.rank, 3u);
  EXPECT_EQ(call.address, address(0x200000B00));
  EXPECT_EQ(call.dims, (std::vector<cuuint64_t>{16, 8, 2}));
  // Bytes between consecutive n (K) and e (K x N).
  EXPECT_EQ(call.strides, (std::vector<cuuint64_t>{16, 16 * 8}));
  EXPECT_EQ(call.box, (std::vector<cuuint32_t>{16, 8, 1}));
  EXPECT_EQ(call.elementStrides, (std::vector<cuuint32_t>{1, 1, 1}));
  EXPECT_EQ(call.swizzle, CU_TENSOR_MAP_SWIZZLE_32B);
  EXPECT_EQ(call.map, &resolved.maps[0]);
  EXPECT_EQ(resolved.paramPointers[6], &resolved.maps[0]);
}

/// The small plan with one more prefill launch (step 3): an FP8 GEMM that
/// reads its activation [T, K = 7168] and the stacked experts through tensor
/// maps (extents innermost first).
PlanSpec gemmPlan() {
  PlanSpec spec = smallPlan();
  spec.maxTokens = 512;
  spec.entries[0].arenaBytes = 8 << 20;
  spec.entries[0].launches.push_back(
      {"fp8_gemm", 1, {dim(SizeUnit::Constant, 56), dim(SizeUnit::Constant, 2), one()},
       {256, 1, 1}, 0,
       {tensorMapArg(arenaArg(1 << 20),
                     {DType::F8_E4M3,
                      {constantSize(7168), Size(SizeUnit::Tokens, 1)},
                      {128, 256},
                      128}),
        intArg(SizeUnit::Tokens, 1),
        tensorMapArg(weightArg(2), {DType::F8_E4M3,
                                    {constantSize(16), constantSize(8),
                                     constantSize(2)},
                                    {16, 8, 1},
                                    0})}});
  return spec;
}

class TensorMapLaunchTest : public PreparedLaunchTest {
protected:
  void SetUp() override {
    PreparedLaunchTest::SetUp();
    bytes = buildPlan(gemmPlan());
    Status status = verifyPlan(bytes.data(), bytes.size(), "gemm.plan");
    ASSERT_TRUE(status.ok()) << status.message();
    StatusOr<PreparedLaunch> prepared =
        prepareLaunch(launch(3), addresses, "entry point 'prefill' step 3 (fp8_gemm)");
    ASSERT_TRUE(prepared.ok()) << prepared.status().message();
    gemm = *prepared;
  }
  static constexpr CUdeviceptr kActivation = 0x100000000 + (1 << 20);
  PreparedLaunch gemm;
};

TEST_F(TensorMapLaunchTest, EncodedForTheStepsRows) {
  ResolvedLaunch resolved;
  Status status = resolveLaunch(gemm, StepSizes{300, 2, 5}, resolved, fakeEncode);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_FALSE(resolved.empty);
  ASSERT_EQ(encodeCalls.size(), 2u);
  const EncodeCall &call = encodeCalls[0];
  EXPECT_EQ(call.dataType, CU_TENSOR_MAP_DATA_TYPE_UINT8);
  EXPECT_EQ(call.rank, 2u);
  EXPECT_EQ(call.address, address(kActivation)); // arena base + offset
  EXPECT_EQ(call.dims, (std::vector<cuuint64_t>{7168, 300}));
  EXPECT_EQ(call.strides, (std::vector<cuuint64_t>{7168}));
  EXPECT_EQ(call.box, (std::vector<cuuint32_t>{128, 256}));
  EXPECT_EQ(call.elementStrides, (std::vector<cuuint32_t>{1, 1}));
  EXPECT_EQ(call.interleave, CU_TENSOR_MAP_INTERLEAVE_NONE);
  EXPECT_EQ(call.swizzle, CU_TENSOR_MAP_SWIZZLE_128B);
  EXPECT_EQ(call.l2Promotion, CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
  // Zeros past the last row: the kernels' partial tiles rely on it.
  EXPECT_EQ(call.oobFill, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  EXPECT_EQ(encodeCalls[1].address, address(0x200000B00));
  EXPECT_EQ(encodeCalls[1].swizzle, CU_TENSOR_MAP_SWIZZLE_NONE);

  // Each map parameter is the encoded map itself, 128 bytes at a multiple
  // of 64, in argument order; the int between them is an ordinary slot.
  static_assert(sizeof(CUtensorMap) == 128);
  ASSERT_EQ(resolved.paramPointers.size(), 3u);
  ASSERT_EQ(resolved.maps.size(), 2u);
  EXPECT_EQ(resolved.paramPointers[0], &resolved.maps[0]);
  EXPECT_EQ(resolved.paramPointers[2], &resolved.maps[1]);
  EXPECT_EQ(call.map, &resolved.maps[0]);
  for (size_t a : {0, 2}) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(resolved.paramPointers[a]) % 64, 0u);
  }
  EXPECT_EQ(static_cast<const CUtensorMap *>(resolved.paramPointers[0])->opaque[0],
            kActivation);
  EXPECT_EQ(static_cast<const CUtensorMap *>(resolved.paramPointers[2])->opaque[0],
            0x200000B00u);
  EXPECT_EQ(intParam(resolved, 1), 300);

  // Another step size: the maps are encoded again, in the same storage.
  ASSERT_TRUE(resolveLaunch(gemm, StepSizes{7, 1, 1}, resolved, fakeEncode).ok());
  ASSERT_EQ(encodeCalls.size(), 4u);
  EXPECT_EQ(encodeCalls[2].dims, (std::vector<cuuint64_t>{7168, 7}));
  EXPECT_EQ(encodeCalls[2].map, &resolved.maps[0]);
  EXPECT_EQ(resolved.paramPointers[0], &resolved.maps[0]);
}

TEST_F(TensorMapLaunchTest, NoRowsIsAnEmptyLaunch) {
  ResolvedLaunch resolved;
  Status status = resolveLaunch(gemm, StepSizes{0, 1, 1}, resolved, fakeEncode);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(resolved.empty);
  EXPECT_TRUE(encodeCalls.empty()); // nothing encoded for a launch that never runs
}

TEST_F(TensorMapLaunchTest, EncoderFailureNamesTheLaunchAndArg) {
  encodeResult = CUDA_ERROR_INVALID_VALUE;
  ResolvedLaunch resolved;
  Status status = resolveLaunch(gemm, StepSizes{300, 2, 5}, resolved, fakeEncode);
  EXPECT_EQ(status.message(),
            "entry point 'prefill' step 3 (fp8_gemm): arg 0: "
            "cuTensorMapEncodeTiled failed (CUresult 1) for the tensor map of "
            "F8_E4M3 [7168, 300] at 0x100100000, box [128, 256], swizzle 128");
  status = resolveLaunch(gemm, StepSizes{300, 2, 5}, resolved, kNoEncoder);
  EXPECT_EQ(status.message(),
            "entry point 'prefill' step 3 (fp8_gemm): arg 0: a tensor map, but "
            "no encoder to build it");
}

} // namespace
