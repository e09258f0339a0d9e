// GPU tests of targets/cuda/kernels/sample.cuh against the CPU reference
// sampler (runtime/sample/ReferenceSampler.h):
//   - greedy rows: the exact argmax (ties to the lowest id, NaN never wins),
//     with and without penalties, at DeepSeek-V3's 129280-entry vocabulary;
//   - every option at V = 129280, a batch of 256 rows of mixed settings: the
//     kernel's token equals the reference's draw from the same seed and step
//     (same integers on both sides), and the count buffer gains exactly 1;
//   - every option's distribution: 200k draws against the reference's exact
//     float64 probabilities (chi-square at p = 1e-6, total variation ≤ 0.01,
//     and no draw of a zero-probability token), at small and full vocabulary;
//   - reproducibility from (seed, step), and the time of one launch at
//     B = 1, 32 and 256.
#include "harness.h"
#include "runtime/sample/ReferenceSampler.h"
#include "targets/cuda/kernels/sample.cuh"

#include <algorithm>
#include <functional>
#include <map>

using namespace gpu_test;
using Params = dsv3::sample::SamplingParams;

static_assert(sizeof(Params) == sizeof(dsv3k::SamplingParams), "one layout on both sides");

namespace {

constexpr int kVocab = 129280; // DeepSeek-V3

/// Runs the kernel on R rows; `counts` (device, may be null) is updated.
template <int V>
std::vector<int> sampleOnGpu(const DeviceBuffer<float> &logits, int ld,
                             const std::vector<Params> &params, int *counts) {
  const int R = static_cast<int>(params.size());
  DeviceBuffer<Params> dParams(R);
  dParams.upload(params);
  DeviceBuffer<int> tokens(R);
  tokens.poison();
  dsv3k::sample_tokens<V><<<R, dsv3k::kSampleThreads>>>(
      logits.ptr, ld, reinterpret_cast<const dsv3k::SamplingParams *>(dParams.ptr), counts,
      tokens.ptr, R);
  CHECK_LAUNCH();
  return tokens.download();
}

std::vector<float> normalFloats(size_t n, float sigma) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng());
  return v;
}

/// Model-like logits: normal with σ = 2, plus `planted` ids raised by 6..10
/// (a few likely tokens over a long tail).
std::vector<float> modelLikeRow(int V, int planted) {
  std::vector<float> row = normalFloats(V, 2.0f);
  std::uniform_real_distribution<float> lift(6.0f, 10.0f);
  for (int j = 0; j < planted; ++j)
    row[rng()() % V] += lift(rng());
  return row;
}

/// Chi-square critical value at upper tail 1e-6 (Wilson-Hilferty).
double chiSquareCritical(int degrees) {
  const double z = 4.753, d = degrees;
  return d * std::pow(1 - 2 / (9 * d) + z * std::sqrt(2 / (9 * d)), 3);
}

/// Histogram checks of `tokens` against `expected` (probabilities per id):
/// buckets are ids with expected count ≥ 5, the other positive-probability
/// ids pooled into one bucket (chi-square and total variation over those
/// buckets, so a long tail of rare ids does not count as noise); tokens of
/// probability 0 counted apart.
void checkDistribution(const std::string &name, const std::string &shape,
                       const std::vector<int> &tokens, const std::vector<double> &expected) {
  const double n = static_cast<double>(tokens.size());
  std::map<int, double> seen;
  int impossible = 0;
  for (int token : tokens) {
    if (token < 0 || token >= static_cast<int>(expected.size()) || expected[token] == 0)
      ++impossible;
    else
      seen[token] += 1;
  }
  // tvd: total variation over the buckets; noise: its mean under exact
  // sampling, (1/2) Σ sqrt(2 p (1 - p) / (π n)), which grows with the number
  // of buckets (large at V = 129280), so the bound is max(0.01, 2 · noise).
  double chi = 0, pooledExpected = 0, pooledSeen = 0, tvd = 0, noise = 0;
  auto addNoise = [&](double p) { noise += 0.5 * std::sqrt(2 * p * (1 - p) / (M_PI * n)); };
  int buckets = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == 0)
      continue;
    const double observed = seen.count(static_cast<int>(i)) ? seen[static_cast<int>(i)] : 0;
    if (expected[i] * n >= 5) {
      chi += (observed - expected[i] * n) * (observed - expected[i] * n) / (expected[i] * n);
      tvd += std::fabs(observed - expected[i] * n) / n;
      addNoise(expected[i]);
      ++buckets;
    } else {
      pooledExpected += expected[i] * n;
      pooledSeen += observed;
    }
  }
  tvd += std::fabs(pooledSeen - pooledExpected) / n;
  addNoise(pooledExpected / n);
  if (pooledExpected >= 5) {
    chi += (pooledSeen - pooledExpected) * (pooledSeen - pooledExpected) / pooledExpected;
    ++buckets;
  }
  const std::string where = shape + " " + std::to_string(tokens.size()) + " draws";
  report(name + " zero-prob", where, impossible, 0);
  if (buckets >= 2)
    report(name + " chi2", where + " df=" + std::to_string(buckets - 1), chi,
           chiSquareCritical(buckets - 1));
  report(name + " TVD", where + " buckets=" + std::to_string(buckets), tvd / 2,
         std::max(0.01, 2 * noise));
}

/// Takes back the kernel's count increments: row r drew tokens[r].
template <int V> __global__ void forgetDraws(int *counts, const int *tokens, int R) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < R)
    counts[static_cast<long long>(r) * V + tokens[r]] -= 1;
}

/// 200k draws of one row's distribution: `rows` rows sharing the logits
/// (ld = 0), each with its own count row (equal to `rowCounts`, restored
/// after every launch), over 200k / rows launches, each row and launch its
/// own step.
template <int V>
void testDistribution(const std::string &name, const std::vector<float> &logits,
                      const std::vector<int> &rowCounts, Params params, int rows = 1000) {
  constexpr int kDraws = 200000;
  const bool penalized = !rowCounts.empty();
  DeviceBuffer<float> dLogits(V);
  dLogits.upload(logits);
  DeviceBuffer<int> dCounts(penalized ? static_cast<size_t>(rows) * V : 1);
  for (int r = 0; r < rows && penalized; ++r)
    CHECK_CUDA(cudaMemcpy(dCounts.ptr + static_cast<size_t>(r) * V, rowCounts.data(),
                          V * sizeof(int), cudaMemcpyHostToDevice));
  DeviceBuffer<Params> dParams(rows);
  DeviceBuffer<int> dTokens(rows);
  params.seed = rng()();
  std::vector<int> tokens;
  for (int launch = 0; static_cast<int>(tokens.size()) < kDraws; ++launch) {
    std::vector<Params> rowParams(rows, params);
    for (int r = 0; r < rows; ++r) {
      rowParams[r].step = static_cast<uint64_t>(launch) * rows + r;
      rowParams[r].countsRow = penalized ? r : -1;
    }
    dParams.upload(rowParams);
    dTokens.poison();
    dsv3k::sample_tokens<V><<<rows, dsv3k::kSampleThreads>>>(
        dLogits.ptr, 0, reinterpret_cast<const dsv3k::SamplingParams *>(dParams.ptr),
        penalized ? dCounts.ptr : nullptr, dTokens.ptr, rows);
    CHECK_LAUNCH();
    std::vector<int> drawn = dTokens.download();
    const int outOfRange = static_cast<int>(std::count_if(
        drawn.begin(), drawn.end(), [](int token) { return token < 0 || token >= V; }));
    if (outOfRange) { // and the count restore below would write out of bounds
      report("dist " + name + " token range", "V=" + std::to_string(V), outOfRange, 0);
      return;
    }
    if (penalized) {
      forgetDraws<V><<<(rows + 255) / 256, 256>>>(dCounts.ptr, dTokens.ptr, rows);
      CHECK_LAUNCH();
    }
    tokens.insert(tokens.end(), drawn.begin(), drawn.end());
  }
  tokens.resize(kDraws);
  const std::vector<double> expected = dsv3::sample::tokenProbabilities(
      logits.data(), V, penalized ? rowCounts.data() : nullptr, params);
  char shape[160];
  std::snprintf(shape, sizeof(shape), "V=%d T=%.3g k=%d p=%.4g minp=%.3g pres=%.3g freq=%.3g", V,
                params.temperature, params.topK, params.topP, params.minP,
                params.presencePenalty, params.frequencyPenalty);
  checkDistribution("dist " + name, shape, tokens, expected);
}

Params make(float temperature, int topK = 0, float topP = 1, float minP = 0,
            float presence = 0, float frequency = 0) {
  Params p;
  p.temperature = temperature;
  p.topK = topK;
  p.topP = topP;
  p.minP = minP;
  p.presencePenalty = presence;
  p.frequencyPenalty = frequency;
  return p;
}

void testDistributions() {
  // Small vocabulary: every id its own bucket.
  constexpr int kSmall = 16;
  std::vector<float> small = normalFloats(kSmall, 1.5f);
  std::vector<int> smallCounts(kSmall, 0);
  for (int i = 0; i < kSmall; i += 3)
    smallCounts[i] = 1 + static_cast<int>(rng()() % 4);
  testDistribution<kSmall>("temperature", small, {}, make(0.7f));
  testDistribution<kSmall>("temperature", small, {}, make(1.6f));
  testDistribution<kSmall>("top-k", small, {}, make(1.0f, 5));
  testDistribution<kSmall>("top-p", small, {}, make(1.0f, 0, 0.8f));
  testDistribution<kSmall>("min-p", small, {}, make(1.0f, 0, 1, 0.2f));
  testDistribution<kSmall>("presence", small, smallCounts, make(1.0f, 0, 1, 0, 1.5f));
  testDistribution<kSmall>("frequency", small, smallCounts, make(1.0f, 0, 1, 0, 0, 0.7f));
  testDistribution<kSmall>("negative penalties", small, smallCounts,
                           make(1.0f, 0, 1, 0, -0.5f, -0.3f));
  testDistribution<kSmall>("k+p+minp+penalties", small, smallCounts,
                           make(0.8f, 10, 0.9f, 0.05f, 0.4f, 0.2f));
  Params limited = make(1.0f);
  limited.vocabLimit = 11;
  testDistribution<kSmall>("vocab limit", small, {}, limited);
  // Ties at the top-k boundary are kept: 4 equal maxima, k = 2.
  std::vector<float> tied(kSmall, 0.0f);
  for (int i : {3, 7, 8, 12})
    tied[i] = 2.0f;
  testDistribution<kSmall>("top-k ties", tied, {}, make(1.0f, 2));

  // DeepSeek-V3's vocabulary: a few likely tokens over a long tail (the
  // tail pooled into one bucket), so the radix passes run at full size.
  std::vector<float> full = modelLikeRow(kVocab, 12);
  std::vector<int> fullCounts(kVocab, 0);
  for (int j = 0; j < 3000; ++j)
    fullCounts[rng()() % kVocab] += 1;
  testDistribution<kVocab>("temperature", full, {}, make(1.0f), 500);
  testDistribution<kVocab>("top-k", full, {}, make(1.0f, 8), 500);
  testDistribution<kVocab>("top-k", full, {}, make(1.0f, 2000), 500);
  testDistribution<kVocab>("top-p", full, {}, make(1.0f, 0, 0.9f), 500);
  testDistribution<kVocab>("top-p", full, {}, make(1.3f, 0, 0.995f), 500);
  testDistribution<kVocab>("min-p", full, {}, make(1.0f, 0, 1, 0.01f), 500);
  testDistribution<kVocab>("all options", full, fullCounts,
                           make(0.9f, 400, 0.95f, 0.002f, 0.3f, 0.2f), 256);
}

/// Greedy rows at V with row stride ld (the ld - V padding holds 1e30, so a
/// read past V picks a padding id): planted ties in every third row, NaNs,
/// an all-NaN row, -inf entries, and penalties on half the rows.
template <int V> void testGreedy(int R, int ld) {
  std::vector<float> logits(static_cast<size_t>(R) * ld, 1e30f);
  std::vector<int> counts(static_cast<size_t>(R) * V, 0);
  std::vector<Params> params(R);
  for (int r = 0; r < R; ++r) {
    std::vector<float> row = normalFloats(V, 3.0f);
    if (r % 3 == 0 && V >= 2) {
      int a = static_cast<int>(rng()() % V), b = static_cast<int>(rng()() % V);
      row[a] = row[b] = 20.0f;
    }
    if (r % 5 == 1)
      for (int j = 0; j < 4; ++j)
        row[rng()() % V] = j % 2 ? NAN : -INFINITY;
    if (r == R - 1 && R > 1)
      std::fill(row.begin(), row.end(), NAN);
    std::copy(row.begin(), row.end(), &logits[static_cast<size_t>(r) * ld]);
    params[r].countsRow = r;
    if (r % 2) {
      params[r].presencePenalty = 0.7f;
      params[r].frequencyPenalty = 0.3f;
      for (int j = 0; j < 50; ++j)
        counts[static_cast<size_t>(r) * V + rng()() % V] += 1 + static_cast<int>(rng()() % 3);
      // The row's maximum among the penalized.
      counts[static_cast<size_t>(r) * V +
             (std::max_element(row.begin(), row.end()) - row.begin())] += 2;
    }
  }
  DeviceBuffer<float> dLogits(logits.size());
  dLogits.upload(logits);
  DeviceBuffer<int> dCounts(counts.size());
  dCounts.upload(counts);
  std::vector<int> tokens = sampleOnGpu<V>(dLogits, ld, params, dCounts.ptr);
  int wrong = 0;
  for (int r = 0; r < R; ++r)
    wrong += tokens[r] != dsv3::sample::sampleToken(&logits[static_cast<size_t>(r) * ld], V,
                                                     &counts[static_cast<size_t>(r) * V],
                                                     params[r]);
  report("greedy argmax (rows off)",
         "V=" + std::to_string(V) + " ld=" + std::to_string(ld) + " R=" + std::to_string(R),
         wrong, 0);
}

/// A batch of 256 rows at V = 129280, each row its own settings drawn from
/// every option; the kernel's tokens against the reference's draws from the
/// same (seed, step), and the count buffer afterwards.
void testAgreement() {
  constexpr int R = 256;
  std::vector<float> logits;
  for (int r = 0; r < R; ++r) {
    std::vector<float> row = modelLikeRow(kVocab, 1 + r % 20);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  std::vector<int> counts(static_cast<size_t>(R) * kVocab, 0);
  std::vector<Params> params(R);
  const float temperatures[] = {0.0f, 0.3f, 0.7f, 1.0f, 1.5f};
  const int topKs[] = {0, 1, 5, 50, 1000, 100000};
  const float topPs[] = {1.0f, 0.5f, 0.9f, 0.99f};
  const float minPs[] = {0.0f, 0.001f, 0.05f, 0.3f};
  for (int r = 0; r < R; ++r) {
    Params &p = params[r];
    p.temperature = temperatures[r % 5];
    p.topK = topKs[(r / 5) % 6];
    p.topP = topPs[(r / 30) % 4];
    p.minP = minPs[(r / 7) % 4];
    if (r % 3 == 0) {
      p.presencePenalty = 0.5f;
      p.frequencyPenalty = 0.25f;
      for (int j = 0; j < 200; ++j)
        counts[static_cast<size_t>(r) * kVocab + rng()() % kVocab] += 1;
    }
    if (r % 11 == 0)
      p.vocabLimit = 128815; // DeepSeek-V3's tokenizer
    p.countsRow = (r * 7) % R; // rows need not own the count row of their index
    p.seed = rng()();
    p.step = rng()() % 1000;
  }
  // Counts are indexed by countsRow, not by row.
  std::vector<int> countsByRow(counts.size());
  for (int r = 0; r < R; ++r)
    std::copy(&counts[static_cast<size_t>(r) * kVocab], &counts[static_cast<size_t>(r + 1) * kVocab],
              &countsByRow[static_cast<size_t>(params[r].countsRow) * kVocab]);
  DeviceBuffer<float> dLogits(logits.size());
  dLogits.upload(logits);
  DeviceBuffer<int> dCounts(countsByRow.size());
  dCounts.upload(countsByRow);
  std::vector<int> tokens = sampleOnGpu<kVocab>(dLogits, kVocab, params, dCounts.ptr);
  std::vector<int> after = dCounts.download();
  int differ = 0, outOfLimit = 0, countErrors = 0;
  for (int r = 0; r < R; ++r) {
    const int *rowCounts = &countsByRow[static_cast<size_t>(params[r].countsRow) * kVocab];
    const int expected = dsv3::sample::sampleToken(&logits[static_cast<size_t>(r) * kVocab],
                                                   kVocab, rowCounts, params[r]);
    differ += tokens[r] != expected;
    const int limit = params[r].vocabLimit > 0 ? params[r].vocabLimit : kVocab;
    outOfLimit += tokens[r] < 0 || tokens[r] >= limit;
    const int *rowAfter = &after[static_cast<size_t>(params[r].countsRow) * kVocab];
    for (int i = 0; i < kVocab; ++i)
      countErrors += rowAfter[i] != rowCounts[i] + (i == tokens[r] ? 1 : 0);
  }
  const std::string shape = "V=129280 R=256 mixed settings";
  report("agreement with reference", shape + " (rows differ)", differ, 1);
  report("outside vocab limit", shape, outOfLimit, 0);
  report("count buffer +1", shape + " (entries off)", countErrors, 0);
}

/// Same (seed, step): the same tokens; another step or seed: fresh draws
/// (two independent draws from near-flat logits over 129280 ids agree with
/// probability ~1/V, so at most one row of 64 may coincide).
void testReproducible() {
  constexpr int R = 64;
  std::vector<float> logits = randomFloats(static_cast<size_t>(R) * kVocab, -1.0f, 1.0f);
  DeviceBuffer<float> dLogits(logits.size());
  dLogits.upload(logits);
  std::vector<Params> params(R, make(0.8f, 0, 0.95f));
  const uint64_t seed = rng()();
  for (Params &p : params) {
    p.seed = seed;
    p.step = 7;
  }
  std::vector<int> first = sampleOnGpu<kVocab>(dLogits, kVocab, params, nullptr);
  std::vector<int> again = sampleOnGpu<kVocab>(dLogits, kVocab, params, nullptr);
  for (Params &p : params)
    p.step = 8;
  std::vector<int> nextStep = sampleOnGpu<kVocab>(dLogits, kVocab, params, nullptr);
  for (Params &p : params) {
    p.step = 7;
    p.seed = seed ^ 0x5deece66dull;
  }
  std::vector<int> otherSeed = sampleOnGpu<kVocab>(dLogits, kVocab, params, nullptr);
  int changed = 0, sameAcrossSteps = 0, sameAcrossSeeds = 0;
  for (int r = 0; r < R; ++r) {
    changed += first[r] != again[r];
    sameAcrossSteps += first[r] == nextStep[r];
    sameAcrossSeeds += first[r] == otherSeed[r];
  }
  const std::string shape = "V=129280 R=64 T=0.8 p=0.95";
  report("rerun differs", shape + " same seed/step", changed, 0);
  report("step repeats", shape + " step 7 vs 8", sameAcrossSteps, 1);
  report("seed repeats", shape + " two seeds", sameAcrossSeeds, 1);
}

void timeLaunches() {
  constexpr int kMaxRows = 256;
  std::vector<float> logits;
  for (int r = 0; r < kMaxRows; ++r) {
    std::vector<float> row = modelLikeRow(kVocab, 10);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  DeviceBuffer<float> dLogits(logits.size());
  dLogits.upload(logits);
  DeviceBuffer<int> counts(static_cast<size_t>(kMaxRows) * kVocab);
  CHECK_CUDA(cudaMemset(counts.ptr, 0, counts.n * sizeof(int)));
  DeviceBuffer<int> tokens(kMaxRows);
  DeviceBuffer<Params> dParams(kMaxRows);
  const std::pair<const char *, Params> settings[] = {
      {"greedy", make(0.0f)},
      {"temperature 1", make(1.0f)},
      {"top-k 50", make(0.7f, 50)},
      {"top-p 0.95", make(0.7f, 0, 0.95f)},
      {"min-p 0.05", make(0.7f, 0, 1, 0.05f)},
      {"k50 p0.9 minp0.05 penalties", make(0.7f, 50, 0.9f, 0.05f, 0.3f, 0.2f)},
  };
  std::printf("\n  sample_tokens<129280> time per launch (median of 20, us):\n");
  std::printf("  %-30s %8s %8s %8s\n", "settings", "B=1", "B=32", "B=256");
  for (const auto &[name, setting] : settings) {
    std::vector<Params> params(kMaxRows, setting);
    for (int r = 0; r < kMaxRows; ++r)
      params[r].countsRow = r;
    dParams.upload(params);
    std::printf("  %-30s", name);
    for (int rows : {1, 32, 256})
      std::printf(" %8.1f", medianMicros([&] {
                    dsv3k::sample_tokens<kVocab><<<rows, dsv3k::kSampleThreads>>>(
                        dLogits.ptr, kVocab,
                        reinterpret_cast<const dsv3k::SamplingParams *>(dParams.ptr),
                        counts.ptr, tokens.ptr, rows);
                  }));
    std::printf("\n");
  }
}

} // namespace

int main() {
  testGreedy<kVocab>(64, kVocab);
  testGreedy<kVocab>(17, kVocab + 3);
  testGreedy<1000>(100, 1001);
  testGreedy<5>(7, 5);
  testGreedy<1>(3, 1);
  testAgreement();
  testReproducible();
  testDistributions();
  timeLaunches();
  return finish("sample");
}
