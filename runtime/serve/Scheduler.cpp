//===- Scheduler.cpp - continuous batching over ModelSteps ----------------===//

#include "runtime/serve/Scheduler.h"

#include "runtime/generate/TextStream.h"
#include "runtime/sample/ReferenceSampler.h"

#include <algorithm>
#include <optional>

namespace dsv3::serve {

const char *endReasonName(EndReason reason) {
  switch (reason) {
  case EndReason::Length:
    return "length";
  case EndReason::EndOfSequence:
    return "eos";
  case EndReason::StopString:
    return "stop";
  case EndReason::Cancelled:
    return "cancelled";
  case EndReason::Failed:
    return "error";
  }
  return "?";
}

/// One request from submission to its end.
struct Scheduler::Sequence {
  RequestId id = -1;
  ServeRequest request;
  EventCallback callback;
  /// The prompt, then every generated token: what the cache must hold
  /// (all but the last, which the next step feeds).
  std::vector<int32_t> tokens;
  int64_t generated = 0;
  int64_t cached = 0; ///< tokens in the KV cache
  int32_t countsRow = -1;
  std::vector<int32_t> hostCounts; ///< host sampling with penalties
  std::optional<generate::TextStream> stream;
  int64_t preemptedAtStep = -1; ///< not readmitted in the same step

  int64_t pending() const {
    return static_cast<int64_t>(tokens.size()) - cached;
  }
};

Scheduler::Scheduler(generate::ModelSteps &model, exec::PageAllocator &pages,
                     generate::ModelLimits limits, const Tokenizer *tokenizer,
                     SchedulerOptions options)
    : model_(model), pages_(pages), limits_(limits), tokenizer_(tokenizer),
      options_(options) {
  // Every running request may decode in the same step: one token each.
  maxSequences_ = std::min(limits_.maxSequences, limits_.maxTokens);
  const int64_t capacity = pages_.numPages() * pages_.pageSize();
  maxContext_ = options_.maxContextTokens > 0
                    ? std::min(options_.maxContextTokens, capacity)
                    : capacity;
  options_.prefillChunkTokens = std::max<int64_t>(1, options_.prefillChunkTokens);
  countRowUsed_.assign(
      model_.samplesOnDevice() ? std::max<int64_t>(0, model_.countRows()) : 0,
      false);
  updateGauges();
}

Scheduler::~Scheduler() {
  // Pages of requests still held go back: the allocator outlives us.
  for (const auto &sequence : running_)
    pages_.release(sequence->id);
}

Status Scheduler::checkRequest(const ServeRequest &request) const {
  const int64_t length = static_cast<int64_t>(request.prompt.size());
  if (length == 0)
    return Status::error("the prompt has no tokens");
  for (int64_t i = 0; i < length; ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= limits_.vocab)
      return Status::error("prompt token {} is {}, outside the vocabulary "
                           "(0..{})",
                           i, request.prompt[i], limits_.vocab - 1);
  if (request.maxNewTokens < 1)
    return Status::error("max new tokens is {}; it must be at least 1",
                         request.maxNewTokens);
  if (length + request.maxNewTokens > maxContext_)
    return Status::error("the context is {} tokens, but {} were asked for ({} "
                         "in the prompt, {} new)",
                         maxContext_, length + request.maxNewTokens, length,
                         request.maxNewTokens);
  DSV3_RETURN_IF_ERROR(generate::checkSamplingParams(request.sampling, "sampling"));
  if (request.sampling.penalized() && model_.samplesOnDevice() &&
      countRowUsed_.empty())
    return Status::error("penalties need token counts, but the device sampler "
                         "keeps none");
  for (const std::string &stop : request.stopStrings)
    if (stop.empty())
      return Status::error("a stop string is empty");
  if (!request.stopStrings.empty() && !tokenizer_)
    return Status::error("stop strings need a tokenizer");
  if (request.logprobs < -1 || request.logprobs > kMaxTopLogprobs)
    return Status::error("{} top log-probabilities asked for; at most {}",
                         request.logprobs, kMaxTopLogprobs);
  return Status::success();
}

StatusOr<SubmitResult> Scheduler::submit(ServeRequest request,
                                         EventCallback callback) {
  DSV3_RETURN_IF_ERROR(checkRequest(request));
  auto sequence = std::make_unique<Sequence>();
  sequence->tokens = request.prompt;
  if (tokenizer_)
    sequence->stream.emplace(*tokenizer_, request.stopStrings);
  if (request.sampling.penalized() && !model_.samplesOnDevice())
    sequence->hostCounts.assign(limits_.vocab, 0);
  sequence->request = std::move(request);
  sequence->callback = std::move(callback);

  SubmitResult result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (waitingCount_ >= options_.maxQueued) {
      result.queueFull = true;
      return result;
    }
    sequence->id = result.id = nextId_++;
    submitted_.push_back(std::move(sequence));
    ++waitingCount_;
    gauges_.waiting = waitingCount_;
  }
  wakeup_.notify_all();
  return result;
}

void Scheduler::cancel(RequestId id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_.insert(id);
  }
  wakeup_.notify_all();
}

bool Scheduler::hasWork() {
  std::lock_guard<std::mutex> lock(mutex_);
  return !submitted_.empty() || !cancelled_.empty() || !waiting_.empty() ||
         !running_.empty();
}

void Scheduler::waitForWork(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  wakeup_.wait_for(lock, timeout, [&] {
    return woken_ || !submitted_.empty() || !cancelled_.empty() ||
           !waiting_.empty() || !running_.empty();
  });
  woken_ = false;
}

void Scheduler::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
  }
  wakeup_.notify_all();
}

SchedulerGauges Scheduler::gauges() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return gauges_;
}

void Scheduler::updateGauges() {
  std::lock_guard<std::mutex> lock(mutex_);
  gauges_.waiting = waitingCount_;
  gauges_.running = static_cast<int64_t>(running_.size());
  gauges_.pages = pages_.numPages();
  gauges_.pagesInUse = pages_.numPages() - pages_.freePages();
}

/// Moves new submissions to the queue and ends cancelled requests.
void Scheduler::takeSubmissions() {
  std::set<RequestId> cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &sequence : submitted_)
      waiting_.push_back(std::move(sequence));
    submitted_.clear();
    cancelled.swap(cancelled_);
  }
  for (RequestId id : cancelled) {
    auto waiting = std::find_if(waiting_.begin(), waiting_.end(),
                                [&](const auto &s) { return s->id == id; });
    if (waiting != waiting_.end()) {
      std::unique_ptr<Sequence> sequence = std::move(*waiting);
      waiting_.erase(waiting);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --waitingCount_;
      }
      finish(*sequence, EndReason::Cancelled);
      continue;
    }
    for (const auto &running : running_)
      if (running->id == id) {
        finish(*running, EndReason::Cancelled);
        removeRunning(*running);
        break;
      }
  }
}

/// Tells the owner, and gives back what the request holds (its pages, its
/// count row); the caller removes it from running_ or waiting_.
void Scheduler::finish(Sequence &sequence, EndReason reason, std::string error,
                       RequestEvent event) {
  event.id = sequence.id;
  event.finished = true;
  event.reason = reason;
  event.error = std::move(error);
  if (sequence.stream)
    event.text += sequence.stream->finish();
  event.promptTokens = static_cast<int64_t>(sequence.request.prompt.size());
  event.completionTokens = sequence.generated;
  pages_.release(sequence.id);
  if (sequence.countsRow >= 0)
    countRowUsed_[sequence.countsRow] = false;
  sequence.countsRow = -1;
  if (sequence.callback)
    sequence.callback(event);
}

void Scheduler::removeRunning(Sequence &sequence) {
  running_.erase(std::find_if(running_.begin(), running_.end(),
                              [&](const auto &s) { return s.get() == &sequence; }));
}

int64_t Scheduler::pagesShort(const Sequence &sequence, int64_t tokens) const {
  const int64_t have = static_cast<int64_t>(pages_.pages(sequence.id).size());
  return std::max<int64_t>(0, pages_.pagesFor(tokens) - have);
}

Scheduler::Sequence *Scheduler::preemptYoungest(StepReport &report) {
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  pages_.release(victim->id);
  // It keeps its tokens, text and count row: recomputing refills the cache
  // and its next step samples its next new token.
  victim->cached = 0;
  victim->preemptedAtStep = stepNumber_;
  report.preempted.push_back(victim->id);
  Sequence *raw = victim.get();
  // Ahead of everything that never ran; preempted ones keep their age order
  // because the youngest running goes first.
  waiting_.push_front(std::move(victim));
  std::lock_guard<std::mutex> lock(mutex_);
  ++waitingCount_;
  return raw;
}

void Scheduler::addChunk(Sequence &sequence, int64_t &budget,
                         std::vector<Chunk> &chunks) {
  const int64_t owned = static_cast<int64_t>(pages_.pages(sequence.id).size());
  const int64_t fits =
      (owned + pages_.freePages()) * pages_.pageSize() - sequence.cached;
  const int64_t count = std::min({sequence.pending(), budget, fits});
  if (count <= 0)
    return;
  // Cannot fail: `fits` counted the free pages.
  (void)pages_.reserve(sequence.id, sequence.cached + count);
  chunks.push_back({&sequence, sequence.cached, count});
  budget -= count;
}

/// Moves the front of the queue into the batch when it may join now
/// (`joined`), or ends it when it cannot run at all; false: neither.
bool Scheduler::admitFront(int64_t stepNumber, Sequence *&joined) {
  joined = nullptr;
  if (waiting_.empty() ||
      static_cast<int64_t>(running_.size()) >= maxSequences_ ||
      pages_.freePages() == 0)
    return false;
  Sequence &front = *waiting_.front();
  if (front.preemptedAtStep == stepNumber)
    return false;
  const bool needsRow = front.request.sampling.penalized() &&
                        model_.samplesOnDevice() && front.countsRow < 0;
  if (needsRow) {
    auto row = std::find(countRowUsed_.begin(), countRowUsed_.end(), false);
    if (row == countRowUsed_.end())
      return false;
    front.countsRow = static_cast<int32_t>(row - countRowUsed_.begin());
    *row = true;
    // A new row of counts starts at zero; a preempted request keeps its row
    // and its counts.
    if (!model_.clearTokenCounts(front.countsRow).ok()) {
      std::unique_ptr<Sequence> failed = std::move(waiting_.front());
      waiting_.pop_front();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --waitingCount_;
      }
      finish(*failed, EndReason::Failed, "cannot clear its token counts");
      return true;
    }
  }
  std::unique_ptr<Sequence> sequence = std::move(waiting_.front());
  waiting_.pop_front();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --waitingCount_;
  }
  joined = sequence.get();
  auto at = std::upper_bound(running_.begin(), running_.end(), sequence->id,
                             [](RequestId id, const auto &s) { return id < s->id; });
  running_.insert(at, std::move(sequence));
  return true;
}

StatusOr<StepReport> Scheduler::step() {
  ++stepNumber_;
  takeSubmissions();
  StepReport report;
  std::vector<Chunk> chunks;

  // 1. Decode: every running request that has all but its last token
  //    cached. Oldest first, so the youngest is preempted for the older.
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence &sequence = *running_[i];
    if (sequence.cached == 0 || sequence.pending() != 1)
      continue;
    bool preemptedItself = false;
    while (pagesShort(sequence, sequence.cached + 1) > pages_.freePages())
      if (preemptYoungest(report) == &sequence) {
        preemptedItself = true;
        break;
      }
    if (preemptedItself)
      break; // it was the last one
    (void)pages_.reserve(sequence.id, sequence.cached + 1);
    chunks.push_back({&sequence, sequence.cached, 1});
  }
  report.decodeTokens = static_cast<int64_t>(chunks.size());

  // 2. Prefill: prompt (or recompute) chunks, oldest first, then requests
  //    joining now. A step that would feed nothing although requests run
  //    (their prompts need pages others hold) preempts the youngest.
  for (;;) {
    int64_t budget = std::min(options_.prefillChunkTokens,
                              limits_.maxTokens - report.decodeTokens);
    for (const auto &sequence : running_)
      if (budget > 0 && (sequence->cached == 0 || sequence->pending() > 1))
        addChunk(*sequence, budget, chunks);
    Sequence *joined = nullptr;
    while (budget > 0 && admitFront(stepNumber_, joined))
      if (joined)
        addChunk(*joined, budget, chunks);
    if (!chunks.empty() || running_.empty())
      break;
    preemptYoungest(report);
  }
  updateGauges();
  if (chunks.empty())
    return report;

  Status status = runChunks(chunks, report);
  updateGauges();
  if (!status.ok())
    return status;
  return report;
}

Status Scheduler::runChunks(const std::vector<Chunk> &chunks,
                            StepReport &report) {
  report.ran = true;
  exec::StepInputs inputs;
  std::vector<int64_t> ids;
  bool anyLonger = false;
  for (size_t j = 0; j < chunks.size(); ++j) {
    const Chunk &chunk = chunks[j];
    for (int64_t i = 0; i < chunk.count; ++i) {
      inputs.tokens.push_back(chunk.sequence->tokens[chunk.start + i]);
      inputs.positions.push_back(static_cast<int32_t>(chunk.start + i));
      inputs.tokenSeq.push_back(static_cast<int32_t>(j));
    }
    inputs.lastRows.push_back(static_cast<int32_t>(inputs.tokens.size() - 1));
    ids.push_back(chunk.sequence->id);
    anyLonger |= chunk.count > 1;
    report.sequences.push_back(chunk.sequence->id);
    report.fedTokens.push_back(chunk.count);
  }
  report.prefillEntry = anyLonger;
  report.prefillTokens =
      static_cast<int64_t>(inputs.tokens.size()) - report.decodeTokens;
  inputs.pagesPerSequence = pages_.widestSequence(ids);

  // A row samples when its chunk reaches the end of its tokens; the other
  // rows (prompt chunks with more to come) are sampled greedily without
  // counts on the device and ignored.
  std::vector<sample::SamplingParams> rows(chunks.size());
  std::vector<bool> samples(chunks.size());
  for (size_t j = 0; j < chunks.size(); ++j) {
    const Sequence &sequence = *chunks[j].sequence;
    samples[j] = chunks[j].start + chunks[j].count ==
                 static_cast<int64_t>(sequence.tokens.size());
    if (!samples[j])
      continue;
    rows[j] = sequence.request.sampling;
    rows[j].step = static_cast<uint64_t>(sequence.generated);
    rows[j].countsRow = sequence.countsRow;
  }

  std::vector<int32_t> sampled;
  Status status = pages_.fillBlockTable(ids, inputs.pagesPerSequence,
                                        inputs.blockTable);
  if (status.ok())
    status = model_.run(/*prefill=*/anyLonger, inputs);
  if (status.ok() && model_.samplesOnDevice()) {
    StatusOr<std::vector<int32_t>> tokens = model_.sampleTokens(rows);
    if (tokens.ok() && tokens->size() != chunks.size())
      status = Status::error("the sampler returned {} tokens for {} rows",
                             tokens->size(), chunks.size());
    else if (tokens.ok())
      sampled = std::move(*tokens);
    else
      status = tokens.status();
  } else if (status.ok()) {
    StatusOr<std::vector<float>> logits = model_.readLogits();
    const size_t columns =
        logits.ok() ? logits->size() / chunks.size() : 0;
    if (!logits.ok())
      status = logits.status();
    else if (columns * chunks.size() != logits->size() ||
             static_cast<int64_t>(columns) < limits_.vocab)
      status = Status::error("{} logits are not {} rows of at least {}",
                             logits->size(), chunks.size(), limits_.vocab);
    else
      for (size_t j = 0; j < chunks.size(); ++j) {
        std::vector<int32_t> &counts = chunks[j].sequence->hostCounts;
        sampled.push_back(
            samples[j] ? sample::sampleToken(
                             logits->data() + j * columns, limits_.vocab,
                             counts.empty() ? nullptr : counts.data(), rows[j])
                       : 0);
      }
  }
  // Log-probabilities, from the logits as the model gave them, for the rows
  // that sample and asked for them.
  std::vector<std::optional<StepLogprobs>> logprobs(chunks.size());
  if (status.ok())
    status = computeStepLogprobs(chunks, samples, rows, sampled, logprobs);
  if (!status.ok()) {
    // The cache rows of this step are unknown: the step's requests end.
    for (const Chunk &chunk : chunks) {
      finish(*chunk.sequence, EndReason::Failed, status.message());
      removeRunning(*chunk.sequence);
    }
    return status;
  }

  for (size_t j = 0; j < chunks.size(); ++j) {
    Sequence &sequence = *chunks[j].sequence;
    sequence.cached += chunks[j].count;
    if (samples[j])
      deliver(sequence, sampled[j], std::move(logprobs[j]));
  }
  return Status::success();
}

/// Log-probabilities for the rows of the step that sample a token for a
/// request that asked for them; only those rows' logits are read.
Status Scheduler::computeStepLogprobs(
    const std::vector<Chunk> &chunks, const std::vector<bool> &samples,
    const std::vector<sample::SamplingParams> &rows,
    const std::vector<int32_t> &sampled,
    std::vector<std::optional<StepLogprobs>> &out) {
  std::vector<int32_t> asked;
  for (size_t j = 0; j < chunks.size(); ++j)
    if (samples[j] && chunks[j].sequence->request.logprobs >= 0)
      asked.push_back(static_cast<int32_t>(j));
  if (asked.empty())
    return Status::success();
  int64_t columns = 0;
  DSV3_ASSIGN_OR_RETURN(
      std::vector<float> logits,
      model_.readLogitRows(asked, static_cast<int64_t>(chunks.size()), columns));
  if (columns < limits_.vocab ||
      logits.size() != asked.size() * static_cast<size_t>(columns))
    return Status::error("{} logits are not {} rows of at least {}",
                         logits.size(), asked.size(), limits_.vocab);
  for (size_t i = 0; i < asked.size(); ++i) {
    const size_t j = static_cast<size_t>(asked[i]);
    // Over the ids the request can be given (the tokenizer's, when the
    // model's vocabulary is padded beyond it).
    const int64_t vocab = rows[j].vocabLimit > 0
                              ? std::min<int64_t>(rows[j].vocabLimit, limits_.vocab)
                              : limits_.vocab;
    out[j] = computeLogprobs(logits.data() + i * columns, vocab, sampled[j],
                             chunks[j].sequence->request.logprobs);
  }
  return Status::success();
}

/// Appends a sampled token, tells the owner and ends the request when it
/// is done.
void Scheduler::deliver(Sequence &sequence, int32_t token,
                        std::optional<StepLogprobs> logprobs) {
  sequence.tokens.push_back(token);
  sequence.generated += 1;
  if (!sequence.hostCounts.empty())
    sequence.hostCounts[token] += 1;

  RequestEvent event;
  event.id = sequence.id;
  event.hasToken = true;
  event.token = token;
  event.logprobs = std::move(logprobs);
  event.promptTokens = static_cast<int64_t>(sequence.request.prompt.size());
  event.completionTokens = sequence.generated;
  std::optional<EndReason> end;
  const std::optional<int32_t> eos =
      tokenizer_ ? tokenizer_->eosId() : std::nullopt;
  if (sequence.request.stopAtEos && eos && token == *eos) {
    end = EndReason::EndOfSequence;
  } else if (sequence.stream) {
    if (sequence.stream->push(token))
      end = EndReason::StopString;
    event.text = sequence.stream->takeReady();
  }
  if (!end && sequence.generated >= sequence.request.maxNewTokens)
    end = EndReason::Length;
  if (!end) {
    if (sequence.callback)
      sequence.callback(event);
    return;
  }
  // The last token and the end in one event.
  finish(sequence, *end, {}, std::move(event));
  removeRunning(sequence);
}

} // namespace dsv3::serve
