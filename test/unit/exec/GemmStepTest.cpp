//===- GemmStepTest.cpp - preparing Gemm steps, their guards and rows -----===//
//
// What of a Gemm step runs without a GPU: its buffers resolved as a launch's
// are, its name, the size guards that choose it, M rounded up to the row
// alignment, and the cuBLASLt loader's error. The GEMM itself (runGemm) is
// checked on the GPU machine against the plan's own kernels.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include "runtime/exec/CublasLt.h"
#include "runtime/exec/GemmStep.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

using namespace dsv3;
using namespace dsv3::exec;
using namespace dsv3::plan;
using namespace dsv3::testing;

namespace {

/// gemmPlan()'s prefill Gemm (step 3), prepared against made-up addresses.
class PreparedGemmTest : public ::testing::Test {
protected:
  void SetUp() override {
    build(gemmPlan());
    addresses.arena = 0x100000000;
    addresses.weights = {0x200000000, 0x200000400, 0x200000B00, 0x200000C00,
                         0x200020C00};
    addresses.constants = {0x200020D00};
    addresses.kvCacheLayers = {0x300000000, 0x310000000, 0x320000000};
    addresses.inputs[static_cast<size_t>(StepInput::Tokens)] = 0x400000000;
  }
  void build(const PlanSpec &spec) {
    bytes = buildPlan(spec);
    Status status = verifyPlan(bytes.data(), bytes.size(), "gemm.plan");
    ASSERT_TRUE(status.ok()) << status.message();
  }
  const Gemm &gemm() const {
    const EntryPoint &prefill = *GetPlan(bytes.data())->entry_points()->Get(0);
    EXPECT_EQ(prefill.steps_type()->Get(3), Step::Gemm);
    return *prefill.steps()->GetAs<Gemm>(3);
  }
  PreparedGemm prepare() const {
    StatusOr<PreparedGemm> prepared =
        prepareGemm(gemm(), addresses, "entry point 'prefill' step 3 (fp8_gemm)");
    EXPECT_TRUE(prepared.ok()) << prepared.status().message();
    return prepared.ok() ? *prepared : PreparedGemm();
  }

  std::vector<uint8_t> bytes;
  BufferAddresses addresses;
};

TEST_F(PreparedGemmTest, ResolvesArenaAndWeightAddresses) {
  PreparedGemm prepared = prepare();
  EXPECT_EQ(prepared.where, "entry point 'prefill' step 3 (fp8_gemm)");
  EXPECT_EQ(prepared.name, "cublasLt_fp8_gemm<256, 512, F32>");
  EXPECT_EQ(prepared.a, 0x100000000u);
  EXPECT_EQ(prepared.aScales, 0x100000000u + 32768);
  EXPECT_EQ(prepared.b, 0x200000C00u);
  EXPECT_EQ(prepared.bScales, 0x200020C00u);
  EXPECT_EQ(prepared.c, 0x100000000u + 65536);
  EXPECT_EQ(prepared.rowsUnit, SizeUnit::Tokens);
  EXPECT_EQ(prepared.rowsMultiplier, 1);
  EXPECT_EQ(prepared.rowAlignment, 16u);
  EXPECT_EQ(prepared.n, 256);
  EXPECT_EQ(prepared.k, 512);
  EXPECT_EQ(prepared.cDtype, DType::F32);
  EXPECT_FALSE(prepared.when.has_value());
  EXPECT_FALSE(prepared.alsoWhen.has_value());
  EXPECT_FALSE(prepared.omitted);
}

TEST_F(PreparedGemmTest, OtherSpacesAndTheName) {
  PlanSpec spec = gemmPlan();
  GemmSpec &g = spec.entries[0].gemms[0];
  g.bScales = constantArg(0);
  g.a = inputArg(StepInput::Tokens);
  g.c = kvCacheArg(1);
  g.n = 128;
  g.cDtype = DType::BF16;
  build(spec);
  EXPECT_EQ(gemmDisplayName(gemm()), "cublasLt_fp8_gemm<128, 512, BF16>");
  PreparedGemm prepared = prepare();
  EXPECT_EQ(prepared.a, 0x400000000u);
  EXPECT_EQ(prepared.bScales, 0x200020D00u);
  EXPECT_EQ(prepared.c, 0x310000000u);
  EXPECT_EQ(prepared.cDtype, DType::BF16);
}

TEST_F(PreparedGemmTest, MissingBuffers) {
  // An executor that built fewer buffers than the plan names.
  addresses.weights.resize(3);
  StatusOr<PreparedGemm> prepared = prepareGemm(gemm(), addresses, "step 3");
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.status().message(),
            "step 3: b: no device buffer for weight 3");

  PlanSpec spec = gemmPlan();
  spec.entries[0].gemms[0].a = inputArg(StepInput::Positions);
  build(spec);
  prepared = prepareGemm(gemm(), addresses, "step 3");
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.status().message(),
            "step 3: a: no buffer for input 'positions'");
}

TEST_F(PreparedGemmTest, GuardsChooseTheCandidate) {
  // Two candidates for one product, as the code generator guards them:
  // the library below 32 tokens, a kernel (elsewhere) above; and the
  // library only for fresh prompts (no resumed runs).
  PlanSpec spec = gemmPlan();
  spec.entries[0].gemms[0].when = SizeRange(SizeUnit::Tokens, 1, 0, 31);
  spec.entries[0].gemms[0].alsoWhen = SizeRange(SizeUnit::ResumedRuns, 1, 0, 0);
  build(spec);
  PreparedGemm prepared = prepare();
  ASSERT_TRUE(prepared.when.has_value());
  ASSERT_TRUE(prepared.alsoWhen.has_value());
  EXPECT_TRUE(gemmChosen(prepared, StepSizes{1, 1, 1, 0}));
  EXPECT_TRUE(gemmChosen(prepared, StepSizes{31, 4, 1, 0}));
  EXPECT_FALSE(gemmChosen(prepared, StepSizes{32, 4, 1, 0}));
  EXPECT_FALSE(gemmChosen(prepared, StepSizes{8, 1, 1, 1})); // also_when fails
  // An omitted Gemm never runs, whatever the sizes.
  prepared.omitted = true;
  EXPECT_FALSE(gemmChosen(prepared, StepSizes{1, 1, 1, 0}));

  // Without guards: every size.
  PreparedGemm always = PreparedGemm();
  EXPECT_TRUE(gemmChosen(always, StepSizes{4096, 256, 64, 17}));
  always.omitted = true;
  EXPECT_FALSE(gemmChosen(always, StepSizes{4096, 256, 64, 17}));
}

TEST_F(PreparedGemmTest, RowsRoundUpToTheAlignment) {
  PreparedGemm prepared = prepare(); // rows T, alignment 16
  auto rows = [&](int64_t tokens) {
    StatusOr<int64_t> m = gemmRows(prepared, StepSizes{tokens, 1, 1, 0});
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? *m : -1;
  };
  EXPECT_EQ(rows(1), 16);
  EXPECT_EQ(rows(16), 16);
  EXPECT_EQ(rows(17), 32);
  EXPECT_EQ(rows(64), 64);
  prepared.rowAlignment = 1;
  EXPECT_EQ(rows(17), 17);
  // Rows of resumed runs may be none: nothing to compute.
  prepared.rowsUnit = SizeUnit::ResumedRuns;
  prepared.rowAlignment = 16;
  EXPECT_EQ(*gemmRows(prepared, StepSizes{8, 1, 1, 0}), 0);
  EXPECT_EQ(*gemmRows(prepared, StepSizes{8, 1, 1, 3}), 16);
  prepared.rowsUnit = SizeUnit::Sequences;
  prepared.rowsMultiplier = 3;
  EXPECT_EQ(*gemmRows(prepared, StepSizes{8, 5, 1, 0}), 16);
  EXPECT_EQ(*gemmRows(prepared, StepSizes{8, 6, 1, 0}), 32);

  prepared.rowsUnit = SizeUnit::Tokens;
  prepared.rowsMultiplier = INT64_MAX / 2;
  StatusOr<int64_t> overflow = gemmRows(prepared, StepSizes{4, 1, 1, 0});
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.status().message(),
            "entry point 'prefill' step 3 (fp8_gemm): rows "
            "4611686018427387903*T overflow at T=4, B=1, P=1");
}

TEST(CublasLtTest, NamesEveryPathTried) {
  StatusOr<std::unique_ptr<CublasLt>> opened =
      CublasLt::open({"/nonexistent/libcublasLt.so.13", "libdsv3-no-such.so"});
  ASSERT_FALSE(opened.ok());
  const std::string &message = opened.status().message();
  EXPECT_EQ(message.rfind("cannot load libcublasLt: tried "
                          "/nonexistent/libcublasLt.so.13 (",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find("; libdsv3-no-such.so ("), std::string::npos)
      << message;

  // A library that loads but is not cuBLASLt is passed over, with the
  // function it lacks.
  opened = CublasLt::open({"libc.so.6"});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().message(),
            "cannot load libcublasLt: tried libc.so.6 (loaded, but it has no "
            "cublasLtGetVersion)");

  opened = CublasLt::open({});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().message(),
            "cannot load libcublasLt: no library paths to try");
}

TEST(CublasLtTest, TheToolkitsLibraryHasEveryFunction) {
  // Where the CUDA toolkit is installed (the build machine), the default
  // search finds it and every function the runtime calls; elsewhere the
  // error starts with the first path tried. No GPU needed either way.
  StatusOr<std::unique_ptr<CublasLt>> opened = CublasLt::open();
  if (!opened.ok()) {
    EXPECT_EQ(opened.status().message().rfind(
                  "cannot load libcublasLt: tried libcublasLt.so.13 (", 0),
              0u)
        << opened.status().message();
    GTEST_SKIP() << opened.status().message();
  }
  EXPECT_FALSE((*opened)->path().empty());
  EXPECT_GE((*opened)->version(), 120000u) << (*opened)->versionText();
  EXPECT_EQ((*opened)->handle(), nullptr); // created on request only
  Status failed = (*opened)->check(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul");
  EXPECT_EQ(failed.message().rfind("cublasLtMatmul: CUBLAS_STATUS_NOT_SUPPORTED (", 0),
            0u)
      << failed.message();
  EXPECT_TRUE((*opened)->check(CUBLAS_STATUS_SUCCESS, "cublasLtMatmul").ok());
}

} // namespace
