//===- PlanWriterTest.cpp - a CudaProgram's launch arguments in the plan --===//
//
// buildPlan writes each KernelArg as the runtime reads it back: the plan
// verifies, and its dump shows buffers, ints and tensor maps (buffer, element
// type, extents, box, swizzle) as the program described them.
//
//===----------------------------------------------------------------------===//

#include "compiler/PlanWriter.h"
#include "runtime/plan/PlanDump.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

using namespace dsv3;

namespace {

/// One FP8 GEMM launch over an activation of T rows and stacked experts.
CudaProgram gemmProgram() {
  CudaProgram program;
  program.instances = {"dsv3k::fp8_gemm<7168>"};
  DeviceWeight experts;
  experts.sources = {{"model.layers.3.mlp.experts.w", "F8_E4M3", {2, 256, 7168}}};
  experts.dtype = "F8_E4M3";
  experts.shape = {2, 256, 7168};
  program.weights.push_back(experts);

  KernelArg activation = KernelArg::make(KernelArg::Arena, 1 << 20);
  activation.tensorMap = TensorMapSpec{
      "F8_E4M3", {{SizeUnit::Constant, 7168}, {SizeUnit::Tokens, 1}}, {128, 256}, 128};
  KernelArg weight = KernelArg::make(KernelArg::Weight, 0);
  weight.tensorMap = TensorMapSpec{"F8_E4M3",
                                   {{SizeUnit::Constant, 7168},
                                    {SizeUnit::Constant, 256},
                                    {SizeUnit::Constant, 2}},
                                   {128, 128, 1},
                                   128};
  KernelArg rows = KernelArg::make(KernelArg::Int);
  rows.size = {SizeUnit::Tokens, 1};
  KernelLaunch launch;
  launch.op = "dsv3.fp8_gemm";
  launch.grid[0] = {SizeUnit::Constant, 2};
  launch.grid[1] = {SizeUnit::Tokens, 1, 128};
  launch.block[0] = 256;
  launch.args = {activation, weight, rows, KernelArg::make(KernelArg::Arena, 0)};

  EntryProgram entry;
  entry.name = "prefill";
  entry.arenaBytes = 8 << 20;
  entry.inputs = {StepInputRole::Tokens};
  entry.launches = {launch};
  program.entries = {entry};
  return program;
}

TEST(PlanWriter, WritesTensorMapArguments) {
  CompiledCudaModule module;
  module.cubin = {0x7f, 'E', 'L', 'F'};
  module.loweredNames = {"_Z8fp8_gemmILi7168EEvv"};
  const CudaArch *arch = lookupCudaArch("sm_90a");
  ASSERT_NE(arch, nullptr);
  ModelConfig config;
  config.vocabSize = 32;
  config.hiddenSize = 7168;
  config.numHiddenLayers = 1;
  config.kvLoraRank = 16;
  config.qkRopeHeadDim = 8;
  PlanLimits limits;
  limits.maxTokens = 512;
  limits.maxSequences = 4;

  std::vector<uint8_t> bytes = buildPlan(gemmProgram(), module, *arch, config, limits);
  Status status = plan::verifyPlan(bytes.data(), bytes.size(), "written.plan");
  ASSERT_TRUE(status.ok()) << status.message();
  const plan::Plan &written = *plan::GetPlan(bytes.data());
  std::string text = plan::dumpPlan(written);
  EXPECT_NE(text.find("args (map(arena+1048576 F8_E4M3 [7168, T] box [128, 256] swizzle "
                      "128), map(weight#0 F8_E4M3 [7168, 256, 2] box [128, 128, 1] "
                      "swizzle 128), int T, arena+0)\n"),
            std::string::npos)
      << text;

  const auto &args = *written.entry_points()->Get(0)->steps()->GetAs<plan::Launch>(0)->args();
  EXPECT_EQ(args.Get(0)->kind(), plan::ArgKind::TensorMap);
  EXPECT_EQ(args.Get(0)->space(), plan::Space::Arena);
  EXPECT_EQ(args.Get(0)->index(), 1 << 20);
  EXPECT_EQ(args.Get(1)->kind(), plan::ArgKind::TensorMap);
  EXPECT_EQ(args.Get(1)->space(), plan::Space::Weight);
  // A buffer without a map stays a plain pointer.
  EXPECT_EQ(args.Get(3)->kind(), plan::ArgKind::Buffer);
  EXPECT_EQ(args.Get(3)->tensor_map(), nullptr);
}

} // namespace
