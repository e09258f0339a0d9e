// The HTTP server on loopback, over the scheduler and the fake paged-cache
// model of the scheduler tests (slowed down per step where a test needs
// time to act mid-request), driven by httplib's client. Every wait has a
// timeout: a broken server fails these tests, never hangs them.
#include "runtime/serve/HttpServer.h"
#include "runtime/serve/OpenAiRequest.h"

#include "test/unit/TempDir.h"
#include "test/unit/serve/PagedCacheModel.h"
#include "test/unit/tokenizer/TinyTokenizer.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <functional>
#include <chrono>
#include <optional>
#include <thread>

namespace dsv3::serve {
namespace {

using json = nlohmann::json;
using fake::expectedTokens;
using fake::kVocab;
using fake::PagedCacheModel;

/// The fake model, `delay` per step.
class SlowModel : public generate::ModelSteps {
public:
  SlowModel(int64_t numPages, int64_t pageSize) : inner(numPages, pageSize) {}
  PagedCacheModel inner;
  std::atomic<int> delayMs{0};
  std::thread::id runThread; ///< the thread of the last step

  Status run(bool prefill, const exec::StepInputs &in) override {
    runThread = std::this_thread::get_id();
    std::this_thread::sleep_for(std::chrono::milliseconds(delayMs.load()));
    return inner.run(prefill, in);
  }
  StatusOr<std::vector<float>> readLogits() override { return inner.readLogits(); }
  bool samplesOnDevice() const override { return false; }
  int64_t countRows() const override { return 0; }
  StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &p) override {
    return inner.sampleTokens(p);
  }
  Status clearTokenCounts(int64_t rows) override {
    return inner.clearTokenCounts(rows);
  }
};

/// Polls `done` every 10 ms for up to `seconds`.
template <typename F> bool eventually(F done, double seconds = 5) {
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

constexpr int64_t kPages = 64, kPageSize = 4;

class HttpServerTest : public ::testing::Test {
protected:
  void startServer(SchedulerOptions schedulerOptions = {},
                   std::string apiKey = {}) {
    json config = test::tinyConfigJson();
    config["chat_template"] = std::string(ChatTemplate::deepSeekV3Text());
    test::writeTokenizer(dir, test::tinyTokenizerJson(), config);
    auto loaded = Tokenizer::load(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    tokenizer.emplace(std::move(*loaded));
    scheduler.emplace(model, pages, generate::ModelLimits{64, 4, kVocab},
                      &*tokenizer, schedulerOptions);
    HttpServerOptions options;
    options.port = 0;
    options.apiKey = std::move(apiKey);
    options.modelName = "tiny";
    options.defaultSeed = 7;
    options.retryAfterSeconds = 3;
    options.prepareSteppingThread = prepare;
    server.emplace(*scheduler, *tokenizer, kVocab, options);
    StatusOr<int> bound = server->start();
    ASSERT_TRUE(bound.ok()) << bound.status().message();
    port = *bound;
    ASSERT_GT(port, 0);
  }
  void TearDown() override {
    if (server)
      server->stop();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(std::chrono::seconds(2));
    c.set_read_timeout(std::chrono::seconds(10));
    c.set_write_timeout(std::chrono::seconds(2));
    return c;
  }
  httplib::Result post(const std::string &path, const json &body,
                       const httplib::Headers &headers = {}) {
    return client().Post(path.c_str(), headers, body.dump(), "application/json");
  }
  /// The prompt ids the server makes of `body` (the server's own rule).
  std::vector<int32_t> promptIds(Endpoint endpoint, const json &body) {
    CompletionRequest parsed;
    ServeRequest request;
    EXPECT_FALSE(parseCompletionRequest(endpoint, body.dump(), parsed));
    EXPECT_FALSE(toServeRequest(parsed, *tokenizer, kVocab,
                                scheduler->maxContextTokens(), 7, request));
    return request.prompt;
  }
  std::string decode(const std::vector<int32_t> &ids) {
    StatusOr<std::string> text = tokenizer->decode(ids);
    EXPECT_TRUE(text.ok()) << text.status().message();
    return text.ok() ? *text : std::string();
  }

  test::TempDir dir;
  std::optional<Tokenizer> tokenizer;
  SlowModel model{kPages, kPageSize};
  exec::PageAllocator pages{kPages, kPageSize};
  std::optional<Scheduler> scheduler;
  std::optional<HttpServer> server;
  int port = 0;
  std::function<Status()> prepare; ///< the server's prepareSteppingThread
  /// After a client of a 40-token request went away: the request left the
  /// batch and its pages came back long before its 40 tokens (a prefill step
  /// and 39 decodes) were done. Stops the server.
  void expectCancelledEarly() {
    // The scheduler's gauges are safe to read while it steps.
    EXPECT_TRUE(eventually([&] {
      SchedulerGauges g = scheduler->gauges();
      return g.running == 0 && g.waiting == 0 && g.pagesInUse == 0;
    }));
    // stop() joins the stepping thread: the allocator and the model are ours.
    server->stop();
    EXPECT_EQ(pages.freePages(), kPages);
    EXPECT_LT(model.inner.steps, 38);
  }
};

/// The `data:` payloads of an SSE body, in order.
std::vector<std::string> sseData(const std::string &body) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    if (end == std::string::npos)
      break;
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end + 2;
  }
  return out;
}

TEST_F(HttpServerTest, HealthModelsAndUnknownRoutes) {
  startServer();
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");

  auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  json list = json::parse(models->body);
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], "tiny");
  EXPECT_EQ(list["data"][0]["object"], "model");

  auto unknown = client().Get("/v1/nothing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(json::parse(unknown->body)["error"]["code"], "not_found");

  auto wrongMethod = client().Get("/v1/completions");
  ASSERT_TRUE(wrongMethod);
  EXPECT_EQ(wrongMethod->status, 405);
  EXPECT_EQ(wrongMethod->get_header_value("Allow"), "POST");
  EXPECT_EQ(json::parse(wrongMethod->body)["error"]["code"], "method_not_allowed");

  // A method httplib does not know: its own 400, with an OpenAI-style body.
  httplib::Request odd;
  odd.method = "BREW";
  odd.path = "/v1/models";
  auto brew = client().send(odd);
  ASSERT_TRUE(brew);
  EXPECT_EQ(brew->status, 400);
  EXPECT_EQ(json::parse(brew->body)["error"]["type"], "invalid_request_error");
}

TEST_F(HttpServerTest, CompletionAndChatCompletion) {
  startServer();
  const json body = {{"model", "tiny"}, {"prompt", "hello world"},
                     {"max_tokens", 6}, {"temperature", 0}};
  auto res = post("/v1/completions", body);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json reply = json::parse(res->body);
  const std::vector<int32_t> prompt = promptIds(Endpoint::Completions, body);
  EXPECT_EQ(reply["object"], "text_completion");
  EXPECT_EQ(reply["model"], "tiny");
  ASSERT_EQ(reply["choices"].size(), 1u);
  EXPECT_EQ(reply["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(reply["choices"][0]["text"], decode(expectedTokens(prompt, 6)));
  EXPECT_EQ(reply["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(reply["usage"]["completion_tokens"], 6);
  EXPECT_EQ(reply["usage"]["total_tokens"], prompt.size() + 6);

  const json chat = {{"model", "tiny"},
                     {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                     {"max_tokens", 5},
                     {"temperature", 0}};
  auto chatRes = post("/v1/chat/completions", chat);
  ASSERT_TRUE(chatRes);
  ASSERT_EQ(chatRes->status, 200) << chatRes->body;
  json chatReply = json::parse(chatRes->body);
  const std::vector<int32_t> chatPrompt = promptIds(Endpoint::ChatCompletions, chat);
  EXPECT_EQ(chatReply["object"], "chat.completion");
  EXPECT_EQ(chatReply["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chatReply["choices"][0]["message"]["content"],
            decode(expectedTokens(chatPrompt, 5)));
  EXPECT_EQ(chatReply["usage"]["prompt_tokens"], chatPrompt.size());
  EXPECT_EQ(chatReply["usage"]["completion_tokens"], 5);

  auto wrongModel = post("/v1/completions", {{"model", "other"}, {"prompt", "x"}});
  ASSERT_TRUE(wrongModel);
  EXPECT_EQ(wrongModel->status, 404);
  EXPECT_EQ(json::parse(wrongModel->body)["error"]["code"], "model_not_found");
}

TEST_F(HttpServerTest, StreamingGivesTheSameTokensThenDone) {
  startServer();
  for (Endpoint endpoint : {Endpoint::Completions, Endpoint::ChatCompletions}) {
    const bool chat = endpoint == Endpoint::ChatCompletions;
    json body = {{"model", "tiny"}, {"max_tokens", 12}, {"temperature", 0}};
    if (chat)
      body["messages"] = {{{"role", "user"}, {"content", "hello world"}}};
    else
      body["prompt"] = "hello world";
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    auto whole = post(path, body);
    ASSERT_TRUE(whole);
    ASSERT_EQ(whole->status, 200) << whole->body;
    const json reply = json::parse(whole->body);
    const std::string wholeText = chat
                                      ? reply["choices"][0]["message"]["content"]
                                      : reply["choices"][0]["text"];

    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    auto streamed = post(path, body);
    ASSERT_TRUE(streamed);
    ASSERT_EQ(streamed->status, 200) << streamed->body;
    EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
    std::vector<std::string> events = sseData(streamed->body);
    ASSERT_GE(events.size(), 3u) << streamed->body;
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text, finish;
    int64_t completionTokens = -1;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      json chunk = json::parse(events[i]);
      EXPECT_EQ(chunk["object"], chat ? "chat.completion.chunk" : "text_completion");
      if (chunk["choices"].empty()) {
        completionTokens = chunk["usage"]["completion_tokens"];
        continue;
      }
      const json &choice = chunk["choices"][0];
      text += chat ? choice["delta"].value("content", std::string())
                   : choice["text"].get<std::string>();
      if (!choice["finish_reason"].is_null())
        finish = choice["finish_reason"];
    }
    EXPECT_EQ(text, wholeText);
    EXPECT_EQ(finish, "length");
    EXPECT_EQ(completionTokens, 12);
  }
}

TEST_F(HttpServerTest, LogprobsStreamedOrNotOnBothEndpoints) {
  startServer();
  // The fake model: logit 10 for its token, 0 for the 303 others.
  const double chosen = 10.0 - std::log(std::exp(10.0) + (kVocab - 1));
  for (Endpoint endpoint : {Endpoint::Completions, Endpoint::ChatCompletions}) {
    for (bool stream : {false, true}) {
      const bool chat = endpoint == Endpoint::ChatCompletions;
      SCOPED_TRACE(fmt::format("{} {}", chat ? "chat" : "completions",
                               stream ? "streamed" : "whole"));
      json body = {{"model", "tiny"}, {"max_tokens", 7}, {"temperature", 0},
                   {"return_tokens_as_token_ids", true}, {"stream", stream}};
      if (chat) {
        body["messages"] = {{{"role", "user"}, {"content", "hello"}}};
        body["logprobs"] = true;
        body["top_logprobs"] = 2;
      } else {
        body["prompt"] = "hello world";
        body["logprobs"] = 2;
      }
      const std::vector<int32_t> expected = expectedTokens(promptIds(endpoint, body), 7);
      auto res = post(chat ? "/v1/chat/completions" : "/v1/completions", body);
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      // Each choice's (or chunk's) logprobs, in order.
      std::vector<json> parts;
      if (stream) {
        for (const std::string &event : sseData(res->body)) {
          if (event == "[DONE]")
            continue;
          const json chunk = json::parse(event);
          for (const json &choice : chunk["choices"])
            if (!choice["logprobs"].is_null())
              parts.push_back(choice["logprobs"]);
        }
        EXPECT_EQ(parts.size(), 7u); // one token per chunk
      } else {
        parts.push_back(json::parse(res->body)["choices"][0]["logprobs"]);
      }
      std::vector<int32_t> tokens;
      std::vector<int64_t> offsets;
      for (const json &part : parts) {
        if (chat) {
          for (const json &entry : part["content"]) {
            tokens.push_back(std::stoi(entry["token"].get<std::string>().substr(9)));
            EXPECT_NEAR(entry["logprob"].get<double>(), chosen, 1e-5);
            ASSERT_EQ(entry["top_logprobs"].size(), 2u);
            EXPECT_EQ(entry["top_logprobs"][0]["token"], entry["token"]);
            EXPECT_EQ(entry["bytes"], json::array({tokens.back()})); // byte tokens
          }
        } else {
          for (size_t k = 0; k < part["tokens"].size(); ++k) {
            tokens.push_back(std::stoi(part["tokens"][k].get<std::string>().substr(9)));
            EXPECT_NEAR(part["token_logprobs"][k].get<double>(), chosen, 1e-5);
            EXPECT_EQ(part["top_logprobs"][k].size(), 2u); // the chosen is the top 1
            offsets.push_back(part["text_offset"][k]);
          }
        }
      }
      EXPECT_EQ(tokens, expected);
      if (!chat) {
        // Characters before each token (the fake's tokens are single bytes).
        std::vector<int64_t> want;
        int64_t offset = 0;
        for (int32_t token : expected) {
          want.push_back(offset);
          offset += (token & 0xC0) != 0x80;
        }
        EXPECT_EQ(offsets, want);
      }
    }
  }
  // Not asked: null.
  auto plain = post("/v1/completions", {{"model", "tiny"}, {"prompt", "x"}, {"max_tokens", 2}});
  ASSERT_TRUE(plain);
  EXPECT_TRUE(json::parse(plain->body)["choices"][0]["logprobs"].is_null());
}

TEST_F(HttpServerTest, StepsRunOnThePreparedThread) {
  // What a GPU model needs: its context made current on the thread that
  // steps it, before the first step.
  std::atomic<int> calls{0};
  std::thread::id prepared;
  prepare = [&] {
    prepared = std::this_thread::get_id();
    ++calls;
    return Status::success();
  };
  startServer();
  EXPECT_EQ(calls, 1);
  EXPECT_NE(prepared, std::this_thread::get_id());
  auto res = post("/v1/completions", {{"model", "tiny"}, {"prompt", "hi"}, {"max_tokens", 3}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  server->stop();
  EXPECT_EQ(model.runThread, prepared);
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpServerTest, AFailedPreparationFailsStart) {
  json config = test::tinyConfigJson();
  test::writeTokenizer(dir, test::tinyTokenizerJson(), config);
  auto loaded = Tokenizer::load(dir.path());
  ASSERT_TRUE(loaded.ok());
  Scheduler scheduler(model, pages, generate::ModelLimits{64, 4, kVocab}, &*loaded);
  HttpServerOptions options;
  options.port = 0;
  options.prepareSteppingThread = [] { return Status::error("no GPU context"); };
  HttpServer failing(scheduler, *loaded, kVocab, options);
  StatusOr<int> bound = failing.start();
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.status().message(),
            "HTTP server: preparing the stepping thread: no GPU context");
  failing.stop(); // nothing to stop; must not hang
}

TEST_F(HttpServerTest, BadRequestsAreOpenAiErrors) {
  startServer();
  auto res = client().Post("/v1/completions", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  json error = json::parse(res->body);
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
  EXPECT_FALSE(error["error"]["message"].get<std::string>().empty());

  auto tooLong = post("/v1/completions",
                      {{"model", "tiny"}, {"prompt", "hello"}, {"max_tokens", 1000}});
  ASSERT_TRUE(tooLong);
  EXPECT_EQ(tooLong->status, 400);
  EXPECT_EQ(json::parse(tooLong->body)["error"]["code"], "context_length_exceeded");
}

TEST_F(HttpServerTest, ApiKey) {
  startServer({}, "sekrit");
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const json body = {{"model", "tiny"}, {"prompt", "hello"}, {"max_tokens", 2}};
  for (const httplib::Headers &headers :
       {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer wrong"}}}) {
    auto denied = post("/v1/completions", body, headers);
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 401);
    EXPECT_EQ(json::parse(denied->body)["error"]["code"], "invalid_api_key");
  }
  auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  auto allowed = post("/v1/completions", body, {{"Authorization", "Bearer sekrit"}});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200) << allowed->body;
}

TEST_F(HttpServerTest, FullQueueIs503WithRetryAfter) {
  SchedulerOptions options;
  options.maxQueued = 1;
  startServer(options);
  // A slow model: the first request holds the queue (or the batch) while
  // the next ones arrive.
  model.delayMs = 30;
  const json body = {{"model", "tiny"}, {"prompt", "hello"}, {"max_tokens", 40}};
  std::vector<std::thread> clients;
  std::vector<int> statuses(8, 0);
  std::vector<std::string> retryAfter(8);
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      auto res = post("/v1/completions", body);
      if (res) {
        statuses[i] = res->status;
        retryAfter[i] = res->get_header_value("Retry-After");
      }
    });
  for (std::thread &t : clients)
    t.join();
  int ok = 0, busy = 0;
  for (int i = 0; i < 8; ++i) {
    if (statuses[i] == 200)
      ++ok;
    if (statuses[i] == 503) {
      ++busy;
      EXPECT_EQ(retryAfter[i], "3");
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1);
  EXPECT_EQ(ok + busy, 8);
}

TEST_F(HttpServerTest, MetricsCountRequestsTokensAndLatency) {
  startServer();
  auto res = post("/v1/completions",
                  {{"model", "tiny"}, {"prompt", {1, 2, 3}}, {"max_tokens", 4}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto missing = client().Get("/nope");
  ASSERT_TRUE(missing);
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  const std::string &text = metrics->body;
  EXPECT_NE(text.find("dsv3_requests_total{status=\"200\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("dsv3_requests_total{status=\"404\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("dsv3_prompt_tokens_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("dsv3_generation_tokens_total 4\n"), std::string::npos);
  EXPECT_NE(text.find("dsv3_time_to_first_token_seconds_count 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("dsv3_inter_token_latency_seconds_count 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("dsv3_preemptions_total 0\n"), std::string::npos);
  EXPECT_NE(text.find("dsv3_running_requests 0\n"), std::string::npos);
  EXPECT_NE(text.find("dsv3_kv_pages_in_use 0\n"), std::string::npos);
  EXPECT_NE(text.find(fmt::format("dsv3_kv_pages {}\n", kPages)), std::string::npos);
}

TEST_F(HttpServerTest, ClientThatLeavesMidStreamIsCancelled) {
  startServer();
  model.delayMs = 20; // 40 tokens take about 0.8 s
  const json body = {{"model", "tiny"}, {"prompt", "hello world"},
                     {"max_tokens", 40}, {"stream", true}};
  std::atomic<int> chunks{0};
  httplib::Client c = client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  // Stop reading (which closes the connection) after three chunks.
  req.content_receiver = [&](const char *, size_t, uint64_t, uint64_t) {
    return ++chunks < 3;
  };
  auto res = c.send(req);
  EXPECT_FALSE(res); // the receiver cancelled it
  EXPECT_GE(chunks.load(), 3);
  expectCancelledEarly();
}

TEST_F(HttpServerTest, ClientThatLeavesBeforeItsCompletionIsCancelled) {
  startServer();
  model.delayMs = 20; // 40 tokens take about 0.8 s
  const json body = {{"model", "tiny"}, {"prompt", "hello world"}, {"max_tokens", 40}};
  httplib::Client c = client();
  c.set_read_timeout(0, 200 * 1000); // gives up (and hangs up) after 0.2 s
  auto res = c.Post("/v1/completions", body.dump(), "application/json");
  EXPECT_FALSE(res);
  expectCancelledEarly();
}

TEST_F(HttpServerTest, FailedCompletionClosesTheConnection) {
  startServer();
  model.delayMs = 5;
  model.inner.failAtStep = 3;
  const json body = {{"model", "tiny"}, {"prompt", "hello world"}, {"max_tokens", 20}};
  httplib::Client c = client();
  auto res = c.Post("/v1/completions", body.dump(), "application/json");
  // The 200 went out before the failure; the body never completes.
  EXPECT_TRUE(!res || res->body.empty() || !json::accept(res->body));
  EXPECT_TRUE(eventually([&] { return scheduler->gauges().pagesInUse == 0; }));
}

} // namespace
} // namespace dsv3::serve
