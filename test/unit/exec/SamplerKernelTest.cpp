//===- SamplerKernelTest.cpp - the plan's sampler kernel, checked ---------===//
//
// The executor launches the sampler with its own argument list; a plan whose
// sampler kernel has another signature (from a dsv3c before per-row
// settings) must be refused before anything runs.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include "runtime/exec/Executor.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

using namespace dsv3;
using namespace dsv3::exec;
using namespace dsv3::testing;

namespace {

std::string checkWithSampler(const std::string &mangledName, int32_t sampler = 2) {
  PlanSpec spec = smallPlan();
  spec.kernels[2].name = mangledName;
  spec.sampler = sampler;
  std::vector<uint8_t> bytes = buildPlan(spec);
  EXPECT_TRUE(plan::verifyPlan(bytes.data(), bytes.size(), "small.plan").ok());
  Status status = checkSamplerKernel(*plan::GetPlan(bytes.data()));
  return status.ok() ? "ok" : status.message();
}

TEST(SamplerKernelTest, TheRuntimesSignatureIsAccepted) {
  // What NVRTC names dsv3k::sample_tokens<32> (dsv3-plan dump of a plan
  // dsv3c writes shows the same form at the model's vocabulary).
  EXPECT_EQ(samplerKernelName(32),
            "_ZN5dsv3k13sample_tokensILi32EEEvPKfiPKNS_14SamplingParamsEPiS6_i");
  EXPECT_EQ(checkWithSampler(samplerKernelName(32)), "ok");
  EXPECT_EQ(checkWithSampler("anything", /*sampler=*/-1), "ok");
}

TEST(SamplerKernelTest, AnOlderSignatureIsRefused) {
  EXPECT_EQ(checkWithSampler("_ZN5dsv3k13sample_tokensILi32EEEvPKfiPiifyy"),
            "the plan's sampler kernel 2 "
            "(_ZN5dsv3k13sample_tokensILi32EEEvPKfiPiifyy) is not the one this "
            "runtime launches "
            "(_ZN5dsv3k13sample_tokensILi32EEEvPKfiPKNS_14SamplingParamsEPiS6_i"
            "): the plan comes from another dsv3c; rebuild it");
  // The vocabulary is part of the name.
  EXPECT_NE(checkWithSampler(samplerKernelName(33)), "ok");
}

TEST(SamplerKernelTest, CountBytesAreRowsTimesTheVocabulary) {
  std::vector<uint8_t> bytes = buildPlan(smallPlan()); // vocab 32
  EXPECT_EQ(samplerCountBytes(*plan::GetPlan(bytes.data()), 256), 256u * 32 * 4);
}

} // namespace
