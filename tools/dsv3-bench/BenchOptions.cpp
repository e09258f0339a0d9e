//===- BenchOptions.cpp - dsv3-bench's command line -----------------------===//

#include "tools/dsv3-bench/BenchOptions.h"

#include "tools/common/CommandLine.h"

#include <algorithm>
#include <iterator>
#include <string_view>

namespace dsv3::bench {

namespace {

const char kUsage[] = R"(dsv3-bench: time a dsv3 plan's steps on random weights, against floors measured on the same GPU

USAGE:
  dsv3-bench PLAN --workload SPEC [--workload SPEC ...] [options]

PLAN is written by `dsv3c CONFIG --emit=plan -o PLAN` (with --max-tokens and
--max-sequences large enough for the workloads). No checkpoint is read: every
weight is filled on the GPU with random values of the right dtype and scale
(matrices N(0, 1/in_features), FP8 as e4m3 codes with block scales, norms
near 1, embedding and head N(0, 1)), then the steps run through the same
executor as dsv3-run.

WORKLOADS (SPEC):
  decode:B:CONTEXT   B sequences, one new token each, after CONTEXT tokens of
                     context; the context is random N(0, 1) latents written
                     into the KV-cache pages (not a prefill), and every timed
                     step decodes at the same position
  prefill:B:LENGTH   B sequences of LENGTH tokens each, from position 0, in
                     one step

For each workload: warm-up steps, then timed steps (CUDA events around each
whole step: input upload, output poisoning and every launch, as dsv3-run
queues them), and the median; then a separate profiling pass that times each
launch with events and sums the time by kernel class (GEMM, attention, MoE
routing, norms, rest). Beside the median: the floor, max(bytes / copy
bandwidth, FLOPs / GEMM peak), where bytes are the weights the step reads
(routed experts: the expected distinct experts its tokens hit) and the KV
cache it reads and writes, and FLOPs its matrix products and attention
(FP8 weights count at the FP8 peak only when the plan quantizes activations
to FP8, dsv3c --activation-dtype=fp8; everything else at the BF16 peak); the
ceilings are measured first, in the same run (copy bandwidth by
cuMemcpyDtoD, GEMM peaks by cuBLASLt loaded with dlopen).

OPTIONS:
  --workload SPEC        a workload (repeatable; at least one)
  --label NAME           the first column of the table (default: the plan's
                         file name without .plan)
  --warmup N             untimed steps first (default 2)
  --min-steps N          timed steps at least (default 3)
  --max-steps N          timed steps at most (default 50)
  --seconds S            stop timing a workload once its timed steps add up
                         to S seconds and --min-steps are done (default 10)
  --profile-steps N      steps of the per-launch profiling pass (default 1)
  --seed S               random weights, context and tokens (default 0)
  --device N             the GPU, as CUDA numbers them (default 0)
  --json FILE            also write every number as JSON to FILE
  --copy-bytes BYTES     buffer size for the copy-bandwidth ceiling
                         (default 1073741824)
  --gemm-size N          M = N = K of the GEMM-peak ceilings (default 8192)
  --no-gemm-peaks        do not measure GEMM peaks; use issue 5's H100
                         figures (754 TFLOP/s BF16, 1417 FP8), labelled as
                         not measured
  --no-cuda-graphs       queue every launch of every step one by one (by
                         default, as in dsv3-run, steps of at most the plan's
                         max_sequences tokens, the decode workloads, are
                         captured once as CUDA graphs and replayed)
  --no-dependent-launches
                         each kernel starts only once the previous one has
                         finished (by default, as in dsv3-run, plans for sm_90
                         and later launch each kernel to overlap the previous
                         one's tail)
  --timeline-steps N     after timing, run N more steps of a plan compiled
                         with dsv3c --timeline (each kernel records when it
                         passes its wait) and print, per kernel of the step,
                         the mean time from its start to the next kernel's:
                         its share of the step as it runs, graphs and
                         overlapped launches included (default 0: no pass)
  --omit-kernel NAME     leave out every launch of the kernels whose instance
                         name contains NAME, and every cuBLASLt GEMM whose
                         name does (repeatable; e.g. 'mla_decode_combine',
                         'act_quant<16384', 'cublasLt_fp8_gemm<7168'): the steps
                         then compute wrong results, and the times say what
                         the rest costs without them. For attributing step
                         time inside CUDA graphs, where kernels overlap and
                         the per-launch pass overstates small ones; never for
                         the table's numbers. A NAME that matches no kernel
                         of the plan is an error.
  --cost-only            print what each workload's floor counts (bytes and
                         FLOPs, from the plan alone) and stop; needs no GPU
  --help                 this text

The table goes to stdout, progress to stderr. Each error is one line naming
the thing at fault, and the exit status is then 1.
)";

std::string defaultLabel(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash != std::string_view::npos)
    path.remove_prefix(slash + 1);
  constexpr std::string_view kSuffix = ".plan";
  if (path.size() > kSuffix.size() &&
      path.substr(path.size() - kSuffix.size()) == kSuffix)
    path.remove_suffix(kSuffix.size());
  return std::string(path);
}

} // namespace

const char *benchUsage() { return kUsage; }

Status parseBenchOptions(int argc, const char *const *argv,
                         BenchOptions &options, bool &help) {
  std::vector<std::string> positional;
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
    if (name == "--no-gemm-peaks") {
      options.measureGemmPeaks = false;
      continue;
    }
    if (name == "--no-cuda-graphs") {
      options.cudaGraphs = false;
      continue;
    }
    if (name == "--no-dependent-launches") {
      options.dependentLaunches = false;
      continue;
    }
    if (name == "--cost-only") {
      options.costOnly = true;
      continue;
    }
    static const char *const kValued[] = {
        "--workload", "--label",         "--warmup", "--min-steps",
        "--max-steps", "--seconds",      "--profile-steps", "--seed",
        "--device",   "--json",          "--copy-bytes", "--gemm-size",
        "--omit-kernel", "--timeline-steps"};
    if (std::find(std::begin(kValued), std::end(kValued), name) ==
        std::end(kValued))
      return Status::error("unknown option '{}' (see --help)", name);
    DSV3_ASSIGN_OR_RETURN(std::string_view value, reader.value());
    if (name == "--omit-kernel") {
      if (value.empty())
        return Status::error("--omit-kernel needs part of a kernel's name");
      options.omitKernels.emplace_back(value);
      continue;
    }
    if (name == "--workload") {
      DSV3_ASSIGN_OR_RETURN(Workload workload, parseWorkload(value));
      options.workloads.push_back(workload);
    } else if (name == "--label") {
      options.label = value;
    } else if (name == "--warmup") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger(name, value, 0, options.warmup));
    } else if (name == "--min-steps") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger(name, value, 1, options.minSteps));
    } else if (name == "--max-steps") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger(name, value, 1, options.maxSteps));
    } else if (name == "--seconds") {
      if (!tools::parseFiniteNumber(value, options.secondsPerWorkload) ||
          options.secondsPerWorkload < 0)
        return Status::error("--seconds: '{}' is not a number >= 0", value);
    } else if (name == "--profile-steps") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger(name, value, 0, options.profileSteps));
    } else if (name == "--timeline-steps") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger(name, value, 0, options.timelineSteps));
    } else if (name == "--seed") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger<uint64_t>(name, value, 0, options.seed));
    } else if (name == "--device") {
      DSV3_RETURN_IF_ERROR(tools::parseInteger(name, value, 0, options.device));
    } else if (name == "--json") {
      options.jsonPath = value;
    } else if (name == "--copy-bytes") {
      DSV3_RETURN_IF_ERROR(
          tools::parseInteger<uint64_t>(name, value, 1 << 20, options.copyBytes));
    } else if (name == "--gemm-size") {
      DSV3_RETURN_IF_ERROR(
          tools::parseInteger<int64_t>(name, value, 256, options.gemmSize));
    }
  }
  if (positional.size() != 1)
    return Status::error("expected one PLAN, got {} positional arguments "
                         "(see --help)",
                         positional.size());
  options.planPath = positional[0];
  if (options.workloads.empty())
    return Status::error("no workload: give at least one --workload "
                         "(decode:B:CONTEXT or prefill:B:LENGTH)");
  if (options.minSteps > options.maxSteps)
    return Status::error("--min-steps {} is more than --max-steps {}",
                         options.minSteps, options.maxSteps);
  if (options.label.empty())
    options.label = defaultLabel(options.planPath);
  return Status::success();
}

} // namespace dsv3::bench
