// GPU tests of mla_decode.cuh: mla_decode_attention (split over the context
// or not) and mla_decode_combine against the float64 reference of absorbed
// attention (mla_common.h), then their times against the memory floor.
//
// Cases, on DeepSeek-V3's shape (128 heads, 512 + 64 bf16 per cached row,
// page 64) and a tiny one (4 heads: a head group mostly masked; page 16,
// smaller than a tile; odd fragment counts), with float and bf16 activations:
//  - one token at contexts 1024 and 1000 (not a multiple of 64 or of the
//    16-row split unit), and 1 (a single row);
//  - a decode step over contexts {4096, 16384, 513, 1}, and 32 and 128
//    sequences of random lengths: sequences cut across blocks, blocks
//    spanning several sequences;
//  - causal mixing: several tokens of one sequence in one step (positions
//    60..67 across a unit boundary, 5..7, 1000..1003), each seeing only the
//    rows up to its own position, beside other sequences.
// Each case runs with every work split dsv3c can choose: 16 heads per block
// split over 16 blocks, 64 heads split over 66 blocks, 64 heads one block per
// token. The paged cache is poisoned where no token may look: block-table
// entries past a sequence's pages point at a page of NaN, and the rows of a
// sequence's last page past its last position are NaN. Outputs and the
// partial-result scratch are poisoned (NaN) before each launch, so a token
// the combine skips wrongly, or a partial never written, fails.
//
// Split invariance: the same step run with each split and head grouping
// against the unsplit run, within the order of fp32 additions (a sequence's attention must not
// depend on the step's other sequences; dsv3-run --serve's check).
//
// Tolerance (||out - ref|| / ||ref||, per step and for the worst token): the
// tensor-core products round q_lat and q_pe to bf16 (relative rounding error
// about 1.1e-3 rms) and P to bf16. A score error d moves every weight by a
// factor e^d, which moves the output by about rms(d) relative; with the
// test's scores (q in [-2, 2), cache in [-1, 1): 576-term scores of std 16,
// times DeepSeek-V3's scale 0.135) rms(d) = 1.1e-3 x 16 x 0.135 = 2.4e-3 for
// float queries (bf16 queries are exact). P's rounding adds 1.1e-3, bf16
// output 1.7e-3: at most about 3.2e-3 in all, so kTensorCoreAttention =
// 8e-3. A dropped 16-row unit, a wrong head or page, or a wrong scale is off
// by 1e-2 or far more, and a row read past a causal limit is NaN.
#include "mla_common.h"

#include "targets/cuda/kernels/mla_decode.cuh"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <type_traits>

using namespace gpu_test;
using namespace mla_testing;

namespace {

constexpr double kTensorCoreAttention = 8e-3;
constexpr double kExact = 0.0;
// Split invariance (||split - whole|| / ||whole||, float activations and
// outputs, as dsv3c runs it): only the order of fp32 additions may differ
// (about 1e-6 measured). P rounded to bf16 relative to each segment's own
// maximum differed by 1e-4 to 6e-4, and the 16- and 64-head groupings
// adding a score's products in different orders by 1e-4.
constexpr double kSplitInvariance = 1e-5;

/// One way dsv3c can run the decode attention: heads per block and the
/// split (blocks per head group; 0: one block per token, no combine).
struct Split {
  int headsPerBlock, blocks;
  std::string name() const {
    return "G=" + std::to_string(headsPerBlock) +
           (blocks ? " split " + std::to_string(blocks) : " whole");
  }
};
const Split kSplits[] = {{16, 16}, {64, 66}, {64, 0}};
/// Splits whose outputs must equal the unsplit launch's up to fp32 order.
const Split kInvarianceSplits[] = {{16, 7}, {16, 16}, {64, 33}, {64, 66}};
/// The timings also try other block counts.
const Split kTimedSplits[] = {{16, 8}, {16, 16}, {16, 33}, {64, 33}, {64, 66}, {64, 0}};
constexpr int kMostSplitBlocks = 66;

template <class S> size_t partialFloats(int blocks) {
  return 2ull * blocks * S::HEADS * (S::KV_LORA + 1);
}

/// Launches mla_decode_attention (and mla_decode_combine when split) with
/// the geometry its comment states; no synchronization.
template <class S, int G, typename QT, typename OutT>
void launchDecodeAs(const QT *qLat, const QT *q, const bf16 *cache, const int *blockTable,
                    int maxPages, const int *tokenSeq, const int *positions, OutT *outLat, int T,
                    float *partials, int blocks) {
  constexpr int kShared = dsv3k::mla_decode_shared_bytes<G, S::KV_LORA, S::ROPE>();
  auto kernel =
      dsv3k::mla_decode_attention<S::HEADS, S::NOPE, S::ROPE, S::KV_LORA, S::PAGE, QT, OutT, G>;
  static bool configured = false;
  if (!configured) {
    CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared));
    configured = true;
  }
  dim3 grid(blocks > 0 ? blocks : T, dsv3k::ceilDiv(S::HEADS, G), 1);
  kernel<<<grid, 256, kShared>>>(qLat, q, cache, blockTable, maxPages, tokenSeq, positions, outLat,
                                 T, S::softmaxScale(), partials, blocks > 0 ? 1 : 0);
  if (blocks > 0)
    dsv3k::mla_decode_combine<S::HEADS, S::KV_LORA, OutT>
        <<<dim3(T, dsv3k::ceilDiv(S::HEADS * S::KV_LORA, 1024), 1), 256>>>(partials, blocks,
                                                                           positions, outLat, T);
}

template <class S, typename QT, typename OutT>
void launchDecode(const Split &split, const QT *qLat, const QT *q, const bf16 *cache,
                  const int *blockTable, int maxPages, const int *tokenSeq, const int *positions,
                  OutT *outLat, int T, float *partials) {
  if (split.headsPerBlock == 16)
    launchDecodeAs<S, 16>(qLat, q, cache, blockTable, maxPages, tokenSeq, positions, outLat, T,
                          partials, split.blocks);
  else
    launchDecodeAs<S, 64>(qLat, q, cache, blockTable, maxPages, tokenSeq, positions, outLat, T,
                          partials, split.blocks);
}

/// Tokens at the given (sequence, position) pairs.
TokenBatch tokensAt(const std::vector<std::pair<int, int>> &tokens) {
  TokenBatch batch;
  for (auto [sequence, position] : tokens) {
    batch.sequence.push_back(sequence);
    batch.position.push_back(position);
  }
  return batch;
}

/// `count` random lengths in [lo, hi] from a fixed seed (the same workload
/// every run, for the timings).
std::vector<int> randomLengths(int count, int lo, int hi, unsigned seed) {
  std::mt19937 engine(seed);
  std::uniform_int_distribution<int> pick(lo, hi);
  std::vector<int> lengths(count);
  for (int &length : lengths)
    length = pick(engine);
  return lengths;
}

/// A step's device inputs: a random paged cache holding each sequence's
/// rows up to its last token (NaN past them and on the spare page), queries
/// of type Act, poisoned outputs. `layers` copies of the cache (the same
/// block table) let timings rotate through more bytes than the L2 holds.
template <class S, typename Act> struct DecodeStep {
  static constexpr int kRow = S::KV_LORA + S::ROPE;
  TokenBatch batch;
  PagedLayout layout;
  size_t layerElements;
  RandomData<bf16> cache;
  RandomData<Act> qLat, q;
  DeviceBuffer<bf16> dCache;
  DeviceBuffer<Act> dQLat, dQ, dOutLat;
  DeviceBuffer<int> dPositions, dSequences, dBlockTable;
  DeviceBuffer<float> dPartials;

  DecodeStep(TokenBatch tokens, const std::vector<int> &capacities, int layers = 1)
      : batch(std::move(tokens)), layout(makePagedLayout(capacities, S::PAGE)),
        layerElements(static_cast<size_t>(layout.numPages) * S::PAGE * kRow),
        cache(layerElements, -1.0f, 1.0f),
        qLat(static_cast<size_t>(batch.size()) * S::HEADS * S::KV_LORA, -2.0f, 2.0f),
        q(static_cast<size_t>(batch.size()) * S::HEADS * (S::NOPE + S::ROPE), -2.0f, 2.0f),
        dCache(layerElements * layers), dQLat(qLat.stored.size()), dQ(q.stored.size()),
        dOutLat(static_cast<size_t>(batch.size()) * S::HEADS * S::KV_LORA),
        dPositions(batch.size()), dSequences(batch.size()), dBlockTable(layout.blockTable.size()),
        dPartials(partialFloats<S>(kMostSplitBlocks)) {
    // NaN where no token may look: the spare page and, per sequence, the
    // rows of its pages past its last token's position.
    std::vector<int> lastPosition(capacities.size(), -1);
    for (int t = 0; t < batch.size(); ++t)
      lastPosition[batch.sequence[t]] =
          std::max(lastPosition[batch.sequence[t]], batch.position[t]);
    auto poisonRow = [&](long long slot) {
      std::memset(static_cast<void *>(&cache.stored[static_cast<size_t>(slot) * kRow]), 0xFF,
                  kRow * sizeof(bf16));
    };
    for (int r = 0; r < S::PAGE; ++r)
      poisonRow(static_cast<long long>(layout.sparePage) * S::PAGE + r);
    for (size_t s = 0; s < capacities.size(); ++s) {
      int pages = (capacities[s] + S::PAGE - 1) / S::PAGE;
      for (int p = lastPosition[s] + 1; p < pages * S::PAGE; ++p)
        poisonRow(layout.slot(static_cast<int>(s), p));
    }
    for (int layer = 0; layer < layers; ++layer)
      CHECK_CUDA(cudaMemcpy(dCache.ptr + layer * layerElements, cache.stored.data(),
                            layerElements * sizeof(bf16), cudaMemcpyHostToDevice));
    dQLat.upload(qLat.stored);
    dQ.upload(q.stored);
    dPositions.upload(batch.position);
    dSequences.upload(batch.sequence);
    dBlockTable.upload(layout.blockTable);
  }

  void run(const Split &split, int layer = 0) {
    launchDecode<S>(split, dQLat.ptr, dQ.ptr, dCache.ptr + layer * layerElements, dBlockTable.ptr,
                    layout.maxPages, dSequences.ptr, dPositions.ptr, dOutLat.ptr, batch.size(),
                    dPartials.ptr);
  }
  void runReference(int layer = 0) { // mla_attention as dsv3c runs it for prefill
    constexpr int G = S::HEADS % 8 == 0 ? 8 : 1;
    dim3 grid(batch.size(), S::HEADS / G, 1);
    dsv3k::mla_attention<S::HEADS, S::NOPE, S::ROPE, S::KV_LORA, S::PAGE, Act, Act, G>
        <<<grid, 256>>>(dQLat.ptr, dQ.ptr, dCache.ptr + layer * layerElements, dBlockTable.ptr,
                        layout.maxPages, dSequences.ptr, dPositions.ptr, dOutLat.ptr, batch.size(),
                        S::softmaxScale());
  }
};

/// One decode step through `split`, checked against float64.
template <class S, typename Act>
void testDecode(const std::string &label, TokenBatch tokens, const std::vector<int> &capacities,
                const Split &split) {
  DecodeStep<S, Act> step(std::move(tokens), capacities);
  step.dOutLat.poison();
  step.dPartials.poison();
  step.run(split);
  CHECK_LAUNCH();
  std::vector<float> outLat = valuesOf(step.dOutLat.download());
  const TokenBatch &batch = step.batch;
  std::vector<int> checked = sampleTokens(batch, 48);
  std::vector<double> ref(checked.size() * S::HEADS * S::KV_LORA);
  parallelFor(checked.size() * S::HEADS, [&](size_t index) {
    int t = checked[index / S::HEADS], h = static_cast<int>(index % S::HEADS);
    referenceAttention<S>(step.qLat.values, step.q.values, step.cache.values, step.layout, t,
                          batch.sequence[t], batch.position[t], h, &ref[index * S::KV_LORA]);
  });
  std::vector<float> out;
  for (int t : checked)
    out.insert(out.end(), outLat.begin() + static_cast<size_t>(t) * S::HEADS * S::KV_LORA,
               outLat.begin() + static_cast<size_t>(t + 1) * S::HEADS * S::KV_LORA);
  std::string shape =
      shapeName<S, Act>(label + " T=" + std::to_string(batch.size()) + " " + split.name());
  report("mla_decode_attention", shape, relativeError(out, ref), kTensorCoreAttention);
  report("mla_decode worst token", shape,
         worstTokenError(out, ref, static_cast<size_t>(S::HEADS) * S::KV_LORA),
         kTensorCoreAttention);
  size_t unwritten = 0;
  for (float v : outLat)
    unwritten += !std::isfinite(v);
  report("mla_decode all written", shape, static_cast<double>(unwritten), kExact);
}

/// Split invariance: a token's output may not depend on how the step's
/// context units were cut among blocks (which depends on the other tokens
/// of the step: a sequence served beside others against the same sequence
/// alone) beyond the order of fp32 additions. Every split's output against
/// the unsplit launch's (one block per token, whole contexts).
template <class S, typename Act>
void testSplitInvariance(const std::string &label, TokenBatch tokens,
                         const std::vector<int> &capacities) {
  DecodeStep<S, Act> step(std::move(tokens), capacities);
  step.dOutLat.poison();
  step.run({64, 0});
  CHECK_LAUNCH();
  std::vector<float> whole = valuesOf(step.dOutLat.download());
  std::vector<double> wholeValues(whole.begin(), whole.end());
  for (const Split &split : kInvarianceSplits) {
    step.dOutLat.poison();
    step.dPartials.poison();
    step.run(split);
    CHECK_LAUNCH();
    report("mla_decode split invariance",
           shapeName<S, Act>(label + " T=" + std::to_string(step.batch.size()) + " " +
                             split.name() + " vs whole"),
           relativeError(valuesOf(step.dOutLat.download()), wholeValues),
           kSplitInvariance);
  }
}

template <class S, typename Act> void testShape() {
  std::vector<int> lengths32 = randomLengths(32, 1, 3000, 32);
  std::vector<int> lengths128 = randomLengths(128, 1, 1100, 128);
  // Causal mixing: sequence 0 has tokens at 60..67, 1 at 1000..1003, 2 at
  // 5..7, 3 one token at 0.
  std::vector<std::pair<int, int>> mixed;
  for (int p = 60; p < 68; ++p)
    mixed.push_back({0, p});
  for (int p = 1000; p < 1004; ++p)
    mixed.push_back({1, p});
  for (int p = 5; p < 8; ++p)
    mixed.push_back({2, p});
  mixed.push_back({3, 0});
  const std::vector<int> mixedCapacities = {68, 1004, 8, 1};
  for (const Split &split : kSplits) {
    for (int context : {1024, 1000, 1})
      testDecode<S, Act>("ctx " + std::to_string(context), decodeTokens({context}), {context},
                         split);
    testDecode<S, Act>("ctx {4096,16384,513,1}", decodeTokens({4096, 16384, 513, 1}),
                       {4096, 16384, 513, 1}, split);
    testDecode<S, Act>("causal mix", tokensAt(mixed), mixedCapacities, split);
    testDecode<S, Act>("32 random ctx", decodeTokens(lengths32), lengths32, split);
    testDecode<S, Act>("128 random ctx", decodeTokens(lengths128), lengths128, split);
  }
  if constexpr (std::is_same_v<Act, float>) { // as dsv3c instantiates it
    testSplitInvariance<S, Act>("32 random ctx", decodeTokens(lengths32), lengths32);
    testSplitInvariance<S, Act>("causal mix", tokensAt(mixed), mixedCapacities);
  }
}

// ---- timings ----------------------------------------------------------------

struct Timing {
  std::string workload, variant;
  double micros, floorMicros, kvMegabytes, teraflops;
};

/// Microseconds per step: events around one launch per cache copy (layers
/// rotate through more bytes than the L2 holds, as a model's layers do),
/// median of 7 after a warm-up round.
double stepMicros(int layers, const std::function<void(int)> &launch) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int layer = 0; layer < layers; ++layer)
    launch(layer);
  CHECK_LAUNCH();
  std::vector<float> samples;
  for (int i = 0; i < 7; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    for (int layer = 0; layer < layers; ++layer)
      launch(layer);
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaGetLastError());
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    samples.push_back(1000.0f * ms / layers);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

/// Times mla_attention (as dsv3c ran every step before) and each split on
/// one workload (DeepSeek-V3 shape, float activations as dsv3c instantiates
/// them), after checking that every split agrees with mla_attention.
/// rotate: cache copies enough to exceed the L2 (else one: a prefill's
/// work, not its bytes, sets its time).
void timeWorkload(const std::string &name, TokenBatch tokens, const std::vector<int> &capacities,
                  double bandwidth, std::vector<Timing> &timings, bool rotate = true) {
  using S = DeepSeekV3Shape;
  constexpr int kRow = S::KV_LORA + S::ROPE;
  // Rows each sequence holds (read once), the queries read, the outputs written.
  std::vector<int> rows(capacities.size(), 0);
  double pairs = 0;
  for (int t = 0; t < tokens.size(); ++t) {
    rows[tokens.sequence[t]] = std::max(rows[tokens.sequence[t]], tokens.position[t] + 1);
    pairs += tokens.position[t] + 1;
  }
  double kvBytes = 0;
  for (int r : rows)
    kvBytes += static_cast<double>(r) * kRow * 2;
  double activationBytes = static_cast<double>(tokens.size()) * S::HEADS * (kRow + S::KV_LORA) * 4;
  double floorMicros = (kvBytes + activationBytes) / bandwidth * 1e6;
  double flops = 2.0 * S::HEADS * (kRow + S::KV_LORA) * pairs;

  size_t pageBytes = static_cast<size_t>(S::PAGE) * kRow * 2;
  size_t layerBytes = 0;
  for (int capacity : capacities)
    layerBytes += (capacity + S::PAGE - 1) / S::PAGE * pageBytes;
  int layers =
      rotate
          ? static_cast<int>(std::clamp<size_t>(200'000'000 / (layerBytes + 3 * pageBytes), 1, 128))
          : 1;
  DecodeStep<S, float> step(std::move(tokens), capacities, layers);
  int T = step.batch.size();

  step.dOutLat.poison();
  step.runReference();
  CHECK_LAUNCH();
  std::vector<float> reference = step.dOutLat.download();
  std::vector<double> referenceValues(reference.begin(), reference.end());
  auto record = [&](const std::string &variant, double micros) {
    timings.push_back({name, variant, micros, floorMicros, kvBytes / 1e6, flops / micros * 1e-6});
  };
  record(T <= 16 ? "mla_attention 1 head" : "mla_attention 8 heads",
         stepMicros(layers, [&](int layer) {
           if (T <= 16) {
             dsv3k::mla_attention<S::HEADS, S::NOPE, S::ROPE, S::KV_LORA, S::PAGE, float, float, 1>
                 <<<dim3(T, S::HEADS, 1), 256>>>(
                     step.dQLat.ptr, step.dQ.ptr, step.dCache.ptr + layer * step.layerElements,
                     step.dBlockTable.ptr, step.layout.maxPages, step.dSequences.ptr,
                     step.dPositions.ptr, step.dOutLat.ptr, T, S::softmaxScale());
           } else {
             step.runReference(layer);
           }
         }));
  for (const Split &split : kTimedSplits) {
    step.dOutLat.poison();
    step.dPartials.poison();
    step.run(split);
    CHECK_LAUNCH();
    report("mla_decode vs mla_attention", "dsv3 f32 " + name + " " + split.name(),
           relativeError(step.dOutLat.download(), referenceValues), kTensorCoreAttention);
    record(split.name(), stepMicros(layers, [&](int layer) { step.run(split, layer); }));
  }
}

std::vector<Timing> timeAll(double bandwidth) {
  std::vector<Timing> timings;
  for (int context : {1024, 4096, 16384})
    timeWorkload("T=1 ctx " + std::to_string(context), decodeTokens({context}), {context},
                 bandwidth, timings);
  for (int batch : {2, 4, 8, 16, 32, 48, 64, 128}) {
    std::vector<int> lengths(batch, 1024);
    timeWorkload("B=" + std::to_string(batch) + " ctx 1024", decodeTokens(lengths), lengths,
                 bandwidth, timings);
  }
  std::vector<int> mixedLengths = randomLengths(32, 1, 4096, 7);
  timeWorkload("B=32 ctx 1..4096", decodeTokens(mixedLengths), mixedLengths, bandwidth, timings);
  std::vector<std::pair<int, int>> draft;
  for (int p = 1024; p < 1032; ++p)
    draft.push_back({0, p});
  timeWorkload("8 tok of 1 seq ctx 1032", tokensAt(draft), {1032}, bandwidth, timings);
  timeWorkload("prefill 1x1024", prefillTokens({1024}), {1024}, bandwidth, timings,
               /*rotate=*/false);
  return timings;
}

void printTimings(const std::vector<Timing> &timings, double bandwidth) {

  std::printf("\n== mla_decode timings: DeepSeek-V3 shape, f32 activations; copy bandwidth "
              "%.2f TB/s; floor = (cached rows once + q_lat, q_pe read + out_lat written) / "
              "bandwidth\n",
              bandwidth / 1e12);
  std::printf("%-24s %-24s %8s %8s %7s %6s %7s\n", "workload", "kernel", "us", "floor", "KV MB",
              "ratio", "TFLOP/s");
  for (const Timing &t : timings)
    std::printf("%-24s %-24s %8.1f %8.2f %7.2f %6.1f %7.1f\n", t.workload.c_str(),
                t.variant.c_str(), t.micros, t.floorMicros, t.kvMegabytes, t.micros / t.floorMicros,
                t.teraflops);
}

/// MLA_DECODE_PROFILE=1: one launch of each kind, for a profiler.
void profileOnce() {
  using S = DeepSeekV3Shape;
  DecodeStep<S, float> one(decodeTokens({1024}), {1024});
  one.run({16, 16});
  std::vector<int> lengths(128, 1024);
  DecodeStep<S, float> many(decodeTokens(lengths), lengths);
  many.run({64, 0});
  many.run({64, 66});
  CHECK_LAUNCH();
}

} // namespace

int main() {
  if (std::getenv("MLA_DECODE_PROFILE")) {
    profileOnce();
    return 0;
  }
  testShape<TinyShape, float>();
  testShape<DeepSeekV3Shape, float>();
  testShape<TinyShape, bf16>();
  testShape<DeepSeekV3Shape, bf16>();
  double bandwidth = copyBandwidthBytesPerSecond();
  std::vector<Timing> timings = timeAll(bandwidth);
  int status = finish("mla_decode_test");
  printTimings(timings, bandwidth);
  return status;
}
