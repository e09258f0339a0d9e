//===- Scheduler.h - continuous batching over ModelSteps --------*- C++ -*-===//
//
// Serves requests that arrive at any time on one model, one step at a time:
//   - a request is submitted (from any thread) into a bounded queue, and
//     joins the running batch between steps while there is room (the plan's
//     max_sequences, free KV-cache pages, a row of device token counts when
//     it uses penalties on a device sampler);
//   - each step first feeds every decoding request its last token, then
//     spends at most `prefillChunkTokens` (and what is left of the plan's
//     max_tokens) on prompt chunks, oldest request first, so that a long
//     prompt is prefilled over several steps while the others keep
//     streaming. A step with any chunk longer than one token runs on the
//     `prefill` entry point, which attends over the cache at each token's
//     position, so chunks and decode tokens mix in one step;
//   - a request that reaches its end (max new tokens, EOS, a stop string) or
//     is cancelled leaves the batch at that step's end and its pages go back;
//   - when a decoding request needs a page and none is free, the youngest
//     running request is preempted: its pages go back and it returns to the
//     front of the queue with its tokens so far, to be recomputed (its prompt
//     and generated tokens prefilled again) when there is room. It resumes
//     with the next new token, so greedy output does not change; sampled
//     output does not either (seed and step are the request's own).
// Each produced token is delivered at once through the request's callback,
// on the thread that runs step(), with its log-probabilities when the
// request asked: only those rows' logits are read back (after sampling,
// from the same step), so requests that do not ask cost nothing.
//
// Not thread-safe except as stated: submit(), cancel() and gauges() from any
// thread; step() and waitForWork() from one thread (the one that owns the
// model).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SERVE_SCHEDULER_H
#define DSV3_RUNTIME_SERVE_SCHEDULER_H

#include "runtime/Status.h"
#include "runtime/exec/KvCache.h"
#include "runtime/generate/Generator.h"
#include "runtime/sample/SamplingParams.h"
#include "runtime/serve/Logprobs.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace dsv3::serve {

using RequestId = int64_t;

enum class EndReason { Length, EndOfSequence, StopString, Cancelled, Failed };
/// "length", "eos", "stop", "cancelled", "error".
const char *endReasonName(EndReason reason);

struct ServeRequest {
  std::vector<int32_t> prompt;
  /// countsRow and step are the scheduler's; the rest is the caller's.
  sample::SamplingParams sampling;
  int64_t maxNewTokens = 16;
  /// Text that ends the request (not part of its text); needs a tokenizer.
  std::vector<std::string> stopStrings;
  /// End at the tokenizer's EOS token.
  bool stopAtEos = true;
  /// Log-probabilities with each token (Logprobs.h): -1 none; 0 to
  /// kMaxTopLogprobs: the chosen token's and this many most likely ones'.
  int32_t logprobs = -1;
};

/// One delivery to a request's owner: a new token, its end, or both.
struct RequestEvent {
  RequestId id = -1;
  bool hasToken = false;
  int32_t token = 0;
  /// Text that became final with this event (with a tokenizer; at the end,
  /// what was held back).
  std::string text;
  /// With the token, when the request asked for log-probabilities.
  std::optional<StepLogprobs> logprobs;
  bool finished = false;
  EndReason reason = EndReason::Length; ///< when finished
  std::string error;                    ///< when reason is Failed
  int64_t promptTokens = 0, completionTokens = 0;
};
/// Called on the thread that runs step(); it must not call step().
using EventCallback = std::function<void(const RequestEvent &)>;

struct SchedulerOptions {
  /// Prompt tokens (across requests) fed per step; the rest of a long
  /// prompt waits for later steps.
  int64_t prefillChunkTokens = 512;
  /// Requests waiting to join the batch before submit() refuses more.
  int64_t maxQueued = 256;
  /// Most tokens (prompt + new) one request may hold; 0 or more than the
  /// KV cache holds: the cache's capacity.
  int64_t maxContextTokens = 0;
};

struct SubmitResult {
  RequestId id = -1;
  /// The queue was full: nothing was queued (not the request's fault).
  bool queueFull = false;
};

/// What one step did.
struct StepReport {
  bool ran = false;           ///< false: nothing to run
  bool prefillEntry = false;  ///< ran on `prefill` (else `decode`)
  std::vector<RequestId> sequences; ///< the step's rows, in order
  std::vector<int64_t> fedTokens;   ///< tokens fed per row
  int64_t decodeTokens = 0, prefillTokens = 0;
  std::vector<RequestId> preempted; ///< this step, in order
};

/// Counts readable from any thread (for metrics), as of the last change.
struct SchedulerGauges {
  int64_t waiting = 0, running = 0, pagesInUse = 0, pages = 0;
};

class Scheduler {
public:
  /// `tokenizer` may be null (no text, no EOS, no stop strings). `pages` is
  /// the KV cache's allocator; the scheduler owns its pages from now on.
  Scheduler(generate::ModelSteps &model, exec::PageAllocator &pages,
            generate::ModelLimits limits, const Tokenizer *tokenizer,
            SchedulerOptions options = {});
  ~Scheduler();

  /// The longest request (prompt + new tokens) accepted.
  int64_t maxContextTokens() const { return maxContext_; }

  /// Checks a request without queueing it (what submit() refuses).
  Status checkRequest(const ServeRequest &request) const;

  /// Queues `request`; its events go to `callback`. Fails for an invalid
  /// request; reports a full queue without failing.
  StatusOr<SubmitResult> submit(ServeRequest request, EventCallback callback);

  /// Asks to end `id` at the next step boundary (its pages go back then and
  /// it gets a Cancelled event). Unknown or finished ids are ignored.
  void cancel(RequestId id);

  /// Runs one step: admissions, cancellations, preemptions, the model, the
  /// sampling, the deliveries. A model failure ends the step's requests
  /// (Failed events, pages back) and is returned; the scheduler goes on.
  StatusOr<StepReport> step();

  /// Whether a step would have anything to do.
  bool hasWork();
  /// Blocks until hasWork() or `timeout` passes or wake() is called.
  void waitForWork(std::chrono::milliseconds timeout);
  /// Wakes waitForWork() (for shutting down).
  void wake();

  SchedulerGauges gauges() const;

private:
  struct Sequence;
  struct Chunk {
    Sequence *sequence;
    int64_t start, count;
  };

  void takeSubmissions();
  /// Ends `sequence` with `event` (a last token, or nothing) as its end.
  void finish(Sequence &sequence, EndReason reason, std::string error = {},
              RequestEvent event = {});
  void removeRunning(Sequence &sequence);
  /// Preempts the youngest running request; returns it (now waiting).
  Sequence *preemptYoungest(StepReport &report);
  /// Pages `sequence` lacks for its first `tokens` tokens.
  int64_t pagesShort(const Sequence &sequence, int64_t tokens) const;
  /// Adds up to `budget` of `sequence`'s pending tokens, as pages allow.
  void addChunk(Sequence &sequence, int64_t &budget, std::vector<Chunk> &chunks);
  bool admitFront(int64_t stepNumber, Sequence *&joined);
  Status runChunks(const std::vector<Chunk> &chunks, StepReport &report);
  Status computeStepLogprobs(const std::vector<Chunk> &chunks,
                             const std::vector<bool> &samples,
                             const std::vector<sample::SamplingParams> &rows,
                             const std::vector<int32_t> &sampled,
                             std::vector<std::optional<StepLogprobs>> &out);
  void deliver(Sequence &sequence, int32_t token,
               std::optional<StepLogprobs> logprobs);
  void updateGauges();

  generate::ModelSteps &model_;
  exec::PageAllocator &pages_;
  generate::ModelLimits limits_;
  const Tokenizer *tokenizer_;
  SchedulerOptions options_;
  int64_t maxSequences_, maxContext_;
  int64_t stepNumber_ = 0;

  // Shared with submitting threads.
  mutable std::mutex mutex_;
  std::condition_variable wakeup_;
  bool woken_ = false;
  RequestId nextId_ = 0;
  std::deque<std::unique_ptr<Sequence>> submitted_;
  std::set<RequestId> cancelled_;
  int64_t waitingCount_ = 0; ///< submitted_ + waiting_, for maxQueued
  SchedulerGauges gauges_;

  // The stepping thread's.
  std::deque<std::unique_ptr<Sequence>> waiting_;  ///< oldest first
  std::vector<std::unique_ptr<Sequence>> running_; ///< by id: oldest first
  std::vector<bool> countRowUsed_;
};

} // namespace dsv3::serve

#endif // DSV3_RUNTIME_SERVE_SCHEDULER_H
