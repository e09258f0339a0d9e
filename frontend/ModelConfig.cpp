//===- ModelConfig.cpp - DeepSeek-V3-family model configuration -----------===//
//
// Reads a Hugging Face `config.json` (model_type "deepseek_v3") or one of
// DeepSeek's `inference/configs/*.json` into a ModelConfig and validates it.
// Every error is one line, starts with the source name and names the field at
// fault in single quotes (nested fields with dots), so that a user can find
// and fix it without reading this file.
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelConfig.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace dsv3;
using llvm::StringRef;
using llvm::Twine;
namespace json = llvm::json;

llvm::StringRef dsv3::stringifyTopkMethod(TopkMethod method) {
  switch (method) {
  case TopkMethod::Greedy:
    return "greedy";
  case TopkMethod::GroupLimitedGreedy:
    return "group_limited_greedy";
  case TopkMethod::NoAuxTc:
    return "noaux_tc";
  }
  llvm_unreachable("unknown TopkMethod");
}

llvm::StringRef dsv3::stringifyScoringFunc(ScoringFunc func) {
  switch (func) {
  case ScoringFunc::Softmax:
    return "softmax";
  case ScoringFunc::Sigmoid:
    return "sigmoid";
  }
  llvm_unreachable("unknown ScoringFunc");
}

bool ModelConfig::isMoeLayer(int64_t layer) const {
  // Hugging Face's rule, applied to MTP layers too (they are built by the same
  // DeepseekV3DecoderLayer with their index past the main layers).
  return nRoutedExperts > 0 && layer >= firstKDenseReplace &&
         layer % moeLayerFreq == 0;
}

double ModelConfig::softmaxScale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qkHeadDim()));
  // As in Hugging Face's DeepseekV3Attention: yarn_get_mscale returns 1 for
  // factor <= 1, and mscale_all_dim == 0 disables the correction.
  if (yarn && yarn->mscaleAllDim != 0.0 && yarn->factor > 1.0) {
    double mscale = 0.1 * yarn->mscaleAllDim * std::log(yarn->factor) + 1.0;
    scale *= mscale * mscale;
  }
  return scale;
}

namespace {

/// Formats a number for messages with the fewest significant digits that
/// read back as the same double (0.707, not 0.70699999999999996), so that a
/// value like 163840.5 is never shown as an integer.
std::string formatNumber(double value) {
  char buf[32];
  for (int precision = 6; precision < 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value)
      return buf;
  }
  std::snprintf(buf, sizeof(buf), "%.17g", value);
  return buf;
}

/// Describes the kind of a JSON value for "expected X, got Y" messages.
std::string describeKind(const json::Value &value) {
  switch (value.kind()) {
  case json::Value::Null:
    return "null";
  case json::Value::Boolean:
    return "a boolean";
  case json::Value::Number:
    return "a number";
  case json::Value::String:
    return "a string";
  case json::Value::Array:
    return "an array";
  case json::Value::Object:
    return "an object";
  }
  llvm_unreachable("unknown json::Value kind");
}

/// Keeps the first error of a parse. Readers go on after a failure (their
/// results are then ignored) so that the parsing code needs no early return
/// after every field; the first error is the one the user should fix first.
class ErrorSink {
public:
  explicit ErrorSink(StringRef sourceName) : sourceName(sourceName.str()) {}

  void fail(const Twine &message) {
    if (!firstError)
      firstError = (sourceName + ": " + message).str();
  }
  bool failed() const { return firstError.has_value(); }
  llvm::Error takeError() {
    if (!firstError)
      return llvm::Error::success();
    std::string message = std::move(*firstError);
    firstError.reset();
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  }

private:
  std::string sourceName;
  std::optional<std::string> firstError;
};

/// Typed access to the fields of one JSON object. `prefix` is the dotted path
/// of the object ("" at top level, "rope_scaling." inside it) so that messages
/// name nested fields fully.
class FieldReader {
public:
  FieldReader(const json::Object &object, StringRef prefix, ErrorSink &errors)
      : object(object), prefix(prefix.str()), errors(errors) {}

  std::string name(StringRef key) const { return prefix + key.str(); }
  const json::Value *lookup(StringRef key) const { return object.get(key); }
  bool has(StringRef key) const { return lookup(key) != nullptr; }
  bool isNull(StringRef key) const {
    const json::Value *value = lookup(key);
    return value && value->kind() == json::Value::Null;
  }
  ErrorSink &sink() { return errors; }

  void missing(StringRef key) {
    errors.fail("missing required field '" + name(key) + "'");
  }
  void fieldError(StringRef key, const Twine &message) {
    errors.fail("field '" + name(key) + "': " + message);
  }

  /// Converts `value` (the value of `key`) to an integer; JSON numbers with a
  /// zero fraction (8.0) are accepted since some writers emit them.
  std::optional<int64_t> toInt(StringRef key, const json::Value &value) {
    if (value.kind() != json::Value::Number) {
      fieldError(key, "expected an integer, got " + describeKind(value));
      return std::nullopt;
    }
    if (std::optional<int64_t> result = value.getAsInteger())
      return result;
    fieldError(key, "expected an integer, got " +
                        formatNumber(*value.getAsNumber()));
    return std::nullopt;
  }

  std::optional<double> toDouble(StringRef key, const json::Value &value) {
    if (value.kind() != json::Value::Number) {
      fieldError(key, "expected a number, got " + describeKind(value));
      return std::nullopt;
    }
    double result = *value.getAsNumber();
    // llvm::json turns overflowing literals such as 1e400 into infinity.
    if (!std::isfinite(result)) {
      fieldError(key, "expected a finite number, got " + formatNumber(result));
      return std::nullopt;
    }
    return result;
  }

  void requiredInt(StringRef key, int64_t &out) {
    if (const json::Value *value = lookup(key)) {
      if (std::optional<int64_t> result = toInt(key, *value))
        out = *result;
      return;
    }
    missing(key);
  }

  /// Leaves `out` (the default) alone when the field is absent.
  void optionalInt(StringRef key, int64_t &out) {
    if (const json::Value *value = lookup(key))
      if (std::optional<int64_t> result = toInt(key, *value))
        out = *result;
  }

  /// Like optionalInt, but null stands for `nullValue`.
  void optionalNullableInt(StringRef key, int64_t &out, int64_t nullValue) {
    if (isNull(key)) {
      out = nullValue;
      return;
    }
    optionalInt(key, out);
  }

  void requiredDouble(StringRef key, double &out) {
    if (const json::Value *value = lookup(key)) {
      if (std::optional<double> result = toDouble(key, *value))
        out = *result;
      return;
    }
    missing(key);
  }

  void optionalDouble(StringRef key, double &out) {
    if (const json::Value *value = lookup(key))
      if (std::optional<double> result = toDouble(key, *value))
        out = *result;
  }

  void optionalBool(StringRef key, bool &out) {
    const json::Value *value = lookup(key);
    if (!value)
      return;
    if (std::optional<bool> result = value->getAsBoolean()) {
      out = *result;
      return;
    }
    fieldError(key, "expected a boolean, got " + describeKind(*value));
  }

  /// Returns the string value of `key`, or nullopt when it is absent or (when
  /// `allowNull`) null. A value of another kind is an error.
  std::optional<std::string> optionalString(StringRef key,
                                            bool allowNull = false) {
    const json::Value *value = lookup(key);
    if (!value || (allowNull && value->kind() == json::Value::Null))
      return std::nullopt;
    if (std::optional<StringRef> result = value->getAsString())
      return result->str();
    fieldError(key, "expected a string, got " + describeKind(*value));
    return std::nullopt;
  }

  /// Returns the object value of `key`, or nullptr when it is absent or null.
  const json::Object *optionalObject(StringRef key) {
    const json::Value *value = lookup(key);
    if (!value || value->kind() == json::Value::Null)
      return nullptr;
    if (const json::Object *result = value->getAsObject())
      return result;
    fieldError(key, "expected an object, got " + describeKind(*value));
    return nullptr;
  }

private:
  const json::Object &object;
  std::string prefix;
  ErrorSink &errors;
};

/// The names the validation messages use for each ModelConfig member; they
/// differ between the two formats so that a message names the key the user
/// actually wrote.
struct FieldNames {
  const char *vocabSize;
  const char *hiddenSize;
  const char *intermediateSize;
  const char *moeIntermediateSize;
  const char *numHiddenLayers;
  const char *numAttentionHeads;
  const char *qLoraRank;
  const char *kvLoraRank;
  const char *qkNopeHeadDim;
  const char *qkRopeHeadDim;
  const char *vHeadDim;
  const char *nRoutedExperts;
  const char *nSharedExperts;
  const char *numExpertsPerTok;
  const char *nGroup;
  const char *topkGroup;
  const char *routedScalingFactor;
  const char *firstKDenseReplace;
  const char *moeLayerFreq;
  const char *numNextnPredictLayers;
  const char *ropeTheta;
  const char *yarnFactor;
  const char *yarnOriginalMaxPositionEmbeddings;
  const char *yarnBetaFast;
  const char *yarnBetaSlow;
  const char *rmsNormEps;
  const char *maxPositionEmbeddings;
};

// One name per line, in the order of FieldNames' members.
// clang-format off
constexpr FieldNames kHuggingFaceNames = {
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "moe_intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "n_routed_experts",
    "n_shared_experts",
    "num_experts_per_tok",
    "n_group",
    "topk_group",
    "routed_scaling_factor",
    "first_k_dense_replace",
    "moe_layer_freq",
    "num_nextn_predict_layers",
    "rope_theta",
    "rope_scaling.factor",
    "rope_scaling.original_max_position_embeddings",
    "rope_scaling.beta_fast",
    "rope_scaling.beta_slow",
    "rms_norm_eps",
    "max_position_embeddings",
};

// Members the inference format has no key for (rms_norm_eps, MTP layers,
// moe_layer_freq) are fixed by us and cannot fail validation; their names are
// only placeholders.
constexpr FieldNames kDeepSeekInferenceNames = {
    "vocab_size",
    "dim",
    "inter_dim",
    "moe_inter_dim",
    "n_layers",
    "n_heads",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "n_routed_experts",
    "n_shared_experts",
    "n_activated_experts",
    "n_expert_groups",
    "n_limited_groups",
    "route_scale",
    "n_dense_layers",
    "moe_layer_freq",
    "num_nextn_predict_layers",
    "rope_theta",
    "rope_factor",
    "original_seq_len",
    "beta_fast",
    "beta_slow",
    "rms_norm_eps",
    "max_seq_len",
};
// clang-format on

/// Reads a q_lora_rank value where 0 (and, in Hugging Face configs, null)
/// means the query is projected directly.
void readQLoraRank(FieldReader &reader, StringRef key, int64_t defaultRank,
                   std::optional<int64_t> &out) {
  out = defaultRank > 0 ? std::optional<int64_t>(defaultRank) : std::nullopt;
  if (reader.isNull(key)) {
    out = std::nullopt;
    return;
  }
  const json::Value *value = reader.lookup(key);
  if (!value)
    return;
  std::optional<int64_t> rank = reader.toInt(key, *value);
  if (!rank)
    return;
  if (*rank < 0) {
    reader.fieldError(key, "must be at least 1 (0 or null: no query "
                           "compression), got " +
                               Twine(*rank));
    return;
  }
  out = *rank == 0 ? std::nullopt : std::optional<int64_t>(*rank);
}

/// Reads an FP8 scale format: null or "ue8m0".
void readScaleFormat(FieldReader &reader, StringRef key, std::string &out) {
  std::optional<std::string> format =
      reader.optionalString(key, /*allowNull=*/true);
  if (!format)
    return;
  if (*format != "ue8m0") {
    reader.fieldError(key, "unsupported scale format '" + *format +
                               "' (expected 'ue8m0' or null)");
    return;
  }
  out = *format;
}

void readTopkMethod(FieldReader &reader, StringRef key, TopkMethod &out) {
  std::optional<std::string> method = reader.optionalString(key);
  if (!method)
    return;
  if (*method == "greedy")
    out = TopkMethod::Greedy;
  else if (*method == "group_limited_greedy")
    out = TopkMethod::GroupLimitedGreedy;
  else if (*method == "noaux_tc")
    out = TopkMethod::NoAuxTc;
  else
    reader.fieldError(key, "unsupported top-k method '" + *method +
                               "' (expected 'greedy', 'group_limited_greedy' "
                               "or 'noaux_tc')");
}

void readScoringFunc(FieldReader &reader, StringRef key, ScoringFunc &out) {
  std::optional<std::string> func = reader.optionalString(key);
  if (!func)
    return;
  if (*func == "softmax")
    out = ScoringFunc::Softmax;
  else if (*func == "sigmoid")
    out = ScoringFunc::Sigmoid;
  else
    reader.fieldError(key, "unsupported scoring function '" + *func +
                               "' (expected 'softmax' or 'sigmoid')");
}

/// Reads `rope_scaling` (absent or null: no scaling; else YaRN).
void readHfRopeScaling(FieldReader &top, ModelConfig &config) {
  const json::Object *object = top.optionalObject("rope_scaling");
  if (!object)
    return;
  FieldReader reader(*object, "rope_scaling.", top.sink());
  // Older configs say "type", newer transformers "rope_type".
  StringRef typeKey = reader.has("type") ? "type" : "rope_type";
  std::optional<std::string> type = reader.optionalString(typeKey);
  if (!type) {
    if (!reader.has(typeKey))
      reader.missing("type");
    return;
  }
  if (*type != "yarn") {
    reader.fieldError(typeKey, "unsupported rope scaling type '" + *type +
                                   "' (dsv3c supports 'yarn')");
    return;
  }
  YarnRopeScaling yarn;
  reader.requiredDouble("factor", yarn.factor);
  reader.optionalInt("original_max_position_embeddings",
                     yarn.originalMaxPositionEmbeddings);
  reader.optionalDouble("beta_fast", yarn.betaFast);
  reader.optionalDouble("beta_slow", yarn.betaSlow);
  reader.optionalDouble("mscale", yarn.mscale);
  reader.optionalDouble("mscale_all_dim", yarn.mscaleAllDim);
  config.yarn = yarn;
}

/// Reads `weight_block_size`: exactly two positive integers.
void readWeightBlockSize(FieldReader &reader, Fp8Quantization &fp8) {
  const json::Value *value = reader.lookup("weight_block_size");
  if (!value)
    return;
  const char *expected = "expected an array of two positive integers, got ";
  const json::Array *array = value->getAsArray();
  if (!array) {
    reader.fieldError("weight_block_size", expected + describeKind(*value));
    return;
  }
  if (array->size() != 2) {
    reader.fieldError("weight_block_size",
                      expected + Twine(array->size()) + " elements");
    return;
  }
  int64_t sizes[2];
  for (size_t i = 0; i < 2; ++i) {
    const json::Value &element = (*array)[i];
    std::optional<int64_t> size = element.getAsInteger();
    if (!size || *size < 1) {
      std::string got = element.kind() == json::Value::Number
                            ? formatNumber(*element.getAsNumber())
                            : describeKind(element);
      reader.fieldError("weight_block_size",
                        Twine(expected) + got + " as element " + Twine(i));
      return;
    }
    sizes[i] = *size;
  }
  fp8.blockRows = sizes[0];
  fp8.blockCols = sizes[1];
}

/// Reads `quantization_config` (absent or null: BF16 weights).
void readHfQuantization(FieldReader &top, ModelConfig &config) {
  const json::Object *object = top.optionalObject("quantization_config");
  if (!object)
    return;
  FieldReader reader(*object, "quantization_config.", top.sink());
  std::optional<std::string> method = reader.optionalString("quant_method");
  if (!method) {
    if (!reader.has("quant_method"))
      reader.missing("quant_method");
    return;
  }
  if (*method != "fp8") {
    reader.fieldError("quant_method", "unsupported quantization method '" +
                                          *method + "' (expected 'fp8')");
    return;
  }
  if (std::optional<std::string> fmt = reader.optionalString("fmt"))
    if (*fmt != "e4m3")
      reader.fieldError("fmt", "unsupported FP8 format '" + *fmt +
                                   "' (expected 'e4m3')");
  if (std::optional<std::string> scheme =
          reader.optionalString("activation_scheme"))
    if (*scheme != "dynamic")
      reader.fieldError("activation_scheme", "unsupported activation scheme '" +
                                                 *scheme +
                                                 "' (expected 'dynamic')");
  Fp8Quantization fp8;
  readWeightBlockSize(reader, fp8);
  readScaleFormat(reader, "scale_fmt", fp8.scaleFormat);
  config.fp8 = fp8;
}

/// Reads a Hugging Face config.json. Defaults are those of transformers'
/// DeepseekV3Config where it has one; the sizes are required since a default
/// of 671B would silently hide a truncated file.
void readHuggingFace(FieldReader &reader, ModelConfig &config) {
  config.format = ConfigFormat::HuggingFace;

  if (std::optional<std::string> type = reader.optionalString("model_type"))
    if (*type != "deepseek_v3")
      reader.fieldError("model_type", "unsupported model type '" + *type +
                                          "' (dsv3c compiles 'deepseek_v3')");

  reader.requiredInt("vocab_size", config.vocabSize);
  reader.requiredInt("hidden_size", config.hiddenSize);
  reader.requiredInt("intermediate_size", config.intermediateSize);
  reader.requiredInt("num_hidden_layers", config.numHiddenLayers);
  reader.requiredInt("num_attention_heads", config.numAttentionHeads);
  reader.requiredInt("kv_lora_rank", config.kvLoraRank);
  reader.requiredInt("qk_nope_head_dim", config.qkNopeHeadDim);
  reader.requiredInt("qk_rope_head_dim", config.qkRopeHeadDim);
  reader.requiredInt("v_head_dim", config.vHeadDim);
  readQLoraRank(reader, "q_lora_rank", /*defaultRank=*/1536, config.qLoraRank);

  config.moeIntermediateSize = 2048;
  reader.optionalInt("moe_intermediate_size", config.moeIntermediateSize);
  config.nSharedExperts = 1;
  reader.optionalNullableInt("n_shared_experts", config.nSharedExperts, 0);
  // null routed experts: every layer dense (transformers' convention).
  config.nRoutedExperts = 256;
  reader.optionalNullableInt("n_routed_experts", config.nRoutedExperts, 0);
  config.numExpertsPerTok = 8;
  reader.optionalInt("num_experts_per_tok", config.numExpertsPerTok);
  config.nGroup = 8;
  reader.optionalInt("n_group", config.nGroup);
  config.topkGroup = 4;
  reader.optionalInt("topk_group", config.topkGroup);
  config.topkMethod = TopkMethod::NoAuxTc;
  readTopkMethod(reader, "topk_method", config.topkMethod);
  config.scoringFunc = ScoringFunc::Sigmoid;
  readScoringFunc(reader, "scoring_func", config.scoringFunc);
  config.normTopkProb = true;
  reader.optionalBool("norm_topk_prob", config.normTopkProb);
  config.routedScalingFactor = 2.5;
  reader.optionalDouble("routed_scaling_factor", config.routedScalingFactor);
  config.firstKDenseReplace = 3;
  reader.optionalInt("first_k_dense_replace", config.firstKDenseReplace);
  config.moeLayerFreq = 1;
  reader.optionalInt("moe_layer_freq", config.moeLayerFreq);
  config.numNextnPredictLayers = 0;
  reader.optionalInt("num_nextn_predict_layers", config.numNextnPredictLayers);

  config.ropeTheta = 10000.0;
  reader.optionalDouble("rope_theta", config.ropeTheta);
  readHfRopeScaling(reader, config);
  config.rmsNormEps = 1e-6;
  reader.optionalDouble("rms_norm_eps", config.rmsNormEps);
  config.maxPositionEmbeddings = 4096;
  reader.optionalInt("max_position_embeddings", config.maxPositionEmbeddings);
  config.tieWordEmbeddings = false;
  reader.optionalBool("tie_word_embeddings", config.tieWordEmbeddings);

  readHfQuantization(reader, config);
}

/// Reads the format of DeepSeek-V3's inference/configs/*.json (the fields of
/// ModelArgs in inference/model.py, with its defaults) and translates it to
/// the Hugging Face meaning of every field.
void readDeepSeekInference(FieldReader &reader, ModelConfig &config) {
  config.format = ConfigFormat::DeepSeekInference;

  config.vocabSize = 102400;
  reader.optionalInt("vocab_size", config.vocabSize);
  config.hiddenSize = 2048;
  reader.optionalInt("dim", config.hiddenSize);
  config.intermediateSize = 10944;
  reader.optionalInt("inter_dim", config.intermediateSize);
  config.moeIntermediateSize = 1408;
  reader.optionalInt("moe_inter_dim", config.moeIntermediateSize);
  config.numHiddenLayers = 27;
  reader.optionalInt("n_layers", config.numHiddenLayers);
  config.firstKDenseReplace = 1;
  reader.optionalInt("n_dense_layers", config.firstKDenseReplace);
  config.numAttentionHeads = 16;
  reader.optionalInt("n_heads", config.numAttentionHeads);
  config.nRoutedExperts = 64;
  reader.optionalInt("n_routed_experts", config.nRoutedExperts);
  config.nSharedExperts = 2;
  reader.optionalInt("n_shared_experts", config.nSharedExperts);
  config.numExpertsPerTok = 6;
  reader.optionalInt("n_activated_experts", config.numExpertsPerTok);
  config.nGroup = 1;
  reader.optionalInt("n_expert_groups", config.nGroup);
  config.topkGroup = 1;
  reader.optionalInt("n_limited_groups", config.topkGroup);
  config.scoringFunc = ScoringFunc::Softmax;
  readScoringFunc(reader, "score_func", config.scoringFunc);
  config.routedScalingFactor = 1.0;
  reader.optionalDouble("route_scale", config.routedScalingFactor);

  readQLoraRank(reader, "q_lora_rank", /*defaultRank=*/0, config.qLoraRank);
  config.kvLoraRank = 512;
  reader.optionalInt("kv_lora_rank", config.kvLoraRank);
  config.qkNopeHeadDim = 128;
  reader.optionalInt("qk_nope_head_dim", config.qkNopeHeadDim);
  config.qkRopeHeadDim = 64;
  reader.optionalInt("qk_rope_head_dim", config.qkRopeHeadDim);
  config.vHeadDim = 128;
  reader.optionalInt("v_head_dim", config.vHeadDim);

  YarnRopeScaling yarn;
  yarn.originalMaxPositionEmbeddings = 4096;
  reader.optionalInt("original_seq_len", yarn.originalMaxPositionEmbeddings);
  config.ropeTheta = 10000.0;
  reader.optionalDouble("rope_theta", config.ropeTheta);
  yarn.factor = 40.0;
  reader.optionalDouble("rope_factor", yarn.factor);
  yarn.betaFast = 32.0;
  reader.optionalDouble("beta_fast", yarn.betaFast);
  yarn.betaSlow = 1.0;
  reader.optionalDouble("beta_slow", yarn.betaSlow);
  double mscale = 1.0;
  reader.optionalDouble("mscale", mscale);
  config.maxPositionEmbeddings = 16384;
  reader.optionalInt("max_seq_len", config.maxPositionEmbeddings);

  std::optional<std::string> dtype = reader.optionalString("dtype");
  std::string scaleFormat;
  readScaleFormat(reader, "scale_fmt", scaleFormat);
  if (dtype && *dtype != "bf16" && *dtype != "fp8")
    reader.fieldError("dtype", "unsupported dtype '" + *dtype +
                                   "' (expected 'bf16' or 'fp8')");
  if (dtype && *dtype == "fp8") {
    // The demo's block_size is a fixed 128 for both dimensions.
    Fp8Quantization fp8;
    fp8.scaleFormat = scaleFormat;
    config.fp8 = fp8;
  }
  // max_batch_size is a runtime limit of the demo, not part of the model.

  // The demo's quirks, mirrored so that both formats of a model compile to
  // what inference/model.py computes:
  // - Gate only has an e_score_correction_bias when dim == 7168 (that is,
  //   DeepSeek-V3), and with the bias it scores groups by their top-2 sum
  //   (noaux_tc); without it a group scores its max expert, which is
  //   group_limited_greedy when there are groups to limit and greedy else.
  if (config.hiddenSize == 7168)
    config.topkMethod = TopkMethod::NoAuxTc;
  else if (config.nGroup > 1)
    config.topkMethod = TopkMethod::GroupLimitedGreedy;
  else
    config.topkMethod = TopkMethod::Greedy;
  // - Gate renormalizes the top-k weights only for sigmoid scores.
  config.normTopkProb = config.scoringFunc == ScoringFunc::Sigmoid;
  // - precompute_freqs_cis and MLA apply YaRN only when max_seq_len exceeds
  //   original_seq_len, and MLA's softmax correction uses `mscale` where
  //   Hugging Face has mscale_all_dim (with both equal, YaRN's cos/sin factor
  //   mscale / mscale_all_dim is 1, as in the demo). The demo also applies the
  //   correction for rope_factor < 1, where Hugging Face (and softmaxScale)
  //   does not; no published config has such a factor.
  if (config.maxPositionEmbeddings > yarn.originalMaxPositionEmbeddings) {
    yarn.mscale = mscale;
    yarn.mscaleAllDim = mscale;
    config.yarn = yarn;
  }
  // - No MTP module, every MoE layer after the dense ones, RMSNorm eps 1e-6,
  //   separate embedding and head.
  config.rmsNormEps = 1e-6;
  config.numNextnPredictLayers = 0;
  config.moeLayerFreq = 1;
  config.tieWordEmbeddings = false;
}

/// Checks the ranges of single fields and the consistency of related ones.
/// Reports the first problem through `errors`.
void validate(const ModelConfig &config, const FieldNames &names,
              ErrorSink &errors) {
  auto atLeast = [&](const char *field, int64_t value, int64_t minimum) {
    if (value < minimum)
      errors.fail(Twine("field '") + field + "': must be at least " +
                  Twine(minimum) + ", got " + Twine(value));
  };
  auto positive = [&](const char *field, double value) {
    if (!(value > 0.0))
      errors.fail(Twine("field '") + field + "': must be positive, got " +
                  formatNumber(value));
  };
  auto inconsistent = [&](const char *first, int64_t firstValue,
                          const char *second, int64_t secondValue,
                          const Twine &why) {
    errors.fail(Twine("fields '") + first + "' (" + Twine(firstValue) +
                ") and '" + second + "' (" + Twine(secondValue) + "): " + why);
  };

  atLeast(names.vocabSize, config.vocabSize, 1);
  atLeast(names.hiddenSize, config.hiddenSize, 1);
  atLeast(names.intermediateSize, config.intermediateSize, 1);
  atLeast(names.numAttentionHeads, config.numAttentionHeads, 1);
  atLeast(names.numHiddenLayers, config.numHiddenLayers, 1);
  atLeast(names.kvLoraRank, config.kvLoraRank, 1);
  atLeast(names.qkNopeHeadDim, config.qkNopeHeadDim, 1);
  atLeast(names.qkRopeHeadDim, config.qkRopeHeadDim, 1);
  atLeast(names.vHeadDim, config.vHeadDim, 1);
  // RoPE rotates interleaved pairs of channels.
  if (config.qkRopeHeadDim % 2 != 0)
    errors.fail(Twine("field '") + names.qkRopeHeadDim +
                "': must be even (rotary embedding pairs), got " +
                Twine(config.qkRopeHeadDim));
  if (config.qLoraRank)
    atLeast(names.qLoraRank, *config.qLoraRank, 1);

  atLeast(names.nRoutedExperts, config.nRoutedExperts, 0);
  atLeast(names.nSharedExperts, config.nSharedExperts, 0);
  if (config.nRoutedExperts > 0) {
    atLeast(names.moeIntermediateSize, config.moeIntermediateSize, 1);
    atLeast(names.numExpertsPerTok, config.numExpertsPerTok, 1);
    atLeast(names.nGroup, config.nGroup, 1);
    atLeast(names.topkGroup, config.topkGroup, 1);
    positive(names.routedScalingFactor, config.routedScalingFactor);
    // The range checks above guard the divisions below.
    if (!errors.failed()) {
      if (config.numExpertsPerTok > config.nRoutedExperts)
        inconsistent(names.numExpertsPerTok, config.numExpertsPerTok,
                     names.nRoutedExperts, config.nRoutedExperts,
                     "the router cannot pick more experts than there are");
      else if (config.nRoutedExperts % config.nGroup != 0)
        inconsistent(names.nRoutedExperts, config.nRoutedExperts, names.nGroup,
                     config.nGroup,
                     "the experts must split evenly into the groups");
      else if (config.topkGroup > config.nGroup)
        inconsistent(names.topkGroup, config.topkGroup, names.nGroup,
                     config.nGroup,
                     "the router cannot keep more groups than there are");
    }
    if (!errors.failed()) {
      int64_t perGroup = config.nRoutedExperts / config.nGroup;
      if (config.numExpertsPerTok > config.topkGroup * perGroup)
        errors.fail(Twine("fields '") + names.numExpertsPerTok + "' (" +
                    Twine(config.numExpertsPerTok) + ") and '" +
                    names.topkGroup + "' (" + Twine(config.topkGroup) +
                    ") x experts per group (" + Twine(perGroup) +
                    "): the router cannot pick more experts than the kept "
                    "groups hold");
      else if (config.topkMethod == TopkMethod::NoAuxTc && perGroup < 2)
        // noaux_tc scores a group by the sum of its two best experts.
        inconsistent(names.nRoutedExperts, config.nRoutedExperts, names.nGroup,
                     config.nGroup,
                     "noaux_tc routing scores each group by its top-2 "
                     "experts, so each group needs at least 2 experts");
    }
  }

  atLeast(names.firstKDenseReplace, config.firstKDenseReplace, 0);
  if (config.firstKDenseReplace > config.numHiddenLayers &&
      config.numHiddenLayers >= 1)
    inconsistent(names.firstKDenseReplace, config.firstKDenseReplace,
                 names.numHiddenLayers, config.numHiddenLayers,
                 "there cannot be more dense layers than layers");
  atLeast(names.moeLayerFreq, config.moeLayerFreq, 1);
  atLeast(names.numNextnPredictLayers, config.numNextnPredictLayers, 0);

  positive(names.ropeTheta, config.ropeTheta);
  positive(names.rmsNormEps, config.rmsNormEps);
  atLeast(names.maxPositionEmbeddings, config.maxPositionEmbeddings, 1);
  if (config.yarn) {
    positive(names.yarnFactor, config.yarn->factor);
    atLeast(names.yarnOriginalMaxPositionEmbeddings,
            config.yarn->originalMaxPositionEmbeddings, 1);
    if (!(config.yarn->betaFast > config.yarn->betaSlow))
      errors.fail(Twine("fields '") + names.yarnBetaFast + "' (" +
                  formatNumber(config.yarn->betaFast) + ") and '" +
                  names.yarnBetaSlow + "' (" +
                  formatNumber(config.yarn->betaSlow) +
                  "): YaRN needs beta_fast > beta_slow (it keeps "
                  "dimensions rotating faster than beta_fast unscaled)");
  }
}

/// Turns llvm::json's parse error, whose text is "[L:C, byte=B]: message"
/// (ParseError has no accessors), into "file:L:C: malformed JSON: message".
/// LLVM's column counts the characters before its read position, which is
/// just past the offending character, so it is that character's 1-based
/// column; it is 0 only at the start of an empty line or input.
llvm::Error makeMalformedJsonError(llvm::Error parseError,
                                   StringRef sourceName) {
  std::string text = llvm::toString(std::move(parseError));
  StringRef rest = text;
  unsigned line = 0, column = 0;
  StringRef message;
  bool matched = false;
  if (rest.consume_front("[") && !rest.consumeInteger(10, line) &&
      rest.consume_front(":") && !rest.consumeInteger(10, column)) {
    size_t close = rest.find("]: ");
    if (close != StringRef::npos) {
      message = rest.drop_front(close + 3);
      matched = true;
    }
  }
  if (!matched)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   sourceName + ": malformed JSON: " + text);
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 sourceName + ":" + Twine(line) + ":" +
                                     Twine(std::max(column, 1u)) +
                                     ": malformed JSON: " + message);
}

} // namespace

llvm::Expected<ModelConfig> dsv3::parseModelConfig(llvm::StringRef json,
                                                   llvm::StringRef sourceName) {
  llvm::Expected<json::Value> root = json::parse(json);
  if (!root)
    return makeMalformedJsonError(root.takeError(), sourceName);

  ErrorSink errors(sourceName);
  const json::Object *object = root->getAsObject();
  if (!object) {
    errors.fail("top level must be a JSON object, got " + describeKind(*root));
    return errors.takeError();
  }

  ModelConfig config;
  config.sourceName = sourceName.str();
  FieldReader reader(*object, "", errors);
  const FieldNames *names;
  if (reader.has("model_type")) {
    readHuggingFace(reader, config);
    names = &kHuggingFaceNames;
  } else if (reader.has("dim")) {
    readDeepSeekInference(reader, config);
    names = &kDeepSeekInferenceNames;
  } else {
    errors.fail("not a Hugging Face config (no 'model_type') nor a DeepSeek "
                "inference config (no 'dim')");
    return errors.takeError();
  }
  if (errors.failed())
    return errors.takeError();

  validate(config, *names, errors);
  if (errors.failed())
    return errors.takeError();
  return config;
}

llvm::Expected<ModelConfig> dsv3::readModelConfigFile(llvm::StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::createStringError(
        buffer.getError(),
        path + ": cannot read: " + buffer.getError().message());
  return parseModelConfig((*buffer)->getBuffer(), path);
}
