//===- LaunchStepTest.cpp - arguments, sizes and grids of a launch --------===//
//
// prepareLaunch turns buffer arguments into device addresses (arena base +
// offset, weight, constant, input, KV-cache layer, null); resolveLaunch then
// evaluates the int arguments and the grid for a step's T, B and P. No CUDA
// call is made: addresses are made-up numbers.
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
  Status status = resolveLaunch(norm, StepSizes{130, 2, 5}, resolved);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(resolved.grid, (std::array<int64_t, 3>{3, 4, 1})); // ceil(130/64)
  EXPECT_FALSE(resolved.empty);
  ASSERT_EQ(resolved.paramPointers.size(), 6u);
  // (arena+0, int 16, weight#1, arena+4096, int 8*T, float 1e-06)
  EXPECT_EQ(pointerParam(resolved, 0), 0x100000000u);
  EXPECT_EQ(intParam(resolved, 1), 16);
  EXPECT_EQ(pointerParam(resolved, 2), 0x200000400u);
  EXPECT_EQ(pointerParam(resolved, 3), 0x100000000u + 4096);
  EXPECT_EQ(intParam(resolved, 4), 8 * 130);
  EXPECT_EQ(floatParam(resolved, 5), 1e-6f);
  for (size_t a = 0; a < 6; ++a)
    EXPECT_EQ(resolved.paramPointers[a], &resolved.params[a]);

  // The same launch at another step size reuses the storage.
  ASSERT_TRUE(resolveLaunch(norm, StepSizes{1, 1, 1}, resolved).ok());
  EXPECT_EQ(resolved.grid, (std::array<int64_t, 3>{1, 4, 1}));
  EXPECT_EQ(intParam(resolved, 4), 8);
}

TEST_F(PreparedLaunchTest, EveryBufferSpace) {
  PreparedLaunch embed = prepare(0);
  PreparedLaunch kvWrite = prepare(2);
  ResolvedLaunch resolved;
  ASSERT_TRUE(resolveLaunch(embed, StepSizes{9, 2, 3}, resolved).ok());
  EXPECT_EQ(pointerParam(resolved, 0), 0x400000000u); // input:tokens
  EXPECT_EQ(pointerParam(resolved, 1), 0x200000000u); // weight#0
  EXPECT_EQ(intParam(resolved, 3), 9);                // int T
  ASSERT_TRUE(resolveLaunch(kvWrite, StepSizes{9, 2, 3}, resolved).ok());
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
    ASSERT_TRUE(resolveLaunch(few, StepSizes{tokens, 1, 1}, resolved).ok());
    bool fewRuns = !resolved.empty;
    ASSERT_TRUE(resolveLaunch(many, StepSizes{tokens, 1, 1}, resolved).ok());
    bool manyRuns = !resolved.empty;
    EXPECT_EQ(fewRuns, tokens <= 4) << "T=" << tokens;
    EXPECT_NE(fewRuns, manyRuns) << "exactly one candidate runs at T=" << tokens;
  }
}

TEST_F(PreparedLaunchTest, EmptyAndOversizedGrids) {
  PreparedLaunch norm = prepare(1);
  norm.grid[0] = dim(SizeUnit::PagesPerSequence, 1, 1, -1);
  ResolvedLaunch resolved;
  ASSERT_TRUE(resolveLaunch(norm, StepSizes{4, 1, 1}, resolved).ok());
  EXPECT_TRUE(resolved.empty); // P - 1 = 0 blocks: skipped, not an error

  norm.grid[0] = dim(SizeUnit::Tokens, 1);
  norm.grid[1] = dim(SizeUnit::Tokens, 2);
  Status status = resolveLaunch(norm, StepSizes{40000, 1, 1}, resolved);
  EXPECT_EQ(status.message(),
            "step 1: grid.y = 2*T = 80000 exceeds CUDA's limit of 65535");

  norm.grid[1] = one();
  norm.args[4].multiplier = 1 << 20;
  status = resolveLaunch(norm, StepSizes{4096, 1, 1}, resolved);
  EXPECT_EQ(status.message(), "step 1: arg 4: int 1048576*T does not fit in "
                              "32 bits at T=4096, B=1, P=1");
}

} // namespace
