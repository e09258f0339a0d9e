//===- Executor.h - runs a plan's entry points on a device ---------*- C++ -*-===//
//
// The executor owns what a step needs besides weights and the KV cache: the
// plan's kernels (each module loaded with cuModuleLoadData, each kernel found
// by its mangled name), one arena shared by all entry points (they run one at
// a time on one stream, so it is sized to the largest), and the step-input
// buffers. A step:
//   1. checks the inputs against the plan's limits and the KV cache (host);
//   2. uploads the inputs the entry point lists (through pinned staging);
//   3. fills the entry point's outputs with 0xFF bytes (NaN), so that an
//      output a kernel failed to write cannot pass for a result;
//   4. runs the steps in order — a switch over the Step union, one source
//      file per step kind (LaunchStep.cpp: a kernel of the plan; GemmStep.cpp:
//      a block-scaled FP8 GEMM by cuBLASLt) — all queued on the stream with
//      no host synchronization.
// cuBLASLt is loaded (dlopen) only for a plan with Gemm steps; the executor
// then owns its handle, a workspace and the GEMMs' per-size descriptors.
// Results are read afterwards: the logits (output 0) copied to the host, or
// the plan's sampler kernel run on them under per-row SamplingParams and B
// token ids copied back. For penalties the executor keeps a device buffer of
// generated-token counts ([samplerCountRows, vocab] int32) that the sampler
// kernel reads and increments; the caller names a row per sequence and
// clears it when a new sequence takes it.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_EXECUTOR_H
#define DSV3_RUNTIME_EXEC_EXECUTOR_H

#include "runtime/exec/GemmStep.h"
#include "runtime/exec/KvCache.h"
#include "runtime/exec/LaunchStep.h"
#include "runtime/exec/StepGraphs.h"
#include "runtime/exec/WeightLoader.h"
#include "runtime/sample/SamplingParams.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::exec {

/// One step's inputs, on the host. T = tokens.size() and B = lastRows.size()
/// always; the other vectors are read only when the entry point lists them.
struct StepInputs {
  std::vector<int32_t> tokens;     ///< [T] token ids
  std::vector<int32_t> positions;  ///< [T] position of each token in its sequence
  std::vector<int32_t> tokenSeq;   ///< [T] which of the B sequences (0..B-1)
  std::vector<int32_t> lastRows;   ///< [B] row (0..T-1) of each sequence's last token
  std::vector<int32_t> blockTable; ///< [B, pagesPerSequence] KV-cache pages
  int64_t pagesPerSequence = 0;    ///< P, the block table's width
  std::vector<uint16_t> hidden;    ///< [T, hidden_size] bf16 bits (MTP entry points)
};

/// The entry point called `name`, or nullptr.
const plan::EntryPoint *findEntryPoint(const plan::Plan &plan,
                                       std::string_view name);

/// Checks `inputs` for a step of `entry` before anything runs: 1 ≤ T ≤
/// max_tokens, 1 ≤ B ≤ max_sequences, sizes of the listed inputs, token ids
/// inside the vocabulary, token_seq < B, last_rows < T, 1 ≤ P ≤
/// maxPagesPerSequence, block-table entries valid pages (or kUnusedPage), and
/// every token's cache row covered by a page of its sequence. Sets `sizes`.
Status checkStepInputs(const plan::Plan &plan, const plan::EntryPoint &entry,
                       const StepInputs &inputs, int64_t numPages,
                       int64_t maxPagesPerSequence, StepSizes &sizes);

/// The block-table width a step captured as a CUDA graph uses for a table
/// `pages` wide: the next power of two, at most `maxPages` (never less than
/// `pages`), so that a growing context reuses a few graphs.
int64_t graphBlockTableWidth(int64_t pages, int64_t maxPages);
/// `table` ([sequences, pages]) widened to [sequences, width] with
/// kUnusedPage entries after each sequence's pages (width >= pages).
void padBlockTable(const std::vector<int32_t> &table, int64_t sequences,
                   int64_t pages, int64_t width, std::vector<int32_t> &padded);

/// The mangled name of the sampler kernel this runtime launches,
/// dsv3k::sample_tokens<vocab>(const float *, int, const SamplingParams *,
/// int *, int *, int).
std::string samplerKernelName(int64_t vocab);
/// Success when the plan has no sampler kernel or the one samplerKernelName
/// names: a plan from a dsv3c whose sampler took other arguments is refused
/// before anything runs, naming both signatures.
Status checkSamplerKernel(const plan::Plan &plan);
/// Bytes of the generated-token count buffer for `rows` sequences.
uint64_t samplerCountBytes(const plan::Plan &plan, int64_t rows);

/// Called around every step a run queues — a kernel launch or a cuBLASLt
/// GEMM — on the executor's thread and in step order: a profiler records
/// events on the stream there to time each one. `name` is the kernel's
/// template instance ("dsv3k::rms_norm<7168>") or the Gemm's display name
/// ("cublasLt_fp8_gemm<7168, 2048, F32>"). Steps a run leaves out (size
/// guards, omitKernels) are not observed. An error stops the run.
class LaunchObserver {
public:
  virtual ~LaunchObserver() = default;
  virtual Status beforeLaunch(std::string_view name) = 0;
  virtual Status afterLaunch(std::string_view name) = 0;
};

struct ExecutorOptions {
  /// The widest block table a step may upload (P); 0: the KV cache's page
  /// count (any sequence may own every page).
  int64_t maxPagesPerSequence = 0;
  /// Wait for each kernel (or cuBLASLt GEMM) before queuing the next, so
  /// that a fault names the step that caused it. For debugging: it stalls
  /// the GPU.
  bool synchronizeEachLaunch = false;
  /// Rows of the generated-token count buffer (each vocab int32): how many
  /// sequences can sample with presence or frequency penalties at once.
  /// 0: no buffer, and no penalties.
  int64_t samplerCountRows = 0;
  /// Steps of at most this many tokens are captured as CUDA graphs, one per
  /// (entry point, T, B, P), and replayed (StepGraphs.h); 0: never. -1: the
  /// plan's max_sequences (decode steps). Ignored while a launch observer is
  /// set or with synchronizeEachLaunch: those need launches one by one.
  int64_t cudaGraphMaxTokens = -1;
  /// Captured graphs kept; the one used longest ago goes first.
  int64_t cudaGraphCapacity = 256;
  /// Launch each kernel with programmatic stream serialization where the
  /// plan allows it (Target.dependent_launches): its blocks start while the
  /// previous kernel's last blocks finish. Off: every kernel waits on the
  /// stream for the whole previous one (for comparison and debugging).
  bool dependentLaunches = true;
  /// Launches of kernels whose instance name contains one of these strings,
  /// and Gemm steps whose display name (gemmDisplayName) does, are left out
  /// of every step, whose results are then wrong: for attributing step time
  /// to kernels (dsv3-bench --omit-kernel), nothing else.
  std::vector<std::string> omitKernels;
};

class Executor {
public:
  /// Loads the plan's modules and kernels, allocates the arena and the input
  /// buffers, and prepares every step against `weights` and `cache`. A plan
  /// with Gemm steps also needs cuBLASLt (CublasLt::open): when it cannot
  /// be loaded, the error names the first Gemm step and every path tried.
  /// The plan, weights and cache must outlive the executor.
  static StatusOr<std::unique_ptr<Executor>>
  create(const Device &device, const plan::Plan &plan,
         const DeviceWeights &weights, const KvCache &cache,
         const ExecutorOptions &options);
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  bool hasEntryPoint(std::string_view name) const;

  /// Runs after this call go through `observer` (nullptr: none); it must
  /// outlive those runs.
  void setLaunchObserver(LaunchObserver *observer) { observer_ = observer; }

  /// Checks and uploads `inputs`, then queues every step of `entryPoint`.
  /// Returns without waiting for the GPU.
  Status run(std::string_view entryPoint, const StepInputs &inputs);

  /// Output 0 of the last run ([B, vocab] f32 logits, as the plan sizes
  /// it), copied to the host. Waits for the GPU.
  StatusOr<std::vector<float>> readLogits();
  /// Rows `rows` (each below B) of the last run's output 0, one after the
  /// other, `columns` floats each: for a caller that needs a few rows (the
  /// server's log-probabilities) rather than all B. Waits for the GPU.
  StatusOr<std::vector<float>> readLogitRows(const std::vector<int32_t> &rows,
                                             int64_t &columns);

  /// Runs the plan's sampler kernel on output 0 of the last run, row b under
  /// rows[b] (one per sequence of the step), and returns the B token ids.
  /// A row with penalties needs a countsRow below samplerCountRows; the
  /// kernel adds 1 to the count of the token it picks in that row. Waits for
  /// the GPU.
  StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &rows);

  /// Zeroes row `row` of the generated-token counts, for a new sequence.
  Status clearTokenCounts(int64_t row);
  int64_t samplerCountRows() const { return options_.samplerCountRows; }

  /// CUDA graphs captured so far (0 when graphs are off).
  int64_t graphCaptures() const { return graphs_ ? graphs_->captures() : 0; }

  /// The device address and bytes of the plan's kernel-module global `name`
  /// (an extern "C" __device__ variable, e.g. the dsv3_timeline of a plan
  /// compiled with dsv3c --timeline); an error names it when absent.
  StatusOr<std::pair<CUdeviceptr, size_t>> kernelGlobal(const char *name) const;
  /// The kernel instances the last run launched, in order: its chosen
  /// launches with a non-empty grid (not its Gemm steps, which are not the
  /// plan's kernels).
  StatusOr<std::vector<std::string>> lastRunKernels() const;

private:
  struct PreparedStep {
    plan::Step kind = plan::Step::NONE;
    PreparedLaunch launch; ///< Step::Launch
    PreparedGemm gemm;     ///< Step::Gemm

    /// launchChosen or gemmChosen.
    bool chosen(const StepSizes &sizes) const;
    /// What a launch observer is told: the kernel instance or Gemm name.
    const std::string &name() const;
    /// "entry point 'decode' step 3 (rms_norm)".
    const std::string &where() const;
  };
  struct PreparedEntry {
    const plan::EntryPoint *entry = nullptr;
    std::vector<PreparedStep> steps;
  };

  Executor(const Device &device, const plan::Plan &plan, int64_t numPages,
           const ExecutorOptions &options)
      : device_(device), plan_(plan), numPages_(numPages), options_(options) {}
  Status loadKernels();
  Status allocateBuffers(int64_t maxPagesPerSequence);
  Status prepareEntryPoints(const DeviceWeights &weights, const KvCache &cache);
  /// Whether an omitKernels string is part of `name`.
  bool omitted(std::string_view name) const;
  /// `blockTable` replaces inputs.blockTable when not null.
  Status uploadInputs(const plan::EntryPoint &entry, const StepInputs &inputs,
                      const std::vector<int32_t> *blockTable);
  /// Builds the cuBLASLt descriptors and algorithms of the entry point's
  /// Gemm steps at `sizes` (before a CUDA graph captures the step).
  Status prepareGemms(const PreparedEntry &prepared, const StepSizes &sizes);
  /// Poisons the entry point's outputs and queues its steps.
  Status queueStep(const PreparedEntry &prepared, const StepSizes &sizes);
  bool capturesGraph(const StepSizes &sizes) const;
  /// Output 0 of the last run: its address and bytes.
  Status lastLogits(CUdeviceptr &address, int64_t &rows, int64_t &columns) const;

  const Device &device_;
  const plan::Plan &plan_;
  int64_t numPages_;
  ExecutorOptions options_;

  std::vector<CUmodule> modules_;
  std::vector<CUfunction> functions_;
  DeviceBuffer arena_;
  /// By plan::StepInput; empty for inputs no entry point reads.
  std::array<DeviceBuffer, 6> inputBuffers_;
  /// Inputs are staged here; inputsCopied_ marks when the DMA has read them.
  PinnedBuffer inputStaging_;
  DeviceEvent inputsCopied_;
  bool inputsInFlight_ = false;
  DeviceBuffer sampledTokens_;
  DeviceBuffer samplingParams_; ///< [max_sequences] sample::SamplingParams
  DeviceBuffer tokenCounts_;    ///< [samplerCountRows, vocab] int32
  std::map<std::string, PreparedEntry, std::less<>> entries_;

  LaunchObserver *observer_ = nullptr;
  const PreparedEntry *lastEntry_ = nullptr;
  StepSizes lastSizes_;
  ResolvedLaunch scratch_;
  std::unique_ptr<StepGraphCache> graphs_; ///< null: graphs are off
  std::unique_ptr<GemmContext> gemms_;     ///< null: no Gemm steps
  std::vector<int32_t> paddedBlockTable_;
};

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_EXECUTOR_H
