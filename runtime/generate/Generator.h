//===- Generator.h - the generation loop: prompts in, tokens out -*- C++ -*-===//
//
// Runs a batch of sequences to completion on a plan's entry points:
//   1. prefill: the prompts, packed into as few `prefill` steps as the plan's
//      max_tokens allows (each step a group of whole prompts), then
//   2. decode: one token per unfinished sequence per step, until each one
//      ends: --max-new-tokens reached, EOS generated (when asked), or a stop
//      string in its text. A finished sequence leaves the batch at once and
//      its KV-cache pages are released, so the others' steps get smaller.
// Each step's tokens are sampled under each sequence's SamplingParams, on
// the GPU by the plan's sampler kernel, or on the host by the reference
// sampler (runtime/sample/ReferenceSampler.h) for plans without one; both
// give the same tokens. A sequence's seed/step pair is its own: step = the
// tokens it has generated so far, so its draws do not depend on the batch.
//
// The model is reached through ModelSteps, so the loop is tested on the CPU
// with a model of known logits; ExecutorSteps connects it to an Executor.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_GENERATE_GENERATOR_H
#define DSV3_RUNTIME_GENERATE_GENERATOR_H

#include "runtime/Status.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/KvCache.h"
#include "runtime/sample/SamplingParams.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::generate {

/// What a model's plan allows per step.
struct ModelLimits {
  int64_t maxTokens = 0;    ///< tokens per step (the prefill's budget)
  int64_t maxSequences = 0; ///< sequences per step
  int64_t vocab = 0;
  static ModelLimits of(const plan::Plan &plan);
};

/// The steps the generator needs from a model.
class ModelSteps {
public:
  virtual ~ModelSteps() = default;
  /// Queues one step (`prefill` or decode) on `inputs`.
  virtual Status run(bool prefill, const exec::StepInputs &inputs) = 0;
  /// The last step's logits, [B, columns] row-major (columns ≥ vocab).
  virtual StatusOr<std::vector<float>> readLogits() = 0;
  /// Rows `rows` (each below `batch`, the last step's B) of its logits, one
  /// after the other, `columns` each; read after sampleTokens, which leaves
  /// the logits as they are. By default cut out of readLogits().
  virtual StatusOr<std::vector<float>>
  readLogitRows(const std::vector<int32_t> &rows, int64_t batch,
                int64_t &columns);
  /// Whether sampleTokens() samples on the device.
  virtual bool samplesOnDevice() const = 0;
  /// Rows of device token counts (penalties on the device need one each).
  virtual int64_t countRows() const = 0;
  /// Samples the last step's rows on the device.
  virtual StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &rows) = 0;
  virtual Status clearTokenCounts(int64_t row) = 0;
};

/// ModelSteps on an Executor: entry points `prefill` and `decode` (or
/// `prefill` for both when the plan has no `decode`).
class ExecutorSteps : public ModelSteps {
public:
  ExecutorSteps(exec::Executor &executor, bool hasSampler);
  Status run(bool prefill, const exec::StepInputs &inputs) override;
  StatusOr<std::vector<float>> readLogits() override;
  /// Copies only those rows from the device.
  StatusOr<std::vector<float>> readLogitRows(const std::vector<int32_t> &rows,
                                             int64_t batch,
                                             int64_t &columns) override;
  bool samplesOnDevice() const override { return hasSampler_; }
  int64_t countRows() const override;
  StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &rows) override;
  Status clearTokenCounts(int64_t row) override;

private:
  exec::Executor &executor_;
  bool hasSampler_;
  const char *decodeEntry_;
};

enum class FinishReason { Length, EndOfSequence, StopString };
/// "length", "eos", "stop".
const char *finishReasonName(FinishReason reason);

struct SequenceRequest {
  std::vector<int32_t> prompt;
  /// countsRow and step are the generator's; the rest is the caller's.
  sample::SamplingParams sampling;
  int64_t maxNewTokens = 32;
  /// Text that ends the sequence (not included in its text); needs a
  /// tokenizer.
  std::vector<std::string> stopStrings;
  /// End at the tokenizer's EOS token (included in the ids, not the text).
  bool stopAtEos = true;
};

struct SequenceResult {
  std::vector<int32_t> tokens; ///< every generated id, in order
  std::string text;            ///< with a tokenizer: the text, specials left out
  FinishReason finish = FinishReason::Length;
};

/// Hooks into a generation, all optional.
class GenerationObserver {
public:
  virtual ~GenerationObserver() = default;
  /// Final text of request `sequence`, as soon as it is known.
  virtual void onText(size_t sequence, std::string_view text) {}
  /// After every step: `sequences` (request indices) were sampled as
  /// `sampled`; `fed` (initially `sampled`) are the tokens the next step
  /// feeds them, which a teacher-forcing caller may replace.
  virtual Status afterStep(int64_t step, const std::vector<size_t> &sequences,
                           const std::vector<int32_t> &sampled,
                           std::vector<int32_t> &fed) {
    return Status::success();
  }
};

/// Wall time of the last generate(), sampling and host work included.
struct GenerationStats {
  int64_t prefillSteps = 0, prefillTokens = 0;
  double prefillMs = 0;
  int64_t decodeSteps = 0, decodeTokens = 0;
  double decodeMs = 0;
};

struct GeneratorOptions {
  /// Every sequence runs exactly maxNewTokens steps in one batch (one
  /// prefill step, no EOS or stop strings): what per-step logit dumps and
  /// teacher forcing need.
  bool lockstep = false;
};

class Generator {
public:
  /// `tokenizer` may be null (no text, no EOS, no stop strings). Pages of
  /// `pages` are taken per sequence and all released when generate returns.
  Generator(ModelSteps &model, exec::PageAllocator &pages, ModelLimits limits,
            const Tokenizer *tokenizer, GeneratorOptions options = {});

  /// Runs `requests` (at most maxSequences) to completion; results in
  /// request order. Requests are checked before any step runs.
  StatusOr<std::vector<SequenceResult>>
  generate(const std::vector<SequenceRequest> &requests,
           GenerationObserver *observer = nullptr);

  const GenerationStats &stats() const { return stats_; }

  /// checkSequenceRequest with this generator's limits and tokenizer.
  Status checkRequest(const SequenceRequest &request, std::string_view what) const;

private:
  ModelSteps &model_;
  exec::PageAllocator &pages_;
  ModelLimits limits_;
  const Tokenizer *tokenizer_;
  GeneratorOptions options_;
  GenerationStats stats_;
};

/// The checks generate() applies to each request before any step runs
/// (`what` names it in the error): a prompt of 1 to maxTokens ids inside the
/// vocabulary, at least one new token, valid sampling settings, non-empty
/// stop strings and, for stop strings, a tokenizer.
Status checkSequenceRequest(const SequenceRequest &request,
                            const ModelLimits &limits, bool hasTokenizer,
                            std::string_view what);

/// Checks one sequence's sampling settings: a finite temperature ≥ 0, top_p
/// in (0, 1], min_p in [0, 1], top_k ≥ 0, finite penalties, vocabLimit ≥ 0.
Status checkSamplingParams(const sample::SamplingParams &params,
                           std::string_view what);

} // namespace dsv3::generate

#endif // DSV3_RUNTIME_GENERATE_GENERATOR_H
