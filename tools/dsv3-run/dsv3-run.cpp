//===- dsv3-run.cpp - generate text with a plan and a checkpoint ----------===//
//
// A thin main over runtime/generate: reads the options (RunOptions.h, whose
// kUsage is --help), turns the input into requests (token ids, prompts
// through the chat template, lines of a file, or a terminal conversation),
// and prints what the Generator produces; --serve hands the engine to
// Serve.h's HTTP server instead. Everything that can be checked without a
// GPU is checked first (the plan, the checkpoint, the tokenizer, the
// prompts, the teacher-forcing file); the KV cache is sized from the
// prompts; only then is the GPU touched.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Npy.h"
#include "runtime/generate/Engine.h"
#include "runtime/generate/Generator.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/Utf8.h"
#include "tools/dsv3-run/RunOptions.h"
#include "tools/dsv3-run/Serve.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

using namespace dsv3;
using dsv3::run::InputMode;
using dsv3::run::RunOptions;
namespace gen = dsv3::generate;

namespace {

int fail(const std::string &message) {
  std::fprintf(stderr, "dsv3-run: error: %s\n", message.c_str());
  return 1;
}

StatusOr<Tokenizer> loadTokenizer(const RunOptions &options) {
  const bool own = options.tokenizerDir.empty();
  auto tokenizer = Tokenizer::load(own ? options.checkpointDir : options.tokenizerDir);
  if (!tokenizer.ok() && own)
    return Status::error("{} (text input needs tokenizer.json and "
                         "tokenizer_config.json in the checkpoint directory, "
                         "or --tokenizer DIR)",
                         tokenizer.status().message());
  return tokenizer;
}

/// The prompt ids of one user text: through the chat template (after the
/// system prompt), or the text itself with --raw.
StatusOr<std::vector<int32_t>> encodePrompt(const Tokenizer &tokenizer,
                                            const RunOptions &options,
                                            const std::string &text) {
  if (options.raw)
    return tokenizer.encode(text, tokenizer.addBosToken());
  std::vector<ChatMessage> messages;
  if (options.hasSystem)
    messages.push_back({"system", options.system, {}});
  messages.push_back({"user", text, {}});
  DSV3_ASSIGN_OR_RETURN(std::string rendered, tokenizer.renderChat(messages, true));
  return tokenizer.encode(rendered, false);
}

/// --input-file: one prompt per line.
StatusOr<std::vector<std::string>> readPromptLines(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Status::error("{}: cannot read: {}", path, std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      return Status::error("{}:{}: empty line (one prompt per line)", path,
                           lines.size() + 1);
    if (auto bad = tokenizer::findInvalidUtf8(line))
      return Status::error("{}:{}: not valid UTF-8 at byte {}", path,
                           lines.size() + 1, *bad);
    lines.push_back(line);
  }
  if (lines.empty())
    return Status::error("{}: no prompts", path);
  return lines;
}

/// Prints streamed text at once, and writes logits and forces tokens for
/// the lockstep (--logits-out, --teacher-force) runs.
class RunObserver : public gen::GenerationObserver {
public:
  bool stream = false;
  gen::ModelSteps *steps = nullptr;
  int64_t vocab = 0, maxNewTokens = 0;
  std::optional<exec::NpyFloatWriter> logitsOut;
  std::optional<exec::NpyIntArray> teacher;

  void onText(size_t, std::string_view text) override {
    if (!stream)
      return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  Status afterStep(int64_t step, const std::vector<size_t> &sequences,
                   const std::vector<int32_t> &, std::vector<int32_t> &fed) override {
    if (logitsOut) {
      DSV3_ASSIGN_OR_RETURN(std::vector<float> logits, steps->readLogits());
      const size_t columns = logits.size() / sequences.size();
      for (size_t j = 0; j < sequences.size(); ++j)
        DSV3_RETURN_IF_ERROR(logitsOut->append(logits.data() + j * columns, vocab));
    }
    if (teacher && step + 1 < maxNewTokens)
      for (size_t j = 0; j < sequences.size(); ++j)
        fed[j] = static_cast<int32_t>(
            teacher->values[step * sequences.size() + sequences[j]]);
    return Status::success();
  }
};

/// --teacher-force: [rows >= maxNew - 1, B] ids inside the vocabulary.
Status checkTeacher(const exec::NpyIntArray &teacher, const RunOptions &options,
                    int64_t B, int64_t vocab) {
  const int64_t needed = options.maxNewTokens - 1;
  if (teacher.shape.size() != 2 || teacher.shape[1] != B || teacher.shape[0] < needed)
    return Status::error("--teacher-force {}: shape ({}), expected [{} or more "
                         "rows, {}] for --max-new-tokens {} and {} prompt{}",
                         options.teacherForce, fmt::join(teacher.shape, ", "),
                         needed, B, options.maxNewTokens, B, B == 1 ? "" : "s");
  for (size_t i = 0; i < teacher.values.size(); ++i)
    if (teacher.values[i] < 0 || teacher.values[i] >= vocab)
      return Status::error("--teacher-force {}: [{}, {}] is {}, outside the "
                           "vocabulary (0..{})",
                           options.teacherForce, i / B, i % B, teacher.values[i],
                           vocab - 1);
  return Status::success();
}

/// The request every prompt starts from: sampling settings, stop strings,
/// EOS, and (with a tokenizer in text modes) no ids beyond its vocabulary.
gen::SequenceRequest baseRequest(const RunOptions &options,
                                 const Tokenizer *tokenizer, int64_t vocab) {
  gen::SequenceRequest request;
  request.sampling = options.sampling;
  request.maxNewTokens = options.maxNewTokens;
  request.stopStrings = options.stopStrings;
  request.stopAtEos = !options.ignoreEos;
  if (tokenizer && options.textMode() &&
      static_cast<int64_t>(tokenizer->vocabSize()) < vocab)
    request.sampling.vocabLimit = static_cast<int32_t>(tokenizer->vocabSize());
  return request;
}

void printTimings(const gen::GenerationStats &stats) {
  std::fprintf(stderr, "dsv3-run: prefill %lld tokens in %.1f ms",
               static_cast<long long>(stats.prefillTokens), stats.prefillMs);
  if (stats.decodeSteps > 0)
    std::fprintf(stderr, "; decode %lld steps, %lld tokens, %.2f ms/step",
                 static_cast<long long>(stats.decodeSteps),
                 static_cast<long long>(stats.decodeTokens),
                 stats.decodeMs / stats.decodeSteps);
  std::fprintf(stderr, "\n");
}

/// --interactive: one conversation, one sequence per turn.
Status chat(gen::Generator &generator, const Tokenizer &tokenizer,
            const RunOptions &options, const gen::SequenceRequest &base,
            RunObserver &observer) {
  std::vector<ChatMessage> history;
  auto reset = [&] {
    history.clear();
    if (options.hasSystem)
      history.push_back({"system", options.system, {}});
  };
  reset();
  std::fprintf(stderr, "dsv3-run: chat; /clear forgets the conversation, "
                       "/exit or end of input quits\n");
  observer.stream = true;
  std::string line;
  for (uint64_t turn = 0;; ++turn) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line == "/exit")
      break;
    if (line == "/clear") {
      reset();
      std::fputs("(conversation cleared)\n", stdout);
      continue;
    }
    if (line.empty())
      continue;
    if (auto bad = tokenizer::findInvalidUtf8(line)) {
      std::fprintf(stderr, "dsv3-run: that line is not valid UTF-8 (byte %zu)\n", *bad);
      continue;
    }
    history.push_back({"user", line, {}});
    gen::SequenceRequest request = base;
    request.sampling.seed = base.sampling.seed + turn;
    StatusOr<std::string> rendered = tokenizer.renderChat(history, true);
    StatusOr<std::vector<int32_t>> ids =
        rendered.ok() ? tokenizer.encode(*rendered, false)
                      : StatusOr<std::vector<int32_t>>(rendered.status());
    if (!ids.ok())
      return ids.status();
    request.prompt = std::move(*ids);
    if (Status fits = generator.checkRequest(request, "the conversation"); !fits.ok()) {
      // Too long for one prefill: say so and let the user clear it.
      std::fprintf(stderr, "dsv3-run: %s; /clear to start over\n",
                   fits.message().c_str());
      history.pop_back();
      continue;
    }
    DSV3_ASSIGN_OR_RETURN(std::vector<gen::SequenceResult> results,
                          generator.generate({request}, &observer));
    std::fputs("\n", stdout);
    std::fflush(stdout);
    printTimings(generator.stats());
    history.push_back({"assistant", results[0].text, {}});
  }
  std::fputs("\n", stdout);
  return Status::success();
}

Status runDsv3(const RunOptions &options) {
  // Without a GPU: the plan, the checkpoint, the tokenizer, the prompts.
  DSV3_ASSIGN_OR_RETURN(std::unique_ptr<gen::Engine> engine,
                        gen::Engine::open(options.planPath, options.checkpointDir));
  const gen::ModelLimits limits = engine->limits();
  std::optional<Tokenizer> tokenizer;
  if (options.textMode() || !options.tokenizerDir.empty()) {
    DSV3_ASSIGN_OR_RETURN(Tokenizer loaded, loadTokenizer(options));
    tokenizer.emplace(std::move(loaded));
  }
  if (options.mode == InputMode::Serve)
    return run::serve(*engine, *tokenizer, options);
  const gen::SequenceRequest base =
      baseRequest(options, tokenizer ? &*tokenizer : nullptr, limits.vocab);

  std::vector<std::string> texts = options.prompts;
  if (options.mode == InputMode::InputFile) {
    DSV3_ASSIGN_OR_RETURN(texts, readPromptLines(options.inputFile));
  }
  std::vector<gen::SequenceRequest> requests;
  for (size_t i = 0; i < texts.size(); ++i) {
    gen::SequenceRequest request = base;
    DSV3_ASSIGN_OR_RETURN(request.prompt, encodePrompt(*tokenizer, options, texts[i]));
    requests.push_back(std::move(request));
  }
  for (const std::vector<int32_t> &ids : options.promptIds) {
    gen::SequenceRequest request = base;
    request.prompt = ids;
    requests.push_back(std::move(request));
  }
  for (size_t i = 0; i < requests.size(); ++i)
    requests[i].sampling.seed = options.sampling.seed + i;

  // Batches of at most max_sequences (lockstep runs: exactly one).
  std::vector<std::vector<gen::SequenceRequest>> batches;
  for (size_t i = 0; i < requests.size(); i += limits.maxSequences)
    batches.emplace_back(requests.begin() + i,
                         requests.begin() + std::min<size_t>(requests.size(),
                                                             i + limits.maxSequences));
  if (options.lockstep() && batches.size() > 1)
    return Status::error("{} prompts, but the plan runs at most {} sequences per "
                         "step (dsv3c --max-sequences)",
                         requests.size(), limits.maxSequences);

  RunObserver observer;
  observer.vocab = limits.vocab;
  observer.maxNewTokens = options.maxNewTokens;
  if (!options.teacherForce.empty()) {
    DSV3_ASSIGN_OR_RETURN(observer.teacher, exec::readNpyInt32(options.teacherForce));
    DSV3_RETURN_IF_ERROR(checkTeacher(*observer.teacher, options,
                                      static_cast<int64_t>(requests.size()),
                                      limits.vocab));
  }

  // The KV cache: the largest batch's prompts plus their new tokens (a
  // sequence's last token is generated, never cached); a conversation of
  // up to max_tokens for --interactive.
  const int64_t pageSize = engine->plan().limits()->page_size();
  auto pagesFor = [&](int64_t tokens) { return (tokens + pageSize - 1) / pageSize; };
  int64_t pagesNeeded = 0, widest = 0, largestBatch = 1;
  if (options.mode == InputMode::Interactive) {
    widest = pagesNeeded = pagesFor(limits.maxTokens + options.maxNewTokens - 1);
  }
  for (const auto &batch : batches) {
    int64_t pages = 0;
    for (const gen::SequenceRequest &request : batch) {
      const int64_t sequencePages = pagesFor(
          static_cast<int64_t>(request.prompt.size()) + options.maxNewTokens - 1);
      pages += sequencePages;
      widest = std::max(widest, sequencePages);
    }
    pagesNeeded = std::max(pagesNeeded, pages);
    largestBatch = std::max<int64_t>(largestBatch, static_cast<int64_t>(batch.size()));
  }
  if (options.kvPages > 0 && options.kvPages < pagesNeeded &&
      options.mode != InputMode::Interactive)
    return Status::error("--kv-pages {} is fewer than the {} pages of {} tokens "
                         "the prompts and --max-new-tokens {} need",
                         options.kvPages, pagesNeeded, pageSize,
                         options.maxNewTokens);
  gen::EngineStartOptions start;
  start.device = options.device;
  start.kvPages = options.kvPages > 0 ? options.kvPages : pagesNeeded;
  start.maxPagesPerSequence = std::min(widest, start.kvPages);
  start.samplerCountRows = base.sampling.penalized() ? largestBatch : 0;
  start.synchronizeEachLaunch = options.syncEachLaunch;
  start.cudaGraphs = options.cudaGraphs;
  start.dependentLaunches = options.dependentLaunches;
  // Every request is checked before the GPU is.
  int64_t promptTokens = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::string what =
        options.mode == InputMode::InputFile
            ? fmt::format("{}:{}", options.inputFile, i + 1)
            : fmt::format("{} #{}",
                          options.mode == InputMode::PromptIds ? "--prompt-ids"
                                                               : "--prompt",
                          i);
    DSV3_RETURN_IF_ERROR(gen::checkSequenceRequest(
        requests[i], limits, tokenizer.has_value(), what));
    promptTokens += static_cast<int64_t>(requests[i].prompt.size());
  }
  if (options.lockstep() && promptTokens > limits.maxTokens)
    return Status::error("the prompts hold {} tokens, but --logits-out and "
                         "--teacher-force prefill them in one step of at most "
                         "{} (dsv3c --max-tokens)",
                         promptTokens, limits.maxTokens);

  DSV3_RETURN_IF_ERROR(engine->start(start));
  std::fprintf(stderr, "dsv3-run: %s\n", engine->deviceSummary().c_str());
  if (!options.logitsOut.empty()) {
    DSV3_ASSIGN_OR_RETURN(
        exec::NpyFloatWriter writer,
        exec::NpyFloatWriter::create(options.logitsOut,
                                     {options.maxNewTokens,
                                      static_cast<int64_t>(requests.size()),
                                      limits.vocab}));
    observer.logitsOut.emplace(std::move(writer));
  }
  gen::GeneratorOptions generatorOptions;
  generatorOptions.lockstep = options.lockstep();
  gen::Generator generator(engine->steps(), engine->pages(), limits,
                           tokenizer ? &*tokenizer : nullptr, generatorOptions);
  observer.steps = &engine->steps();

  if (options.mode == InputMode::Interactive)
    return chat(generator, *tokenizer, options, base, observer);

  // One --prompt streams its reply; several, and --input-file, print one
  // JSON line per prompt in input order; --prompt-ids prints ids.
  observer.stream = options.mode == InputMode::Prompts && requests.size() == 1;
  size_t index = 0;
  for (const std::vector<gen::SequenceRequest> &batch : batches) {
    DSV3_ASSIGN_OR_RETURN(std::vector<gen::SequenceResult> results,
                          generator.generate(batch, &observer));
    for (size_t b = 0; b < results.size(); ++b, ++index) {
      const gen::SequenceResult &result = results[b];
      if (options.mode == InputMode::PromptIds) {
        std::string line = fmt::format("seq {}:", index);
        for (int32_t id : result.tokens)
          line += fmt::format(" {}", id);
        std::printf("%s\n", line.c_str());
      } else if (observer.stream) {
        std::printf("\n");
      } else {
        nlohmann::json reply = {
            {"index", index},
            {"text", result.text},
            {"finish_reason", gen::finishReasonName(result.finish)},
            {"prompt_tokens", batch[b].prompt.size()},
            {"completion_tokens", result.tokens.size()}};
        std::printf("%s\n",
                    reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                        .c_str());
      }
    }
    std::fflush(stdout);
    printTimings(generator.stats());
  }
  if (observer.logitsOut)
    DSV3_RETURN_IF_ERROR(observer.logitsOut->finish());
  return Status::success();
}

} // namespace

int main(int argc, char **argv) {
  RunOptions options;
  bool help = false;
  Status parsed = dsv3::run::parseRunOptions(argc, argv, options, help);
  if (help) {
    std::fputs(dsv3::run::kUsage, stdout);
    return 0;
  }
  if (!parsed.ok())
    return fail(parsed.message());
  Status status = runDsv3(options);
  if (!status.ok())
    return fail(status.message());
  return 0;
}
