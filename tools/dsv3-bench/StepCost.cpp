//===- StepCost.cpp - what a bench step must move and compute -------------===//

#include "tools/dsv3-bench/StepCost.h"

#include "tools/dsv3-bench/KernelClass.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <cmath>
#include <optional>
#include <vector>

namespace dsv3::bench {

namespace {

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

/// N of "model.layers.N.…", or nothing for names outside the layers.
std::optional<int64_t> layerOf(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (name.substr(0, kPrefix.size()) != kPrefix)
    return std::nullopt;
  name.remove_prefix(kPrefix.size());
  int64_t layer = 0;
  auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), layer);
  if (error != std::errc() || end == name.data())
    return std::nullopt;
  return layer;
}

Status parseCount(std::string_view text, std::string_view field, int64_t min,
                  std::string_view spec, int64_t &value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      value < min)
    return Status::error("workload '{}': {} '{}' is not an integer of at "
                         "least {}",
                         spec, field, text, min);
  return Status::success();
}

std::vector<int64_t> shapeOf(const plan::Weight &weight) {
  return weight.shape() ? std::vector<int64_t>(weight.shape()->begin(),
                                               weight.shape()->end())
                        : std::vector<int64_t>();
}

} // namespace

std::string Workload::name() const {
  if (kind == Kind::Decode)
    return fmt::format("decode b={} ctx={}", sequences, context);
  return fmt::format("prefill {}x{}", sequences, newTokens);
}

StatusOr<Workload> parseWorkload(std::string_view text) {
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    size_t colon = text.find(':', start);
    fields.push_back(text.substr(start, colon == std::string_view::npos
                                            ? std::string_view::npos
                                            : colon - start));
    if (colon == std::string_view::npos)
      break;
    start = colon + 1;
  }
  if (fields.size() != 3 || (fields[0] != "decode" && fields[0] != "prefill"))
    return Status::error("workload '{}': expected decode:BATCH:CONTEXT or "
                         "prefill:BATCH:LENGTH",
                         text);
  Workload workload;
  DSV3_RETURN_IF_ERROR(
      parseCount(fields[1], "BATCH", 1, text, workload.sequences));
  if (fields[0] == "decode") {
    workload.kind = Workload::Kind::Decode;
    workload.newTokens = 1;
    DSV3_RETURN_IF_ERROR(
        parseCount(fields[2], "CONTEXT", 0, text, workload.context));
  } else {
    workload.kind = Workload::Kind::Prefill;
    workload.context = 0;
    DSV3_RETURN_IF_ERROR(
        parseCount(fields[2], "LENGTH", 1, text, workload.newTokens));
  }
  return workload;
}

double expectedDistinctExperts(int64_t experts, int64_t topK, int64_t tokens) {
  if (experts <= 0 || topK <= 0 || tokens <= 0)
    return 0;
  // Each expert is missed by one token with probability 1 − k/E.
  const double missedByAll =
      std::pow(1.0 - static_cast<double>(topK) / experts,
               static_cast<double>(tokens));
  return experts * (1.0 - missedByAll);
}

StatusOr<PlanModel> analyzePlan(const plan::Plan &plan) {
  PlanModel model;
  model.vocab = plan.model()->vocab_size();
  model.hidden = plan.model()->hidden_size();
  model.mainLayers = plan.model()->num_layers();
  model.topK = plan.model()->top_k();
  model.cacheRow = plan.model()->cache_row_elements();

  if (plan.kernels())
    for (const plan::Kernel *kernel : *plan.kernels()) {
      const std::string_view name = kernelTemplateName(
          kernel->instance() ? kernel->instance()->string_view() : "");
      // FP8 x FP8 products are the fp8_*gemm kernels (tiles, skinny, wgmma,
      // grouped or not); w8a16_* multiply FP8 weights by bf16 activations.
      model.fp8Activations |= name.substr(0, 4) == "fp8_" && name.size() >= 4 &&
                              name.substr(name.size() - 4) == "gemm";
    }
  // So are the Gemm steps cuBLASLt runs in their place.
  model.fp8Activations |= plan::hasGemmSteps(plan);

  // Layer 0's attention shapes, for the heads (below).
  std::optional<std::vector<int64_t>> kvB, outProj, queryProj;
  const size_t weightCount = plan.weights() ? plan.weights()->size() : 0;
  // A checkpoint tensor the plan loads twice (kv_b: dequantized for the
  // absorbed products, FP8 for the direct prefill's expansion) is one
  // matrix: counted once, as its smallest copy, which either path reads at
  // least.
  std::map<std::string_view, size_t> smallestCopy;
  for (size_t w = 0; w < weightCount; ++w) {
    const std::string_view name =
        plan.weights()->Get(w)->sources()->Get(0)->name()->string_view();
    auto [it, inserted] = smallestCopy.try_emplace(name, w);
    if (!inserted && plan::weightBytes(plan, w) < plan::weightBytes(plan, it->second))
      it->second = w;
  }
  for (size_t w = 0; w < weightCount; ++w) {
    const plan::Weight &weight = *plan.weights()->Get(w);
    const std::string_view name = weight.sources()->Get(0)->name()->string_view();
    if (smallestCopy[name] != w)
      continue;
    const std::optional<int64_t> layer = layerOf(name);
    if (layer && *layer >= model.mainLayers)
      continue; // an MTP layer: only @mtp_draft reads it
    const std::vector<int64_t> shape = shapeOf(weight);
    const double bytes = static_cast<double>(plan::weightBytes(plan, w));
    const bool isMatrix = shape.size() >= 2 &&
                          (weight.dtype() == plan::DType::F8_E4M3 ||
                           weight.dtype() == plan::DType::BF16);
    const bool isFp8 = weight.dtype() == plan::DType::F8_E4M3;
    // rows·cols of one matrix (of one expert for a stack).
    const double matrixParams =
        shape.size() >= 2 ? static_cast<double>(shape[shape.size() - 2]) *
                                shape[shape.size() - 1]
                          : 0;

    if (weight.transform() == plan::WeightTransform::Stack &&
        name.find(".mlp.experts.") != std::string_view::npos) {
      model.expertBytes += bytes;
      model.experts = shape.empty() ? 0 : shape[0];
      if (isMatrix)
        (isFp8 ? model.fp8ExpertParams : model.bf16ExpertParams) += matrixParams;
      continue;
    }
    if (endsWith(name, "embed_tokens.weight") && !layer) {
      model.embeddingRowBytes =
          shape.size() == 2 ? bytes / static_cast<double>(shape[0]) : 0;
      continue;
    }
    if (name == "lm_head.weight") {
      model.headBytes = bytes;
      model.headParams = matrixParams;
      model.headIsFp8 = isFp8;
      continue;
    }
    model.alwaysReadBytes += bytes;
    if (isMatrix)
      (isFp8 ? model.fp8MatrixParams : model.bf16MatrixParams) += matrixParams;
    if (layer == 0) {
      if (endsWith(name, ".self_attn.kv_b_proj.weight"))
        kvB = shape;
      else if (endsWith(name, ".self_attn.o_proj.weight"))
        outProj = shape;
      else if (endsWith(name, ".self_attn.q_b_proj.weight") ||
               endsWith(name, ".self_attn.q_proj.weight"))
        queryProj = shape;
    }
  }

  // kv_b is [heads·(nope + v), kv_lora], o_proj [hidden, heads·v] and the
  // query projection [heads·(nope + rope), ·]; the cache row is kv_lora +
  // rope. So heads·nope = rows(kv_b) − cols(o_proj), and heads·rope is what
  // the query has beyond that.
  auto missing = [](const char *what) {
    return Status::error("the plan has no 2-D weight "
                         "'model.layers.0.self_attn.{}.weight': the attention "
                         "FLOPs need it",
                         what);
  };
  if (!kvB || kvB->size() != 2)
    return missing("kv_b_proj");
  if (!outProj || outProj->size() != 2)
    return missing("o_proj");
  if (!queryProj || queryProj->size() != 2)
    return missing("q_b_proj' or 'q_proj");
  model.kvLora = (*kvB)[1];
  const int64_t rope = model.cacheRow - model.kvLora;
  const int64_t headsTimesNope = (*kvB)[0] - (*outProj)[1];
  const int64_t headsTimesRope = (*queryProj)[0] - headsTimesNope;
  if (rope <= 0 || headsTimesNope <= 0 || headsTimesRope <= 0 ||
      headsTimesRope % rope != 0)
    return Status::error("layer 0's attention shapes do not fit absorbed MLA: "
                         "kv_b_proj [{}, {}], o_proj [{}, {}], query "
                         "projection [{}, {}], cache row {}",
                         (*kvB)[0], (*kvB)[1], (*outProj)[0], (*outProj)[1],
                         (*queryProj)[0], (*queryProj)[1], model.cacheRow);
  model.heads = headsTimesRope / rope;
  model.qkHead = (headsTimesNope + headsTimesRope) / model.heads;
  model.vHead = (*outProj)[1] / model.heads;
  model.kvBParams = static_cast<double>((*kvB)[0]) * (*kvB)[1];
  return model;
}

StepCost stepCost(const PlanModel &model, const Workload &workload) {
  StepCost cost;
  const double T = static_cast<double>(workload.tokens());
  const double B = static_cast<double>(workload.sequences);
  const double n = static_cast<double>(workload.newTokens);
  const double p = static_cast<double>(workload.context);

  cost.distinctExperts =
      expectedDistinctExperts(model.experts, model.topK, workload.tokens());
  const double expertShare =
      model.experts > 0 ? cost.distinctExperts / model.experts : 0;
  cost.weightBytes = model.alwaysReadBytes + model.expertBytes * expertShare +
                     T * model.embeddingRowBytes + model.headBytes;

  // Each sequence reads its p + n cached rows and writes its n new ones.
  const double rowBytes = 2.0 * model.cacheRow; // bf16
  cost.kvCacheBytes = model.mainLayers * B * (p + 2 * n) * rowBytes;

  const double fp8WeightFlops = 2 * T * model.fp8MatrixParams +
                                2 * T * model.topK * model.fp8ExpertParams +
                                (model.headIsFp8 ? 2 * B * model.headParams : 0);
  cost.bf16Flops = 2 * T * model.bf16MatrixParams +
                   2 * T * model.topK * model.bf16ExpertParams +
                   (model.headIsFp8 ? 0 : 2 * B * model.headParams);
  (model.fp8Activations ? cost.fp8Flops : cost.bf16Flops) += fp8WeightFlops;
  // Token i of a sequence's new tokens (at position p + i) attends to
  // p + i + 1 cached keys: n·p + n(n+1)/2 pairs per sequence.
  const double pairs = B * (n * p + n * (n + 1) / 2);
  const double absorbed =
      pairs * 2.0 * model.heads * (model.cacheRow + model.kvLora);
  const double expanded = pairs * 2.0 * model.heads * (model.qkHead + model.vHead) +
                          2.0 * B * p * model.kvBParams;
  cost.attentionFlops = model.mainLayers * std::min(absorbed, expanded);
  cost.bf16Flops += cost.attentionFlops;
  return cost;
}

Floor floorOf(const StepCost &cost, const Ceilings &ceilings) {
  Floor floor;
  if (ceilings.copyBytesPerSecond > 0)
    floor.memorySeconds = cost.bytes() / ceilings.copyBytesPerSecond;
  const double fp8Rate = ceilings.fp8FlopsPerSecond > 0
                             ? ceilings.fp8FlopsPerSecond
                             : ceilings.bf16FlopsPerSecond;
  if (ceilings.bf16FlopsPerSecond > 0)
    floor.computeSeconds = cost.bf16Flops / ceilings.bf16FlopsPerSecond +
                           cost.fp8Flops / fp8Rate;
  return floor;
}

} // namespace dsv3::bench
