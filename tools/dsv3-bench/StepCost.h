//===- StepCost.h - what a bench step must move and compute --------*- C++ -*-===//
//
// The floor of a step is the time it would take if it only moved the bytes
// it must move at the device's measured copy bandwidth, or only did the
// FLOPs it must do at the measured GEMM peaks, whichever is longer:
//
//   bytes  weights read by the step: every weight of the main layers, the
//          embedding rows of the step's tokens and the whole output head;
//          for the routed experts only the expected share that the step's
//          tokens hit (E·(1−(1−k/E)^T) distinct experts of E, each token
//          choosing k, routing taken as uniform), per MoE layer;
//        + KV-cache rows: each sequence's cached rows read once and its new
//          rows written once, per layer;
//          activations are left out (small next to the weights).
//   FLOPs  2·T·(rows·cols) for every matrix of the main layers (routed
//          experts: 2·T·k·(rows·cols), each token through k experts), the
//          head on the B last rows only, and absorbed MLA attention:
//          2·heads·(cache_row + kv_lora) per (query, cached key) pair.
//          FP8 matrices count at the FP8 peak when the plan multiplies them
//          with FP8 activations (it has e4m3 × e4m3 kernels, fp8_gemm and
//          fp8_grouped_gemm: dsv3c --activation-dtype=fp8); with bf16
//          activations (w8a16 kernels, dsv3c's default) tensor cores would
//          multiply them as bf16, so they count at the BF16 peak, as do BF16
//          matrices and attention.
//
// Everything is read off the plan (weights, names, shapes, dtypes); nothing
// is assumed about the model beyond its Hugging Face tensor names.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_BENCH_STEPCOST_H
#define DSV3_TOOLS_BENCH_STEPCOST_H

#include "runtime/Status.h"
#include "runtime/plan/PlanFile.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace dsv3::bench {

/// One bench step: `sequences` sequences, each feeding `newTokens` tokens
/// after `context` tokens already in its KV cache.
struct Workload {
  enum class Kind { Decode, Prefill };
  Kind kind = Kind::Decode;
  int64_t sequences = 1;
  int64_t newTokens = 1;
  int64_t context = 0;

  int64_t tokens() const { return sequences * newTokens; }
  /// The plan entry point that runs the step.
  const char *entryPoint() const {
    return kind == Kind::Decode ? "decode" : "prefill";
  }
  /// "decode b=32 ctx=1024" or "prefill 8x1024".
  std::string name() const;
};

/// "decode:B:CONTEXT" (B sequences, one new token each after CONTEXT cached
/// tokens) or "prefill:B:LENGTH" (B sequences of LENGTH tokens from
/// position 0). B, LENGTH ≥ 1, CONTEXT ≥ 0.
StatusOr<Workload> parseWorkload(std::string_view text);

/// The expected number of distinct experts that `tokens` tokens hit when
/// each picks `topK` distinct experts of `experts` uniformly:
/// E·(1 − (1 − k/E)^T).
double expectedDistinctExperts(int64_t experts, int64_t topK, int64_t tokens);

/// What the floor needs to know about a plan's model, by weight role.
struct PlanModel {
  int64_t vocab = 0, hidden = 0;
  int mainLayers = 0;
  /// Weights every step reads in full (attention, dense MLPs, shared
  /// experts, routers, norms, scales), in bytes.
  double alwaysReadBytes = 0;
  /// rows·cols summed over those weights' matrices, by dtype.
  double fp8MatrixParams = 0, bf16MatrixParams = 0;
  /// Routed experts of all MoE layers (values and scales), in bytes; a step
  /// reads the share its tokens hit.
  double expertBytes = 0;
  /// rows·cols of one expert, summed over its matrices and the MoE layers.
  double fp8ExpertParams = 0, bf16ExpertParams = 0;
  int64_t experts = 0, topK = 0; ///< routed experts per layer, per token
  double embeddingRowBytes = 0;  ///< one row of the embedding table
  double headBytes = 0, headParams = 0;
  bool headIsFp8 = false;
  /// MLA: heads, latent width, cached row (latent + rope key), and per
  /// head the query-key width (nope + rope) and value width.
  int64_t heads = 0, kvLora = 0, cacheRow = 0, qkHead = 0, vHead = 0;
  double kvBParams = 0; ///< rows·cols of one layer's kv_b
  /// FP8 matrices meet FP8 activations (e4m3 × e4m3 GEMM kernels).
  bool fp8Activations = false;
};

/// Reads `plan` (verified) into a PlanModel. Fails, naming the weight, when
/// the attention shapes of layer 0 are missing or inconsistent. Weights of
/// MTP layers (model.layers.N, N ≥ the main layer count) are not read by
/// prefill or decode and are left out.
StatusOr<PlanModel> analyzePlan(const plan::Plan &plan);

/// What one step of `workload` must move and compute.
struct StepCost {
  double weightBytes = 0;
  double kvCacheBytes = 0;
  double fp8Flops = 0;       ///< e4m3 × e4m3 products (at the FP8 peak)
  double bf16Flops = 0;      ///< everything else (at the BF16 peak)
  /// The attention part of bf16Flops, in the cheaper of MLA's two forms:
  /// absorbed (2·kv_lora + rope multiply-adds per query-key pair and head)
  /// or expanded (nope + rope + v per pair and head, plus kv_b's expansion
  /// of each cached key the step did not bring; the step's own keys cost
  /// what absorbing its queries and outputs would, counted with kv_b).
  double attentionFlops = 0;
  double distinctExperts = 0; ///< expected per MoE layer (0: no experts)

  double bytes() const { return weightBytes + kvCacheBytes; }
  double flops() const { return fp8Flops + bf16Flops; }
};
StepCost stepCost(const PlanModel &model, const Workload &workload);

/// The device's measured ceilings.
struct Ceilings {
  double copyBytesPerSecond = 0; ///< device-to-device copy, read + write
  double bf16FlopsPerSecond = 0;
  double fp8FlopsPerSecond = 0; ///< 0: no FP8 GEMM on this device
  /// Where the GEMM peaks come from ("cuBLASLt 13.0.0, M=N=K=8192", or a
  /// line saying they were not measured).
  std::string gemmSource;
};

struct Floor {
  double memorySeconds = 0, computeSeconds = 0;
  double seconds() const {
    return memorySeconds > computeSeconds ? memorySeconds : computeSeconds;
  }
  bool memoryBound() const { return memorySeconds >= computeSeconds; }
};

/// bytes / copy bandwidth and fp8 FLOPs / FP8 peak + bf16 FLOPs / BF16
/// peak. FP8 FLOPs count at the BF16 peak on a device without FP8 GEMMs.
Floor floorOf(const StepCost &cost, const Ceilings &ceilings);

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_STEPCOST_H
