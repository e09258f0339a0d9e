//===- ModelConfig.h - DeepSeek-V3-family model configuration ----*- C++ -*-===//
//
// The model description every later stage works from. It is read from either a
// Hugging Face `config.json` (model_type "deepseek_v3") or the format of
// DeepSeek's own `inference/configs/*.json`; both become the same ModelConfig,
// with the Hugging Face meaning of every field (see DESIGN.md section 1).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_FRONTEND_MODELCONFIG_H
#define DSV3_FRONTEND_MODELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>

namespace dsv3 {

/// Which file format a configuration was read from.
enum class ConfigFormat { HuggingFace, DeepSeekInference };

/// How the router picks experts (Hugging Face `topk_method`).
enum class TopkMethod {
  Greedy,             ///< plain top-k over all experts
  GroupLimitedGreedy, ///< DeepSeek-V2: group score = max expert score in group
  NoAuxTc,            ///< DeepSeek-V3: group score = sum of top-2 biased scores
};

/// The router's score function (Hugging Face `scoring_func`).
enum class ScoringFunc { Softmax, Sigmoid };

llvm::StringRef stringifyTopkMethod(TopkMethod method);
llvm::StringRef stringifyScoringFunc(ScoringFunc func);

/// YaRN rope scaling (`rope_scaling` with type "yarn").
struct YarnRopeScaling {
  double factor = 1.0;
  int64_t originalMaxPositionEmbeddings = 4096;
  double betaFast = 32.0;
  double betaSlow = 1.0;
  double mscale = 1.0;
  double mscaleAllDim = 0.0;
};

/// Block-wise FP8 weight quantization (`quantization_config`, quant_method "fp8",
/// fmt "e4m3", activation_scheme "dynamic").
struct Fp8Quantization {
  int64_t blockRows = 128; ///< weight_block_size[0]: output rows per scale
  int64_t blockCols = 128; ///< weight_block_size[1]: input columns per scale
  /// Scale format: empty for plain fp32 scales, "ue8m0" for power-of-two scales
  /// (DeepSeek's `scale_fmt`).
  std::string scaleFormat;
};

struct ModelConfig {
  ConfigFormat format = ConfigFormat::HuggingFace;
  /// The path the configuration was read from (for messages), or "<input>".
  std::string sourceName;

  // Sizes.
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;    ///< dense MLP width
  int64_t moeIntermediateSize = 0; ///< routed expert width
  int64_t numHiddenLayers = 0;
  int64_t numAttentionHeads = 0;

  // Multi-head latent attention.
  std::optional<int64_t> qLoraRank; ///< nullopt: q projected directly (q_proj)
  int64_t kvLoraRank = 0;
  int64_t qkNopeHeadDim = 0;
  int64_t qkRopeHeadDim = 0;
  int64_t vHeadDim = 0;

  // Mixture of experts. nRoutedExperts == 0 means every layer is dense.
  int64_t nRoutedExperts = 0;
  int64_t nSharedExperts = 0;
  int64_t numExpertsPerTok = 0;
  int64_t nGroup = 1;
  int64_t topkGroup = 1;
  TopkMethod topkMethod = TopkMethod::NoAuxTc;
  ScoringFunc scoringFunc = ScoringFunc::Sigmoid;
  bool normTopkProb = true;
  double routedScalingFactor = 1.0;
  int64_t firstKDenseReplace = 0;
  int64_t moeLayerFreq = 1;

  /// Multi-token prediction modules, stored after the main layers.
  int64_t numNextnPredictLayers = 0;

  // Position encoding and normalization.
  double ropeTheta = 10000.0;
  std::optional<YarnRopeScaling> yarn;
  double rmsNormEps = 1e-6;
  int64_t maxPositionEmbeddings = 4096;
  bool tieWordEmbeddings = false;

  /// nullopt: BF16 weights.
  std::optional<Fp8Quantization> fp8;

  int64_t qkHeadDim() const { return qkNopeHeadDim + qkRopeHeadDim; }
  /// Layer `layer` (0-based; MTP layers count from numHiddenLayers) has a
  /// routed-expert MLP rather than a dense one.
  bool isMoeLayer(int64_t layer) const;
  /// qk_head_dim^-0.5, times mscale^2 under YaRN with mscale_all_dim.
  double softmaxScale() const;
};

/// Parses `json` (the text of `sourceName`) into a validated ModelConfig.
/// Errors name `sourceName` and the field at fault; malformed JSON names the
/// line and column.
llvm::Expected<ModelConfig> parseModelConfig(llvm::StringRef json,
                                             llvm::StringRef sourceName);

/// Reads and parses the configuration file at `path`.
llvm::Expected<ModelConfig> readModelConfigFile(llvm::StringRef path);

} // namespace dsv3

#endif // DSV3_FRONTEND_MODELCONFIG_H
