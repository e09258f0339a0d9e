// The continuous-batching scheduler on the CPU, with a model that keeps a
// real paged cache of token ids: each step writes its tokens into the rows
// the block table names and the next token is a hash of every row the last
// token attends to (positions 0..p, read through the block table). So a
// page shared between requests, a page read before it was written, or a
// recompute that refills the cache wrongly changes the tokens or fails the
// step; the expected tokens come from the same hash over the request's own
// history, computed without any cache.
#include "runtime/serve/Scheduler.h"

#include "test/unit/TempDir.h"
#include "test/unit/serve/PagedCacheModel.h"
#include "test/unit/tokenizer/TinyTokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>

namespace dsv3::serve {
namespace {

using fake::expectedTokens;
using fake::hashRule;
using fake::kVocab;
using fake::PagedCacheModel;

/// Every event of every request.
struct Events {
  std::map<RequestId, std::vector<RequestEvent>> of;
  EventCallback callback() {
    return [this](const RequestEvent &e) { of[e.id].push_back(e); };
  }
  std::vector<int32_t> tokens(RequestId id) {
    std::vector<int32_t> out;
    for (const RequestEvent &e : of[id])
      if (e.hasToken)
        out.push_back(e.token);
    return out;
  }
  std::string text(RequestId id) {
    std::string out;
    for (const RequestEvent &e : of[id])
      out += e.text;
    return out;
  }
  int finishes(RequestId id) {
    int count = 0;
    for (const RequestEvent &e : of[id])
      count += e.finished;
    return count;
  }
  std::optional<EndReason> end(RequestId id) {
    for (const RequestEvent &e : of[id])
      if (e.finished)
        return e.reason;
    return std::nullopt;
  }
};

ServeRequest request(std::vector<int32_t> prompt, int64_t maxNew) {
  ServeRequest r;
  r.prompt = std::move(prompt);
  r.maxNewTokens = maxNew;
  return r;
}

std::vector<int32_t> promptOf(int length, int salt) {
  std::vector<int32_t> ids;
  for (int i = 0; i < length; ++i)
    ids.push_back((salt * 37 + i * 11) % 250);
  return ids;
}

struct Fixture {
  Fixture(int64_t numPages, int64_t pageSize, int64_t maxSequences,
          SchedulerOptions options = {}, int64_t maxTokens = 64,
          const Tokenizer *tokenizer = nullptr)
      : model(numPages, pageSize), pages(numPages, pageSize),
        scheduler(model, pages, {maxTokens, maxSequences, kVocab}, tokenizer,
                  options) {}

  RequestId submit(ServeRequest r) {
    StatusOr<SubmitResult> result = scheduler.submit(std::move(r), events.callback());
    EXPECT_TRUE(result.ok()) << result.status().message();
    EXPECT_FALSE(result.ok() && result->queueFull);
    return result.ok() ? result->id : -1;
  }
  StepReport step() {
    StatusOr<StepReport> report = scheduler.step();
    EXPECT_TRUE(report.ok()) << report.status().message();
    return report.ok() ? *report : StepReport{};
  }
  std::vector<StepReport> runAll(int limit = 10000) {
    std::vector<StepReport> reports;
    while (scheduler.hasWork() && limit-- > 0)
      reports.push_back(step());
    EXPECT_FALSE(scheduler.hasWork()) << "did not finish";
    return reports;
  }

  PagedCacheModel model;
  exec::PageAllocator pages;
  Events events;
  Scheduler scheduler;
};

TEST(SchedulerTest, AdmitsUpToMaxSequencesAndFinishedRequestsLeave) {
  Fixture f(64, 4, /*maxSequences=*/2);
  const std::vector<std::vector<int32_t>> prompts = {
      promptOf(3, 1), promptOf(4, 2), promptOf(5, 3)};
  const std::vector<int64_t> maxNew = {3, 5, 2};
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(f.submit(request(prompts[i], maxNew[i])), RequestId(i));
  std::vector<StepReport> reports = f.runAll();
  ASSERT_GE(reports.size(), 4u);
  // Two join at once (one prefill step), the third when the first leaves:
  // request 0 gets its 3 tokens in steps 1-3 and is gone from step 4.
  EXPECT_EQ(reports[0].sequences, (std::vector<RequestId>{0, 1}));
  EXPECT_TRUE(reports[0].prefillEntry);
  EXPECT_EQ(reports[1].sequences, (std::vector<RequestId>{0, 1}));
  EXPECT_FALSE(reports[1].prefillEntry);
  EXPECT_EQ(reports[2].sequences, (std::vector<RequestId>{0, 1}));
  EXPECT_EQ(reports[3].sequences, (std::vector<RequestId>{1, 2}));
  EXPECT_EQ(reports[3].fedTokens, (std::vector<int64_t>{1, 5}));
  for (const StepReport &report : reports)
    EXPECT_LE(report.sequences.size(), 2u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(f.events.tokens(i), expectedTokens(prompts[i], maxNew[i])) << i;
    EXPECT_EQ(f.events.finishes(i), 1);
    EXPECT_EQ(f.events.end(i), EndReason::Length);
    EXPECT_EQ(f.events.of[i].back().promptTokens, int64_t(prompts[i].size()));
    EXPECT_EQ(f.events.of[i].back().completionTokens, maxNew[i]);
  }
  EXPECT_EQ(f.pages.freePages(), 64);
  EXPECT_EQ(f.scheduler.gauges().pagesInUse, 0);
  EXPECT_EQ(f.scheduler.gauges().running, 0);
}

TEST(SchedulerTest, ChunkedPrefillInterleavesWithDecode) {
  SchedulerOptions options;
  options.prefillChunkTokens = 8;
  Fixture f(64, 4, 4, options);
  const RequestId a = f.submit(request(promptOf(3, 7), 20));
  f.step(); // a's prompt; a decodes from now on
  ASSERT_EQ(f.events.tokens(a).size(), 1u);
  const std::vector<int32_t> longPrompt = promptOf(30, 9);
  const RequestId b = f.submit(request(longPrompt, 2));
  // 30 prompt tokens in chunks of 8, 8, 8, 6, each beside a's decode token.
  const std::vector<int64_t> chunks = {8, 8, 8, 6};
  for (size_t s = 0; s < chunks.size(); ++s) {
    StepReport report = f.step();
    EXPECT_EQ(report.sequences, (std::vector<RequestId>{a, b})) << s;
    EXPECT_EQ(report.fedTokens, (std::vector<int64_t>{1, chunks[s]})) << s;
    EXPECT_EQ(report.decodeTokens, 1);
    EXPECT_EQ(report.prefillTokens, chunks[s]);
    EXPECT_TRUE(report.prefillEntry);
    // a streams a token every step; b samples only after its last chunk.
    EXPECT_EQ(f.events.tokens(a).size(), 2 + s) << s;
    EXPECT_EQ(f.events.tokens(b).size(), s + 1 == chunks.size() ? 1u : 0u) << s;
  }
  f.runAll();
  EXPECT_EQ(f.events.tokens(a), expectedTokens(promptOf(3, 7), 20));
  EXPECT_EQ(f.events.tokens(b), expectedTokens(longPrompt, 2));
  EXPECT_EQ(f.pages.freePages(), 64);
}

TEST(SchedulerTest, ChunksAlsoFitThePlansTokenLimit) {
  SchedulerOptions options;
  options.prefillChunkTokens = 100;
  Fixture f(64, 4, 4, options, /*maxTokens=*/16);
  const std::vector<int32_t> prompt = promptOf(40, 4);
  const RequestId a = f.submit(request(prompt, 3));
  std::vector<StepReport> reports = f.runAll();
  ASSERT_GE(reports.size(), 3u);
  EXPECT_EQ(reports[0].fedTokens, (std::vector<int64_t>{16}));
  EXPECT_EQ(reports[1].fedTokens, (std::vector<int64_t>{16}));
  EXPECT_EQ(reports[2].fedTokens, (std::vector<int64_t>{8}));
  EXPECT_EQ(f.events.tokens(a), expectedTokens(prompt, 3));
}

TEST(SchedulerTest, PreemptsTheYoungestWhenPagesRunOutAndRecomputesIt) {
  // 8 pages of 4 tokens; four requests of 6 + 10 tokens need 4 pages each.
  Fixture f(8, 4, 4);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    prompts.push_back(promptOf(6, 20 + i));
    f.submit(request(prompts.back(), 10));
  }
  std::vector<StepReport> reports = f.runAll();
  std::vector<RequestId> preempted;
  for (const StepReport &report : reports)
    preempted.insert(preempted.end(), report.preempted.begin(),
                     report.preempted.end());
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), 3); // the youngest goes first
  for (RequestId id = 0; id < 4; ++id) {
    // Same tokens as alone, each delivered once, one end.
    EXPECT_EQ(f.events.tokens(id), expectedTokens(prompts[id], 10)) << id;
    EXPECT_EQ(f.events.finishes(id), 1);
    EXPECT_EQ(f.events.end(id), EndReason::Length);
  }
  EXPECT_EQ(f.pages.freePages(), 8);
}

TEST(SchedulerTest, RandomTrafficNeverSharesOrLeaksPages) {
  SchedulerOptions options;
  options.prefillChunkTokens = 5;
  const int64_t numPages = 10;
  Fixture f(numPages, 4, 4, options, /*maxTokens=*/12);
  std::mt19937 random(1234);
  std::map<RequestId, std::vector<int32_t>> prompts;
  std::map<RequestId, int64_t> maxNew;
  std::set<RequestId> cancelled;
  int submitted = 0, preemptions = 0, steps = 0;
  while (submitted < 60 || f.scheduler.hasWork()) {
    if (submitted < 60 && random() % 2 == 0) {
      const int length = 1 + random() % 20;
      const int64_t n = 1 + random() % 15;
      const RequestId id = f.submit(request(promptOf(length, submitted), n));
      prompts[id] = promptOf(length, submitted);
      maxNew[id] = n;
      ++submitted;
    }
    if (submitted > 0 && random() % 10 == 0) {
      const RequestId id = random() % submitted;
      f.scheduler.cancel(id);
      if (f.events.finishes(id) == 0)
        cancelled.insert(id);
    }
    StepReport report = f.step();
    preemptions += static_cast<int>(report.preempted.size());
    ++steps;
    ASSERT_LT(steps, 5000);
    // No page owned twice among all requests, live or not.
    std::set<int32_t> owned;
    int64_t count = 0;
    for (int id = 0; id < submitted; ++id)
      for (int32_t page : f.pages.pages(id)) {
        owned.insert(page);
        ++count;
      }
    ASSERT_EQ(static_cast<int64_t>(owned.size()), count) << "step " << steps;
    ASSERT_EQ(count, numPages - f.pages.freePages());
  }
  EXPECT_GT(preemptions, 0);
  for (const auto &[id, prompt] : prompts) {
    EXPECT_EQ(f.events.finishes(id), 1) << id;
    const std::vector<int32_t> tokens = f.events.tokens(id);
    const std::vector<int32_t> expected = expectedTokens(prompt, maxNew[id]);
    if (f.events.end(id) == EndReason::Cancelled) {
      EXPECT_TRUE(cancelled.count(id)) << id;
      ASSERT_LE(tokens.size(), expected.size());
      EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), expected.begin())) << id;
    } else {
      EXPECT_EQ(f.events.end(id), EndReason::Length) << id;
      EXPECT_EQ(tokens, expected) << id;
    }
  }
  EXPECT_EQ(f.pages.freePages(), numPages);
}

TEST(SchedulerTest, CancellationFreesPagesAtTheNextStep) {
  Fixture f(16, 4, /*maxSequences=*/1);
  const RequestId a = f.submit(request(promptOf(8, 1), 50));
  const RequestId b = f.submit(request(promptOf(3, 2), 4));
  const RequestId c = f.submit(request(promptOf(3, 3), 4));
  f.step();
  f.step();
  EXPECT_EQ(f.pages.pages(a).size(), 3u); // 10 tokens
  f.scheduler.cancel(a);
  f.scheduler.cancel(c); // still waiting
  EXPECT_EQ(f.pages.freePages(), 13);     // nothing happens before the step
  EXPECT_EQ(f.events.finishes(a), 0);
  StepReport report = f.step();
  EXPECT_EQ(report.sequences, (std::vector<RequestId>{b}));
  EXPECT_EQ(f.events.end(a), EndReason::Cancelled);
  EXPECT_EQ(f.events.of[a].back().completionTokens, 2);
  EXPECT_EQ(f.events.end(c), EndReason::Cancelled);
  EXPECT_TRUE(f.events.tokens(c).empty());
  EXPECT_TRUE(f.pages.pages(a).empty());
  f.runAll();
  EXPECT_EQ(f.events.tokens(b), expectedTokens(promptOf(3, 2), 4));
  EXPECT_EQ(f.pages.freePages(), 16);
  f.scheduler.cancel(b); // finished: ignored
  EXPECT_FALSE(f.step().ran);
  EXPECT_EQ(f.events.finishes(b), 1);
}

TEST(SchedulerTest, AFullQueueRefusesWithoutFailing) {
  SchedulerOptions options;
  options.maxQueued = 2;
  Fixture f(16, 4, 4, options);
  f.submit(request({1, 2}, 2));
  f.submit(request({3, 4}, 2));
  StatusOr<SubmitResult> third = f.scheduler.submit(request({5}, 2), nullptr);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->queueFull);
  EXPECT_EQ(third->id, -1);
  EXPECT_EQ(f.scheduler.gauges().waiting, 2);
  f.step(); // both join the batch: the queue is empty again
  EXPECT_EQ(f.scheduler.gauges().waiting, 0);
  EXPECT_EQ(f.scheduler.gauges().running, 2);
  StatusOr<SubmitResult> fourth = f.scheduler.submit(request({5}, 2), nullptr);
  ASSERT_TRUE(fourth.ok());
  EXPECT_FALSE(fourth->queueFull);
}

TEST(SchedulerTest, RefusesInvalidRequests) {
  SchedulerOptions options;
  options.maxContextTokens = 20;
  Fixture f(16, 4, 4, options);
  EXPECT_EQ(f.scheduler.maxContextTokens(), 20);
  auto refused = [&](ServeRequest r, const std::string &words) {
    StatusOr<SubmitResult> result = f.scheduler.submit(std::move(r), nullptr);
    ASSERT_FALSE(result.ok()) << words;
    EXPECT_NE(result.status().message().find(words), std::string::npos)
        << result.status().message();
  };
  refused(request({}, 4), "the prompt has no tokens");
  refused(request({1, int32_t(kVocab)}, 4), "prompt token 1 is 304, outside");
  refused(request({1, -2}, 4), "prompt token 1 is -2");
  refused(request({1}, 0), "max new tokens is 0");
  refused(request(promptOf(15, 1), 6),
          "the context is 20 tokens, but 21 were asked for (15 in the prompt, 6 new)");
  ServeRequest hot = request({1}, 2);
  hot.sampling.temperature = -1;
  refused(hot, "temperature");
  ServeRequest stop = request({1}, 2);
  stop.stopStrings = {"x"};
  refused(stop, "stop strings need a tokenizer");
  ServeRequest many = request({1}, 2);
  many.logprobs = kMaxTopLogprobs + 1;
  refused(many, "21 top log-probabilities asked for; at most 20");
  many.logprobs = -2;
  refused(many, "-2 top log-probabilities");
  // The cache's capacity bounds the context too.
  Fixture small(4, 4, 4);
  EXPECT_EQ(small.scheduler.maxContextTokens(), 16);
  EXPECT_TRUE(small.scheduler.checkRequest(request(promptOf(10, 1), 6)).ok());
  EXPECT_FALSE(small.scheduler.checkRequest(request(promptOf(10, 1), 7)).ok());
}

TEST(SchedulerTest, AModelFailureEndsTheStepsRequestsAndFreesTheirPages) {
  Fixture f(16, 4, 4);
  f.model.failAtStep = 1;
  const RequestId a = f.submit(request(promptOf(5, 1), 8));
  f.step();
  StatusOr<StepReport> failed = f.scheduler.step();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("injected failure"), std::string::npos);
  EXPECT_EQ(f.events.end(a), EndReason::Failed);
  EXPECT_EQ(f.events.of[a].back().error, "injected failure");
  EXPECT_EQ(f.pages.freePages(), 16);
  // The scheduler goes on with the next request.
  const RequestId b = f.submit(request(promptOf(4, 2), 3));
  f.runAll();
  EXPECT_EQ(f.events.tokens(b), expectedTokens(promptOf(4, 2), 3));
}

/// The fake model's log-probability of its chosen token: logit 10 against
/// 303 logits of 0 (the padding column beyond the vocabulary not counted).
const double kChosenLogprob = 10.0 - std::log(std::exp(10.0) + (kVocab - 1));

/// Checks the log-probabilities of every token event of `id`: `top` entries
/// asked for (-1: none sent).
void expectLogprobs(Events &events, RequestId id, int32_t top) {
  int tokens = 0;
  for (const RequestEvent &e : events.of[id]) {
    if (!e.hasToken)
      continue;
    ++tokens;
    if (top < 0) {
      EXPECT_FALSE(e.logprobs) << "request " << id;
      continue;
    }
    ASSERT_TRUE(e.logprobs) << "request " << id;
    EXPECT_EQ(e.logprobs->chosen.token, e.token);
    EXPECT_NEAR(e.logprobs->chosen.logprob, kChosenLogprob, 1e-5);
    ASSERT_EQ(e.logprobs->top.size(), size_t(top));
    if (top > 0) {
      EXPECT_EQ(e.logprobs->top[0].token, e.token);
      EXPECT_NEAR(e.logprobs->top[0].logprob, kChosenLogprob, 1e-5);
    }
    if (top > 1) { // then the lowest id of logit 0
      EXPECT_EQ(e.logprobs->top[1].token, e.token == 0 ? 1 : 0);
    }
  }
  EXPECT_GT(tokens, 0);
}

TEST(SchedulerTest, DeliversLogprobsWithEachTokenOfTheRequestsThatAsk) {
  Fixture f(64, 4, 4);
  ServeRequest two = request(promptOf(5, 1), 6), none = request(promptOf(30, 2), 4),
               zero = request(promptOf(3, 3), 5);
  two.logprobs = 2;
  zero.logprobs = 0;
  const RequestId a = f.submit(two), b = f.submit(none), c = f.submit(zero);
  f.runAll();
  // Logprobs change nothing else.
  EXPECT_EQ(f.events.tokens(a), expectedTokens(promptOf(5, 1), 6));
  EXPECT_EQ(f.events.tokens(b), expectedTokens(promptOf(30, 2), 4));
  expectLogprobs(f.events, a, 2);
  expectLogprobs(f.events, b, -1);
  expectLogprobs(f.events, c, 0);
}

/// The fake model behind a greedy "device" sampler, recording which logit
/// rows the scheduler reads back.
class DeviceSamplingModel : public generate::ModelSteps {
public:
  DeviceSamplingModel(int64_t numPages, int64_t pageSize) : inner(numPages, pageSize) {}
  PagedCacheModel inner;
  std::vector<std::vector<int32_t>> rowsRead;
  int64_t batch = 0;

  Status run(bool prefill, const exec::StepInputs &in) override {
    batch = static_cast<int64_t>(in.lastRows.size());
    return inner.run(prefill, in);
  }
  StatusOr<std::vector<float>> readLogits() override { return inner.readLogits(); }
  StatusOr<std::vector<float>> readLogitRows(const std::vector<int32_t> &rows,
                                             int64_t b, int64_t &columns) override {
    EXPECT_EQ(b, batch);
    rowsRead.push_back(rows);
    return ModelSteps::readLogitRows(rows, b, columns); // the default
  }
  bool samplesOnDevice() const override { return true; }
  int64_t countRows() const override { return 4; }
  StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &rows) override {
    DSV3_ASSIGN_OR_RETURN(std::vector<float> logits, inner.readLogits());
    const size_t columns = logits.size() / rows.size();
    std::vector<int32_t> tokens;
    for (size_t r = 0; r < rows.size(); ++r) {
      const float *row = logits.data() + r * columns;
      tokens.push_back(static_cast<int32_t>(std::max_element(row, row + kVocab) - row));
    }
    return tokens;
  }
  Status clearTokenCounts(int64_t) override { return Status::success(); }
};

TEST(SchedulerTest, ReadsBackOnlyTheLogitRowsOfRequestsThatAsk) {
  DeviceSamplingModel model(64, 4);
  exec::PageAllocator pages(64, 4);
  Events events;
  Scheduler scheduler(model, pages, {64, 4, kVocab}, nullptr);
  auto run = [&] {
    for (int i = 0; i < 1000 && scheduler.hasWork(); ++i)
      ASSERT_TRUE(scheduler.step().ok());
  };
  // Nobody asks: no row is read.
  ASSERT_TRUE(scheduler.submit(request(promptOf(4, 1), 3), events.callback()).ok());
  ASSERT_TRUE(scheduler.submit(request(promptOf(6, 2), 3), events.callback()).ok());
  run();
  EXPECT_TRUE(model.rowsRead.empty());

  // One of three asks: one row per step, its own (the oldest is row 0; a
  // decode step lists the running requests oldest first).
  ServeRequest asks = request(promptOf(5, 3), 4);
  asks.logprobs = 3;
  const RequestId first = scheduler.submit(request(promptOf(4, 4), 6), events.callback())->id;
  const RequestId asking = scheduler.submit(asks, events.callback())->id;
  const RequestId last = scheduler.submit(request(promptOf(4, 5), 6), events.callback())->id;
  run();
  ASSERT_EQ(model.rowsRead.size(), 4u); // one per token of `asking`
  for (const std::vector<int32_t> &rows : model.rowsRead)
    EXPECT_EQ(rows, std::vector<int32_t>{1});
  EXPECT_EQ(events.tokens(asking), expectedTokens(promptOf(5, 3), 4));
  expectLogprobs(events, asking, 3);
  expectLogprobs(events, first, -1);
  expectLogprobs(events, last, -1);
}

class SchedulerTextTest : public ::testing::Test {
protected:
  void SetUp() override {
    test::writeTokenizer(dir, test::tinyTokenizerJson());
    auto loaded = Tokenizer::load(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    tokenizer.emplace(std::move(*loaded));
  }
  test::TempDir dir;
  std::optional<Tokenizer> tokenizer;
};

TEST_F(SchedulerTextTest, StreamsTextAndEndsAtStopStringsAndEos) {
  Fixture f(16, 4, 4, {}, 64, &*tokenizer);
  const std::string script = "hello world, again";
  // The i-th generated token is the i-th byte of the script (the prompt is
  // one token); request 1's model emits EOS after "hel".
  f.model.rule = [&](const std::vector<int32_t> &history) -> int32_t {
    const size_t i = history.size() - 1;
    if (history[0] == 'e' && i == 3)
      return *tokenizer->eosId();
    return static_cast<unsigned char>(script[i % script.size()]);
  };
  ServeRequest stop = request({'x'}, 40);
  stop.stopStrings = {"wor"};
  const RequestId a = f.submit(stop);
  const RequestId b = f.submit(request({'e'}, 40));
  f.runAll();
  EXPECT_EQ(f.events.end(a), EndReason::StopString);
  EXPECT_EQ(f.events.text(a), "hello ");
  EXPECT_EQ(f.events.tokens(a).size(), 9u); // "hello wor"
  EXPECT_EQ(f.events.end(b), EndReason::EndOfSequence);
  EXPECT_EQ(f.events.text(b), "hel");
  EXPECT_EQ(f.events.tokens(b).back(), *tokenizer->eosId());
  EXPECT_EQ(f.pages.freePages(), 16);
}

} // namespace
} // namespace dsv3::serve
