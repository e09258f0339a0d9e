// The kernel templates compile under NVRTC, inside the compiler, for every
// supported architecture, at DeepSeek-V3's real shapes.

#include "targets/cuda/NvrtcCompiler.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <gtest/gtest.h>

using namespace dsv3;

namespace {

std::string includeAll() {
  std::string source;
  for (const EmbeddedSource &file : embeddedKernelSources())
    source += llvm::formatv("#include \"{0}\"\n", file.path).str();
  return source;
}

TEST(NvrtcCompiler, EmbedsEveryKernelTemplate) {
  std::vector<std::string> paths;
  for (const EmbeddedSource &file : embeddedKernelSources()) {
    paths.push_back(file.path);
    EXPECT_NE(std::string(file.contents).find("#pragma once"), std::string::npos)
        << file.path;
  }
  EXPECT_NE(std::find(paths.begin(), paths.end(), "targets/cuda/kernels/common.cuh"),
            paths.end());
}

/// The body of the kernel whose `__global__` is at `at`: what follows the
/// first `{` outside parentheses (the launch bounds and the parameter list).
llvm::StringRef kernelBody(llvm::StringRef source, size_t at) {
  int depth = 0;
  for (size_t i = at; i < source.size(); ++i) {
    char c = source[i];
    if (c == '(')
      ++depth;
    else if (c == ')')
      --depth;
    else if (c == '{' && depth == 0)
      return source.drop_front(i + 1);
  }
  return {};
}

/// `body` without leading blanks and // comment lines.
llvm::StringRef firstStatement(llvm::StringRef body) {
  for (;;) {
    body = body.ltrim();
    if (!body.starts_with("//"))
      return body;
    body = body.drop_until([](char c) { return c == '\n'; });
  }
}

// dsv3-run launches sm_90 plans' kernels with programmatic stream
// serialization: a kernel that touched memory, or whose blocks all returned,
// before waiting for its predecessor would race with it (common.cuh says why).
TEST(NvrtcCompiler, EveryKernelFirstAwaitsPrecedingKernels) {
  int kernels = 0;
  for (const EmbeddedSource &file : embeddedKernelSources()) {
    llvm::StringRef source(file.contents);
    for (size_t at = source.find("__global__"); at != llvm::StringRef::npos;
         at = source.find("__global__", at + 1)) {
      size_t lineStart = source.rfind('\n', at);
      lineStart = lineStart == llvm::StringRef::npos ? 0 : lineStart + 1;
      if (source.slice(lineStart, at).contains("//"))
        continue; // a comment that names __global__
      ++kernels;
      llvm::StringRef body = kernelBody(source, at);
      llvm::StringRef head = source.slice(at, source.size() - body.size());
      llvm::StringRef first = firstStatement(body);
      EXPECT_TRUE(first.starts_with("awaitPrecedingKernels();") ||
                  first.starts_with("awaitPrecedingKernelsPrefetching(") ||
                  first.starts_with("awaitPrecedingKernelsPrefetchingRows("))
          << file.path << ": the kernel `" << head.take_front(160).str()
          << "` must begin with awaitPrecedingKernels(); (or "
             "awaitPrecedingKernelsPrefetching[Rows](...) of data no kernel writes)";
    }
  }
  EXPECT_GT(kernels, 30);
}

TEST(NvrtcCompiler, ReportsTheLogOfAFailedCompilation) {
  auto module = compileCudaModule(
      "#include \"targets/cuda/kernels/common.cuh\"\n"
      "__global__ void broken() { undeclared_name = 1; }\n",
      *lookupCudaArch("sm_90a"), {});
  ASSERT_FALSE(module);
  std::string message = llvm::toString(module.takeError());
  EXPECT_NE(message.find("NVRTC compilation for sm_90a failed"), std::string::npos)
      << message;
  EXPECT_NE(message.find("undeclared_name"), std::string::npos) << message;
}

TEST(NvrtcCompiler, UnknownInstanceIsAnError) {
  auto module = compileCudaModule(includeAll(), *lookupCudaArch("sm_90a"),
                                  {"dsv3k::no_such_kernel<1>"});
  EXPECT_FALSE(module);
  llvm::consumeError(module.takeError());
}

/// One instance of every kernel template at DeepSeek-V3's shapes (hidden 7168,
/// 128 heads, MLA 128+64/128 over a 512-wide latent, 256 experts top-8 in 8
/// groups, 576-row kv_a with a partial scale block), as the code generator
/// will request them.
std::vector<std::string> deepseekV3Instances() {
  return {
      "dsv3k::embed<7168>",
      "dsv3k::rms_norm<7168>",
      "dsv3k::add_rms_norm<7168>",
      "dsv3k::add_rms_norm<7168, float, float>",
      "dsv3k::rms_norm<1536, float>",
      "dsv3k::rms_norm_quant<1536, float, 128>",
      "dsv3k::add_rms_norm_quant<7168, float, float, 128>",
      "dsv3k::embed<7168, float>",
      "dsv3k::convert_rows<7168, float, dsv3k::bf16>",
      "dsv3k::add_rows<7168, float>",
      "dsv3k::silu_mul<2048, float>",
      "dsv3k::silu_mul_quant<2048, 128, false, float>",
      "dsv3k::mla_rope_q<128, 128, 64, float>",
      "dsv3k::mla_q_absorb_mma<128, 128, 64, 128, 512, float, float, 16, 4, 4>",
      "dsv3k::mla_q_absorb_mma<128, 128, 64, 128, 512, float, float, 64, 4, 3>",
      "dsv3k::mla_q_absorb_mma<128, 128, 64, 128, 512, float, float, 128, 1, 3>",
      "dsv3k::mla_kv_write<512, 64, 64, float>",
      "dsv3k::mla_attention<128, 128, 64, 512, 64, float, float>",
      "dsv3k::mla_attention<128, 128, 64, 512, 64, float, float, 1>",
      "dsv3k::mla_prefill_attention<128, 128, 64, 128, 512, 64, float>",
      "dsv3k::mla_out_absorb_stream<128, 128, 128, 512, float>",
      "dsv3k::mla_out_absorb_mma<128, 128, 128, 512, float, 16, 1, 8>",
      "dsv3k::mla_out_absorb_mma<128, 128, 128, 512, float, 128, 1, 3>",
      "dsv3k::moe_combine<7168, 8, float, float>",
      "dsv3k::gather_rows<7168>",
      "dsv3k::act_quant<7168, 128, false>",
      "dsv3k::act_quant<576, 128, true>",
      "dsv3k::silu_mul_quant<2048, 128, false>",
      "dsv3k::silu_mul_quant<2048, 128, false, dsv3k::bf16>",
      "dsv3k::scales_by_block<56, 16>",
      "dsv3k::scales_by_block<144, 16>",
      "dsv3k::silu_mul<18432>",
      "dsv3k::fp8_gemm<576, 7168, 128, 128, dsv3k::bf16>",
      "dsv3k::fp8_gemm<24576, 1536, 128, 128, float>",
      "dsv3k::w8a16_gemm<576, 7168, 128, 128, dsv3k::bf16>",
      "dsv3k::w8a16_gemm<7168, 2048, 128, 128, float>",
      "dsv3k::bf16_gemm<129280, 7168, float>",
      "dsv3k::bf16_gemm<1536, 7168, dsv3k::bf16>",
      "dsv3k::fp8_grouped_gemm<2048, 7168, 256, 128, 128, dsv3k::bf16>",
      "dsv3k::w8a16_grouped_gemm<7168, 2048, 256, 128, 128, dsv3k::bf16>",
      "dsv3k::bf16_grouped_gemm<7168, 2048, 256, dsv3k::bf16>",
      "dsv3k::w8a16_skinny_gemm<576, 7168, 128, 128, 2, 1, float>",
      "dsv3k::w8a16_skinny_gemm<7168, 16384, 128, 128, 4, 2, float>",
      "dsv3k::bf16_skinny_gemm<129280, 7168, 4, 2, float>",
      "dsv3k::w8a16_grouped_skinny_gemm<2048, 7168, 256, 128, 128, 2, 1, float>",
      "dsv3k::w8a16_grouped_skinny_gemm<2048, 7168, 256, 128, 128, 8, 2, float, true>",
      "dsv3k::w8a16_grouped_skinny_gemm<7168, 2048, 256, 128, 128, 2, 2, float, true>",
      "dsv3k::bf16_grouped_skinny_gemm<7168, 2048, 256, 2, 2, float>",
      "dsv3k::fp8_skinny_gemm<24576, 1536, 128, 128, 1, 2, float>",
      "dsv3k::fp8_mma_skinny_gemm<576, 7168, 128, 128, 8, float>",
      "dsv3k::fp8_mma_skinny_gemm<32768, 512, 128, 128, 1, dsv3k::bf16>",
      "dsv3k::fp8_mma_grouped_skinny_gemm<7168, 2048, 256, 128, 128, 4, float>",
      "dsv3k::fp8_mma_skinny_gemm_pair<1536, 576, 7168, 128, 128, 8, float>",
      "dsv3k::fp8_mma_grouped_skinny_gemm_pair<2048, 2048, 7168, 256, 128, 128, 8, float>",
      "dsv3k::fp8_grouped_skinny_gemm<7168, 2048, 256, 128, 128, 1, 2, float>",
      "dsv3k::fp8_wgmma_gemm<7168, 16384, 256, 128, float>",
      "dsv3k::fp8_wgmma_grouped_gemm<2048, 7168, 256, 128, 128, true, float>",
      "dsv3k::fp8_wgmma_grouped_gemm<7168, 2048, 256, 128, 128, false, dsv3k::bf16>",
      "dsv3k::mla_rope_q<128, 128, 64>",
      "dsv3k::mla_q_absorb_mma<128, 128, 64, 128, 512>",
      "dsv3k::mla_kv_write<512, 64, 64>",
      "dsv3k::mla_attention<128, 128, 64, 512, 64>",
      "dsv3k::mla_out_absorb_mma<128, 128, 128, 512>",
      "dsv3k::mla_out_absorb_stream<128, 128, 128, 512>",
      "dsv3k::moe_route<256, 8, 8, 4, 2, 1, true>",
      "dsv3k::moe_align<256, 8>",
      "dsv3k::moe_combine<7168, 8>",
      "dsv3k::concat_columns<7168, 7168>",
      "dsv3k::add_rows<7168>",
      "dsv3k::sample_tokens<129280>",
  };
}

class NvrtcCompilerPerArch : public ::testing::TestWithParam<const char *> {};

TEST_P(NvrtcCompilerPerArch, CompilesEveryKernelAtDeepSeekV3Shapes) {
  const CudaArch *arch = lookupCudaArch(GetParam());
  ASSERT_NE(arch, nullptr);
  std::vector<std::string> instances = deepseekV3Instances();
  auto module = compileCudaModule(includeAll(), *arch, instances);
  ASSERT_TRUE(static_cast<bool>(module)) << llvm::toString(module.takeError());
  EXPECT_GT(module->cubin.size(), 1000u);
  ASSERT_EQ(module->loweredNames.size(), instances.size());
  for (const std::string &name : module->loweredNames)
    EXPECT_TRUE(llvm::StringRef(name).starts_with("_ZN5dsv3k")) << name;
}

INSTANTIATE_TEST_SUITE_P(Archs, NvrtcCompilerPerArch,
                         ::testing::Values("sm_80", "sm_89", "sm_90a", "sm_100a"));

} // namespace
