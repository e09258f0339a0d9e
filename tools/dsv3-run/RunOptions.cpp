//===- RunOptions.cpp - dsv3-run's command line ---------------------------===//

#include "tools/dsv3-run/RunOptions.h"

#include "tools/common/CommandLine.h"

#include <algorithm>
#include <string_view>

namespace dsv3::run {

const char kUsage[] = R"(dsv3-run: generate text with a dsv3 plan and a Hugging Face checkpoint

USAGE:
  dsv3-run PLAN CHECKPOINT_DIR --prompt TEXT [--prompt TEXT ...] [options]
  dsv3-run PLAN CHECKPOINT_DIR --input-file FILE [options]
  dsv3-run PLAN CHECKPOINT_DIR --interactive [options]
  dsv3-run PLAN CHECKPOINT_DIR --prompt-ids IDS [--prompt-ids IDS ...] [options]
  dsv3-run PLAN CHECKPOINT_DIR --serve [--host H] [--port P] [--api-key K] [options]

PLAN is written by `dsv3c CONFIG --emit=plan -o PLAN`; CHECKPOINT_DIR holds
model.safetensors or model.safetensors.index.json and its shards (dtypes and
shapes must be the ones the plan was compiled for), and, for text, the
tokenizer (tokenizer.json and tokenizer_config.json; see --tokenizer).

INPUT (exactly one kind):
  --prompt TEXT           one prompt (repeatable). Sent as a user turn through
                          the chat template (after --system) unless --raw.
                          One prompt: its reply is streamed to stdout as it is
                          generated. Several: all run as one batch and each
                          reply is one JSON line, in the order given:
                            {"index": 0, "text": "...", "finish_reason":
                             "stop"|"eos"|"length", "prompt_tokens": 12,
                             "completion_tokens": 40}
  --input-file FILE       one prompt per line (UTF-8, no empty lines), run as
                          one batch (several when there are more lines than
                          the plan's max_sequences); JSON lines as above, in
                          input order
  --interactive           chat in the terminal: each line you type is a user
                          turn, the reply streams back, and the conversation
                          so far is the next turn's prompt. /clear forgets
                          it (keeping --system), /exit or end of input quits
  --prompt-ids IDS        token ids of one prompt, e.g. 0,14,2290 (repeatable);
                          no tokenizer needed. Output, one line per sequence:
                            seq 0: 17 4025 9 ...
  --serve                 an OpenAI-style HTTP server (docs/serving.md):
                          POST /v1/completions and /v1/chat/completions
                          (stream: true for server-sent events), GET
                          /v1/models, /health, /metrics (Prometheus). Requests
                          run in one continuously batched loop and carry
                          their own sampling settings, stop strings and
                          max_tokens; runs until killed

SERVER (--serve only):
  --host H                address to listen on (default 127.0.0.1: this
                          machine only; 0.0.0.0 for every interface)
  --port P                TCP port (default 8000; 0: any free port, printed)
  --api-key K             require 'Authorization: Bearer K' on every route
                          but /health (401 otherwise)
  --model-name NAME       the model's id in /v1/models, which requests must
                          name (default: CHECKPOINT_DIR's last component)
  With --serve, --max-new-tokens N sets the context of one request: prompt
  plus max_tokens at most the plan's max_tokens + N; --seed S is the seed of
  requests that give none; --kv-pages defaults to max_sequences contexts;
  --tokenizer, --device, --sync-each-launch, --no-cuda-graphs and
  --no-dependent-launches work as usual. The other TEXT
  and SAMPLING options are per request and not accepted.

TEXT:
  --tokenizer DIR         directory of tokenizer.json and tokenizer_config.json
                          (default: CHECKPOINT_DIR). With --prompt-ids it is
                          read only when given, and then gives EOS and --stop.
  --system TEXT           the system prompt of the chat template
  --raw                   no chat template: the text itself is the prompt
                          (BOS first when tokenizer_config.json's
                          add_bos_token says so)
  --stop STR              end a reply where STR appears; STR is not part of
                          the output (repeatable)
  --ignore-eos            keep generating after the tokenizer's EOS token
                          (by default a sequence ends at it)

SAMPLING (on the GPU by the plan's sampler kernel; docs/runtime.md):
  --max-new-tokens N      tokens to generate per reply at most (default 256)
  --temperature T         0: greedy argmax (default); > 0: sample from
                          softmax(logits / T) after the filters below
  --top-k K               keep the K most likely tokens (0: off, default)
  --top-p P               keep the fewest most likely tokens whose
                          probability reaches P, in (0, 1] (default 1: off)
  --min-p P               keep tokens at least P times as likely as the most
                          likely one, in [0, 1] (default 0: off)
  --presence-penalty X    subtract X from the logit of every token the reply
                          has already generated (default 0)
  --frequency-penalty X   subtract X per time the reply has generated the
                          token (default 0)
  --seed S                prompt i (0-based, input order; in a chat, turn i)
                          samples with seed S + i; the same seed, prompt and
                          settings give the same reply (default 0)
  Order: penalties, temperature, top-k, top-p, min-p. Penalties apply in
  greedy mode too.

OTHER:
  --kv-pages N            KV-cache pages (of the plan's page size, per layer);
                          default: exactly what the largest batch needs
                          (--interactive: a conversation of the plan's
                          max_tokens plus --max-new-tokens)
  --logits-out FILE.npy   (--prompt-ids) write each step's last-token logits
                          as float32 [steps, B, vocab] (steps =
                          --max-new-tokens; step 0 is the prefill)
  --teacher-force FILE.npy
                          (--prompt-ids) int32 (or int64) [rows, B]: after
                          step s, feed token [s, b] to sequence b instead of
                          the one generated (needs rows >= max-new-tokens - 1);
                          the generated ids are still printed
                          With either, every sequence runs exactly
                          --max-new-tokens steps in one prefill and one batch
                          (no EOS or --stop ending).
  --device N              the GPU to use, as CUDA numbers them (default 0)
  --sync-each-launch      wait for every kernel before the next (debugging:
                          a GPU fault then names the launch at fault)
  --no-cuda-graphs        queue every kernel of every step one by one (by
                          default steps of at most max_sequences tokens are
                          captured once per size as CUDA graphs and replayed)
  --no-dependent-launches each kernel starts only once the previous one has
                          finished (by default, on plans for sm_90 and later,
                          its blocks start while the previous kernel's last
                          ones finish, and wait for it on the GPU)
  --help                  this text

Progress and timings go to stderr; each error is one line naming the thing at
fault, and the exit status is then 1.
)";

namespace {

using tools::parseInteger;

Status parseFloat(std::string_view option, std::string_view text, float &value) {
  double parsed = 0;
  if (!tools::parseFiniteNumber(text, parsed))
    return Status::error("{}: '{}' is not a number", option, text);
  value = static_cast<float>(parsed);
  return Status::success();
}

Status parsePromptIds(std::string_view text, std::vector<int32_t> &ids) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos
                                               : comma - start);
    int32_t id = 0;
    DSV3_RETURN_IF_ERROR(parseInteger<int32_t>(
        fmt::format("--prompt-ids '{}': id {}", text, ids.size()), item, 0, id));
    ids.push_back(id);
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  return Status::success();
}

Status setMode(RunOptions &options, InputMode mode, std::string_view option) {
  if (options.mode != InputMode::None && options.mode != mode)
    return Status::error("{} cannot be combined with another kind of input "
                         "(--prompt, --input-file, --interactive, --prompt-ids, "
                         "--serve)",
                         option);
  options.mode = mode;
  return Status::success();
}

/// The checks between options, after all are read.
Status checkCombination(const RunOptions &options) {
  if (options.mode == InputMode::None)
    return Status::error("no input: give --prompt, --input-file, --interactive, "
                         "--prompt-ids or --serve");
  if (options.lockstep() && options.mode != InputMode::PromptIds)
    return Status::error("--logits-out and --teacher-force work with "
                         "--prompt-ids only");
  if (options.mode == InputMode::PromptIds) {
    if ((options.hasSystem || options.raw))
      return Status::error("--system and --raw are for text prompts, not "
                           "--prompt-ids");
    if (!options.stopStrings.empty() && options.tokenizerDir.empty())
      return Status::error("--stop with --prompt-ids needs --tokenizer (stop "
                           "strings are matched in the decoded text)");
  }
  if (options.lockstep() && !options.stopStrings.empty())
    return Status::error("--stop cannot end sequences that --logits-out or "
                         "--teacher-force run for exactly --max-new-tokens");
  const sample::SamplingParams &p = options.sampling;
  if (!(p.topP > 0 && p.topP <= 1))
    return Status::error("--top-p: {} is outside (0, 1]", p.topP);
  if (!(p.minP >= 0 && p.minP <= 1))
    return Status::error("--min-p: {} is outside [0, 1]", p.minP);
  if (p.temperature < 0)
    return Status::error("--temperature: {} is negative", p.temperature);
  return Status::success();
}

/// --serve takes the server's options; the per-request ones come in
/// requests, so giving them on the command line is a mistake.
Status checkServeOptions(const RunOptions &options,
                         const std::vector<std::string_view> &given) {
  static const char *const kServerOnly[] = {"--host", "--port", "--api-key",
                                            "--model-name"};
  static const char *const kServeAccepts[] = {
      "--serve",  "--tokenizer", "--max-new-tokens",   "--seed",
      "--kv-pages", "--device",  "--sync-each-launch", "--host",
      "--port",   "--api-key",   "--model-name", "--no-cuda-graphs", "--no-dependent-launches"};
  const bool serve = options.mode == InputMode::Serve;
  for (std::string_view name : given) {
    const bool serverOnly = std::find(std::begin(kServerOnly),
                                      std::end(kServerOnly),
                                      name) != std::end(kServerOnly);
    if (!serve && serverOnly)
      return Status::error("{} is for --serve only", name);
    if (serve && std::find(std::begin(kServeAccepts), std::end(kServeAccepts),
                           name) == std::end(kServeAccepts))
      return Status::error("{} cannot be used with --serve (requests carry "
                           "their own settings; see --help)",
                           name);
  }
  return Status::success();
}

} // namespace

Status parseRunOptions(int argc, char **argv, RunOptions &options, bool &help) {
  std::vector<std::string> positional;
  std::vector<std::string_view> given; ///< option names, in order
  static const char *const kFlags[] = {"--sync-each-launch", "--interactive",
                                       "--raw", "--ignore-eos", "--serve",
                                       "--no-cuda-graphs",
                                       "--no-dependent-launches"};
  static const char *const kValued[] = {
      "--prompt-ids",        "--prompt",          "--input-file",
      "--tokenizer",         "--system",          "--stop",
      "--max-new-tokens",    "--temperature",     "--top-k",
      "--top-p",             "--min-p",           "--presence-penalty",
      "--frequency-penalty", "--seed",            "--kv-pages",
      "--logits-out",        "--teacher-force",   "--device",
      "--host",              "--port",            "--api-key",
      "--model-name"};
  tools::CommandLineReader reader(argc, argv);
  for (auto kind = reader.next(); kind != tools::CommandLineReader::Kind::End;
       kind = reader.next()) {
    if (kind == tools::CommandLineReader::Kind::Help) {
      help = true;
      return Status::success();
    }
    if (kind == tools::CommandLineReader::Kind::Positional) {
      positional.emplace_back(reader.word());
      continue;
    }
    std::string_view name = reader.name();
    if (std::find(std::begin(kFlags), std::end(kFlags), name) != std::end(kFlags)) {
      if (reader.hasInlineValue())
        return Status::error("{} takes no value", name);
      if (name == "--sync-each-launch")
        options.syncEachLaunch = true;
      else if (name == "--no-cuda-graphs")
        options.cudaGraphs = false;
      else if (name == "--no-dependent-launches")
        options.dependentLaunches = false;
      else if (name == "--interactive")
        DSV3_RETURN_IF_ERROR(setMode(options, InputMode::Interactive, name));
      else if (name == "--raw")
        options.raw = true;
      else if (name == "--ignore-eos")
        options.ignoreEos = true;
      else if (name == "--serve")
        DSV3_RETURN_IF_ERROR(setMode(options, InputMode::Serve, name));
      given.emplace_back(name);
      continue;
    }
    if (std::find(std::begin(kValued), std::end(kValued), name) ==
        std::end(kValued))
      return Status::error("unknown option '{}' (see --help)", name);
    DSV3_ASSIGN_OR_RETURN(std::string_view value, reader.value());
    given.emplace_back(name);
    sample::SamplingParams &sampling = options.sampling;
    if (name == "--prompt-ids") {
      DSV3_RETURN_IF_ERROR(setMode(options, InputMode::PromptIds, name));
      std::vector<int32_t> ids;
      DSV3_RETURN_IF_ERROR(parsePromptIds(value, ids));
      options.promptIds.push_back(std::move(ids));
    } else if (name == "--prompt") {
      DSV3_RETURN_IF_ERROR(setMode(options, InputMode::Prompts, name));
      options.prompts.emplace_back(value);
    } else if (name == "--input-file") {
      DSV3_RETURN_IF_ERROR(setMode(options, InputMode::InputFile, name));
      if (!options.inputFile.empty())
        return Status::error("--input-file given twice");
      options.inputFile = value;
    } else if (name == "--tokenizer") {
      options.tokenizerDir = value;
    } else if (name == "--system") {
      options.system = value;
      options.hasSystem = true;
    } else if (name == "--stop") {
      if (value.empty())
        return Status::error("--stop: the stop string is empty");
      options.stopStrings.emplace_back(value);
    } else if (name == "--max-new-tokens") {
      DSV3_RETURN_IF_ERROR(
          parseInteger<int64_t>(name, value, 1, options.maxNewTokens));
    } else if (name == "--temperature") {
      DSV3_RETURN_IF_ERROR(parseFloat(name, value, sampling.temperature));
    } else if (name == "--top-k") {
      DSV3_RETURN_IF_ERROR(parseInteger<int32_t>(name, value, 0, sampling.topK));
    } else if (name == "--top-p") {
      DSV3_RETURN_IF_ERROR(parseFloat(name, value, sampling.topP));
    } else if (name == "--min-p") {
      DSV3_RETURN_IF_ERROR(parseFloat(name, value, sampling.minP));
    } else if (name == "--presence-penalty") {
      DSV3_RETURN_IF_ERROR(parseFloat(name, value, sampling.presencePenalty));
    } else if (name == "--frequency-penalty") {
      DSV3_RETURN_IF_ERROR(parseFloat(name, value, sampling.frequencyPenalty));
    } else if (name == "--seed") {
      DSV3_RETURN_IF_ERROR(parseInteger<uint64_t>(name, value, 0, sampling.seed));
    } else if (name == "--kv-pages") {
      DSV3_RETURN_IF_ERROR(parseInteger<int64_t>(name, value, 1, options.kvPages));
    } else if (name == "--logits-out") {
      options.logitsOut = value;
    } else if (name == "--teacher-force") {
      options.teacherForce = value;
    } else if (name == "--device") {
      DSV3_RETURN_IF_ERROR(parseInteger<int>(name, value, 0, options.device));
    } else if (name == "--host") {
      if (value.empty())
        return Status::error("--host: the address is empty");
      options.host = value;
    } else if (name == "--port") {
      DSV3_RETURN_IF_ERROR(parseInteger<int>(name, value, 0, options.port));
      if (options.port > 65535)
        return Status::error("--port: {} is above 65535", options.port);
    } else if (name == "--api-key") {
      if (value.empty())
        return Status::error("--api-key: the key is empty");
      options.apiKey = value;
    } else if (name == "--model-name") {
      if (value.empty())
        return Status::error("--model-name: the name is empty");
      options.modelName = value;
    }
  }
  DSV3_RETURN_IF_ERROR(checkServeOptions(options, given));
  if (positional.size() != 2)
    return Status::error("expected PLAN and CHECKPOINT_DIR, got {} positional "
                         "argument{} (see --help)",
                         positional.size(), positional.size() == 1 ? "" : "s");
  options.planPath = positional[0];
  options.checkpointDir = positional[1];
  return checkCombination(options);
}

} // namespace dsv3::run
