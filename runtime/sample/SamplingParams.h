//===- SamplingParams.h - how one sequence picks its next token -*- C++ -*-===//
//
// The per-sequence sampling settings, laid out exactly as the GPU sampler
// (targets/cuda/kernels/sample.cuh, dsv3k::SamplingParams) reads them from
// device memory: the executor uploads an array of these, one per row. The
// meaning of each field and the order in which they apply are in
// docs/runtime.md ("Sampling") and ReferenceSampler.h.
//
// Header-only and free of the runtime's other dependencies, so the GPU tests
// (built by nvcc alone) include it too.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SAMPLE_SAMPLINGPARAMS_H
#define DSV3_RUNTIME_SAMPLE_SAMPLINGPARAMS_H

#include <cstddef>
#include <cstdint>

namespace dsv3::sample {

struct SamplingParams {
  /// 0: greedy (argmax of the penalized logits, lowest id on ties).
  float temperature = 0.0f;
  /// Nucleus: keep the fewest highest-probability tokens whose probability
  /// reaches top_p (ties kept together); 1: off. In (0, 1].
  float topP = 1.0f;
  /// Keep tokens whose probability is at least min_p times the largest;
  /// 0: off. In [0, 1].
  float minP = 0.0f;
  /// Subtracted from the logit of every token the sequence has generated.
  float presencePenalty = 0.0f;
  /// Subtracted once per time the sequence has generated the token.
  float frequencyPenalty = 0.0f;
  /// Keep the k highest logits (ties at the k-th kept too); 0: off.
  int32_t topK = 0;
  /// Only ids below this are ever picked (a tokenizer smaller than the
  /// model's padded vocabulary); 0: every id.
  int32_t vocabLimit = 0;
  /// The sequence's row of generated-token counts on the device (the
  /// executor's count buffer; needed for penalties); -1: none.
  int32_t countsRow = -1;
  /// With `step`, the only source of randomness: the same logits, counts,
  /// settings, seed and step always give the same token.
  uint64_t seed = 0;
  /// Tokens this sequence has generated before this one.
  uint64_t step = 0;

  bool greedy() const { return !(temperature > 0.0f); }
  bool penalized() const {
    return presencePenalty != 0.0f || frequencyPenalty != 0.0f;
  }
};

// The device layout (sample.cuh static_asserts its size too).
static_assert(sizeof(SamplingParams) == 48, "dsv3k::SamplingParams is 48 bytes");
static_assert(offsetof(SamplingParams, temperature) == 0 &&
                  offsetof(SamplingParams, topP) == 4 &&
                  offsetof(SamplingParams, minP) == 8 &&
                  offsetof(SamplingParams, presencePenalty) == 12 &&
                  offsetof(SamplingParams, frequencyPenalty) == 16 &&
                  offsetof(SamplingParams, topK) == 20 &&
                  offsetof(SamplingParams, vocabLimit) == 24 &&
                  offsetof(SamplingParams, countsRow) == 28 &&
                  offsetof(SamplingParams, seed) == 32 &&
                  offsetof(SamplingParams, step) == 40,
              "field offsets as dsv3k::SamplingParams");

} // namespace dsv3::sample

#endif // DSV3_RUNTIME_SAMPLE_SAMPLINGPARAMS_H
