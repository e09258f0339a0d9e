//===- BenchModelTest.cpp - dsv3-bench's host logic -----------------------===//
//
// The floor model (bytes and FLOPs read off a plan), workloads, kernel
// classes, the weights' random distributions and the command line of
// dsv3-bench, on plans built here. The numbers expected below are worked
// out by hand from the shapes, not read back from the code.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include "tools/dsv3-bench/BenchOptions.h"
#include "tools/dsv3-bench/BenchReport.h"
#include "tools/dsv3-bench/KernelClass.h"
#include "tools/dsv3-bench/StepCost.h"
#include "tools/dsv3-bench/WeightFill.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace dsv3;
using namespace dsv3::bench;
using namespace dsv3::testing;

namespace {

// A one-layer MLA + MoE model small enough to count by hand: hidden 16,
// 2 heads, nope 4, rope 2, v 3, kv_lora 6 (cache row 8), 4 experts of
// width 5, top 2, vocab 32; plus one MTP layer the main entry points never
// read.
PlanSpec tinyMoePlan() {
  PlanSpec spec = smallPlan();
  spec.layers = 1;
  spec.mtpLayers = 1;
  spec.cacheRow = 8;
  spec.topK = 2;
  spec.vocab = 32;
  spec.hidden = 16;
  const std::string layer = "model.layers.0.";
  spec.weights = {
      {WeightTransform::Copy, DType::BF16, {32, 16},
       {{"model.embed_tokens.weight", DType::BF16, {32, 16}}}, {}},
      {WeightTransform::Copy, DType::BF16, {16},
       {{layer + "input_layernorm.weight", DType::BF16, {16}}}, {}},
      {WeightTransform::Copy, DType::BF16, {12, 16},
       {{layer + "self_attn.q_proj.weight", DType::BF16, {12, 16}}}, {}},
      {WeightTransform::Copy, DType::BF16, {14, 6},
       {{layer + "self_attn.kv_b_proj.weight", DType::BF16, {14, 6}}}, {}},
      {WeightTransform::Copy, DType::F8_E4M3, {16, 6},
       {{layer + "self_attn.o_proj.weight", DType::F8_E4M3, {16, 6}}}, {}},
      {WeightTransform::Copy, DType::F32, {1, 1},
       {{layer + "self_attn.o_proj.weight_scale_inv", DType::F32, {1, 1}}}, {}},
      {WeightTransform::Copy, DType::F32, {4},
       {{layer + "mlp.gate.e_score_correction_bias", DType::F32, {4}}}, {}},
      {WeightTransform::Stack, DType::F8_E4M3, {4, 5, 16},
       {{layer + "mlp.experts.0.up_proj.weight", DType::F8_E4M3, {5, 16}},
        {layer + "mlp.experts.1.up_proj.weight", DType::F8_E4M3, {5, 16}},
        {layer + "mlp.experts.2.up_proj.weight", DType::F8_E4M3, {5, 16}},
        {layer + "mlp.experts.3.up_proj.weight", DType::F8_E4M3, {5, 16}}},
       {}},
      {WeightTransform::Stack, DType::F32, {4, 1, 1},
       {{layer + "mlp.experts.0.up_proj.weight_scale_inv", DType::F32, {1, 1}},
        {layer + "mlp.experts.1.up_proj.weight_scale_inv", DType::F32, {1, 1}},
        {layer + "mlp.experts.2.up_proj.weight_scale_inv", DType::F32, {1, 1}},
        {layer + "mlp.experts.3.up_proj.weight_scale_inv", DType::F32, {1, 1}}},
       {}},
      // The MTP layer: 1000 x 16 bf16 that prefill and decode never touch.
      {WeightTransform::Copy, DType::BF16, {1000, 16},
       {{"model.layers.1.eh_proj.weight", DType::BF16, {1000, 16}}}, {}},
      {WeightTransform::Copy, DType::BF16, {32, 16},
       {{"lm_head.weight", DType::BF16, {32, 16}}}, {}},
  };
  // An e4m3 × e4m3 GEMM: the FP8 matrices meet FP8 activations.
  spec.kernels.push_back({0, "_Z8fp8_gemm", "dsv3k::fp8_gemm<16, 6, 128, 128, dsv3k::bf16>"});
  return spec;
}

struct BuiltPlan {
  std::vector<uint8_t> bytes;
  const plan::Plan &plan() const { return *plan::GetPlan(bytes.data()); }
};

BuiltPlan build(const PlanSpec &spec) { return {buildPlan(spec)}; }

TEST(BenchWorkloadTest, ParsesBothKinds) {
  StatusOr<Workload> decode = parseWorkload("decode:32:1024");
  ASSERT_TRUE(decode.ok()) << decode.status().message();
  EXPECT_EQ(decode->kind, Workload::Kind::Decode);
  EXPECT_EQ(decode->sequences, 32);
  EXPECT_EQ(decode->newTokens, 1);
  EXPECT_EQ(decode->context, 1024);
  EXPECT_EQ(decode->tokens(), 32);
  EXPECT_STREQ(decode->entryPoint(), "decode");
  EXPECT_EQ(decode->name(), "decode b=32 ctx=1024");

  StatusOr<Workload> prefill = parseWorkload("prefill:8:1024");
  ASSERT_TRUE(prefill.ok()) << prefill.status().message();
  EXPECT_EQ(prefill->kind, Workload::Kind::Prefill);
  EXPECT_EQ(prefill->tokens(), 8192);
  EXPECT_EQ(prefill->context, 0);
  EXPECT_STREQ(prefill->entryPoint(), "prefill");
  EXPECT_EQ(prefill->name(), "prefill 8x1024");

  StatusOr<Workload> noContext = parseWorkload("decode:1:0");
  ASSERT_TRUE(noContext.ok());
  EXPECT_EQ(noContext->context, 0);
}

TEST(BenchWorkloadTest, RejectsMalformedSpecs) {
  EXPECT_EQ(parseWorkload("decode:1").status().message(),
            "workload 'decode:1': expected decode:BATCH:CONTEXT or "
            "prefill:BATCH:LENGTH");
  EXPECT_FALSE(parseWorkload("train:1:2").ok());
  EXPECT_FALSE(parseWorkload("decode:1:2:3").ok());
  EXPECT_EQ(parseWorkload("decode:0:1024").status().message(),
            "workload 'decode:0:1024': BATCH '0' is not an integer of at least 1");
  EXPECT_EQ(parseWorkload("prefill:2:0").status().message(),
            "workload 'prefill:2:0': LENGTH '0' is not an integer of at least 1");
  EXPECT_FALSE(parseWorkload("decode:-1:5").ok());
  EXPECT_FALSE(parseWorkload("decode:1:12x").ok());
  EXPECT_FALSE(parseWorkload("decode::5").ok());
}

TEST(BenchStepCostTest, DistinctExpertsFollowTheUniformModel) {
  EXPECT_DOUBLE_EQ(expectedDistinctExperts(256, 8, 1), 8.0);
  // 256·(1 − (31/32)^32) = 256·(1 − 0.36204) = 163.31
  EXPECT_NEAR(expectedDistinctExperts(256, 8, 32), 163.31, 0.01);
  EXPECT_NEAR(expectedDistinctExperts(256, 8, 128), 251.60, 0.01);
  EXPECT_NEAR(expectedDistinctExperts(256, 8, 1024), 256.0, 1e-9);
  EXPECT_DOUBLE_EQ(expectedDistinctExperts(256, 8, 0), 0.0);
  EXPECT_DOUBLE_EQ(expectedDistinctExperts(0, 8, 10), 0.0);
  // Every token picks all experts: all are hit.
  EXPECT_DOUBLE_EQ(expectedDistinctExperts(4, 4, 1), 4.0);
}

TEST(BenchStepCostTest, ReadsTheModelOffThePlan) {
  BuiltPlan built = build(tinyMoePlan());
  StatusOr<PlanModel> model = analyzePlan(built.plan());
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->heads, 2);  // (12 − (14 − 6)) / rope 2
  EXPECT_EQ(model->kvLora, 6);
  EXPECT_EQ(model->cacheRow, 8);
  EXPECT_EQ(model->qkHead, 6); // nope (14 − 6) / 2 + rope 2
  EXPECT_EQ(model->vHead, 3);  // o_proj's 6 columns over 2 heads
  EXPECT_DOUBLE_EQ(model->kvBParams, 14 * 6);
  EXPECT_EQ(model->experts, 4);
  EXPECT_EQ(model->topK, 2);
  EXPECT_EQ(model->mainLayers, 1);
  // Always read: norm 32 + q 384 + kv_b 168 + o_proj 96 + scale 4 + bias 16
  // bytes; the MTP layer's 32000 bytes are not read.
  EXPECT_DOUBLE_EQ(model->alwaysReadBytes, 32 + 384 + 168 + 96 + 4 + 16);
  EXPECT_DOUBLE_EQ(model->bf16MatrixParams, 12 * 16 + 14 * 6);
  EXPECT_DOUBLE_EQ(model->fp8MatrixParams, 16 * 6);
  EXPECT_DOUBLE_EQ(model->expertBytes, 4 * 5 * 16 + 4 * 4);
  EXPECT_DOUBLE_EQ(model->fp8ExpertParams, 5 * 16);
  EXPECT_DOUBLE_EQ(model->bf16ExpertParams, 0);
  EXPECT_DOUBLE_EQ(model->embeddingRowBytes, 32);
  EXPECT_DOUBLE_EQ(model->headBytes, 32 * 16 * 2);
  EXPECT_DOUBLE_EQ(model->headParams, 32 * 16);
  EXPECT_FALSE(model->headIsFp8);
}

TEST(BenchStepCostTest, ATensorLoadedTwiceCountsOnceAsItsSmallestCopy) {
  PlanSpec spec = tinyMoePlan();
  // kv_b also as FP8 beside its bf16 copy (the direct prefill's expansion):
  // 84 bytes against 168.
  spec.weights.push_back({WeightTransform::Copy, DType::F8_E4M3, {14, 6},
                          {{"model.layers.0.self_attn.kv_b_proj.weight", DType::F8_E4M3, {14, 6}}},
                          {}});
  BuiltPlan built = build(spec);
  StatusOr<PlanModel> model = analyzePlan(built.plan());
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_DOUBLE_EQ(model->alwaysReadBytes, 32 + 384 + 84 + 96 + 4 + 16);
  EXPECT_DOUBLE_EQ(model->bf16MatrixParams, 12 * 16);
  EXPECT_DOUBLE_EQ(model->fp8MatrixParams, 16 * 6 + 14 * 6);
  EXPECT_EQ(model->kvLora, 6); // the attention shapes still read
}

TEST(BenchStepCostTest, DecodeCountsHitExpertsAndTheContext) {
  BuiltPlan built = build(tinyMoePlan());
  PlanModel model = *analyzePlan(built.plan());
  Workload decode = *parseWorkload("decode:3:10");
  StepCost cost = stepCost(model, decode);
  // 3 tokens, top 2 of 4: 4·(1 − (1/2)^3) = 3.5 experts.
  EXPECT_DOUBLE_EQ(cost.distinctExperts, 3.5);
  EXPECT_DOUBLE_EQ(cost.weightBytes,
                   700 + 336 * 3.5 / 4 + 3 * 32 + 1024);
  // 3 sequences read 10 + 1 rows and write 1, of 8 bf16 values, 1 layer.
  EXPECT_DOUBLE_EQ(cost.kvCacheBytes, 3 * (10 + 2) * 16);
  // FP8: o_proj 2·3·96, experts 2·3·2·80; BF16: q and kv_b 2·3·276, head
  // 2·3·512, attention 3 sequences × 11 keys × 2·2·(8 + 6) absorbed (the
  // expanded form costs 33 × 2·2·(6 + 3) + kv_b's expansion of 3 × 10
  // cached keys, 2·30·84: more).
  EXPECT_DOUBLE_EQ(cost.fp8Flops, 2 * 3 * 96 + 2 * 3 * 2 * 80);
  EXPECT_DOUBLE_EQ(cost.attentionFlops, 3 * 11 * 2 * 2 * 14);
  EXPECT_DOUBLE_EQ(cost.bf16Flops, 2 * 3 * 276 + 2 * 3 * 512 + 3 * 11 * 56);
  EXPECT_DOUBLE_EQ(cost.bytes(), cost.weightBytes + cost.kvCacheBytes);
  EXPECT_DOUBLE_EQ(cost.flops(), cost.fp8Flops + cost.bf16Flops);
}

TEST(BenchStepCostTest, Bf16ActivationsPutFp8WeightsAtTheBf16Rate) {
  PlanSpec spec = tinyMoePlan();
  // w8a16 GEMMs only: FP8 weights against bf16 activations.
  spec.kernels.back() = {0, "_Z10w8a16_gemm", "dsv3k::w8a16_gemm<16, 6, 128, 128, dsv3k::bf16>"};
  BuiltPlan built = build(spec);
  PlanModel model = *analyzePlan(built.plan());
  EXPECT_FALSE(model.fp8Activations);
  StepCost cost = stepCost(model, *parseWorkload("decode:3:10"));
  EXPECT_DOUBLE_EQ(cost.fp8Flops, 0);
  EXPECT_DOUBLE_EQ(cost.bf16Flops, 2 * 3 * 96 + 2 * 3 * 2 * 80 + 2 * 3 * 276 +
                                       2 * 3 * 512 + 3 * 11 * 56);

  BuiltPlan fp8 = build(tinyMoePlan());
  EXPECT_TRUE(analyzePlan(fp8.plan())->fp8Activations);
}

TEST(BenchStepCostTest, PrefillAttentionIsCausal) {
  BuiltPlan built = build(tinyMoePlan());
  PlanModel model = *analyzePlan(built.plan());
  StepCost cost = stepCost(model, *parseWorkload("prefill:2:5"));
  // Each of 2 sequences: 1 + 2 + ... + 5 = 15 (query, key) pairs, in the
  // expanded form (no cached key to expand): 2·2·(6 + 3) per pair, against
  // 2·2·(8 + 6) absorbed.
  EXPECT_DOUBLE_EQ(cost.attentionFlops, 2 * 15 * 36);
  // 10 tokens hit 4·(1 − 2^-10) experts.
  EXPECT_NEAR(cost.distinctExperts, 4 * (1 - std::pow(0.5, 10)), 1e-12);
  // Head on the 2 last rows only.
  EXPECT_DOUBLE_EQ(cost.bf16Flops - cost.attentionFlops,
                   2 * 10 * 276 + 2 * 2 * 512);
  EXPECT_DOUBLE_EQ(cost.kvCacheBytes, 2 * (0 + 2 * 5) * 16);
}

TEST(BenchStepCostTest, MissingAttentionWeightsAreNamed) {
  PlanSpec spec = tinyMoePlan();
  spec.weights.erase(spec.weights.begin() + 3); // kv_b_proj
  BuiltPlan built = build(spec);
  EXPECT_EQ(analyzePlan(built.plan()).status().message(),
            "the plan has no 2-D weight "
            "'model.layers.0.self_attn.kv_b_proj.weight': the attention FLOPs "
            "need it");

  spec = tinyMoePlan();
  spec.weights[2].shape = {13, 16}; // query rows that fit no head count
  spec.weights[2].sources[0].shape = {13, 16};
  built = build(spec);
  EXPECT_FALSE(analyzePlan(built.plan()).ok());
}

TEST(BenchStepCostTest, FloorIsTheSlowerOfMemoryAndCompute) {
  StepCost cost;
  cost.weightBytes = 3e9;
  cost.kvCacheBytes = 0;
  cost.fp8Flops = 2e12;
  cost.bf16Flops = 1e12;
  Ceilings ceilings;
  ceilings.copyBytesPerSecond = 3e12;
  ceilings.bf16FlopsPerSecond = 1e15;
  ceilings.fp8FlopsPerSecond = 2e15;
  Floor floor = floorOf(cost, ceilings);
  EXPECT_DOUBLE_EQ(floor.memorySeconds, 1e-3);
  EXPECT_DOUBLE_EQ(floor.computeSeconds, 1e-3 + 1e-3);
  EXPECT_DOUBLE_EQ(floor.seconds(), 2e-3);
  EXPECT_FALSE(floor.memoryBound());

  // No FP8 GEMM on the device: FP8 FLOPs at the BF16 peak.
  ceilings.fp8FlopsPerSecond = 0;
  floor = floorOf(cost, ceilings);
  EXPECT_DOUBLE_EQ(floor.computeSeconds, 3e-3);

  cost.fp8Flops = cost.bf16Flops = 0;
  floor = floorOf(cost, ceilings);
  EXPECT_TRUE(floor.memoryBound());
  EXPECT_DOUBLE_EQ(floor.seconds(), 1e-3);
}

TEST(BenchKernelClassTest, ClassifiesEveryTemplateOfThePlans) {
  EXPECT_EQ(kernelTemplateName("dsv3k::fp8_gemm<1536, 7168, 128, 128, dsv3k::bf16>"),
            "fp8_gemm");
  EXPECT_EQ(kernelTemplateName("plain_name"), "plain_name");
  const std::pair<const char *, KernelClass> cases[] = {
      {"dsv3k::fp8_gemm<1536, 7168, 128, 128, dsv3k::bf16>", KernelClass::Gemm},
      {"dsv3k::bf16_gemm<129280, 7168, float>", KernelClass::Gemm},
      {"dsv3k::fp8_grouped_gemm<2048, 7168, 256, 128, 128, dsv3k::bf16>",
       KernelClass::Gemm},
      {"dsv3k::bf16_grouped_gemm<2048, 7168, 256>", KernelClass::Gemm},
      {"dsv3k::mla_rope_q<128, 128, 64>", KernelClass::Attention},
      {"dsv3k::mla_q_absorb_mma<128, 128, 64, 128, 512>", KernelClass::Attention},
      {"dsv3k::mla_kv_write<512, 64, 64>", KernelClass::Attention},
      {"dsv3k::mla_attention<128, 128, 64, 512, 64>", KernelClass::Attention},
      {"dsv3k::mla_out_absorb_mma<128, 128, 128, 512>", KernelClass::Attention},
      {"dsv3k::moe_route<256, 8, 8, 4, 2, 1, true>", KernelClass::MoeRouting},
      {"dsv3k::moe_align<256, 8>", KernelClass::MoeRouting},
      {"dsv3k::moe_combine<7168, 8>", KernelClass::MoeRouting},
      {"dsv3k::rms_norm<7168>", KernelClass::Norm},
      {"dsv3k::add_rms_norm<7168>", KernelClass::Norm},
      {"dsv3k::embed<7168>", KernelClass::Rest},
      {"dsv3k::gather_rows<7168>", KernelClass::Rest},
      {"dsv3k::act_quant<7168, 128, false>", KernelClass::Rest},
      {"dsv3k::silu_mul_quant<18432, 128, false>", KernelClass::Rest},
      {"dsv3k::sample_tokens<129280>", KernelClass::Rest},
  };
  for (const auto &[instance, expected] : cases)
    EXPECT_EQ(classifyKernel(instance), expected) << instance;
}

TEST(BenchKernelClassTest, TimesAddUpByClassAndTemplate) {
  KernelTimes times;
  EXPECT_DOUBLE_EQ(times.share(KernelClass::Gemm), 0);
  times.add("dsv3k::fp8_gemm<1, 2>", 3.0);
  times.add("dsv3k::fp8_gemm<3, 4>", 1.0);
  times.add("dsv3k::rms_norm<7168>", 2.0);
  times.add("dsv3k::moe_align<256, 8>", 2.0);
  EXPECT_DOUBLE_EQ(times.totalMs(), 8.0);
  EXPECT_DOUBLE_EQ(times.share(KernelClass::Gemm), 0.5);
  EXPECT_DOUBLE_EQ(times.share(KernelClass::Norm), 0.25);
  EXPECT_DOUBLE_EQ(times.share(KernelClass::Attention), 0);
  ASSERT_EQ(times.templates.count("fp8_gemm"), 1u);
  EXPECT_DOUBLE_EQ(times.templates.at("fp8_gemm").first, 4.0);
  EXPECT_EQ(times.templates.at("fp8_gemm").second, 2);
}

TEST(BenchWeightFillTest, EachKindGetsItsDistribution) {
  BuiltPlan built = build(tinyMoePlan());
  const plan::Plan &plan = built.plan();
  auto fill = [&](size_t index) {
    StatusOr<FillSpec> spec = weightFill(plan, index, 7);
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    return spec.ok() ? *spec : FillSpec();
  };
  FillSpec embedding = fill(0);
  EXPECT_EQ(embedding.kind, FillSpec::Kind::Normal);
  EXPECT_FLOAT_EQ(embedding.b, 1.0f);
  EXPECT_EQ(embedding.count, 32u * 16);

  FillSpec norm = fill(1);
  EXPECT_EQ(norm.kind, FillSpec::Kind::Uniform);
  EXPECT_FLOAT_EQ(norm.a, 0.9f);
  EXPECT_FLOAT_EQ(norm.b, 1.1f);

  FillSpec query = fill(2); // bf16 [12, 16]: σ = 1/√16
  EXPECT_EQ(query.kind, FillSpec::Kind::Normal);
  EXPECT_EQ(query.dtype, DType::BF16);
  EXPECT_FLOAT_EQ(query.a, 0.0f);
  EXPECT_FLOAT_EQ(query.b, 0.25f);

  FillSpec codes = fill(4); // o_proj e4m3 codes
  EXPECT_EQ(codes.kind, FillSpec::Kind::E4m3);
  EXPECT_FLOAT_EQ(codes.b, 448.0f / kE4m3SigmasToMax);

  // Its scales: dequantized σ = code σ × scale = 1/√6 (in_features 6).
  FillSpec scales = fill(5);
  EXPECT_EQ(scales.kind, FillSpec::Kind::Uniform);
  EXPECT_EQ(scales.dtype, DType::F32);
  const float mid = (scales.a + scales.b) / 2;
  EXPECT_NEAR(codes.b * mid, 1.0f / std::sqrt(6.0f), 1e-6);

  FillSpec bias = fill(6);
  EXPECT_EQ(bias.kind, FillSpec::Kind::Uniform);
  EXPECT_FLOAT_EQ(bias.a, -0.1f);

  FillSpec experts = fill(7);
  EXPECT_EQ(experts.kind, FillSpec::Kind::E4m3);
  EXPECT_EQ(experts.count, 4u * 5 * 16);
  FillSpec expertScales = fill(8); // stacked, of a weight with in = 16
  EXPECT_NEAR(codes.b * (expertScales.a + expertScales.b) / 2, 0.25f, 1e-6);

  // Streams: a function of the seed and the name.
  EXPECT_NE(fill(0).stream, fill(10).stream);
  EXPECT_EQ(weightFill(plan, 0, 7)->stream, fillStream(7, "model.embed_tokens.weight"));
  EXPECT_NE(fillStream(7, "a"), fillStream(8, "a"));
}

TEST(BenchWeightFillTest, UnknownKindsAreErrors) {
  PlanSpec spec = tinyMoePlan();
  spec.weights[3].dtype = DType::I32; // kv_b as int32: no distribution
  spec.weights[3].sources[0].dtype = DType::I32;
  BuiltPlan built = build(spec);
  EXPECT_EQ(weightFill(built.plan(), 3, 0).status().message(),
            "weight #3 'model.layers.0.self_attn.kv_b_proj.weight' (I32 [14, "
            "6]): no random distribution is defined for this kind of weight");

  spec = tinyMoePlan();
  spec.weights.erase(spec.weights.begin() + 4); // o_proj, keeping its scales
  built = build(spec);
  EXPECT_EQ(weightFill(built.plan(), 4, 0).status().message(),
            "weight #4 'model.layers.0.self_attn.o_proj.weight_scale_inv' (F32 "
            "[1, 1]): block scales without the FP8 weight "
            "'model.layers.0.self_attn.o_proj.weight' in the plan");
}

Status parse(std::vector<const char *> args, BenchOptions &options, bool &help) {
  args.insert(args.begin(), "dsv3-bench");
  return parseBenchOptions(static_cast<int>(args.size()), args.data(), options,
                           help);
}

TEST(BenchOptionsTest, ParsesWorkloadsAndDefaults) {
  BenchOptions options;
  bool help = false;
  Status parsed = parse({"dir/w1.plan", "--workload", "decode:1:1024",
                         "--workload=prefill:8:1024", "--max-steps", "7",
                         "--seconds=2.5", "--no-gemm-peaks", "--json", "out.json"},
                        options, help);
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_FALSE(help);
  EXPECT_EQ(options.planPath, "dir/w1.plan");
  EXPECT_EQ(options.label, "w1");
  ASSERT_EQ(options.workloads.size(), 2u);
  EXPECT_EQ(options.workloads[1].name(), "prefill 8x1024");
  EXPECT_EQ(options.maxSteps, 7);
  EXPECT_EQ(options.minSteps, 3);
  EXPECT_EQ(options.warmup, 2);
  EXPECT_DOUBLE_EQ(options.secondsPerWorkload, 2.5);
  EXPECT_FALSE(options.measureGemmPeaks);
  EXPECT_FALSE(options.costOnly);
  EXPECT_EQ(options.jsonPath, "out.json");

  BenchOptions labelled;
  ASSERT_TRUE(parse({"p.plan", "--workload", "decode:1:0", "--label", "W2"},
                    labelled, help)
                  .ok());
  EXPECT_EQ(labelled.label, "W2");

  BenchOptions helpOnly;
  ASSERT_TRUE(parse({"--help", "--bogus"}, helpOnly, help).ok());
  EXPECT_TRUE(help);
}

TEST(BenchOptionsTest, BadCommandLinesAreNamed) {
  auto error = [](std::vector<const char *> args) {
    BenchOptions options;
    bool help = false;
    return parse(std::move(args), options, help).message();
  };
  EXPECT_EQ(error({"p.plan"}),
            "no workload: give at least one --workload (decode:B:CONTEXT or "
            "prefill:B:LENGTH)");
  EXPECT_EQ(error({"--workload", "decode:1:0"}),
            "expected one PLAN, got 0 positional arguments (see --help)");
  EXPECT_EQ(error({"p.plan", "--workload", "decode:1:0", "--frobnicate"}),
            "unknown option '--frobnicate' (see --help)");
  EXPECT_EQ(error({"p.plan", "--workload"}), "--workload needs a value");
  EXPECT_EQ(error({"p.plan", "--workload", "decode:1:0", "--min-steps", "9",
                   "--max-steps", "4"}),
            "--min-steps 9 is more than --max-steps 4");
  EXPECT_EQ(error({"p.plan", "--workload", "decode:1:0", "--warmup", "-1"}),
            "--warmup: '-1' is not an integer of at least 0");
  EXPECT_EQ(error({"p.plan", "--workload", "decode:1:0", "--seconds", "x"}),
            "--seconds: 'x' is not a number >= 0");
  EXPECT_EQ(error({"p.plan", "--workload", "prefill:1"}),
            "workload 'prefill:1': expected decode:BATCH:CONTEXT or "
            "prefill:BATCH:LENGTH");
}

TEST(BenchReportTest, MedianAndRatio) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({}), 0);
  WorkloadResult result;
  result.stepMs = {12, 10, 11};
  result.floor.memorySeconds = 2e-3;
  result.floor.computeSeconds = 1e-3;
  EXPECT_DOUBLE_EQ(result.ratio(), 5.5);
  result.kernels.add("dsv3k::fp8_gemm<1>", 8.8);
  result.kernels.steps = 1;
  EXPECT_DOUBLE_EQ(result.kernelShareOfStep(), 0.8);
}

TEST(BenchReportTest, JsonCarriesEveryNumber) {
  RunInfo info;
  info.device = "Test GPU";
  info.ceilings.copyBytesPerSecond = 3e12;
  WorkloadResult result;
  result.label = "W9";
  result.workload = *parseWorkload("decode:2:64");
  result.stepMs = {1.0, 3.0, 2.0};
  result.cost.weightBytes = 4e9;
  result.floor.memorySeconds = 1e-3;
  result.kernels.add("dsv3k::moe_align<256, 8>", 0.5);
  result.kernels.add("dsv3k::moe_align<128, 8>", 0.25);
  result.kernels.steps = 1;
  nlohmann::json json = nlohmann::json::parse(formatJson(info, {result}));
  EXPECT_EQ(json["device"], "Test GPU");
  ASSERT_EQ(json["workloads"].size(), 1u);
  const nlohmann::json &w = json["workloads"][0];
  EXPECT_EQ(w["label"], "W9");
  EXPECT_EQ(w["workload"], "decode b=2 ctx=64");
  EXPECT_DOUBLE_EQ(w["median_ms"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(w["ratio"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(w["kernel_ms_by_class"]["MoE routing"].get<double>(), 0.75);
  EXPECT_EQ(w["kernel_ms_by_template"]["moe_align"]["launches"], 2);
  EXPECT_DOUBLE_EQ(w["kernel_ms_by_instance"]["dsv3k::moe_align<128, 8>"]["ms"].get<double>(),
                   0.25);
  EXPECT_EQ(w["kernel_ms_by_instance"]["dsv3k::moe_align<256, 8>"]["launches"], 1);

  const std::string table = formatTable(info, {result});
  EXPECT_NE(table.find("W9     decode b=2 ctx=64"), std::string::npos) << table;
  EXPECT_NE(table.find("top kernels: moe_align 100.0%"), std::string::npos)
      << table;
}

} // namespace
