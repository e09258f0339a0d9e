//===- WeightFill.cpp - which random values each plan weight gets ---------===//

#include "tools/dsv3-bench/WeightFill.h"

#include <cmath>

namespace dsv3::bench {

namespace {

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

std::string_view firstSourceName(const plan::Weight &weight) {
  return weight.sources()->Get(0)->name()->string_view();
}

int64_t lastDim(const plan::Weight &weight) {
  return weight.shape() && weight.shape()->size() > 0
             ? weight.shape()->Get(weight.shape()->size() - 1)
             : 0;
}

/// SplitMix64's finalizer (as dsv3-ckpt and RandomFill.cu use it).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// The weight whose first source is `name`, or nullptr.
/// The plan's FP8 weight copied from checkpoint tensor `name` (the same
/// tensor may also load dequantized, as kv_b does for the absorbed products).
const plan::Weight *findFp8Weight(const plan::Plan &plan, std::string_view name) {
  for (const plan::Weight *weight : *plan.weights())
    if (firstSourceName(*weight) == name && weight->dtype() == plan::DType::F8_E4M3)
      return weight;
  return nullptr;
}

std::string describe(const plan::Weight &weight, size_t index) {
  std::string shape;
  if (weight.shape())
    for (int64_t dim : *weight.shape())
      shape += (shape.empty() ? "" : ", ") + std::to_string(dim);
  return fmt::format("weight #{} '{}' ({} [{}])", index, firstSourceName(weight),
                     plan::EnumNameDType(weight.dtype()), shape);
}

} // namespace

uint64_t fillStream(uint64_t seed, std::string_view name) {
  uint64_t hash = 0xCBF29CE484222325ULL; // FNV-1a
  for (unsigned char c : name)
    hash = (hash ^ c) * 0x100000001B3ULL;
  return mix64(mix64(hash) ^ mix64(seed + 0x9E3779B97F4A7C15ULL));
}

StatusOr<FillSpec> weightFill(const plan::Plan &plan, size_t index,
                              uint64_t seed) {
  const plan::Weight &weight = *plan.weights()->Get(index);
  const std::string_view name = firstSourceName(weight);
  const size_t rank = weight.shape() ? weight.shape()->size() : 0;
  FillSpec fill;
  fill.dtype = weight.dtype();
  fill.stream = fillStream(seed, name);
  fill.count = static_cast<uint64_t>(plan::numElements(weight.shape()));
  const bool floating =
      weight.dtype() == plan::DType::BF16 || weight.dtype() == plan::DType::F32;

  if (weight.dtype() == plan::DType::F32 && endsWith(name, ".weight_scale_inv")) {
    // The scales of an FP8 weight: that weight's σ, spread over the codes.
    const std::string scaled(name.substr(0, name.size() - 10)); // "_scale_inv"
    const plan::Weight *values = findFp8Weight(plan, scaled);
    if (!values || lastDim(*values) < 1)
      return Status::error("{}: block scales without the FP8 weight '{}' in "
                           "the plan",
                           describe(weight, index), scaled);
    const float sigma = 1.0f / std::sqrt(static_cast<float>(lastDim(*values)));
    const float scale = kE4m3SigmasToMax * sigma / 448.0f;
    fill.kind = FillSpec::Kind::Uniform;
    fill.a = 0.9f * scale;
    fill.b = 1.1f * scale;
    return fill;
  }
  if (weight.dtype() == plan::DType::F8_E4M3 && rank >= 2) {
    fill.kind = FillSpec::Kind::E4m3;
    fill.a = 0;
    fill.b = 448.0f / kE4m3SigmasToMax;
    return fill;
  }
  if (floating && rank == 1 && endsWith(name, "e_score_correction_bias")) {
    fill.kind = FillSpec::Kind::Uniform;
    fill.a = -0.1f;
    fill.b = 0.1f;
    return fill;
  }
  if (floating && rank == 1 && endsWith(name, "norm.weight")) {
    fill.kind = FillSpec::Kind::Uniform;
    fill.a = 0.9f;
    fill.b = 1.1f;
    return fill;
  }
  if (weight.dtype() == plan::DType::BF16 && rank >= 2) {
    fill.kind = FillSpec::Kind::Normal;
    fill.a = 0;
    const bool table = endsWith(name, "embed_tokens.weight") ||
                       name == "lm_head.weight" ||
                       endsWith(name, "shared_head.head.weight");
    fill.b = table ? 1.0f
                   : 1.0f / std::sqrt(static_cast<float>(lastDim(weight)));
    return fill;
  }
  return Status::error("{}: no random distribution is defined for this kind "
                       "of weight",
                       describe(weight, index));
}

} // namespace dsv3::bench
