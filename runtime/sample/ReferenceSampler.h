//===- ReferenceSampler.h - the sampler's semantics on the CPU --*- C++ -*-===//
//
// The GPU sampler (targets/cuda/kernels/sample.cuh) written plainly for one
// row on the host. It serves three purposes:
//   - tokenProbabilities(): the exact distribution (float64) a row's token is
//     drawn from, which the CPU and GPU tests compare histograms against;
//   - sampleToken(): the same draw the kernel makes, from the same integers
//     (2^-44 fixed-point weights, Philox-4x32-10 bits), so the GPU test can
//     also check token-for-token agreement;
//   - the sampler of plans without a sampler kernel (runtime/generate).
//
// Order of operations, each on the result of the one before:
//   1. penalties: z = logit - (frequency · count + presence) for count > 0
//   2. greedy (temperature ≤ 0): argmax z, lowest id on ties; NaN never wins
//   3. temperature: z *= 1/T (rounded to float); m = max z; a row without a
//      finite m is greedy
//   4. top-k: keep key(z) ≥ key of the k-th largest z (ties kept)
//   5. top-p: of those, keep z ≥ v for the lowest v with W(> v) < ceil(p·W)
//   6. min-p: keep z - m ≥ log(min_p)
//   7. draw: inverse CDF over the kept tokens in id order, target =
//      floor(u · W_kept / 2^64) for the row's 64 uniform bits u.
// Only ids below vocabLimit (when set) take part at all. Floats are rounded
// operation by operation exactly as the kernel does, so z, keys and weights
// are the same bits on both sides; exp may differ in the last place (CUDA's
// expf vs the C library's), which moves a draw only when the target falls
// within a few units of a token's cumulative boundary.
//
// Header-only and dependency-free so the GPU tests (nvcc) include it.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SAMPLE_REFERENCESAMPLER_H
#define DSV3_RUNTIME_SAMPLE_REFERENCESAMPLER_H

#include "runtime/sample/SamplingParams.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

namespace dsv3::sample {

/// Philox-4x32-10, as the kernel computes it (Salmon et al., SC'11).
inline void philox4x32(uint32_t counter[4], uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t product0 = uint64_t{kMul0} * counter[0];
    const uint64_t product1 = uint64_t{kMul1} * counter[2];
    const uint32_t next[4] = {
        static_cast<uint32_t>(product1 >> 32) ^ counter[1] ^ key0,
        static_cast<uint32_t>(product1),
        static_cast<uint32_t>(product0 >> 32) ^ counter[3] ^ key1,
        static_cast<uint32_t>(product0)};
    std::memcpy(counter, next, sizeof(next));
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
}

/// The 64 uniform bits of (seed, step): key = seed, counter = (0, 0, step
/// low, step high); words 0 and 1 as high and low halves.
inline uint64_t uniformBits(uint64_t seed, uint64_t step) {
  uint32_t counter[4] = {0, 0, static_cast<uint32_t>(step),
                         static_cast<uint32_t>(step >> 32)};
  philox4x32(counter, static_cast<uint32_t>(seed),
             static_cast<uint32_t>(seed >> 32));
  return (uint64_t{counter[0]} << 32) | counter[1];
}

/// The high 64 bits of the 128-bit product a · b (CUDA's __umul64hi).
inline uint64_t multiplyHigh(uint64_t a, uint64_t b) {
  const uint64_t aLow = a & 0xffffffffu, aHigh = a >> 32;
  const uint64_t bLow = b & 0xffffffffu, bHigh = b >> 32;
  const uint64_t lowLow = aLow * bLow, lowHigh = aLow * bHigh;
  const uint64_t highLow = aHigh * bLow, highHigh = aHigh * bHigh;
  const uint64_t middle = (lowLow >> 32) + (lowHigh & 0xffffffffu) + (highLow & 0xffffffffu);
  return highHigh + (lowHigh >> 32) + (highLow >> 32) + (middle >> 32);
}

/// An unsigned key with the order of the floats (-0 below +0).
inline uint32_t orderedKey(float z) {
  uint32_t bits;
  std::memcpy(&bits, &z, sizeof(bits));
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

/// exp(d) for d ≤ 0 in 2^-44 fixed point, rounded to nearest even.
inline uint64_t fixedWeight(float d) {
  const float scaled = std::exp(d) * 17592186044416.0f; // exact: a power of 2
  return static_cast<uint64_t>(std::nearbyint(static_cast<double>(scaled)));
}

/// The penalized logit, times 1 / temperature (the reciprocal rounded to
/// float, as the kernel multiplies) unless greedy.
inline float samplingLogit(float logit, int32_t count, const SamplingParams &p,
                           bool scale) {
  float value = logit;
  if (count > 0)
    value = value - std::fma(p.frequencyPenalty, static_cast<float>(count),
                             p.presencePenalty);
  return scale ? value * (1.0f / p.temperature) : value;
}

/// One row after the filters (steps 1-6 above).
struct FilteredRow {
  /// Greedy rows (temperature ≤ 0, or no finite maximum): the token.
  bool greedy = false;
  int32_t greedyToken = 0;
  float maxZ = 0.0f;
  std::vector<float> z;     ///< per candidate id (size: the vocabulary limit)
  std::vector<char> kept;   ///< per candidate id
};

/// `counts` may be nullptr (no penalties); else counts[i] is how often the
/// sequence has generated token i. `vocab` is V, the row's length.
inline FilteredRow filterRow(const float *logits, int64_t vocab,
                             const int32_t *counts, const SamplingParams &p) {
  FilteredRow row;
  const int64_t limit =
      p.vocabLimit > 0 && p.vocabLimit < vocab ? p.vocabLimit : vocab;
  const bool penalize = counts && p.penalized();
  auto countOf = [&](int64_t i) { return penalize ? counts[i] : 0; };
  auto argmax = [&]() {
    int64_t best = -1;
    float bestZ = 0;
    for (int64_t i = 0; i < limit; ++i) {
      const float z = samplingLogit(logits[i], countOf(i), p, false);
      if (!std::isnan(z) && (best < 0 || z > bestZ)) {
        best = i;
        bestZ = z;
      }
    }
    return static_cast<int32_t>(best < 0 ? 0 : best);
  };
  if (p.greedy()) {
    row.greedy = true;
    row.greedyToken = argmax();
    return row;
  }
  row.z.resize(limit);
  row.kept.assign(limit, 0);
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < limit; ++i) {
    row.z[i] = samplingLogit(logits[i], countOf(i), p, true);
    if (!std::isnan(row.z[i]))
      m = std::max(m, row.z[i]);
  }
  if (!std::isfinite(m)) {
    row.greedy = true;
    row.greedyToken = argmax();
    return row;
  }
  row.maxZ = m;
  // Non-NaN keys, largest first.
  std::vector<uint32_t> keys;
  for (float z : row.z)
    if (!std::isnan(z))
      keys.push_back(orderedKey(z));
  std::sort(keys.begin(), keys.end(), std::greater<uint32_t>());
  uint32_t threshold = 0;
  if (p.topK > 0 && p.topK < limit && static_cast<size_t>(p.topK) <= keys.size())
    threshold = keys[p.topK - 1];
  if (p.topP < 1.0f) {
    if (!(p.topP > 0.0f)) {
      threshold = orderedKey(m);
    } else {
      // Weight of each kept key, then the lowest value whose weight above
      // stays below the target.
      std::vector<std::pair<uint32_t, uint64_t>> weighed; // key, weight
      uint64_t total = 0;
      for (float z : row.z)
        if (!std::isnan(z) && orderedKey(z) >= threshold) {
          weighed.emplace_back(orderedKey(z), fixedWeight(z - m));
          total += weighed.back().second;
        }
      std::sort(weighed.begin(), weighed.end(),
                [](const auto &a, const auto &b) { return a.first > b.first; });
      const uint64_t target = static_cast<uint64_t>(
          std::ceil(static_cast<double>(p.topP) * static_cast<double>(total)));
      uint64_t above = 0;
      for (size_t j = 0; j < weighed.size();) {
        const uint32_t key = weighed[j].first;
        if (above >= target)
          break;
        threshold = key; // kept: the weight above it is below the target
        for (; j < weighed.size() && weighed[j].first == key; ++j)
          above += weighed[j].second;
      }
    }
  }
  const float logMinP = p.minP > 0.0f ? std::log(p.minP)
                                      : -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < limit; ++i) {
    const float z = row.z[i];
    row.kept[i] = !std::isnan(z) && orderedKey(z) >= threshold && z - m >= logMinP;
  }
  return row;
}

/// The probability of each of the `vocab` ids, in float64: softmax of z over
/// the kept tokens (a one-hot vector for greedy rows).
inline std::vector<double> tokenProbabilities(const float *logits, int64_t vocab,
                                              const int32_t *counts,
                                              const SamplingParams &p) {
  const FilteredRow row = filterRow(logits, vocab, counts, p);
  std::vector<double> probabilities(vocab, 0.0);
  if (row.greedy) {
    probabilities[row.greedyToken] = 1.0;
    return probabilities;
  }
  double sum = 0;
  for (size_t i = 0; i < row.z.size(); ++i)
    if (row.kept[i])
      sum += probabilities[i] =
          std::exp(static_cast<double>(row.z[i]) - static_cast<double>(row.maxZ));
  for (double &probability : probabilities)
    probability /= sum;
  return probabilities;
}

/// The token the GPU sampler draws for this row, params' seed and step.
inline int32_t sampleToken(const float *logits, int64_t vocab,
                           const int32_t *counts, const SamplingParams &p) {
  const FilteredRow row = filterRow(logits, vocab, counts, p);
  if (row.greedy)
    return row.greedyToken;
  std::vector<uint64_t> weights(row.z.size(), 0);
  uint64_t total = 0;
  for (size_t i = 0; i < row.z.size(); ++i)
    if (row.kept[i])
      total += weights[i] = fixedWeight(row.z[i] - row.maxZ);
  const uint64_t target = multiplyHigh(uniformBits(p.seed, p.step), total);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (cumulative > target)
      return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(weights.size() - 1); // unreachable: target < total
}

} // namespace dsv3::sample

#endif // DSV3_RUNTIME_SAMPLE_REFERENCESAMPLER_H
