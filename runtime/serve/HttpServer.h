//===- HttpServer.h - the OpenAI-style HTTP server over a Scheduler -*- C++ -*-===//
//
// Serves one model over HTTP (cpp-httplib, plain HTTP, no TLS):
//   GET  /health               200 "ok" (no API key needed)
//   GET  /v1/models            the one model, OpenAI's list shape
//   POST /v1/completions       OpenAiRequest's bodies; `stream: true` sends
//   POST /v1/chat/completions  server-sent events as tokens come
//   GET  /metrics              Prometheus text (requests by status, tokens,
//                              time to first token, inter-token latency,
//                              running batch, queue, KV pages)
// Every error is an OpenAI-style body: 400 for a bad request, 401 without
// the right `Authorization: Bearer KEY` (when a key is set), 404/405 for
// unknown routes and methods, 503 with Retry-After when the scheduler's
// queue is full. A serving thread runs scheduler.step() while there is
// work; a streaming client that goes away cancels its request, so its KV
// pages go back at the next step.
//
// httplib may throw inside: nothing escapes this class (start() returns a
// Status; a throwing handler answers 500).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SERVE_HTTPSERVER_H
#define DSV3_RUNTIME_SERVE_HTTPSERVER_H

#include "runtime/Status.h"
#include "runtime/serve/Scheduler.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace dsv3::serve {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  /// 0: any free port (start() returns it).
  int port = 8000;
  /// Empty: no authentication.
  std::string apiKey;
  /// The model's name in /v1/models; requests must name it.
  std::string modelName = "dsv3";
  /// The seed of requests that give none.
  uint64_t defaultSeed = 0;
  /// Retry-After (seconds) of a 503 for a full queue.
  int retryAfterSeconds = 1;
  /// httplib's worker threads (each open connection holds one).
  int workerThreads = 16;
  /// Run first on the thread that will step the scheduler, before any step:
  /// a GPU model makes its context current there (contexts are per thread).
  /// start() fails with its error.
  std::function<Status()> prepareSteppingThread;
};

class HttpMetrics;

class HttpServer {
public:
  /// `scheduler` and `tokenizer` must outlive the server; from start() to
  /// stop() the server's thread is the only one that steps the scheduler.
  HttpServer(Scheduler &scheduler, const Tokenizer &tokenizer, int64_t vocab,
             HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer &) = delete;
  HttpServer &operator=(const HttpServer &) = delete;

  /// Binds, then serves on background threads; returns the port.
  StatusOr<int> start();
  /// Stops accepting, cancels what is in flight, joins the threads.
  void stop();
  /// Blocks until the listener ends (stop() from another thread, or a
  /// failure); the caller then calls stop().
  void wait() const;

  /// The /metrics text.
  std::string metricsText() const;

private:
  void installRoutes();

  Scheduler &scheduler_;
  const Tokenizer &tokenizer_;
  int64_t vocab_;
  HttpServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::shared_ptr<HttpMetrics> metrics_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> nextResponseId_{0};
  std::thread listenThread_, stepThread_;
  bool started_ = false;
  std::atomic<bool> listenerDone_{false};
};

} // namespace dsv3::serve

#endif // DSV3_RUNTIME_SERVE_HTTPSERVER_H
