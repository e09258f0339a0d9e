// GPU test of mla_prefill.cuh: mla_prefill_attention (non-absorbed MLA
// attention of fresh prompts, flash style on tensor cores) against a float64
// CPU reference of its definition, then its time at DeepSeek-V3's shape.
//
// Semantics checked, per step token t at position p and head h: keys j = t - p
// .. t (the step's earlier rows of t's sequence), score_j = (q_nope[t,h] .
// k_nope[j,h] + q_pe[t,h] . k_pe[j]) * softmax_scale, out[t,h] = sum_j
// softmax(score)_j v[j,h], with k_nope, v from the kv_b rows `kv` and k_pe
// from the paged cache row of (token_seq[j], positions[j]).
//
// Cases (every token and head checked, unless said otherwise), with float q
// (what dsv3c runs) and bf16 q:
//  - DeepSeek-V3 shape (128 heads, 128 + 64 / 128, latent 512, page 64): one
//    token (T = 1: a block of one live row); one sequence of 1000 tokens (not
//    a multiple of the 128-row query block or the 64-row key tile); runs
//    {1, 200, 77, 1000} packed in one step (blocks holding several sequences,
//    a sequence starting mid-tile, a one-token sequence);
//  - tiny shape (4 heads, 32 + 16 / 32, latent 64, page 16: a page smaller
//    than a key tile, 6 chunks per query row, padded to 8): T = 1, the same
//    runs, and 60 random runs of 1..100 tokens (up to a dozen sequences in one
//    query block);
//  - DeepSeek-V3, float q, 8 x 1024 and 1 x 1024 (the timed steps): 256 sampled
//    tokens (each sequence's first and last, the rest random), all heads;
//  - packing invariance, both shapes: a sequence of 1000 tokens prefilled
//    alone against the same rows as the second run of {77, 1000} (other
//    query blocks, other key tiles), within the order of fp32 additions.
// Inputs are fresh random values drawn on the device for each case (q in
// [-2, 2), kv and the cache in [-1, 1); float q uses 24 random bits). The
// block table is a random permutation of pages; its entries past a sequence's
// pages point at a page of NaN, and the rows of a sequence's last page past
// its length are NaN, so a wrong k_pe lookup shows up as NaN. The output,
// with one guard row after it, is poisoned (0xFF: NaN) before each launch;
// every value must be finite and the guard row untouched.
//
// Tolerance (||out - ref|| / ||ref|| over the whole output, and the worst
// single (token, head) row of V values). The kernel rounds q times
// softmax_scale log2(e) to bf16 (float and bf16 q alike: relative error
// about 1.1e-3 rms per value), reads k_nope, k_pe and v as stored (the
// reference reads the same bf16 values), rounds P to bf16 (1.1e-3 per weight)
// and the output to bf16 (about 1.7e-3). A score error d moves each weight by
// a factor e^d, hence the output by about rms(d) relative: with the test's
// scores (192-term dot products of std sqrt(192 * 4/3 * 1/3) = 9.2, times
// DeepSeek-V3's scale 0.135) rms(d) = 1.1e-3 * 9.2 * 0.135 = 1.4e-3 (the tiny
// shape's is smaller). P's rounding errors are independent per key and move
// the output by about 1.1e-3 relative. In all sqrt(1.4^2 + 1.1^2 + 1.7^2) e-3
// = 2.5e-3 expected, tolerance kWholeTolerance = 6e-3. One row of 128 values
// (or 32, tiny) scatters more around that: the worst of the 128000 rows of
// the 1000-token case measured 7e-3 to 1.02e-2 over runs (a row whose
// softmax a few keys dominate keeps their rounding errors), so
// kRowTolerance = 2e-2. A dropped or
// extra key (causal bound, a neighbouring sequence), a wrong head, page or
// scale is off by 1e-2 to 1 or more; a key read from a NaN page is NaN.
//
// Timing: 8 sequences x 1024 tokens and 1 x 1024, DeepSeek-V3 shape, float q,
// median of 30 launches (CUDA events, after 3 warm-ups), TFLOP/s counting
// FLOPs = 2 HEADS (NOPE + ROPE + V) pairs with pairs = sum over sequences of
// n (n + 1) / 2, and the floor at 754 TFLOP/s (the BF16 GEMM ceiling measured
// on an H100) beside it.
//
// Exit status 1 if any check fails; one PASS/FAIL line per case.
#include "mla_common.h"

#include "targets/cuda/kernels/mla_prefill.cuh"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

using namespace gpu_test;
using namespace mla_testing;

namespace {

constexpr double kWholeTolerance = 6e-3;
constexpr double kRowTolerance = 2e-2;
constexpr double kExact = 0.0;
// Packing invariance (||alone - packed|| / ||packed||, bf16 outputs): the fp32
// sums differ in order only, by d ~ 6e-8 sqrt(keys / 2) relative (1e-6 at
// 1000 keys). That flips the bf16 rounding of a value with probability about
// d / ulp (ulp ~ 2^-7.5 of the value, 5.5e-3) by one ulp, so the relative
// difference is about sqrt(d 5.5e-3) = 7e-5 at most. With P rounded relative
// to each block's own running maximum (not invariant) nearly every weight
// would round differently, about 1.5e-3.
constexpr double kPackingInvariance = 3e-4;
constexpr double kGemmCeilingTflops = 754.0; // measured BF16 GEMM ceiling, H100

// ---- random inputs on the device --------------------------------------------

__device__ __forceinline__ unsigned long long splitMix64(unsigned long long x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T> __device__ __forceinline__ T storedAs(float v);
template <> __device__ __forceinline__ float storedAs<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 storedAs<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

/// p[i] = lo + (hi - lo) u_i, u_i uniform in [0, 1) with 24 random bits.
template <typename T>
__global__ void fillUniform(T *p, size_t n, float lo, float hi, unsigned long long seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float u = static_cast<float>(splitMix64(seed ^ (i * 0xD1B54A32D192ED03ull)) >> 40) *
              (1.0f / 16777216.0f);
    p[i] = storedAs<T>(lo + (hi - lo) * u);
  }
}

template <typename T> void fillRandom(DeviceBuffer<T> &buffer, float lo, float hi) {
  fillUniform<T><<<1024, 256>>>(buffer.ptr, buffer.n, lo, hi, rng()());
  CHECK_LAUNCH();
}

inline double valueOf(float v) { return v; }
inline double valueOf(__nv_bfloat16 v) { return __bfloat162float(v); }

// ---- one prefill step ----------------------------------------------------------

/// A step of fresh prompts (runs of positions 0..n-1, back to back) with its
/// device inputs and host copies of what the kernel reads.
template <class S, typename QT> struct PrefillStep {
  static constexpr int D = S::NOPE + S::ROPE, kKvWidth = S::NOPE + S::V;
  static constexpr int kRow = S::KV_LORA + S::ROPE;
  std::vector<int> lengths;
  TokenBatch batch;
  PagedLayout layout;
  int T;
  DeviceBuffer<QT> dQ;
  DeviceBuffer<bf16> dKv, dCache, dOut; // dOut: T + 1 rows, the last a guard
  DeviceBuffer<int> dPositions, dSequences, dBlockTable;
  std::vector<QT> q;
  std::vector<bf16> kv, cache;

  explicit PrefillStep(std::vector<int> runLengths)
      : lengths(std::move(runLengths)), batch(prefillTokens(lengths)),
        layout(makePagedLayout(lengths, S::PAGE)), T(batch.size()),
        dQ(static_cast<size_t>(T) * S::HEADS * D),
        dKv(static_cast<size_t>(T) * S::HEADS * kKvWidth),
        dCache(static_cast<size_t>(layout.numPages) * S::PAGE * kRow),
        dOut(static_cast<size_t>(T + 1) * S::HEADS * S::V), dPositions(T), dSequences(T),
        dBlockTable(layout.blockTable.size()) {
    fillRandom(dQ, -2.0f, 2.0f);
    fillRandom(dKv, -1.0f, 1.0f);
    fillRandom(dCache, -1.0f, 1.0f);
    // NaN where no key may look: the spare page, and each sequence's last
    // page past its length (contiguous rows of one page).
    auto poisonRows = [&](long long firstRow, int rows) {
      CHECK_CUDA(cudaMemset(dCache.ptr + firstRow * kRow, 0xFF,
                            static_cast<size_t>(rows) * kRow * sizeof(bf16)));
    };
    poisonRows(static_cast<long long>(layout.sparePage) * S::PAGE, S::PAGE);
    for (size_t s = 0; s < lengths.size(); ++s) {
      int capacity = (lengths[s] + S::PAGE - 1) / S::PAGE * S::PAGE;
      if (capacity > lengths[s])
        poisonRows(layout.slot(static_cast<int>(s), lengths[s]), capacity - lengths[s]);
    }
    dPositions.upload(batch.position);
    dSequences.upload(batch.sequence);
    dBlockTable.upload(layout.blockTable);
    q = dQ.download();
    kv = dKv.download();
    cache = dCache.download();
  }

  void run() {
    constexpr unsigned kShared = dsv3k::mla_prefill_detail::sharedBytes<S::NOPE, S::ROPE, S::V>();
    auto kernel =
        dsv3k::mla_prefill_attention<S::HEADS, S::NOPE, S::ROPE, S::V, S::KV_LORA, S::PAGE, QT>;
    static bool configured = false;
    if (!configured) {
      CHECK_CUDA(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared));
      configured = true;
    }
    dim3 grid(dsv3k::mla_prefill_detail::gridBlocks(T), S::HEADS, 1);
    kernel<<<grid, dsv3k::mla_prefill_detail::kThreads, kShared>>>(
        dQ.ptr, dKv.ptr, dCache.ptr, dBlockTable.ptr, layout.maxPages, dSequences.ptr,
        dPositions.ptr, dOut.ptr, T, S::softmaxScale());
  }

  /// Float64 attention of token t, head h: V values.
  void reference(int t, int h, double *result) const {
    const int position = batch.position[t], first = t - position;
    const QT *query = &q[(static_cast<size_t>(t) * S::HEADS + h) * D];
    double queryValues[D];
    for (int i = 0; i < D; ++i)
      queryValues[i] = valueOf(query[i]);
    std::vector<double> scores(position + 1);
    double maxScore = -INFINITY;
    for (int j = first; j <= t; ++j) {
      const bf16 *key = &kv[(static_cast<size_t>(j) * S::HEADS + h) * kKvWidth];
      const bf16 *rope =
          &cache[static_cast<size_t>(layout.slot(batch.sequence[j], batch.position[j])) * kRow +
                 S::KV_LORA];
      double dot = 0;
      for (int i = 0; i < S::NOPE; ++i)
        dot += queryValues[i] * valueOf(key[i]);
      for (int i = 0; i < S::ROPE; ++i)
        dot += queryValues[S::NOPE + i] * valueOf(rope[i]);
      double score = dot * static_cast<double>(S::softmaxScale());
      scores[j - first] = score;
      maxScore = std::max(maxScore, score);
    }
    double denominator = 0;
    for (double &s : scores) {
      s = std::exp(s - maxScore);
      denominator += s;
    }
    std::fill(result, result + S::V, 0.0);
    for (int j = first; j <= t; ++j) {
      const bf16 *value = &kv[(static_cast<size_t>(j) * S::HEADS + h) * kKvWidth + S::NOPE];
      double weight = scores[j - first] / denominator;
      for (int v = 0; v < S::V; ++v)
        result[v] += weight * valueOf(value[v]);
    }
  }
};

/// Runs the step once (output poisoned first) and compares the tokens
/// `checked` (all heads) with float64. Returns whether every check passed.
template <class S, typename QT>
bool checkStep(const std::string &label, PrefillStep<S, QT> &step,
               const std::vector<int> &checked) {
  const int T = step.T;
  step.dOut.poison();
  step.run();
  CHECK_LAUNCH();
  std::vector<bf16> raw = step.dOut.download();
  const size_t width = static_cast<size_t>(S::HEADS) * S::V;

  size_t nonFinite = 0, strayWrites = 0;
  for (size_t i = 0; i < static_cast<size_t>(T) * width; ++i)
    nonFinite += !std::isfinite(__bfloat162float(raw[i]));
  for (size_t i = static_cast<size_t>(T) * width; i < raw.size(); ++i) {
    uint16_t bits;
    std::memcpy(&bits, &raw[i], 2);
    strayWrites += bits != 0xFFFF;
  }

  std::vector<double> ref(checked.size() * width);
  parallelFor(checked.size() * S::HEADS, [&](size_t index) {
    int t = checked[index / S::HEADS], h = static_cast<int>(index % S::HEADS);
    step.reference(t, h, &ref[index * S::V]);
  });
  std::vector<float> out;
  out.reserve(ref.size());
  for (int t : checked)
    for (size_t i = 0; i < width; ++i)
      out.push_back(__bfloat162float(raw[static_cast<size_t>(t) * width + i]));

  std::string shape = shapeName<S, QT>(label + " T=" + std::to_string(T) +
                                       (checked.size() < static_cast<size_t>(T)
                                            ? " (" + std::to_string(checked.size()) + " tok)"
                                            : ""));
  double whole = relativeError(out, ref);
  double worst = worstTokenError(out, ref, S::V);
  report("mla_prefill_attention", shape, whole, kWholeTolerance);
  report("mla_prefill worst (t, h)", shape, worst, kRowTolerance);
  report("mla_prefill all written", shape, static_cast<double>(nonFinite), kExact);
  report("mla_prefill stray writes", shape, static_cast<double>(strayWrites), kExact);
  bool pass =
      whole <= kWholeTolerance && worst <= kRowTolerance && nonFinite == 0 && strayWrites == 0;
  std::printf("%s %s: rel_err %.3e, worst row %.3e, non-finite %zu, stray %zu\n",
              pass ? "PASS" : "FAIL", shape.c_str(), whole, worst, nonFinite, strayWrites);
  std::fflush(stdout);
  return pass;
}

std::vector<int> allTokens(int T) {
  std::vector<int> all(T);
  for (int t = 0; t < T; ++t)
    all[t] = t;
  return all;
}

template <class S, typename QT> void testCase(const std::string &label, std::vector<int> lengths) {
  PrefillStep<S, QT> step(std::move(lengths));
  checkStep(label, step, allTokens(step.T));
}

/// Packing invariance: a sequence's output may not depend on the step around
/// it (which rows share its query blocks, where its key tiles start) beyond
/// the order of fp32 additions: the last sequence of {77, 1000} against the
/// same 1000 rows (q, kv and k_pe copied) prefilled alone.
template <class S, typename QT> void testPackingInvariance() {
  constexpr int kFirst = 77, kLength = 1000;
  PrefillStep<S, QT> packed({kFirst, kLength});
  PrefillStep<S, QT> alone({kLength});
  using Step = PrefillStep<S, QT>;
  const size_t queryRow = static_cast<size_t>(S::HEADS) * Step::D;
  const size_t kvRow = static_cast<size_t>(S::HEADS) * Step::kKvWidth;
  CHECK_CUDA(cudaMemcpy(alone.dQ.ptr, packed.dQ.ptr + kFirst * queryRow,
                        kLength * queryRow * sizeof(QT), cudaMemcpyDeviceToDevice));
  CHECK_CUDA(cudaMemcpy(alone.dKv.ptr, packed.dKv.ptr + kFirst * kvRow,
                        kLength * kvRow * sizeof(bf16), cudaMemcpyDeviceToDevice));
  for (int position = 0; position < kLength; position += S::PAGE) // whole pages
    CHECK_CUDA(cudaMemcpy(alone.dCache.ptr + alone.layout.slot(0, position) * Step::kRow,
                          packed.dCache.ptr + packed.layout.slot(1, position) * Step::kRow,
                          static_cast<size_t>(S::PAGE) * Step::kRow * sizeof(bf16),
                          cudaMemcpyDeviceToDevice));
  packed.dOut.poison();
  alone.dOut.poison();
  packed.run();
  CHECK_LAUNCH();
  alone.run();
  CHECK_LAUNCH();
  const size_t width = static_cast<size_t>(S::HEADS) * S::V;
  std::vector<bf16> packedOut = packed.dOut.download(), aloneOut = alone.dOut.download();
  std::vector<double> reference(packedOut.begin() + kFirst * width,
                                packedOut.begin() + (kFirst + kLength) * width);
  std::vector<float> out(aloneOut.begin(), aloneOut.begin() + kLength * width);
  for (size_t i = 0; i < reference.size(); ++i)
    reference[i] = __bfloat162float(packedOut[kFirst * width + i]);
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = __bfloat162float(aloneOut[i]);
  std::string shape = shapeName<S, QT>("{1000} alone vs in {77,1000}");
  double error = relativeError(out, reference);
  report("mla_prefill packing invariance", shape, error, kPackingInvariance);
  std::printf("%s %s: rel_diff %.3e\n", error <= kPackingInvariance ? "PASS" : "FAIL",
              shape.c_str(), error);
  std::fflush(stdout);
}

template <typename QT> void testShapes() {
  const std::vector<int> runs = {1, 200, 77, 1000};
  testCase<DeepSeekV3Shape, QT>("{1}", {1});
  testCase<DeepSeekV3Shape, QT>("{1000}", {1000});
  testCase<DeepSeekV3Shape, QT>(lengthsName(runs), runs);
  testCase<TinyShape, QT>("{1}", {1});
  testCase<TinyShape, QT>(lengthsName(runs), runs);
  std::mt19937 engine(std::random_device{}());
  std::uniform_int_distribution<int> pick(1, 100);
  std::vector<int> many(60);
  for (int &length : many)
    length = pick(engine);
  testCase<TinyShape, QT>("60 random runs 1..100", many);
  testPackingInvariance<DeepSeekV3Shape, QT>();
  testPackingInvariance<TinyShape, QT>();
}

// ---- timing -----------------------------------------------------------------

struct Timing {
  std::string workload;
  double micros, teraflops, floorMicros;
};

/// Checks a DeepSeek-V3 float-q step on sampled tokens, then times it.
Timing timeStep(const std::string &name, const std::vector<int> &lengths) {
  using S = DeepSeekV3Shape;
  PrefillStep<S, float> step(lengths);
  checkStep(name, step, sampleTokens(step.batch, 256));
  double pairs = 0;
  for (int n : lengths)
    pairs += 0.5 * n * (n + 1.0);
  const double flops = 2.0 * S::HEADS * (S::NOPE + S::ROPE + S::V) * pairs;
  TimingOptions options;
  options.warmups = 3;
  options.runs = 30;
  double micros = medianMicros([&] { step.run(); }, options);
  return {name, micros, flops / micros * 1e-6, flops / (kGemmCeilingTflops * 1e12) * 1e6};
}

void printKernelResources() {
  using S = DeepSeekV3Shape;
  auto kernel =
      dsv3k::mla_prefill_attention<S::HEADS, S::NOPE, S::ROPE, S::V, S::KV_LORA, S::PAGE, float>;
  constexpr unsigned kShared = dsv3k::mla_prefill_detail::sharedBytes<S::NOPE, S::ROPE, S::V>();
  CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared));
  cudaFuncAttributes attributes;
  CHECK_CUDA(cudaFuncGetAttributes(&attributes, kernel));
  int blocksPerSm = 0;
  CHECK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &blocksPerSm, kernel, dsv3k::mla_prefill_detail::kThreads, kShared));
  std::printf("mla_prefill_attention dsv3 f32: %d registers, %zu bytes local memory, %u bytes "
              "dynamic shared memory, %d blocks per SM\n",
              attributes.numRegs, attributes.localSizeBytes, kShared, blocksPerSm);
}

} // namespace

int main() {
  testShapes<float>();
  testShapes<bf16>();
  std::vector<Timing> timings;
  timings.push_back(timeStep("8x1024", std::vector<int>(8, 1024)));
  timings.push_back(timeStep("1x1024", {1024}));
  int status = finish("mla_prefill_test");

  std::printf("\n== mla_prefill timings: DeepSeek-V3 shape, f32 q, median of 30 launches; "
              "FLOPs = 2 HEADS (NOPE + ROPE + V) pairs; floor at %.0f TFLOP/s\n",
              kGemmCeilingTflops);
  printKernelResources();
  std::printf("%-10s %10s %9s %10s %8s\n", "step", "us", "TFLOP/s", "floor us", "x floor");
  for (const Timing &t : timings)
    std::printf("%-10s %10.1f %9.1f %10.1f %8.2f\n", t.workload.c_str(), t.micros, t.teraflops,
                t.floorMicros, t.micros / t.floorMicros);
  return status;
}
