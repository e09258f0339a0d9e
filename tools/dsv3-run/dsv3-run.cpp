//===- dsv3-run.cpp - generate tokens with a plan and a checkpoint --------===//
//
// dsv3-run PLAN CHECKPOINT_DIR --prompt-ids 1,2,3 [--prompt-ids 4,5 ...]
//          [--max-new-tokens N] [--temperature T] [--seed S] [--kv-pages N]
//          [--logits-out FILE.npy] [--teacher-force FILE.npy] [--device N]
//          [--sync-each-launch]
//
// Everything that can be checked without a GPU is checked first (the plan,
// the prompts, the teacher-forcing file, every checkpoint tensor), then the
// GPU against the plan (architecture, memory), and only then is anything
// allocated. All prompts are prefilled as one step (each prompt a sequence),
// then every step decodes one token per sequence.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checkpoint.h"
#include "runtime/exec/Device.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/KvCache.h"
#include "runtime/exec/Npy.h"
#include "runtime/exec/WeightLoader.h"
#include "runtime/plan/PlanFile.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using dsv3::Status;
using dsv3::StatusOr;
namespace exec = dsv3::exec;
namespace plan = dsv3::plan;

namespace {

const char kUsage[] = R"(dsv3-run: generate tokens with a dsv3 plan and a Hugging Face checkpoint

USAGE:
  dsv3-run PLAN CHECKPOINT_DIR --prompt-ids IDS [--prompt-ids IDS ...] [options]

PLAN is written by `dsv3c CONFIG --emit=plan -o PLAN`; CHECKPOINT_DIR holds
model.safetensors or model.safetensors.index.json and its shards (dtypes and
shapes must be the ones the plan was compiled for).

Each --prompt-ids is one sequence of token ids (comma separated). All prompts
are prefilled in one step (entry point `prefill`), then each step decodes one
token per sequence (entry point `decode`, or `prefill` when the plan has no
`decode`) until --max-new-tokens tokens per sequence. Output, one line per
sequence in the order given:
  seq 0: 17 4025 9 ...

OPTIONS:
  --prompt-ids IDS        token ids of one prompt, e.g. 0,14,2290 (repeatable)
  --max-new-tokens N      tokens to generate per sequence (default 32)
  --temperature T         0: greedy argmax (default); > 0: sample from
                          softmax(logits / T) on the GPU (needs the plan's
                          sampler kernel)
  --seed S                sampling seed; a run is reproducible from
                          (seed, step) (default 0)
  --kv-pages N            KV-cache pages (of the plan's page size, per layer);
                          default: exactly enough for every prompt plus
                          --max-new-tokens
  --logits-out FILE.npy   write each step's last-token logits as float32
                          [steps, B, vocab] (steps = --max-new-tokens; step 0
                          is the prefill)
  --teacher-force FILE.npy
                          int32 (or int64) [rows, B]: after step s, feed token
                          [s, b] to sequence b instead of the one generated
                          (needs rows >= max-new-tokens - 1); the generated
                          ids are still printed. Keeps errors from compounding
                          when comparing logits with a reference.
  --device N              the GPU to use, as CUDA numbers them (default 0)
  --sync-each-launch      wait for every kernel before the next (debugging:
                          a GPU fault then names the launch at fault)
  --help                  this text

Progress and timings go to stderr; each error is one line naming the thing at
fault, and the exit status is then 1.
)";

int fail(const std::string &message) {
  std::fprintf(stderr, "dsv3-run: error: %s\n", message.c_str());
  return 1;
}

struct Options {
  std::string planPath, checkpointDir;
  std::vector<std::vector<int32_t>> prompts;
  int64_t maxNewTokens = 32;
  double temperature = 0;
  uint64_t seed = 0;
  int64_t kvPages = 0; // 0: as needed
  std::string logitsOut, teacherForce;
  int device = 0;
  bool syncEachLaunch = false;
};

template <typename T>
Status parseInteger(std::string_view option, std::string_view text, T min,
                    T &value) {
  const char *end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end || text.empty() || value < min)
    return Status::error("{}: '{}' is not an integer of at least {}", option,
                         text, min);
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

/// Parses argv; `help` is set for --help (nothing else is then checked).
Status parseOptions(int argc, char **argv, Options &options, bool &help) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return Status::success();
    }
    if (arg.substr(0, 2) != "--") {
      positional.emplace_back(arg);
      continue;
    }
    std::string_view name = arg, value;
    bool hasValue = false;
    if (size_t equals = arg.find('='); equals != std::string_view::npos) {
      name = arg.substr(0, equals);
      value = arg.substr(equals + 1);
      hasValue = true;
    }
    if (name == "--sync-each-launch") {
      options.syncEachLaunch = true;
      continue;
    }
    static const char *const kValued[] = {
        "--prompt-ids", "--max-new-tokens", "--temperature", "--seed",
        "--kv-pages",   "--logits-out",     "--teacher-force", "--device"};
    if (std::find(std::begin(kValued), std::end(kValued), name) ==
        std::end(kValued))
      return Status::error("unknown option '{}' (see --help)", name);
    if (!hasValue) {
      if (i + 1 >= argc)
        return Status::error("{} needs a value", name);
      value = argv[++i];
    }
    if (name == "--prompt-ids") {
      std::vector<int32_t> ids;
      DSV3_RETURN_IF_ERROR(parsePromptIds(value, ids));
      options.prompts.push_back(std::move(ids));
    } else if (name == "--max-new-tokens") {
      DSV3_RETURN_IF_ERROR(
          parseInteger<int64_t>(name, value, 1, options.maxNewTokens));
    } else if (name == "--temperature") {
      std::string text(value);
      char *end = nullptr;
      options.temperature = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(options.temperature) ||
          options.temperature < 0)
        return Status::error("--temperature: '{}' is not a number >= 0", value);
    } else if (name == "--seed") {
      DSV3_RETURN_IF_ERROR(parseInteger<uint64_t>(name, value, 0, options.seed));
    } else if (name == "--kv-pages") {
      DSV3_RETURN_IF_ERROR(parseInteger<int64_t>(name, value, 1, options.kvPages));
    } else if (name == "--logits-out") {
      options.logitsOut = value;
    } else if (name == "--teacher-force") {
      options.teacherForce = value;
    } else if (name == "--device") {
      DSV3_RETURN_IF_ERROR(parseInteger<int>(name, value, 0, options.device));
    }
  }
  if (positional.size() != 2)
    return Status::error("expected PLAN and CHECKPOINT_DIR, got {} positional "
                         "argument{} (see --help)",
                         positional.size(), positional.size() == 1 ? "" : "s");
  options.planPath = positional[0];
  options.checkpointDir = positional[1];
  if (options.prompts.empty())
    return Status::error("no prompt: give at least one --prompt-ids");
  return Status::success();
}

/// Greedy choice on the host, as the sampler kernel does it at temperature 0:
/// ties to the lowest index, NaN never wins, an all-NaN row gives 0.
int32_t argmax(const float *row, int64_t count) {
  int32_t best = -1;
  for (int64_t i = 0; i < count; ++i)
    if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best]))
      best = static_cast<int32_t>(i);
  return best < 0 ? 0 : best;
}

/// The prompt, plan and teacher-forcing checks that need no GPU.
Status checkRequest(const plan::Plan &plan, const Options &options,
                    const std::optional<exec::NpyIntArray> &teacher) {
  const int64_t vocab = plan.model()->vocab_size();
  const int64_t B = static_cast<int64_t>(options.prompts.size());
  if (B > plan.limits()->max_sequences())
    return Status::error("{} prompts, but the plan runs at most {} sequences "
                         "per step (dsv3c --max-sequences)",
                         B, plan.limits()->max_sequences());
  int64_t promptTokens = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t> &prompt = options.prompts[b];
    for (size_t i = 0; i < prompt.size(); ++i)
      if (prompt[i] >= vocab)
        return Status::error("--prompt-ids #{}: token {} is {}, outside the "
                             "vocabulary (0..{})",
                             b, i, prompt[i], vocab - 1);
    promptTokens += static_cast<int64_t>(prompt.size());
  }
  if (promptTokens > plan.limits()->max_tokens())
    return Status::error("the prompts hold {} tokens, but the plan's prefill "
                         "step takes at most {} (dsv3c --max-tokens)",
                         promptTokens, plan.limits()->max_tokens());
  for (const char *name : {"prefill", "decode"}) {
    const plan::EntryPoint *entry = exec::findEntryPoint(plan, name);
    if (!entry)
      continue;
    if (entry->inputs())
      for (plan::StepInput input : *entry->inputs())
        if (input == plan::StepInput::Hidden)
          return Status::error("entry point '{}' reads hidden rows: it is not "
                               "a main-model entry point dsv3-run can drive",
                               name);
    if (!entry->outputs() || entry->outputs()->size() == 0 ||
        entry->outputs()->Get(0)->dtype() != plan::DType::F32 ||
        entry->outputs()->Get(0)->row_elements() < vocab)
      return Status::error("entry point '{}': output 0 must be F32 logits of "
                           "at least {} columns",
                           name, vocab);
  }
  if (!exec::findEntryPoint(plan, "prefill"))
    return Status::error("the plan has no 'prefill' entry point");
  if (options.temperature > 0 && plan.sampler() < 0)
    return Status::error("--temperature {} needs the plan's sampler kernel, "
                         "and this plan has none (use --temperature 0)",
                         options.temperature);
  if (teacher) {
    const int64_t needed = options.maxNewTokens - 1;
    if (teacher->shape.size() != 2 || teacher->shape[1] != B ||
        teacher->shape[0] < needed)
      return Status::error("--teacher-force {}: shape ({}), expected [{} or "
                           "more rows, {}] for --max-new-tokens {} and {} "
                           "prompt{}",
                           options.teacherForce,
                           fmt::join(teacher->shape, ", "), needed, B,
                           options.maxNewTokens, B, B == 1 ? "" : "s");
    for (size_t i = 0; i < teacher->values.size(); ++i)
      if (teacher->values[i] < 0 || teacher->values[i] >= vocab)
        return Status::error("--teacher-force {}: [{}, {}] is {}, outside the "
                             "vocabulary (0..{})",
                             options.teacherForce, i / B, i % B,
                             teacher->values[i], vocab - 1);
  }
  return Status::success();
}

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

Status run(const Options &options) {
  // Without a GPU: the plan, the request, the checkpoint.
  DSV3_ASSIGN_OR_RETURN(plan::PlanFile planFile,
                        plan::PlanFile::open(options.planPath));
  const plan::Plan &plan = planFile.plan();
  std::optional<exec::NpyIntArray> teacher;
  if (!options.teacherForce.empty()) {
    DSV3_ASSIGN_OR_RETURN(teacher, exec::readNpyInt32(options.teacherForce));
  }
  DSV3_RETURN_IF_ERROR(checkRequest(plan, options, teacher));
  DSV3_ASSIGN_OR_RETURN(dsv3::Checkpoint checkpoint,
                        dsv3::Checkpoint::open(options.checkpointDir));
  DSV3_RETURN_IF_ERROR(exec::checkWeightSources(plan, checkpoint));

  const int64_t B = static_cast<int64_t>(options.prompts.size());
  const int64_t pageSize = plan.limits()->page_size();
  // Each sequence ends with its prompt and all new tokens but the last in
  // the cache (the last one is generated, never fed back).
  int64_t widestSequence = 0, pagesNeeded = 0;
  for (const std::vector<int32_t> &prompt : options.prompts) {
    const int64_t finalTokens =
        static_cast<int64_t>(prompt.size()) + options.maxNewTokens - 1;
    const int64_t pages = (finalTokens + pageSize - 1) / pageSize;
    widestSequence = std::max(widestSequence, pages);
    pagesNeeded += pages;
  }
  if (options.kvPages > 0 && options.kvPages < pagesNeeded)
    return Status::error("--kv-pages {} is fewer than the {} pages of {} tokens "
                         "the prompts and --max-new-tokens {} need",
                         options.kvPages, pagesNeeded, pageSize,
                         options.maxNewTokens);
  const int64_t kvPages = options.kvPages > 0 ? options.kvPages : pagesNeeded;
  const int64_t maxPagesPerSequence = std::min(widestSequence, kvPages);

  // The GPU, checked before anything is allocated on it.
  DSV3_ASSIGN_OR_RETURN(std::unique_ptr<exec::Device> device,
                        exec::Device::open(options.device));
  DSV3_ASSIGN_OR_RETURN(plan::DeviceInfo info, device->queryInfo());
  const plan::MemoryNeeds needs = plan::memoryNeeds(
      plan, exec::kvCacheBytes(plan, kvPages), maxPagesPerSequence);
  DSV3_RETURN_IF_ERROR(plan::checkDevice(plan, info, needs)
                           .withPrefix(fmt::format("GPU {} ({}): ",
                                                   options.device, info.name)));
  std::fprintf(stderr,
               "dsv3-run: %s, compute %d.%d, %d SMs; plan %s needs %.2f GB "
               "(KV cache %lld pages, %.2f GB) of %.2f GB free\n",
               info.name.c_str(), info.compute_major, info.compute_minor,
               info.sm_count, plan.target()->arch()->c_str(), needs.total() / 1e9,
               static_cast<long long>(kvPages), needs.kvCache / 1e9,
               info.free_bytes / 1e9);

  DSV3_ASSIGN_OR_RETURN(
      exec::DeviceWeights weights,
      exec::loadWeights(*device, plan, checkpoint, exec::WeightLoadOptions{}));
  DSV3_ASSIGN_OR_RETURN(exec::KvCache cache,
                        exec::KvCache::create(*device, plan, kvPages));
  exec::ExecutorOptions executorOptions;
  executorOptions.maxPagesPerSequence = maxPagesPerSequence;
  executorOptions.synchronizeEachLaunch = options.syncEachLaunch;
  DSV3_ASSIGN_OR_RETURN(
      std::unique_ptr<exec::Executor> executor,
      exec::Executor::create(*device, plan, weights, cache, executorOptions));
  const char *decodeEntry = executor->hasEntryPoint("decode") ? "decode"
                                                              : "prefill";

  const int64_t vocab = plan.model()->vocab_size();
  std::optional<exec::NpyFloatWriter> logitsOut;
  if (!options.logitsOut.empty()) {
    DSV3_ASSIGN_OR_RETURN(exec::NpyFloatWriter writer,
                          exec::NpyFloatWriter::create(
                              options.logitsOut,
                              {options.maxNewTokens, B, vocab}));
    logitsOut.emplace(std::move(writer));
  }

  std::vector<int64_t> sequences(B);
  std::vector<int64_t> cached(B, 0); // tokens of each sequence in the cache
  std::vector<std::vector<int32_t>> generated(B);
  std::vector<int32_t> next(B);
  double prefillMs = 0, decodeMs = 0;
  for (int64_t b = 0; b < B; ++b)
    sequences[b] = b;

  for (int64_t step = 0; step < options.maxNewTokens; ++step) {
    const auto start = std::chrono::steady_clock::now();
    exec::StepInputs inputs;
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t> fed =
          step == 0 ? options.prompts[b] : std::vector<int32_t>{next[b]};
      for (size_t i = 0; i < fed.size(); ++i) {
        inputs.tokens.push_back(fed[i]);
        inputs.positions.push_back(static_cast<int32_t>(cached[b] + i));
        inputs.tokenSeq.push_back(static_cast<int32_t>(b));
      }
      cached[b] += static_cast<int64_t>(fed.size());
      inputs.lastRows.push_back(static_cast<int32_t>(inputs.tokens.size() - 1));
      DSV3_RETURN_IF_ERROR(cache.pages().reserve(b, cached[b]));
    }
    inputs.pagesPerSequence = cache.pages().widestSequence(sequences);
    DSV3_RETURN_IF_ERROR(cache.pages().fillBlockTable(
        sequences, inputs.pagesPerSequence, inputs.blockTable));
    DSV3_RETURN_IF_ERROR(
        executor->run(step == 0 ? "prefill" : decodeEntry, inputs));

    std::vector<float> logits;
    int64_t logitsColumns = 0;
    if (logitsOut || plan.sampler() < 0) {
      DSV3_ASSIGN_OR_RETURN(logits, executor->readLogits());
      logitsColumns = static_cast<int64_t>(logits.size()) / B;
      if (logitsColumns * B != static_cast<int64_t>(logits.size()) ||
          logitsColumns < vocab)
        return Status::error("step {}: output 0 holds {} values, not {} rows "
                             "of at least {}",
                             step, logits.size(), B, vocab);
      if (logitsOut)
        for (int64_t b = 0; b < B; ++b)
          DSV3_RETURN_IF_ERROR(
              logitsOut->append(logits.data() + b * logitsColumns, vocab));
    }
    std::vector<int32_t> sampled(B);
    if (plan.sampler() >= 0) {
      std::vector<dsv3::sample::SamplingParams> rows(B);
      for (dsv3::sample::SamplingParams &row : rows) {
        row.temperature = static_cast<float>(options.temperature);
        row.seed = options.seed;
        row.step = static_cast<uint64_t>(step);
      }
      DSV3_ASSIGN_OR_RETURN(sampled, executor->sampleTokens(rows));
    } else {
      for (int64_t b = 0; b < B; ++b)
        sampled[b] = argmax(logits.data() + b * logitsColumns, vocab);
    }
    for (int64_t b = 0; b < B; ++b) {
      generated[b].push_back(sampled[b]);
      next[b] = teacher && step + 1 < options.maxNewTokens
                    ? teacher->values[step * B + b]
                    : sampled[b];
    }
    (step == 0 ? prefillMs : decodeMs) += millisecondsSince(start);
  }
  if (logitsOut)
    DSV3_RETURN_IF_ERROR(logitsOut->finish());

  for (int64_t b = 0; b < B; ++b) {
    std::string line = fmt::format("seq {}:", b);
    for (int32_t id : generated[b])
      line += fmt::format(" {}", id);
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  int64_t promptTokens = 0;
  for (const std::vector<int32_t> &prompt : options.prompts)
    promptTokens += static_cast<int64_t>(prompt.size());
  std::fprintf(stderr, "dsv3-run: prefill %lld tokens in %.1f ms",
               static_cast<long long>(promptTokens), prefillMs);
  if (options.maxNewTokens > 1)
    std::fprintf(stderr, "; decode %lld steps of %lld tokens, %.2f ms/step",
                 static_cast<long long>(options.maxNewTokens - 1),
                 static_cast<long long>(B),
                 decodeMs / (options.maxNewTokens - 1));
  std::fprintf(stderr, "\n");
  return Status::success();
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  bool help = false;
  Status parsed = parseOptions(argc, argv, options, help);
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!parsed.ok())
    return fail(parsed.message());
  Status status = run(options);
  if (!status.ok())
    return fail(status.message());
  return 0;
}
