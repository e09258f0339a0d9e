//===- PlanDumpTest.cpp - the text dump of a plan -------------------------===//

#include "TestPlans.h"

#include "runtime/plan/PlanDump.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

using namespace dsv3;
using namespace dsv3::plan;
using namespace dsv3::testing;

namespace {

TEST(PlanDumpTest, SmallPlan) {
  std::vector<uint8_t> bytes = buildPlan(smallPlan());
  ASSERT_TRUE(verifyPlan(bytes.data(), bytes.size(), "small.plan").ok());
  const std::string expected =
      "plan schema " + std::to_string(kSchemaVersion) + "\n"
      "target sm_90a compute 9.0\n"
      "limits max_tokens 64, max_sequences 4, page_size 16\n"
      "model vocab 32, hidden 16, layers 2 + 1 MTP, cache row 24, top_k 2\n"
      "weights 3, 3328 bytes on the device\n"
      "weight#0 BF16 [32, 16] = copy model.embed_tokens.weight BF16 [32, 16]\n"
      "weight#1 BF16 [40, 20] = dequantize "
      "model.layers.0.self_attn.kv_b_proj.weight F8_E4M3 [40, 20] x "
      "model.layers.0.self_attn.kv_b_proj.weight_scale_inv F32 [2, 3] in "
      "blocks [32, 8]\n"
      "weight#2 F8_E4M3 [2, 8, 16] = stack 2: "
      "model.layers.1.mlp.experts.0.up_proj.weight F8_E4M3 [8, 16], "
      "model.layers.1.mlp.experts.1.up_proj.weight F8_E4M3 [8, 16]\n"
      "constants 1\n"
      "constant#0 F32 [4]\n"
      "modules 1\n"
      "module#0 cubin 64 bytes\n"
      "kernels 3\n"
      "kernel#0 module#0 dsv3k::embed<16> "
      "_Z5embedILi16EEvPKiPK13__nv_bfloat16PS2_i\n"
      "kernel#1 module#0 dsv3k::rms_norm<16> "
      "_Z8rms_normILi16EEvPK13__nv_bfloat16iS2_PS0_iif\n"
      "kernel#2 module#0 dsv3k::sample_tokens<32> "
      "_Z13sample_tokensILi32EEvPKfiPiifyy\n"
      "sampler kernel#2\n"
      "entry prefill: arena 65536 bytes, inputs tokens positions token_seq "
      "block_table last_rows, 3 steps\n"
      "  output#0 arena+32768 F32 [B, 32]\n"
      "  step#0 embed kernel#0 dsv3k::embed<16> grid (T, 1, 1) block (128, 1, "
      "1) shared 0 args (input:tokens, weight#0, arena+0, int T)\n"
      "  step#1 rms_norm kernel#1 dsv3k::rms_norm<16> grid (ceil(T/64), 4, 1) "
      "block (256, 1, 1) shared 0 args (arena+0, int 16, weight#1, "
      "arena+4096, int 8*T, float 1e-06, map(weight#2 F8_E4M3 [16, 8, 2] "
      "box [16, 8, 1] swizzle 32))\n"
      "  step#2 kv_write kernel#1 dsv3k::rms_norm<16> grid (ceil(3*B/2)+1, 1, "
      "1) block (128, 2, 1) shared 1024 args (kv_cache[2], null, "
      "input:block_table, int P, constant#0, float 0.5)\n"
      "entry decode: arena 32768 bytes, inputs tokens positions token_seq "
      "block_table last_rows, 1 step\n"
      "  output#0 arena+16384 F32 [B, 32]\n"
      "  step#0 embed kernel#0 dsv3k::embed<16> grid (T, 1, 1) block (128, 1, "
      "1) shared 0 args (input:tokens, weight#0, arena+0, int T)\n";
  EXPECT_EQ(dumpPlan(*GetPlan(bytes.data())), expected);
}

TEST(PlanDumpTest, NoSamplerNoInputs) {
  PlanSpec spec = smallPlan();
  spec.sampler = -1;
  spec.entries[1].inputs.clear();
  spec.entries[1].launches[0].args[0] = nullArg();
  std::vector<uint8_t> bytes = buildPlan(spec);
  Status status = verifyPlan(bytes.data(), bytes.size(), "small.plan");
  ASSERT_TRUE(status.ok()) << status.message();
  std::string text = dumpPlan(*GetPlan(bytes.data()));
  EXPECT_NE(text.find("\nsampler none\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nentry decode: arena 32768 bytes, inputs none, 1 step\n"),
            std::string::npos)
      << text;
}

TEST(PlanDumpTest, TensorMapOfRows) {
  // Sizes print as elsewhere: T, 8*T, constants as numbers.
  PlanSpec spec = smallPlan();
  spec.entries[0].launches[1].args[6] =
      tensorMapArg(arenaArg(8192), {DType::BF16,
                                    {constantSize(16), Size(SizeUnit::Tokens, 1)},
                                    {16, 64},
                                    0});
  spec.entries[0].launches[1].args.push_back(tensorMapArg(
      arenaArg(16384),
      {DType::F32, {constantSize(4), Size(SizeUnit::Tokens, 8)}, {4, 256}, 0}));
  std::vector<uint8_t> bytes = buildPlan(spec);
  Status status = verifyPlan(bytes.data(), bytes.size(), "small.plan");
  ASSERT_TRUE(status.ok()) << status.message();
  std::string text = dumpPlan(*GetPlan(bytes.data()));
  EXPECT_NE(text.find("float 1e-06, map(arena+8192 BF16 [16, T] box [16, 64] "
                      "swizzle 0), map(arena+16384 F32 [4, 8*T] box [4, 256] "
                      "swizzle 0))\n"),
            std::string::npos)
      << text;
}

TEST(PlanDumpTest, GemmStep) {
  PlanSpec spec = gemmPlan();
  GemmSpec &gemm = spec.entries[0].gemms[0];
  std::vector<uint8_t> bytes = buildPlan(spec);
  Status status = verifyPlan(bytes.data(), bytes.size(), "gemm.plan");
  ASSERT_TRUE(status.ok()) << status.message();
  std::string text = dumpPlan(*GetPlan(bytes.data()));
  EXPECT_NE(text.find("\nentry prefill: arena 262144 bytes, inputs tokens "
                      "positions token_seq block_table last_rows, 4 steps\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("float 0.5)\n"
                      "  step#3 fp8_gemm cublasLt fp8 gemm n 256 k 512 F32 rows "
                      "T align 16 args (arena+0, arena+32768, weight#3, "
                      "weight#4, arena+65536)\n"
                      "entry decode:"),
            std::string::npos)
      << text;

  // Guards print as a launch's do.
  gemm.rows = Size(SizeUnit::Sequences, 2);
  gemm.rowAlignment = 1;
  gemm.cDtype = DType::BF16;
  gemm.when = SizeRange(SizeUnit::Tokens, 1, 0, 32);
  gemm.alsoWhen = SizeRange(SizeUnit::ResumedRuns, 1, 1, INT64_MAX);
  bytes = buildPlan(spec);
  status = verifyPlan(bytes.data(), bytes.size(), "gemm.plan");
  ASSERT_TRUE(status.ok()) << status.message();
  text = dumpPlan(*GetPlan(bytes.data()));
  EXPECT_NE(text.find("\n  step#3 fp8_gemm cublasLt fp8 gemm n 256 k 512 BF16 "
                      "rows 2*B align 1 args (arena+0, arena+32768, weight#3, "
                      "weight#4, arena+65536) when T <= 32 and resumed >= 1\n"),
            std::string::npos)
      << text;
}

TEST(PlanDumpTest, GridExpressions) {
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Tokens, 1)), "T");
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Tokens, 8)), "8*T");
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Tokens, 1, 64)), "ceil(T/64)");
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Sequences, 3, 2, 1)), "ceil(3*B/2)+1");
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::PagesPerSequence, 1, 1, -1)), "P-1");
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Tokens, 1, 1, INT64_MIN)),
            "T-9223372036854775808");
  // Constants are evaluated: ceil(7 / 2) + 1.
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Constant, 7, 2, 1)), "5");
  EXPECT_EQ(formatLaunchDim(dim(SizeUnit::Tokens, 0, 1, 3)), "3");
}

TEST(PlanDumpTest, SizesAndInputNames) {
  EXPECT_EQ(formatSize(SizeUnit::Constant, 576), "576");
  EXPECT_EQ(formatSize(SizeUnit::Constant, -1), "-1");
  EXPECT_EQ(formatSize(SizeUnit::Sequences, 1), "B");
  EXPECT_EQ(formatSize(SizeUnit::PagesPerSequence, 2), "2*P");
  EXPECT_STREQ(stepInputName(StepInput::Hidden), "hidden");
  EXPECT_STREQ(stepInputName(StepInput::LastRows), "last_rows");
}

} // namespace
