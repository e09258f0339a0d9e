//===- ModelConfigTest.cpp - Tests of config.json parsing -----------------===//
//
// The bundled configs parse to the values the model cards state, both formats
// of DeepSeek-V3 agree, and every class of bad input is reported with the
// exact field at fault.
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelConfig.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#ifndef DSV3_CONFIG_DIR
#error "DSV3_CONFIG_DIR must name the configs/ folder"
#endif

using namespace dsv3;
namespace json = llvm::json;

namespace {

std::string configPath(llvm::StringRef name) {
  return std::string(DSV3_CONFIG_DIR) + "/" + name.str();
}

/// Reads a bundled config, failing the test with the message on error.
ModelConfig readBundled(llvm::StringRef name) {
  llvm::Expected<ModelConfig> config = readModelConfigFile(configPath(name));
  if (!config) {
    ADD_FAILURE() << llvm::toString(config.takeError());
    return ModelConfig();
  }
  return std::move(*config);
}

/// A small valid Hugging Face config that the error tests modify.
json::Object tinyHf() {
  return json::Object{
      {"model_type", "deepseek_v3"},
      {"vocab_size", 1024},
      {"hidden_size", 256},
      {"intermediate_size", 512},
      {"moe_intermediate_size", 128},
      {"num_hidden_layers", 4},
      {"first_k_dense_replace", 1},
      {"num_attention_heads", 4},
      {"q_lora_rank", 128},
      {"kv_lora_rank", 64},
      {"qk_nope_head_dim", 32},
      {"qk_rope_head_dim", 16},
      {"v_head_dim", 32},
      {"n_routed_experts", 16},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 4},
      {"n_group", 4},
      {"topk_group", 2},
  };
}

std::string serialize(json::Object object) {
  return llvm::formatv("{0}", json::Value(std::move(object))).str();
}

/// The error message for `text` read as "cfg.json", or "<no error>".
std::string errorOf(llvm::StringRef text) {
  llvm::Expected<ModelConfig> config = parseModelConfig(text, "cfg.json");
  if (config)
    return "<no error>";
  return llvm::toString(config.takeError());
}

std::string errorOf(json::Object object) {
  return errorOf(serialize(std::move(object)));
}

/// tinyHf() with `key` set to `value`.
std::string errorWith(llvm::StringRef key, json::Value value) {
  json::Object object = tinyHf();
  object[key] = std::move(value);
  return errorOf(std::move(object));
}

/// tinyHf() without `key`.
std::string errorWithout(llvm::StringRef key) {
  json::Object object = tinyHf();
  object.erase(key);
  return errorOf(std::move(object));
}

ModelConfig parseOk(json::Object object) {
  llvm::Expected<ModelConfig> config =
      parseModelConfig(serialize(std::move(object)), "cfg.json");
  if (!config) {
    ADD_FAILURE() << llvm::toString(config.takeError());
    return ModelConfig();
  }
  return std::move(*config);
}

json::Object yarnScaling() {
  return json::Object{{"type", "yarn"},
                      {"factor", 4},
                      {"original_max_position_embeddings", 256}};
}

json::Object fp8Quantization() {
  return json::Object{{"quant_method", "fp8"},
                      {"fmt", "e4m3"},
                      {"activation_scheme", "dynamic"},
                      {"weight_block_size", json::Array{128, 128}}};
}

/// A valid DeepSeek inference-format config that the error tests modify.
json::Object tinyInference() {
  return json::Object{{"dim", 256},
                      {"n_routed_experts", 16},
                      {"n_activated_experts", 4},
                      {"n_expert_groups", 4},
                      {"n_limited_groups", 2}};
}

//===----------------------------------------------------------------------===//
// Bundled configs.
//===----------------------------------------------------------------------===//

TEST(ModelConfigBundled, DeepSeekV3HuggingFace) {
  ModelConfig c = readBundled("deepseek-v3.json");
  EXPECT_EQ(c.format, ConfigFormat::HuggingFace);
  EXPECT_EQ(c.sourceName, configPath("deepseek-v3.json"));
  EXPECT_EQ(c.vocabSize, 129280);
  EXPECT_EQ(c.hiddenSize, 7168);
  EXPECT_EQ(c.intermediateSize, 18432);
  EXPECT_EQ(c.moeIntermediateSize, 2048);
  EXPECT_EQ(c.numHiddenLayers, 61);
  EXPECT_EQ(c.numAttentionHeads, 128);
  EXPECT_EQ(c.qLoraRank, std::optional<int64_t>(1536));
  EXPECT_EQ(c.kvLoraRank, 512);
  EXPECT_EQ(c.qkNopeHeadDim, 128);
  EXPECT_EQ(c.qkRopeHeadDim, 64);
  EXPECT_EQ(c.qkHeadDim(), 192);
  EXPECT_EQ(c.vHeadDim, 128);
  EXPECT_EQ(c.nRoutedExperts, 256);
  EXPECT_EQ(c.nSharedExperts, 1);
  EXPECT_EQ(c.numExpertsPerTok, 8);
  EXPECT_EQ(c.nGroup, 8);
  EXPECT_EQ(c.topkGroup, 4);
  EXPECT_EQ(c.topkMethod, TopkMethod::NoAuxTc);
  EXPECT_EQ(c.scoringFunc, ScoringFunc::Sigmoid);
  EXPECT_TRUE(c.normTopkProb);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 2.5);
  EXPECT_EQ(c.firstKDenseReplace, 3);
  EXPECT_EQ(c.moeLayerFreq, 1);
  EXPECT_EQ(c.numNextnPredictLayers, 1);
  EXPECT_DOUBLE_EQ(c.ropeTheta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-6);
  EXPECT_EQ(c.maxPositionEmbeddings, 163840);
  EXPECT_FALSE(c.tieWordEmbeddings);

  ASSERT_TRUE(c.yarn.has_value());
  EXPECT_DOUBLE_EQ(c.yarn->factor, 40.0);
  EXPECT_EQ(c.yarn->originalMaxPositionEmbeddings, 4096);
  EXPECT_DOUBLE_EQ(c.yarn->betaFast, 32.0);
  EXPECT_DOUBLE_EQ(c.yarn->betaSlow, 1.0);
  EXPECT_DOUBLE_EQ(c.yarn->mscale, 1.0);
  EXPECT_DOUBLE_EQ(c.yarn->mscaleAllDim, 1.0);

  ASSERT_TRUE(c.fp8.has_value());
  EXPECT_EQ(c.fp8->blockRows, 128);
  EXPECT_EQ(c.fp8->blockCols, 128);
  EXPECT_EQ(c.fp8->scaleFormat, "");

  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_FALSE(c.isMoeLayer(2));
  EXPECT_TRUE(c.isMoeLayer(3));
  EXPECT_TRUE(c.isMoeLayer(60));
  EXPECT_TRUE(c.isMoeLayer(61)); // the MTP layer

  double mscale = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c.softmaxScale(), mscale * mscale / std::sqrt(192.0), 1e-15);
  EXPECT_NEAR(c.softmaxScale(), 0.135234, 1e-6);
}

TEST(ModelConfigBundled, DeepSeekV3BothFormatsAgree) {
  ModelConfig hf = readBundled("deepseek-v3.json");
  ModelConfig ds = readBundled("deepseek-v3-inference-671B.json");
  EXPECT_EQ(ds.format, ConfigFormat::DeepSeekInference);
  EXPECT_EQ(ds.vocabSize, hf.vocabSize);
  EXPECT_EQ(ds.hiddenSize, hf.hiddenSize);
  EXPECT_EQ(ds.intermediateSize, hf.intermediateSize);
  EXPECT_EQ(ds.moeIntermediateSize, hf.moeIntermediateSize);
  EXPECT_EQ(ds.numHiddenLayers, hf.numHiddenLayers);
  EXPECT_EQ(ds.numAttentionHeads, hf.numAttentionHeads);
  EXPECT_EQ(ds.qLoraRank, hf.qLoraRank);
  EXPECT_EQ(ds.kvLoraRank, hf.kvLoraRank);
  EXPECT_EQ(ds.qkNopeHeadDim, hf.qkNopeHeadDim);
  EXPECT_EQ(ds.qkRopeHeadDim, hf.qkRopeHeadDim);
  EXPECT_EQ(ds.vHeadDim, hf.vHeadDim);
  EXPECT_EQ(ds.nRoutedExperts, hf.nRoutedExperts);
  EXPECT_EQ(ds.nSharedExperts, hf.nSharedExperts);
  EXPECT_EQ(ds.numExpertsPerTok, hf.numExpertsPerTok);
  EXPECT_EQ(ds.nGroup, hf.nGroup);
  EXPECT_EQ(ds.topkGroup, hf.topkGroup);
  EXPECT_EQ(ds.topkMethod, hf.topkMethod);
  EXPECT_EQ(ds.scoringFunc, hf.scoringFunc);
  EXPECT_EQ(ds.normTopkProb, hf.normTopkProb);
  EXPECT_DOUBLE_EQ(ds.routedScalingFactor, hf.routedScalingFactor);
  EXPECT_EQ(ds.firstKDenseReplace, hf.firstKDenseReplace);
  EXPECT_EQ(ds.moeLayerFreq, hf.moeLayerFreq);
  EXPECT_DOUBLE_EQ(ds.ropeTheta, hf.ropeTheta);
  EXPECT_DOUBLE_EQ(ds.rmsNormEps, hf.rmsNormEps);
  for (int64_t layer = 0; layer < hf.numHiddenLayers; ++layer)
    EXPECT_EQ(ds.isMoeLayer(layer), hf.isMoeLayer(layer)) << "layer " << layer;
  ASSERT_TRUE(ds.yarn.has_value()); // max_seq_len 16384 > original_seq_len
  EXPECT_DOUBLE_EQ(ds.yarn->factor, hf.yarn->factor);
  EXPECT_EQ(ds.yarn->originalMaxPositionEmbeddings,
            hf.yarn->originalMaxPositionEmbeddings);
  EXPECT_DOUBLE_EQ(ds.yarn->betaFast, hf.yarn->betaFast);
  EXPECT_DOUBLE_EQ(ds.yarn->betaSlow, hf.yarn->betaSlow);
  EXPECT_DOUBLE_EQ(ds.softmaxScale(), hf.softmaxScale());
  ASSERT_TRUE(ds.fp8.has_value());
  EXPECT_EQ(ds.fp8->blockRows, 128);
  EXPECT_EQ(ds.fp8->blockCols, 128);
  // What the demo cannot express.
  EXPECT_EQ(ds.numNextnPredictLayers, 0);
  EXPECT_EQ(ds.maxPositionEmbeddings, 16384);
}

TEST(ModelConfigBundled, DeepSeekInference16B) {
  ModelConfig c = readBundled("deepseek-inference-16B.json");
  EXPECT_EQ(c.format, ConfigFormat::DeepSeekInference);
  EXPECT_EQ(c.vocabSize, 102400);
  EXPECT_EQ(c.hiddenSize, 2048);
  EXPECT_EQ(c.intermediateSize, 10944);
  EXPECT_EQ(c.moeIntermediateSize, 1408);
  EXPECT_EQ(c.numHiddenLayers, 27);
  EXPECT_EQ(c.firstKDenseReplace, 1);
  EXPECT_EQ(c.numAttentionHeads, 16);
  EXPECT_FALSE(c.qLoraRank.has_value());
  EXPECT_EQ(c.nRoutedExperts, 64);
  EXPECT_EQ(c.nSharedExperts, 2);
  EXPECT_EQ(c.numExpertsPerTok, 6);
  EXPECT_EQ(c.nGroup, 1);
  EXPECT_EQ(c.topkGroup, 1);
  EXPECT_EQ(c.scoringFunc, ScoringFunc::Softmax);
  EXPECT_EQ(c.topkMethod, TopkMethod::Greedy);
  EXPECT_FALSE(c.normTopkProb);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 1.0);
  EXPECT_FALSE(c.fp8.has_value());
  EXPECT_EQ(c.maxPositionEmbeddings, 16384);
  ASSERT_TRUE(c.yarn.has_value()); // 16384 > 4096
  EXPECT_DOUBLE_EQ(c.yarn->factor, 40.0);
  EXPECT_DOUBLE_EQ(c.yarn->mscale, 0.707);
  EXPECT_DOUBLE_EQ(c.yarn->mscaleAllDim, 0.707);
  double mscale = 0.1 * 0.707 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c.softmaxScale(), mscale * mscale / std::sqrt(192.0), 1e-15);
  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_TRUE(c.isMoeLayer(1));
}

TEST(ModelConfigBundled, DeepSeekInference236B) {
  ModelConfig c = readBundled("deepseek-inference-236B.json");
  EXPECT_EQ(c.hiddenSize, 5120);
  EXPECT_EQ(c.numHiddenLayers, 60);
  EXPECT_EQ(c.nRoutedExperts, 160);
  EXPECT_EQ(c.nGroup, 8);
  EXPECT_EQ(c.topkGroup, 3);
  EXPECT_EQ(c.numExpertsPerTok, 6);
  EXPECT_EQ(c.topkMethod, TopkMethod::GroupLimitedGreedy);
  EXPECT_EQ(c.scoringFunc, ScoringFunc::Softmax);
  EXPECT_FALSE(c.normTopkProb);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 16.0);
  EXPECT_EQ(c.qLoraRank, std::optional<int64_t>(1536));
  EXPECT_FALSE(c.fp8.has_value());
}

TEST(ModelConfigBundled, TinyGroupsQlora) {
  ModelConfig c = readBundled("tiny-groups-qlora.json");
  EXPECT_EQ(c.hiddenSize, 256);
  EXPECT_EQ(c.numHiddenLayers, 4);
  EXPECT_EQ(c.qLoraRank, std::optional<int64_t>(128));
  EXPECT_EQ(c.kvLoraRank + c.qkRopeHeadDim, 80); // a partial FP8 block
  EXPECT_EQ(c.nRoutedExperts, 16);
  EXPECT_EQ(c.nGroup, 4);
  EXPECT_EQ(c.topkGroup, 2);
  EXPECT_EQ(c.numExpertsPerTok, 4);
  EXPECT_EQ(c.topkMethod, TopkMethod::NoAuxTc);
  EXPECT_EQ(c.numNextnPredictLayers, 1);
  ASSERT_TRUE(c.yarn.has_value());
  EXPECT_DOUBLE_EQ(c.yarn->factor, 4.0);
  EXPECT_EQ(c.yarn->originalMaxPositionEmbeddings, 256);
  ASSERT_TRUE(c.fp8.has_value());
  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_TRUE(c.isMoeLayer(1));
  EXPECT_TRUE(c.isMoeLayer(4)); // the MTP layer
}

TEST(ModelConfigBundled, TinyNoQloraOneGroup) {
  ModelConfig c = readBundled("tiny-no-qlora-one-group.json");
  EXPECT_FALSE(c.qLoraRank.has_value());
  EXPECT_EQ(c.numHiddenLayers, 2);
  EXPECT_EQ(c.nRoutedExperts, 8);
  EXPECT_EQ(c.numExpertsPerTok, 2);
  EXPECT_EQ(c.nGroup, 1);
  EXPECT_EQ(c.topkGroup, 1);
  EXPECT_EQ(c.numNextnPredictLayers, 0);
  EXPECT_FALSE(c.yarn.has_value());
  EXPECT_FALSE(c.fp8.has_value());
  EXPECT_DOUBLE_EQ(c.softmaxScale(), 1.0 / std::sqrt(48.0));
  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_TRUE(c.isMoeLayer(1));
}

TEST(ModelConfigBundled, TinySoftmax) {
  ModelConfig c = readBundled("tiny-softmax.json");
  EXPECT_EQ(c.scoringFunc, ScoringFunc::Softmax);
  EXPECT_EQ(c.topkMethod, TopkMethod::Greedy);
  EXPECT_FALSE(c.normTopkProb);
  EXPECT_EQ(c.nSharedExperts, 2);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 1.0);
  EXPECT_EQ(c.qLoraRank, std::optional<int64_t>(64));
  EXPECT_EQ(c.firstKDenseReplace, 2);
  EXPECT_FALSE(c.yarn.has_value()); // "rope_scaling": null
  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_FALSE(c.isMoeLayer(1));
  EXPECT_TRUE(c.isMoeLayer(2));
}

// moe_layer_freq > 1 follows DeepSeek's remote code: layer i is MoE iff
// i >= first_k_dense_replace and i % moe_layer_freq == 0 (transformers' native
// DeepseekV3 ignores the field; every released config has 1).
TEST(ModelConfigParse, MoeLayerFrequency) {
  ModelConfig c = parseOk(json::Object{{"model_type", "deepseek_v3"},
                                       {"vocab_size", 64},
                                       {"hidden_size", 64},
                                       {"intermediate_size", 64},
                                       {"num_hidden_layers", 5},
                                       {"num_attention_heads", 2},
                                       {"kv_lora_rank", 16},
                                       {"qk_nope_head_dim", 8},
                                       {"qk_rope_head_dim", 8},
                                       {"v_head_dim", 8},
                                       {"n_routed_experts", 8},
                                       {"n_group", 1},
                                       {"topk_group", 1},
                                       {"num_experts_per_tok", 2},
                                       {"first_k_dense_replace", 1},
                                       {"moe_layer_freq", 2}});
  EXPECT_EQ(c.moeLayerFreq, 2);
  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_FALSE(c.isMoeLayer(1));
  EXPECT_TRUE(c.isMoeLayer(2));
  EXPECT_FALSE(c.isMoeLayer(3));
  EXPECT_TRUE(c.isMoeLayer(4));
}

//===----------------------------------------------------------------------===//
// Accepted variations.
//===----------------------------------------------------------------------===//

TEST(ModelConfigParse, HuggingFaceDefaults) {
  ModelConfig c = parseOk(json::Object{{"model_type", "deepseek_v3"},
                                       {"vocab_size", 1024},
                                       {"hidden_size", 256},
                                       {"intermediate_size", 512},
                                       {"num_hidden_layers", 4},
                                       {"num_attention_heads", 4},
                                       {"kv_lora_rank", 64},
                                       {"qk_nope_head_dim", 32},
                                       {"qk_rope_head_dim", 16},
                                       {"v_head_dim", 32}});
  EXPECT_EQ(c.qLoraRank, std::optional<int64_t>(1536));
  EXPECT_EQ(c.moeIntermediateSize, 2048);
  EXPECT_EQ(c.nSharedExperts, 1);
  EXPECT_EQ(c.nRoutedExperts, 256);
  EXPECT_EQ(c.numExpertsPerTok, 8);
  EXPECT_EQ(c.nGroup, 8);
  EXPECT_EQ(c.topkGroup, 4);
  EXPECT_EQ(c.topkMethod, TopkMethod::NoAuxTc);
  EXPECT_EQ(c.scoringFunc, ScoringFunc::Sigmoid);
  EXPECT_TRUE(c.normTopkProb);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 2.5);
  EXPECT_EQ(c.firstKDenseReplace, 3);
  EXPECT_EQ(c.moeLayerFreq, 1);
  EXPECT_EQ(c.numNextnPredictLayers, 0);
  EXPECT_DOUBLE_EQ(c.ropeTheta, 10000.0);
  EXPECT_FALSE(c.yarn.has_value());
  EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-6);
  EXPECT_EQ(c.maxPositionEmbeddings, 4096);
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_FALSE(c.fp8.has_value());
}

TEST(ModelConfigParse, UnknownExtraFieldsAreIgnored) {
  json::Object object = tinyHf();
  object["architectures"] = json::Array{"DeepseekV3ForCausalLM"};
  object["auto_map"] = json::Object{{"AutoConfig", "x.Y"}};
  object["aux_loss_alpha"] = 0.001;
  object["torch_dtype"] = "bfloat16";
  object["something_new"] = nullptr;
  json::Object rope = yarnScaling();
  rope["extra"] = true;
  object["rope_scaling"] = std::move(rope);
  json::Object quant = fp8Quantization();
  quant["modules_to_not_convert"] = nullptr;
  object["quantization_config"] = std::move(quant);
  EXPECT_EQ(errorOf(std::move(object)), "<no error>");
}

TEST(ModelConfigParse, QLoraRankNullZeroAndPresent) {
  json::Object object = tinyHf();
  object["q_lora_rank"] = nullptr;
  EXPECT_FALSE(parseOk(object).qLoraRank.has_value());
  object["q_lora_rank"] = 0;
  EXPECT_FALSE(parseOk(object).qLoraRank.has_value());
  object["q_lora_rank"] = 96;
  EXPECT_EQ(parseOk(object).qLoraRank, std::optional<int64_t>(96));
}

TEST(ModelConfigParse, NullExpertCounts) {
  json::Object object = tinyHf();
  object["n_routed_experts"] = nullptr;
  object["n_shared_experts"] = nullptr;
  ModelConfig c = parseOk(object);
  EXPECT_EQ(c.nRoutedExperts, 0);
  EXPECT_EQ(c.nSharedExperts, 0);
  for (int64_t layer = 0; layer < 5; ++layer)
    EXPECT_FALSE(c.isMoeLayer(layer));
}

TEST(ModelConfigParse, IntegralFloatsAreIntegers) {
  json::Object object = tinyHf();
  object["num_hidden_layers"] = 4.0;
  EXPECT_EQ(parseOk(object).numHiddenLayers, 4);
}

TEST(ModelConfigParse, RopeTypeKeyAndScaleFormat) {
  json::Object object = tinyHf();
  object["rope_scaling"] =
      json::Object{{"rope_type", "yarn"}, {"factor", 2.0}, {"mscale", 0.5}};
  json::Object quant = fp8Quantization();
  quant["scale_fmt"] = "ue8m0";
  quant["weight_block_size"] = json::Array{64, 32};
  object["quantization_config"] = std::move(quant);
  ModelConfig c = parseOk(object);
  ASSERT_TRUE(c.yarn.has_value());
  EXPECT_DOUBLE_EQ(c.yarn->factor, 2.0);
  EXPECT_EQ(c.yarn->originalMaxPositionEmbeddings, 4096);
  EXPECT_DOUBLE_EQ(c.yarn->mscale, 0.5);
  EXPECT_DOUBLE_EQ(c.yarn->mscaleAllDim, 0.0);
  // mscale_all_dim 0: no softmax correction.
  EXPECT_DOUBLE_EQ(c.softmaxScale(), 1.0 / std::sqrt(48.0));
  ASSERT_TRUE(c.fp8.has_value());
  EXPECT_EQ(c.fp8->scaleFormat, "ue8m0");
  EXPECT_EQ(c.fp8->blockRows, 64);
  EXPECT_EQ(c.fp8->blockCols, 32);
}

TEST(ModelConfigParse, TiedEmbeddingsWithMtp) {
  json::Object object = tinyHf();
  object["tie_word_embeddings"] = true;
  object["num_nextn_predict_layers"] = 1;
  ModelConfig c = parseOk(object);
  EXPECT_TRUE(c.tieWordEmbeddings);
  EXPECT_EQ(c.numNextnPredictLayers, 1);
}

TEST(ModelConfigParse, InferenceShortContextHasNoYarn) {
  json::Object object = tinyInference();
  object["max_seq_len"] = 4096;
  ModelConfig c = parseOk(object);
  EXPECT_FALSE(c.yarn.has_value());
  EXPECT_EQ(c.topkMethod, TopkMethod::GroupLimitedGreedy);
  object["dtype"] = "fp8";
  object["scale_fmt"] = "ue8m0";
  c = parseOk(object);
  ASSERT_TRUE(c.fp8.has_value());
  EXPECT_EQ(c.fp8->scaleFormat, "ue8m0");
}

//===----------------------------------------------------------------------===//
// Bad input, one test per class; each checks the whole message.
//===----------------------------------------------------------------------===//

TEST(ModelConfigError, MalformedJsonNamesLineAndColumn) {
  EXPECT_EQ(errorOf("{\n  \"vocab_size\": 1,\n  \"dim\" 2\n}"),
            "cfg.json:3:9: malformed JSON: Expected : after object key");
  EXPECT_EQ(errorOf("{\"dim\": 1,}"),
            "cfg.json:1:11: malformed JSON: Expected object key");
  EXPECT_EQ(errorOf(""), "cfg.json:1:1: malformed JSON: Unexpected EOF");
}

TEST(ModelConfigError, TopLevelNotAnObject) {
  EXPECT_EQ(errorOf("[1, 2]"),
            "cfg.json: top level must be a JSON object, got an array");
  EXPECT_EQ(errorOf("\"deepseek_v3\""),
            "cfg.json: top level must be a JSON object, got a string");
}

TEST(ModelConfigError, NeitherFormat) {
  EXPECT_EQ(errorOf("{\"hidden_size\": 7168}"),
            "cfg.json: not a Hugging Face config (no 'model_type') nor a "
            "DeepSeek inference config (no 'dim')");
}

TEST(ModelConfigError, MissingRequiredField) {
  EXPECT_EQ(errorWithout("hidden_size"),
            "cfg.json: missing required field 'hidden_size'");
  EXPECT_EQ(errorWithout("qk_rope_head_dim"),
            "cfg.json: missing required field 'qk_rope_head_dim'");
}

TEST(ModelConfigError, StringForInteger) {
  EXPECT_EQ(errorWith("n_group", "8"),
            "cfg.json: field 'n_group': expected an integer, got a string");
}

TEST(ModelConfigError, FractionForInteger) {
  EXPECT_EQ(
      errorWith("num_hidden_layers", 1.5),
      "cfg.json: field 'num_hidden_layers': expected an integer, got 1.5");
  EXPECT_EQ(errorWith("max_position_embeddings", 163840.5),
            "cfg.json: field 'max_position_embeddings': expected an integer, "
            "got 163840.5");
}

TEST(ModelConfigError, BooleanOrNullForInteger) {
  EXPECT_EQ(errorWith("vocab_size", true),
            "cfg.json: field 'vocab_size': expected an integer, got a boolean");
  EXPECT_EQ(errorWith("vocab_size", nullptr),
            "cfg.json: field 'vocab_size': expected an integer, got null");
}

TEST(ModelConfigError, IntegerForBoolean) {
  EXPECT_EQ(errorWith("norm_topk_prob", 1),
            "cfg.json: field 'norm_topk_prob': expected a boolean, got a "
            "number");
}

TEST(ModelConfigError, StringForFloat) {
  EXPECT_EQ(errorWith("rope_theta", "1e4"),
            "cfg.json: field 'rope_theta': expected a number, got a string");
  // llvm::json reads an overflowing literal as infinity.
  std::string text = serialize(tinyHf());
  text.insert(text.size() - 1, ",\"rms_norm_eps\":1e400");
  EXPECT_EQ(errorOf(text),
            "cfg.json: field 'rms_norm_eps': expected a finite number, got "
            "inf");
}

TEST(ModelConfigError, OutOfRange) {
  EXPECT_EQ(errorWith("num_hidden_layers", 0),
            "cfg.json: field 'num_hidden_layers': must be at least 1, got 0");
  EXPECT_EQ(errorWith("v_head_dim", -32),
            "cfg.json: field 'v_head_dim': must be at least 1, got -32");
  EXPECT_EQ(errorWith("q_lora_rank", -1),
            "cfg.json: field 'q_lora_rank': must be at least 1 (0 or null: no "
            "query compression), got -1");
  EXPECT_EQ(errorWith("routed_scaling_factor", 0),
            "cfg.json: field 'routed_scaling_factor': must be positive, got 0");
  EXPECT_EQ(errorWith("rms_norm_eps", -1e-6),
            "cfg.json: field 'rms_norm_eps': must be positive, got -1e-06");
  EXPECT_EQ(errorWith("moe_layer_freq", 0),
            "cfg.json: field 'moe_layer_freq': must be at least 1, got 0");
  EXPECT_EQ(errorWith("num_nextn_predict_layers", -1),
            "cfg.json: field 'num_nextn_predict_layers': must be at least 0, "
            "got -1");
  EXPECT_EQ(errorWith("first_k_dense_replace", -1),
            "cfg.json: field 'first_k_dense_replace': must be at least 0, got "
            "-1");
  EXPECT_EQ(errorWith("max_position_embeddings", 0),
            "cfg.json: field 'max_position_embeddings': must be at least 1, "
            "got 0");
}

TEST(ModelConfigError, OddRopeDim) {
  EXPECT_EQ(errorWith("qk_rope_head_dim", 15),
            "cfg.json: field 'qk_rope_head_dim': must be even (rotary "
            "embedding pairs), got 15");
}

TEST(ModelConfigError, ExpertsDoNotSplitIntoGroups) {
  EXPECT_EQ(errorWith("n_group", 3),
            "cfg.json: fields 'n_routed_experts' (16) and 'n_group' (3): the "
            "experts must split evenly into the groups");
}

TEST(ModelConfigError, MoreKeptGroupsThanGroups) {
  EXPECT_EQ(errorWith("topk_group", 5),
            "cfg.json: fields 'topk_group' (5) and 'n_group' (4): the router "
            "cannot keep more groups than there are");
}

TEST(ModelConfigError, TooManyExpertsPerToken) {
  EXPECT_EQ(
      errorWith("num_experts_per_tok", 17),
      "cfg.json: fields 'num_experts_per_tok' (17) and 'n_routed_experts' "
      "(16): the router cannot pick more experts than there are");
  EXPECT_EQ(errorWith("num_experts_per_tok", 9),
            "cfg.json: fields 'num_experts_per_tok' (9) and 'topk_group' (2) x "
            "experts per group (4): the router cannot pick more experts than "
            "the kept groups hold");
}

TEST(ModelConfigError, NoAuxTcGroupOfOne) {
  json::Object object = tinyHf();
  object["n_group"] = 16;
  object["topk_group"] = 4;
  EXPECT_EQ(errorOf(object),
            "cfg.json: fields 'n_routed_experts' (16) and 'n_group' (16): "
            "noaux_tc routing scores each group by its top-2 experts, so each "
            "group needs at least 2 experts");
  object["topk_method"] = "group_limited_greedy";
  EXPECT_EQ(errorOf(std::move(object)), "<no error>");
}

TEST(ModelConfigError, MoreDenseLayersThanLayers) {
  EXPECT_EQ(errorWith("first_k_dense_replace", 5),
            "cfg.json: fields 'first_k_dense_replace' (5) and "
            "'num_hidden_layers' (4): there cannot be more dense layers than "
            "layers");
  // All layers dense is fine.
  EXPECT_EQ(errorWith("first_k_dense_replace", 4), "<no error>");
}

TEST(ModelConfigError, UnsupportedModelType) {
  EXPECT_EQ(errorWith("model_type", "llama"),
            "cfg.json: field 'model_type': unsupported model type 'llama' "
            "(dsv3c compiles 'deepseek_v3')");
  EXPECT_EQ(errorWith("model_type", 3),
            "cfg.json: field 'model_type': expected a string, got a number");
}

TEST(ModelConfigError, UnsupportedQuantMethod) {
  json::Object quant = fp8Quantization();
  quant["quant_method"] = "gptq";
  EXPECT_EQ(errorWith("quantization_config", std::move(quant)),
            "cfg.json: field 'quantization_config.quant_method': unsupported "
            "quantization method 'gptq' (expected 'fp8')");
  EXPECT_EQ(errorWith("quantization_config", json::Object{{"fmt", "e4m3"}}),
            "cfg.json: missing required field "
            "'quantization_config.quant_method'");
  EXPECT_EQ(errorWith("quantization_config", "fp8"),
            "cfg.json: field 'quantization_config': expected an object, got a "
            "string");
}

TEST(ModelConfigError, UnsupportedFp8Variant) {
  json::Object quant = fp8Quantization();
  quant["fmt"] = "e5m2";
  EXPECT_EQ(errorWith("quantization_config", std::move(quant)),
            "cfg.json: field 'quantization_config.fmt': unsupported FP8 format "
            "'e5m2' (expected 'e4m3')");
  quant = fp8Quantization();
  quant["activation_scheme"] = "static";
  EXPECT_EQ(errorWith("quantization_config", std::move(quant)),
            "cfg.json: field 'quantization_config.activation_scheme': "
            "unsupported activation scheme 'static' (expected 'dynamic')");
  quant = fp8Quantization();
  quant["scale_fmt"] = "e8m0";
  EXPECT_EQ(errorWith("quantization_config", std::move(quant)),
            "cfg.json: field 'quantization_config.scale_fmt': unsupported "
            "scale format 'e8m0' (expected 'ue8m0' or null)");
}

TEST(ModelConfigError, BadWeightBlockSize) {
  auto withBlock = [](json::Value block) {
    json::Object quant = fp8Quantization();
    quant["weight_block_size"] = std::move(block);
    return errorWith("quantization_config", std::move(quant));
  };
  const std::string prefix =
      "cfg.json: field 'quantization_config.weight_block_size': expected an "
      "array of two positive integers, got ";
  EXPECT_EQ(withBlock(json::Array{128}), prefix + "1 elements");
  EXPECT_EQ(withBlock(json::Array{128, 128, 128}), prefix + "3 elements");
  EXPECT_EQ(withBlock(json::Array{128, 0}), prefix + "0 as element 1");
  EXPECT_EQ(withBlock(json::Array{"128", 128}),
            prefix + "a string as element 0");
  EXPECT_EQ(withBlock(json::Array{128, 1.5}), prefix + "1.5 as element 1");
  EXPECT_EQ(withBlock(128), prefix + "a number");
}

TEST(ModelConfigError, UnsupportedRopeType) {
  EXPECT_EQ(errorWith("rope_scaling",
                      json::Object{{"type", "linear"}, {"factor", 2}}),
            "cfg.json: field 'rope_scaling.type': unsupported rope scaling "
            "type 'linear' (dsv3c supports 'yarn')");
  EXPECT_EQ(errorWith("rope_scaling",
                      json::Object{{"rope_type", "dynamic"}, {"factor", 2}}),
            "cfg.json: field 'rope_scaling.rope_type': unsupported rope "
            "scaling type 'dynamic' (dsv3c supports 'yarn')");
  EXPECT_EQ(errorWith("rope_scaling", json::Object{{"factor", 2}}),
            "cfg.json: missing required field 'rope_scaling.type'");
}

TEST(ModelConfigError, UnsupportedTopkMethodAndScoringFunc) {
  EXPECT_EQ(errorWith("topk_method", "sinkhorn"),
            "cfg.json: field 'topk_method': unsupported top-k method "
            "'sinkhorn' (expected 'greedy', 'group_limited_greedy' or "
            "'noaux_tc')");
  EXPECT_EQ(errorWith("scoring_func", "relu"),
            "cfg.json: field 'scoring_func': unsupported scoring function "
            "'relu' (expected 'softmax' or 'sigmoid')");
}

TEST(ModelConfigError, NestedFieldNames) {
  json::Object rope = yarnScaling();
  rope.erase("factor");
  EXPECT_EQ(errorWith("rope_scaling", std::move(rope)),
            "cfg.json: missing required field 'rope_scaling.factor'");
  rope = yarnScaling();
  rope["factor"] = "40";
  EXPECT_EQ(errorWith("rope_scaling", std::move(rope)),
            "cfg.json: field 'rope_scaling.factor': expected a number, got a "
            "string");
  rope = yarnScaling();
  rope["factor"] = 0;
  EXPECT_EQ(errorWith("rope_scaling", std::move(rope)),
            "cfg.json: field 'rope_scaling.factor': must be positive, got 0");
  rope = yarnScaling();
  rope["original_max_position_embeddings"] = 256.5;
  EXPECT_EQ(errorWith("rope_scaling", std::move(rope)),
            "cfg.json: field 'rope_scaling.original_max_position_embeddings': "
            "expected an integer, got 256.5");
  rope = yarnScaling();
  rope["beta_fast"] = 1;
  rope["beta_slow"] = 32;
  EXPECT_EQ(errorWith("rope_scaling", std::move(rope)),
            "cfg.json: fields 'rope_scaling.beta_fast' (1) and "
            "'rope_scaling.beta_slow' (32): YaRN needs beta_fast > beta_slow "
            "(it keeps dimensions rotating faster than beta_fast unscaled)");
}

TEST(ModelConfigError, InferenceFormatNamesItsOwnFields) {
  json::Object object = tinyInference();
  object["n_expert_groups"] = 3;
  EXPECT_EQ(errorOf(object),
            "cfg.json: fields 'n_routed_experts' (16) and 'n_expert_groups' "
            "(3): the experts must split evenly into the groups");
  object = tinyInference();
  object["n_layers"] = 0;
  EXPECT_EQ(errorOf(object),
            "cfg.json: field 'n_layers': must be at least 1, got 0");
  object = tinyInference();
  object["dim"] = "7168";
  EXPECT_EQ(errorOf(object),
            "cfg.json: field 'dim': expected an integer, got a string");
  object = tinyInference();
  object["dtype"] = "fp16";
  EXPECT_EQ(errorOf(object), "cfg.json: field 'dtype': unsupported dtype "
                             "'fp16' (expected 'bf16' or 'fp8')");
  object = tinyInference();
  object["score_func"] = "tanh";
  EXPECT_EQ(errorOf(object),
            "cfg.json: field 'score_func': unsupported scoring function "
            "'tanh' (expected 'softmax' or 'sigmoid')");
  object = tinyInference();
  object["rope_factor"] = -1;
  EXPECT_EQ(errorOf(object),
            "cfg.json: field 'rope_factor': must be positive, got -1");
}

TEST(ModelConfigError, MissingFile) {
  std::string path = configPath("no-such-config.json");
  llvm::Expected<ModelConfig> config = readModelConfigFile(path);
  ASSERT_FALSE(static_cast<bool>(config));
  EXPECT_EQ(llvm::toString(config.takeError()),
            path + ": cannot read: No such file or directory");
}

} // namespace
