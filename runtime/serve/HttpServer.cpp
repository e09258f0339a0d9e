//===- HttpServer.cpp - the OpenAI-style HTTP server over a Scheduler -----===//

#include "runtime/serve/HttpServer.h"

#include "runtime/serve/OpenAiRequest.h"
#include "runtime/serve/OpenAiResponse.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <array>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <mutex>

namespace dsv3::serve {

namespace {
using Clock = std::chrono::steady_clock;
/// How long a waiting handler sleeps before it looks at stopping_ again.
constexpr std::chrono::milliseconds kPoll(50);
/// The largest request body (a prompt of a few hundred thousand tokens).
constexpr size_t kMaxBodyBytes = 32u << 20;
} // namespace

/// Counters and latency histograms, shared with the scheduler's callbacks
/// (which may outlive a request's handler).
class HttpMetrics {
public:
  static constexpr std::array<double, 11> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10};
  struct Histogram {
    std::array<int64_t, kBuckets.size()> counts{};
    int64_t count = 0;
    double sum = 0;
    void add(double seconds) {
      for (size_t i = 0; i < kBuckets.size(); ++i)
        counts[i] += seconds <= kBuckets[i];
      ++count;
      sum += seconds;
    }
  };

  void countResponse(int status) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++responses_[status];
  }
  void countStepFailure() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stepFailures_;
  }
  void countPreemptions(int64_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    preemptions_ += count;
  }
  void addTokenLatency(bool first, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    (first ? firstToken_ : interToken_).add(seconds);
  }
  void addUsage(int64_t promptTokens, int64_t completionTokens) {
    std::lock_guard<std::mutex> lock(mutex_);
    promptTokens_ += promptTokens;
    completionTokens_ += completionTokens;
  }

  std::string text(const SchedulerGauges &gauges) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    out += "# HELP dsv3_requests_total HTTP responses by status code.\n"
           "# TYPE dsv3_requests_total counter\n";
    for (const auto &[status, count] : responses_)
      out += fmt::format("dsv3_requests_total{{status=\"{}\"}} {}\n", status, count);
    out += fmt::format("# HELP dsv3_prompt_tokens_total Prompt tokens of finished "
                       "requests.\n# TYPE dsv3_prompt_tokens_total counter\n"
                       "dsv3_prompt_tokens_total {}\n",
                       promptTokens_);
    out += fmt::format("# HELP dsv3_generation_tokens_total Tokens generated.\n"
                       "# TYPE dsv3_generation_tokens_total counter\n"
                       "dsv3_generation_tokens_total {}\n",
                       completionTokens_);
    out += fmt::format("# HELP dsv3_step_failures_total Model steps that "
                       "failed.\n# TYPE dsv3_step_failures_total counter\n"
                       "dsv3_step_failures_total {}\n",
                       stepFailures_);
    out += fmt::format("# HELP dsv3_preemptions_total Requests preempted (KV "
                       "pages given back, recomputed later).\n"
                       "# TYPE dsv3_preemptions_total counter\n"
                       "dsv3_preemptions_total {}\n",
                       preemptions_);
    appendHistogram(out, "dsv3_time_to_first_token_seconds",
                    "From submission to a request's first token.", firstToken_);
    appendHistogram(out, "dsv3_inter_token_latency_seconds",
                    "Between a request's successive tokens.", interToken_);
    auto gauge = [&](const char *name, const char *help, int64_t value) {
      out +=
          fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
    };
    gauge("dsv3_running_requests", "Requests in the running batch.", gauges.running);
    gauge("dsv3_waiting_requests", "Requests queued to join the batch.", gauges.waiting);
    gauge("dsv3_kv_pages_in_use", "KV-cache pages held by requests.", gauges.pagesInUse);
    gauge("dsv3_kv_pages", "KV-cache pages in all.", gauges.pages);
    return out;
  }

private:
  static void appendHistogram(std::string &out, const char *name, const char *help,
                              const Histogram &h) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBuckets[i], h.counts[i]);
    out += fmt::format("{0}_bucket{{le=\"+Inf\"}} {1}\n{0}_sum {2}\n{0}_count {1}\n",
                       name, h.count, h.sum);
  }

  mutable std::mutex mutex_;
  std::map<int, int64_t> responses_;
  int64_t promptTokens_ = 0, completionTokens_ = 0, stepFailures_ = 0;
  int64_t preemptions_ = 0;
  Histogram firstToken_, interToken_;
};

namespace {

/// One request's events, handed from the scheduler's thread to its handler.
struct RequestState {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<RequestEvent> events;
  bool finished = false;
  Clock::time_point submitted = Clock::now(), lastToken;
  bool sawToken = false;
};

EventCallback makeCallback(std::shared_ptr<RequestState> state,
                           std::shared_ptr<HttpMetrics> metrics) {
  return [state = std::move(state),
          metrics = std::move(metrics)](const RequestEvent &event) {
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      if (event.hasToken) {
        const Clock::time_point since =
            state->sawToken ? state->lastToken : state->submitted;
        metrics->addTokenLatency(!state->sawToken,
                                 std::chrono::duration<double>(now - since).count());
        state->sawToken = true;
        state->lastToken = now;
      }
      if (event.finished) {
        state->finished = true;
        metrics->addUsage(event.promptTokens, event.completionTokens);
      }
      state->events.push_back(event);
    }
    state->changed.notify_all();
  };
}

ApiError serverError(int status, std::string message, std::string code = {}) {
  ApiError error;
  error.httpStatus = status;
  error.message = std::move(message);
  error.type = status >= 500 ? "server_error" : "invalid_request_error";
  error.code = std::move(code);
  return error;
}

} // namespace

HttpServer::HttpServer(Scheduler &scheduler, const Tokenizer &tokenizer, int64_t vocab,
                       HttpServerOptions options)
    : scheduler_(scheduler), tokenizer_(tokenizer), vocab_(vocab),
      options_(std::move(options)), http_(std::make_unique<httplib::Server>()),
      metrics_(std::make_shared<HttpMetrics>()) {}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::metricsText() const {
  return metrics_->text(scheduler_.gauges());
}

void HttpServer::installRoutes() {
  using httplib::Request;
  using httplib::Response;
  auto metrics = metrics_;
  auto reply = [metrics](Response &res, int status, const std::string &body,
                         const char *type = "application/json") {
    res.status = status;
    res.set_content(body, type);
    metrics->countResponse(status);
  };
  auto replyError = [reply](Response &res, const ApiError &error) {
    reply(res, error.httpStatus, error.body());
  };

  const int workers = std::max(1, options_.workerThreads);
  http_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };

  // The API key: every route but /health.
  http_->set_pre_routing_handler([this, replyError](const Request &req, Response &res) {
    if (options_.apiKey.empty() || req.path == "/health")
      return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + options_.apiKey)
      return httplib::Server::HandlerResponse::Unhandled;
    ApiError error = serverError(401,
                                 "Incorrect or missing API key: send "
                                 "'Authorization: Bearer KEY'.",
                                 "invalid_api_key");
    replyError(res, error);
    return httplib::Server::HandlerResponse::Handled;
  });

  http_->Get("/health", [reply](const Request &, Response &res) {
    reply(res, 200, "ok\n", "text/plain");
  });
  http_->Get("/v1/models", [this, reply](const Request &, Response &res) {
    nlohmann::json model = {{"id", options_.modelName},
                            {"object", "model"},
                            {"created", 0},
                            {"owned_by", "dsv3"},
                            {"max_model_len", scheduler_.maxContextTokens()}};
    reply(res, 200, nlohmann::json({{"object", "list"}, {"data", {model}}}).dump());
  });
  http_->Get("/metrics", [this, reply](const Request &, Response &res) {
    // This response is counted after its text is made.
    reply(res, 200, metricsText(), "text/plain; version=0.0.4");
  });

  auto complete = [this, reply, replyError](Endpoint endpoint, const Request &req,
                                            Response &res) {
    CompletionRequest parsed;
    if (auto error = parseCompletionRequest(endpoint, req.body, parsed))
      return replyError(res, *error);
    if (parsed.model != options_.modelName)
      return replyError(res, serverError(404,
                                         fmt::format("The model '{}' does not "
                                                     "exist; this server has '{}'.",
                                                     parsed.model, options_.modelName),
                                         "model_not_found"));
    ServeRequest request;
    if (auto error =
            toServeRequest(parsed, tokenizer_, vocab_, scheduler_.maxContextTokens(),
                           options_.defaultSeed, request))
      return replyError(res, *error);
    auto state = std::make_shared<RequestState>();
    StatusOr<SubmitResult> submitted =
        scheduler_.submit(std::move(request), makeCallback(state, metrics_));
    if (!submitted.ok())
      return replyError(res, serverError(400, submitted.status().message()));
    if (submitted->queueFull) {
      res.set_header("Retry-After", std::to_string(options_.retryAfterSeconds));
      return replyError(res, serverError(503,
                                         "The server is busy (its queue "
                                         "is full); retry later.",
                                         "server_busy"));
    }
    const RequestId id = submitted->id;
    ResponseHeader header;
    header.endpoint = endpoint;
    header.id =
        fmt::format("{}-{}", endpoint == Endpoint::Completions ? "cmpl" : "chatcmpl",
                    nextResponseId_++);
    header.model = options_.modelName;
    header.tokenizer = &tokenizer_;
    header.tokensAsIds = parsed.tokensAsIds;
    const bool wantsLogprobs = parsed.logprobs >= 0;
    header.created = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();

    if (!parsed.stream) {
      // The whole completion in one body. httplib shows whether the client
      // is still there only to a content provider, so the body is written by
      // one that waits for the end of the request and watches the
      // connection meanwhile: a client that goes away (a timeout, say)
      // cancels its request, whose pages go back at the next step. The
      // status (200) is sent before the wait; a request that then fails
      // (a model step, the server stopping) ends with the connection closed
      // before the body is complete, which every client reports as an error.
      metrics_->countResponse(200);
      res.set_chunked_content_provider(
          "application/json",
          [this, state, header, id, wantsLogprobs](size_t, httplib::DataSink &sink) -> bool {
            // This runs outside httplib's handler try block: nothing may escape.
            try {
              std::unique_lock<std::mutex> lock(state->mutex);
              while (!state->finished) {
                if (stopping_ || !sink.is_writable()) {
                  lock.unlock();
                  scheduler_.cancel(id);
                  return false;
                }
                state->changed.wait_for(lock, kPoll);
              }
              std::string text;
              RequestEvent last;
              LogprobsPart logprobs;
              int64_t textOffset = 0;
              for (const RequestEvent &event : state->events) {
                text += event.text;
                if (event.logprobs)
                  appendLogprobs(logprobs, *event.logprobs, tokenizer_, textOffset);
                last = event;
              }
              lock.unlock();
              if (last.reason == EndReason::Failed || last.reason == EndReason::Cancelled) {
                std::fprintf(stderr, "dsv3-run: %s %s: %s\n", header.id.c_str(),
                             endReasonName(last.reason), last.error.c_str());
                return false;
              }
              const std::string body =
                  completionResponse(header, text, last.reason,
                                     {last.promptTokens, last.completionTokens},
                                     wantsLogprobs ? &logprobs : nullptr);
              if (!sink.write(body.data(), body.size()))
                return false;
              sink.done();
              return true;
            } catch (...) {
              scheduler_.cancel(id);
              return false;
            }
          });
      return;
    }

    // Streaming: the provider runs on this connection's worker thread until
    // it returns false or calls done().
    metrics_->countResponse(200);
    auto first = std::make_shared<bool>(true);
    auto textOffset = std::make_shared<int64_t>(0);
    const bool usage = parsed.streamUsage;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, state, header, id, first, usage,
         textOffset](size_t, httplib::DataSink &sink) -> bool {
          // This runs outside httplib's handler try block: nothing may escape.
          try {
            std::deque<RequestEvent> events;
            {
              std::unique_lock<std::mutex> lock(state->mutex);
              if (state->events.empty())
                state->changed.wait_for(lock, kPoll);
              events.swap(state->events);
            }
            if (stopping_) {
              scheduler_.cancel(id);
              return false;
            }
            std::string out;
            for (const RequestEvent &event : events) {
              // This event's token's log-probabilities, if it has any.
              LogprobsPart logprobs;
              if (event.logprobs)
                appendLogprobs(logprobs, *event.logprobs, tokenizer_, *textOffset);
              const LogprobsPart *chunkLogprobs =
                  logprobs.steps.empty() ? nullptr : &logprobs;
              if (!event.finished) {
                out += streamChunk(header, event.text, *first, std::nullopt,
                                   chunkLogprobs);
                *first = false;
                continue;
              }
              if (event.reason == EndReason::Failed) {
                out += streamError(serverError(500, "Generation failed: " + event.error));
              } else if (event.reason != EndReason::Cancelled) {
                out += streamChunk(header, event.text, *first, event.reason,
                                   chunkLogprobs);
                if (usage)
                  out += streamUsageChunk(header,
                                          {event.promptTokens, event.completionTokens});
              }
              out += streamDone();
              if (!sink.write(out.data(), out.size()))
                return false;
              sink.done();
              return true;
            }
            if (!out.empty() && !sink.write(out.data(), out.size())) {
              // The client went away: free its pages at the next step.
              scheduler_.cancel(id);
              return false;
            }
            return true;
          } catch (...) {
            scheduler_.cancel(id);
            return false;
          }
        },
        [this, state, id](bool success) {
          bool finished;
          {
            std::lock_guard<std::mutex> lock(state->mutex);
            finished = state->finished;
          }
          // Not under the state's lock: the scheduler may hold its own lock
          // while it calls back (which takes the state's).
          if (!success || !finished)
            scheduler_.cancel(id);
        });
  };
  http_->Post("/v1/completions", [complete](const Request &req, Response &res) {
    complete(Endpoint::Completions, req, res);
  });
  http_->Post("/v1/chat/completions", [complete](const Request &req, Response &res) {
    complete(Endpoint::ChatCompletions, req, res);
  });

  // Unknown routes (404) and methods (405), and anything that threw (500).
  // httplib's own refusals (413 for a body over the limit, 400 for a
  // request it cannot parse) get an OpenAI-style body too.
  http_->set_payload_max_length(kMaxBodyBytes);
  http_->set_error_handler([reply](const Request &req, Response &res) {
    if (!res.body.empty())
      return;
    if (res.status != 404)
      return reply(res, res.status,
                   serverError(res.status,
                               res.status == 413
                                   ? fmt::format("The request body is over {} bytes.",
                                                 kMaxBodyBytes)
                                   : fmt::format("The request was refused (HTTP {}).",
                                                 res.status))
                       .body());
    static const std::map<std::string, std::string> kAllowed = {
        {"/health", "GET"},
        {"/v1/models", "GET"},
        {"/metrics", "GET"},
        {"/v1/completions", "POST"},
        {"/v1/chat/completions", "POST"}};
    auto known = kAllowed.find(req.path);
    if (known == kAllowed.end())
      return reply(res, 404,
                   serverError(404, fmt::format("No route {} {}.", req.method, req.path),
                               "not_found")
                       .body());
    res.set_header("Allow", known->second);
    reply(res, 405,
          serverError(
              405,
              fmt::format("{} takes {}, not {}.", req.path, known->second, req.method),
              "method_not_allowed")
              .body());
  });
  http_->set_exception_handler(
      [reply](const Request &, Response &res, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception &e) {
          what = e.what();
        } catch (...) {
        }
        reply(res, 500, serverError(500, "Internal error: " + what).body());
      });
}

StatusOr<int> HttpServer::start() {
  if (started_)
    return Status::error("the HTTP server is already started");
  int port = -1;
  try {
    installRoutes();
    if (options_.port == 0) {
      port = http_->bind_to_any_port(options_.host);
    } else if (http_->bind_to_port(options_.host, options_.port)) {
      port = options_.port;
    }
  } catch (const std::exception &e) {
    return Status::error("HTTP server on {}:{}: {}", options_.host, options_.port,
                         e.what());
  }
  if (port < 0)
    return Status::error("HTTP server: cannot listen on {}:{} (address in use, "
                         "or not an address of this machine)",
                         options_.host, options_.port);
  // The stepping thread first runs the caller's preparation (a GPU engine
  // makes its context current there); start() fails if that does.
  std::promise<Status> prepared;
  std::future<Status> preparation = prepared.get_future();
  stepThread_ = std::thread([this, &prepared] {
    Status ready = options_.prepareSteppingThread ? options_.prepareSteppingThread()
                                                  : Status::success();
    const bool ok = ready.ok();
    prepared.set_value(std::move(ready)); // `prepared` is not touched after this
    if (!ok)
      return;
    while (!stopping_) {
      scheduler_.waitForWork(std::chrono::milliseconds(100));
      if (stopping_ || !scheduler_.hasWork())
        continue;
      // A failed step has already ended its requests with errors.
      StatusOr<StepReport> report = scheduler_.step();
      if (!report.ok())
        metrics_->countStepFailure();
      else if (!report->preempted.empty())
        metrics_->countPreemptions(static_cast<int64_t>(report->preempted.size()));
    }
  });
  Status ready = preparation.get();
  if (!ready.ok()) {
    stepThread_.join();
    return ready.withPrefix("HTTP server: preparing the stepping thread: ");
  }
  started_ = true;
  listenThread_ = std::thread([this] {
    try {
      http_->listen_after_bind();
    } catch (...) {
      // Nothing may escape a thread; wait() returns and the caller stops.
    }
    listenerDone_ = true;
  });
  return port;
}

void HttpServer::wait() const {
  while (!listenerDone_)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

void HttpServer::stop() {
  if (!started_)
    return;
  stopping_ = true;
  http_->stop();
  if (listenThread_.joinable())
    listenThread_.join();
  scheduler_.wake();
  if (stepThread_.joinable())
    stepThread_.join();
  started_ = false;
}

} // namespace dsv3::serve
