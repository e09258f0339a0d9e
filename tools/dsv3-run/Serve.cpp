//===- Serve.cpp - dsv3-run --serve ---------------------------------------===//
//
// Sizes the KV cache for the server, starts the engine, and puts the
// continuous-batching scheduler and the HTTP server on it.
//
//===----------------------------------------------------------------------===//

#include "tools/dsv3-run/Serve.h"

#include "runtime/serve/HttpServer.h"
#include "runtime/serve/Scheduler.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace dsv3::run {

Status serve(generate::Engine &engine, const Tokenizer &tokenizer,
             const RunOptions &options) {
  const generate::ModelLimits limits = engine.limits();
  const int64_t pageSize = engine.plan().limits()->page_size();
  // One request holds at most the plan's max_tokens + --max-new-tokens
  // (chunked prefill lets a prompt exceed one step's max_tokens).
  const int64_t context = limits.maxTokens + options.maxNewTokens;
  const int64_t pagesPerSequence = (context + pageSize - 1) / pageSize;
  generate::EngineStartOptions start;
  start.device = options.device;
  start.kvPages = options.kvPages > 0 ? options.kvPages
                                      : pagesPerSequence * limits.maxSequences;
  start.maxPagesPerSequence = std::min(pagesPerSequence, start.kvPages);
  // Any request may use penalties.
  start.samplerCountRows = limits.maxSequences;
  start.synchronizeEachLaunch = options.syncEachLaunch;
  start.cudaGraphs = options.cudaGraphs;
  start.dependentLaunches = options.dependentLaunches;
  DSV3_RETURN_IF_ERROR(engine.start(start));
  std::fprintf(stderr, "dsv3-run: %s\n", engine.deviceSummary().c_str());

  serve::SchedulerOptions schedulerOptions;
  schedulerOptions.maxContextTokens = start.maxPagesPerSequence * pageSize;
  serve::Scheduler scheduler(engine.steps(), engine.pages(), limits, &tokenizer,
                             schedulerOptions);

  serve::HttpServerOptions serverOptions;
  serverOptions.host = options.host;
  serverOptions.port = options.port;
  serverOptions.apiKey = options.apiKey;
  serverOptions.defaultSeed = options.sampling.seed;
  // Each open request holds a worker thread until its reply ends: enough
  // for a full batch, as many queued behind it, and a few idle keep-alive
  // connections and /metrics scrapes.
  serverOptions.workerThreads =
      static_cast<int>(std::max<int64_t>(16, 2 * limits.maxSequences + 16));
  serverOptions.modelName = options.modelName;
  if (serverOptions.modelName.empty()) {
    std::filesystem::path dir(options.checkpointDir);
    serverOptions.modelName =
        (dir.has_filename() ? dir.filename() : dir.parent_path().filename()).string();
  }
  // The server steps the model on a thread of its own.
  serverOptions.prepareSteppingThread = [&engine] {
    return engine.makeCurrentOnThisThread();
  };
  serve::HttpServer server(scheduler, tokenizer, limits.vocab, serverOptions);
  DSV3_ASSIGN_OR_RETURN(int port, server.start());
  std::fprintf(stderr,
               "dsv3-run: serving '%s' on http://%s:%d (context %lld tokens, "
               "%lld KV pages, up to %lld sequences per step)\n",
               serverOptions.modelName.c_str(), options.host.c_str(), port,
               static_cast<long long>(scheduler.maxContextTokens()),
               static_cast<long long>(start.kvPages),
               static_cast<long long>(limits.maxSequences));
  server.wait();
  server.stop();
  return Status::error("the HTTP server on {}:{} stopped listening", options.host,
                       port);
}

} // namespace dsv3::run
