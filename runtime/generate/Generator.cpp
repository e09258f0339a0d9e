//===- Generator.cpp - the generation loop: prompts in, tokens out --------===//

#include "runtime/generate/Generator.h"

#include "runtime/generate/TextStream.h"
#include "runtime/sample/ReferenceSampler.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

namespace dsv3::generate {

ModelLimits ModelLimits::of(const plan::Plan &plan) {
  ModelLimits limits;
  limits.maxTokens = plan.limits()->max_tokens();
  limits.maxSequences = plan.limits()->max_sequences();
  limits.vocab = plan.model()->vocab_size();
  return limits;
}

ExecutorSteps::ExecutorSteps(exec::Executor &executor, bool hasSampler)
    : executor_(executor), hasSampler_(hasSampler),
      decodeEntry_(executor.hasEntryPoint("decode") ? "decode" : "prefill") {}

Status ExecutorSteps::run(bool prefill, const exec::StepInputs &inputs) {
  return executor_.run(prefill ? "prefill" : decodeEntry_, inputs);
}

StatusOr<std::vector<float>> ExecutorSteps::readLogits() {
  return executor_.readLogits();
}

StatusOr<std::vector<float>>
ModelSteps::readLogitRows(const std::vector<int32_t> &rows, int64_t batch,
                          int64_t &columns) {
  DSV3_ASSIGN_OR_RETURN(std::vector<float> all, readLogits());
  if (batch < 1 || all.size() % static_cast<size_t>(batch) != 0)
    return Status::error("{} logits are not {} rows", all.size(), batch);
  columns = static_cast<int64_t>(all.size()) / batch;
  std::vector<float> picked;
  picked.reserve(rows.size() * static_cast<size_t>(columns));
  for (int32_t row : rows) {
    if (row < 0 || row >= batch)
      return Status::error("logit row {} requested of {}", row, batch);
    picked.insert(picked.end(), all.begin() + row * columns,
                  all.begin() + (row + 1) * columns);
  }
  return picked;
}

StatusOr<std::vector<float>>
ExecutorSteps::readLogitRows(const std::vector<int32_t> &rows,
                             int64_t /*batch: the executor knows it*/,
                             int64_t &columns) {
  return executor_.readLogitRows(rows, columns);
}

int64_t ExecutorSteps::countRows() const { return executor_.samplerCountRows(); }

StatusOr<std::vector<int32_t>>
ExecutorSteps::sampleTokens(const std::vector<sample::SamplingParams> &rows) {
  return executor_.sampleTokens(rows);
}

Status ExecutorSteps::clearTokenCounts(int64_t row) {
  return executor_.clearTokenCounts(row);
}

const char *finishReasonName(FinishReason reason) {
  switch (reason) {
  case FinishReason::Length:
    return "length";
  case FinishReason::EndOfSequence:
    return "eos";
  case FinishReason::StopString:
    return "stop";
  }
  return "?";
}

Status checkSamplingParams(const sample::SamplingParams &p,
                           std::string_view what) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    return Status::error("{}: temperature {} is not a number >= 0", what,
                         p.temperature);
  if (!(p.topP > 0 && p.topP <= 1))
    return Status::error("{}: top_p {} is outside (0, 1]", what, p.topP);
  if (!(p.minP >= 0 && p.minP <= 1))
    return Status::error("{}: min_p {} is outside [0, 1]", what, p.minP);
  if (p.topK < 0)
    return Status::error("{}: top_k {} is negative (0 turns it off)", what,
                         p.topK);
  if (!std::isfinite(p.presencePenalty) || !std::isfinite(p.frequencyPenalty))
    return Status::error("{}: penalties must be finite (presence {}, "
                         "frequency {})",
                         what, p.presencePenalty, p.frequencyPenalty);
  if (p.vocabLimit < 0)
    return Status::error("{}: vocabulary limit {} is negative", what,
                         p.vocabLimit);
  return Status::success();
}

Generator::Generator(ModelSteps &model, exec::PageAllocator &pages,
                     ModelLimits limits, const Tokenizer *tokenizer,
                     GeneratorOptions options)
    : model_(model), pages_(pages), limits_(limits), tokenizer_(tokenizer),
      options_(options) {}

Status Generator::checkRequest(const SequenceRequest &request,
                               std::string_view what) const {
  return checkSequenceRequest(request, limits_, tokenizer_ != nullptr, what);
}

Status checkSequenceRequest(const SequenceRequest &request,
                            const ModelLimits &limits, bool hasTokenizer,
                            std::string_view what) {
  const int64_t length = static_cast<int64_t>(request.prompt.size());
  if (length == 0)
    return Status::error("{}: the prompt has no tokens", what);
  if (length > limits.maxTokens)
    return Status::error("{}: the prompt has {} tokens, but the plan's "
                         "prefill step takes at most {} (dsv3c --max-tokens)",
                         what, length, limits.maxTokens);
  for (int64_t i = 0; i < length; ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= limits.vocab)
      return Status::error("{}: prompt token {} is {}, outside the vocabulary "
                           "(0..{})",
                           what, i, request.prompt[i], limits.vocab - 1);
  if (request.maxNewTokens < 1)
    return Status::error("{}: max new tokens is {}; it must be at least 1",
                         what, request.maxNewTokens);
  DSV3_RETURN_IF_ERROR(checkSamplingParams(request.sampling, what));
  for (const std::string &stop : request.stopStrings)
    if (stop.empty())
      return Status::error("{}: a stop string is empty", what);
  if (!request.stopStrings.empty() && !hasTokenizer)
    return Status::error("{}: stop strings need a tokenizer to turn tokens "
                         "into text",
                         what);
  return Status::success();
}

namespace {

/// One sequence while it runs.
struct Running {
  int64_t cached = 0; ///< tokens in the KV cache
  int32_t next = 0;   ///< the token the next decode step feeds
  bool finished = false;
  std::optional<TextStream> stream;
  std::vector<int32_t> hostCounts; ///< host sampling with penalties
};

/// Releases the pages of sequences 0..count-1 when generation ends, however
/// it ends.
class PageRelease {
public:
  PageRelease(exec::PageAllocator &pages, size_t count)
      : pages_(pages), count_(count) {}
  ~PageRelease() {
    for (size_t b = 0; b < count_; ++b)
      pages_.release(static_cast<int64_t>(b));
  }

private:
  exec::PageAllocator &pages_;
  size_t count_;
};

} // namespace

StatusOr<std::vector<SequenceResult>>
Generator::generate(const std::vector<SequenceRequest> &requests,
                    GenerationObserver *observer) {
  const size_t B = requests.size();
  if (B == 0)
    return Status::error("no prompt to generate from");
  if (static_cast<int64_t>(B) > limits_.maxSequences)
    return Status::error("{} sequences, but the plan runs at most {} per step "
                         "(dsv3c --max-sequences)",
                         B, limits_.maxSequences);
  int64_t promptTokens = 0;
  for (size_t b = 0; b < B; ++b) {
    DSV3_RETURN_IF_ERROR(
        checkRequest(requests[b], fmt::format("sequence {}", b)));
    promptTokens += static_cast<int64_t>(requests[b].prompt.size());
    if (requests[b].sampling.penalized() && model_.samplesOnDevice() &&
        static_cast<int64_t>(b) >= model_.countRows())
      return Status::error("sequence {} has penalties, but the sampler keeps "
                           "token counts for {} sequences",
                           b, model_.countRows());
  }
  if (options_.lockstep && promptTokens > limits_.maxTokens)
    return Status::error("the prompts hold {} tokens, but the plan's prefill "
                         "step takes at most {} (dsv3c --max-tokens)",
                         promptTokens, limits_.maxTokens);
  const std::optional<int32_t> eos =
      tokenizer_ ? tokenizer_->eosId() : std::nullopt;

  PageRelease release(pages_, B);
  std::vector<Running> running(B);
  std::vector<SequenceResult> results(B);
  for (size_t b = 0; b < B; ++b) {
    const sample::SamplingParams &sampling = requests[b].sampling;
    if (tokenizer_ && !options_.lockstep)
      running[b].stream.emplace(*tokenizer_, requests[b].stopStrings);
    if (sampling.penalized()) {
      if (model_.samplesOnDevice())
        DSV3_RETURN_IF_ERROR(model_.clearTokenCounts(static_cast<int64_t>(b)));
      else
        running[b].hostCounts.assign(limits_.vocab, 0);
    }
  }

  auto finish = [&](size_t b, FinishReason reason) {
    running[b].finished = true;
    results[b].finish = reason;
    if (running[b].stream) {
      std::string rest = running[b].stream->finish();
      if (observer && !rest.empty())
        observer->onText(b, rest);
      results[b].text = running[b].stream->text();
    }
    pages_.release(static_cast<int64_t>(b));
  };

  // One step over `group`: the prompts (prefill) or each one's next token.
  int64_t stepIndex = 0;
  stats_ = GenerationStats{};
  auto runStep = [&](const std::vector<size_t> &group, bool prefill) -> Status {
    const auto start = std::chrono::steady_clock::now();
    exec::StepInputs inputs;
    std::vector<int64_t> sequenceIds;
    for (size_t j = 0; j < group.size(); ++j) {
      const size_t b = group[j];
      const std::vector<int32_t> &fed =
          prefill ? requests[b].prompt : std::vector<int32_t>{running[b].next};
      for (size_t i = 0; i < fed.size(); ++i) {
        inputs.tokens.push_back(fed[i]);
        inputs.positions.push_back(static_cast<int32_t>(running[b].cached + i));
        inputs.tokenSeq.push_back(static_cast<int32_t>(j));
      }
      running[b].cached += static_cast<int64_t>(fed.size());
      inputs.lastRows.push_back(static_cast<int32_t>(inputs.tokens.size() - 1));
      DSV3_RETURN_IF_ERROR(
          pages_.reserve(static_cast<int64_t>(b), running[b].cached));
      sequenceIds.push_back(static_cast<int64_t>(b));
    }
    inputs.pagesPerSequence = pages_.widestSequence(sequenceIds);
    DSV3_RETURN_IF_ERROR(pages_.fillBlockTable(
        sequenceIds, inputs.pagesPerSequence, inputs.blockTable));
    DSV3_RETURN_IF_ERROR(model_.run(prefill, inputs));

    std::vector<sample::SamplingParams> rows;
    for (size_t b : group) {
      sample::SamplingParams p = requests[b].sampling;
      p.step = results[b].tokens.size();
      p.countsRow = p.penalized() && model_.samplesOnDevice()
                        ? static_cast<int32_t>(b)
                        : -1;
      rows.push_back(p);
    }
    std::vector<int32_t> sampled;
    if (model_.samplesOnDevice()) {
      DSV3_ASSIGN_OR_RETURN(sampled, model_.sampleTokens(rows));
    } else {
      DSV3_ASSIGN_OR_RETURN(std::vector<float> logits, model_.readLogits());
      const size_t columns = logits.size() / group.size();
      if (columns * group.size() != logits.size() ||
          static_cast<int64_t>(columns) < limits_.vocab)
        return Status::error("step {}: {} logits are not {} rows of at least "
                             "{}",
                             stepIndex, logits.size(), group.size(),
                             limits_.vocab);
      for (size_t j = 0; j < group.size(); ++j) {
        std::vector<int32_t> &counts = running[group[j]].hostCounts;
        const int32_t token = sample::sampleToken(
            logits.data() + j * columns, limits_.vocab,
            counts.empty() ? nullptr : counts.data(), rows[j]);
        if (!counts.empty())
          counts[token] += 1;
        sampled.push_back(token);
      }
    }

    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    (prefill ? stats_.prefillSteps : stats_.decodeSteps) += 1;
    (prefill ? stats_.prefillTokens : stats_.decodeTokens) +=
        static_cast<int64_t>(inputs.tokens.size());
    (prefill ? stats_.prefillMs : stats_.decodeMs) += ms;

    std::vector<int32_t> fed = sampled;
    if (observer)
      DSV3_RETURN_IF_ERROR(observer->afterStep(stepIndex, group, sampled, fed));
    ++stepIndex;
    for (size_t j = 0; j < group.size(); ++j) {
      const size_t b = group[j];
      const int32_t token = sampled[j];
      results[b].tokens.push_back(token);
      running[b].next = fed[j];
      const bool full = static_cast<int64_t>(results[b].tokens.size()) >=
                        requests[b].maxNewTokens;
      if (options_.lockstep) {
        if (full)
          finish(b, FinishReason::Length);
        continue;
      }
      if (requests[b].stopAtEos && eos && token == *eos) {
        finish(b, FinishReason::EndOfSequence);
        continue;
      }
      if (running[b].stream) {
        const bool stopped = running[b].stream->push(token);
        std::string ready = running[b].stream->takeReady();
        if (observer && !ready.empty())
          observer->onText(b, ready);
        if (stopped) {
          finish(b, FinishReason::StopString);
          continue;
        }
      }
      if (full)
        finish(b, FinishReason::Length);
    }
    return Status::success();
  };

  // Prefill: whole prompts packed into steps of at most maxTokens tokens.
  std::vector<size_t> group;
  int64_t groupTokens = 0;
  for (size_t b = 0; b <= B; ++b) {
    const int64_t length =
        b < B ? static_cast<int64_t>(requests[b].prompt.size()) : 0;
    if (!group.empty() && (b == B || groupTokens + length > limits_.maxTokens)) {
      DSV3_RETURN_IF_ERROR(runStep(group, /*prefill=*/true));
      group.clear();
      groupTokens = 0;
    }
    if (b < B) {
      group.push_back(b);
      groupTokens += length;
    }
  }
  // Decode: every unfinished sequence, one token per step.
  for (;;) {
    group.clear();
    for (size_t b = 0; b < B; ++b)
      if (!running[b].finished)
        group.push_back(b);
    if (group.empty())
      break;
    DSV3_RETURN_IF_ERROR(runStep(group, /*prefill=*/false));
  }
  return results;
}

} // namespace dsv3::generate
