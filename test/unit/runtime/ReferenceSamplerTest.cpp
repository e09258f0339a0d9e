// The sampler's semantics on fixed logits, one option at a time: the exact
// probabilities tokenProbabilities() gives (against values worked out by
// hand from the definitions in docs/runtime.md), and the distribution of
// sampleToken()'s seeded draws (chi-square against those probabilities, and
// never a token of probability 0). The GPU test checks the kernel against
// this same reference.
#include "runtime/sample/ReferenceSampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

namespace dsv3::sample {
namespace {

/// log of each probability: softmax of these at temperature 1 gives them back.
std::vector<float> logitsOf(const std::vector<double> &probabilities) {
  std::vector<float> logits;
  for (double p : probabilities)
    logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

/// `expected` normalized over the ids in `kept` (others 0).
std::vector<double> renormalized(const std::vector<double> &weights,
                                 const std::vector<int> &kept) {
  std::vector<double> out(weights.size(), 0.0);
  double sum = 0;
  for (int i : kept)
    sum += weights[i];
  for (int i : kept)
    out[i] = weights[i] / sum;
  return out;
}

void expectProbabilities(const std::vector<float> &logits,
                         const std::vector<int32_t> *counts,
                         const SamplingParams &params,
                         const std::vector<double> &expected) {
  std::vector<double> got = tokenProbabilities(
      logits.data(), static_cast<int64_t>(logits.size()),
      counts ? counts->data() : nullptr, params);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], 1e-6) << "token " << i;
}

/// Chi-square upper-tail critical value at 1e-6 (Wilson-Hilferty); a wrong
/// kept set or weight gives statistics in the thousands at 40k draws.
double chiSquareCritical(int degrees) {
  const double z = 4.753, d = degrees;
  return d * std::pow(1 - 2 / (9 * d) + z * std::sqrt(2 / (9 * d)), 3);
}

/// 40000 draws with seeds and steps varying; checks them against
/// `expected` (chi-square over ids of positive probability, and no draw of
/// a zero-probability id).
void expectDraws(const std::vector<float> &logits,
                 const std::vector<int32_t> *counts, SamplingParams params,
                 const std::vector<double> &expected) {
  constexpr int kDraws = 40000;
  std::vector<double> seen(logits.size(), 0);
  for (int draw = 0; draw < kDraws; ++draw) {
    params.seed = 1000003u * static_cast<uint64_t>(draw / 100) + 17;
    params.step = draw % 100;
    int32_t token = sampleToken(logits.data(), static_cast<int64_t>(logits.size()),
                                counts ? counts->data() : nullptr, params);
    ASSERT_GE(token, 0);
    ASSERT_LT(token, static_cast<int32_t>(logits.size()));
    seen[token] += 1;
  }
  double chi = 0;
  int buckets = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == 0) {
      EXPECT_EQ(seen[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double mean = expected[i] * kDraws;
    chi += (seen[i] - mean) * (seen[i] - mean) / mean;
    ++buckets;
  }
  if (buckets >= 2) {
    EXPECT_LT(chi, chiSquareCritical(buckets - 1)) << buckets << " buckets";
  }
}

SamplingParams at(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  return p;
}

const std::vector<double> kFour = {0.5, 0.3, 0.15, 0.05};

TEST(ReferenceSamplerTest, GreedyIsTheArgmaxWithTiesToTheLowestId) {
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, NAN, 0.5f};
  EXPECT_EQ(sampleToken(logits.data(), 6, nullptr, at(0.0f)), 1);
  EXPECT_EQ(sampleToken(logits.data(), 6, nullptr, at(-1.0f)), 1);
  EXPECT_EQ(sampleToken(logits.data(), 6, nullptr, at(NAN)), 1);
  std::vector<double> oneHot = {0, 1, 0, 0, 0, 0};
  expectProbabilities(logits, nullptr, at(0.0f), oneHot);
  // NaN never wins; a row of NaN gives 0; -inf is a value.
  std::vector<float> nan = {NAN, NAN, NAN};
  EXPECT_EQ(sampleToken(nan.data(), 3, nullptr, at(0.0f)), 0);
  std::vector<float> infinite = {NAN, -INFINITY, -INFINITY};
  EXPECT_EQ(sampleToken(infinite.data(), 3, nullptr, at(0.7f)), 1);
  // A positive infinity decides even when sampling.
  std::vector<float> positive = {1.0f, INFINITY, 2.0f, INFINITY};
  EXPECT_EQ(sampleToken(positive.data(), 4, nullptr, at(1.0f)), 1);
}

TEST(ReferenceSamplerTest, GreedyAppliesPenalties) {
  std::vector<float> logits = {1.0f, 3.0f, 2.5f};
  std::vector<int32_t> counts = {0, 1, 0};
  SamplingParams p = at(0.0f);
  p.presencePenalty = 0.4f;
  EXPECT_EQ(sampleToken(logits.data(), 3, counts.data(), p), 1); // 2.6 > 2.5
  p.frequencyPenalty = 0.2f;
  EXPECT_EQ(sampleToken(logits.data(), 3, counts.data(), p), 2); // 2.4 < 2.5
  // Without a count buffer there is nothing to penalize.
  EXPECT_EQ(sampleToken(logits.data(), 3, nullptr, p), 1);
}

TEST(ReferenceSamplerTest, TemperatureScalesTheLogits) {
  std::vector<float> logits = logitsOf(kFour);
  expectProbabilities(logits, nullptr, at(1.0f), kFour);
  expectDraws(logits, nullptr, at(1.0f), kFour);
  // At T = 2 the probabilities are proportional to sqrt(p).
  std::vector<double> flatter;
  for (double p : kFour)
    flatter.push_back(std::sqrt(p));
  flatter = renormalized(flatter, {0, 1, 2, 3});
  expectProbabilities(logits, nullptr, at(2.0f), flatter);
  expectDraws(logits, nullptr, at(2.0f), flatter);
  // At T = 0.5, to p².
  std::vector<double> sharper;
  for (double p : kFour)
    sharper.push_back(p * p);
  sharper = renormalized(sharper, {0, 1, 2, 3});
  expectProbabilities(logits, nullptr, at(0.5f), sharper);
  expectDraws(logits, nullptr, at(0.5f), sharper);
}

TEST(ReferenceSamplerTest, TopKKeepsTheKLargestAndTheirTies) {
  std::vector<float> logits = {2.0f, 1.0f, 3.0f, 0.0f, 3.0f};
  std::vector<double> weights;
  for (float l : logits)
    weights.push_back(std::exp(l));
  SamplingParams p = at(1.0f);
  p.topK = 3;
  expectProbabilities(logits, nullptr, p, renormalized(weights, {0, 2, 4}));
  expectDraws(logits, nullptr, p, renormalized(weights, {0, 2, 4}));
  // k = 1 with two equal maxima keeps both.
  p.topK = 1;
  expectProbabilities(logits, nullptr, p, renormalized(weights, {2, 4}));
  expectDraws(logits, nullptr, p, renormalized(weights, {2, 4}));
  // k at or above the vocabulary: off.
  p.topK = 5;
  expectProbabilities(logits, nullptr, p, renormalized(weights, {0, 1, 2, 3, 4}));
}

TEST(ReferenceSamplerTest, TopPKeepsTheSmallestSetReachingP) {
  std::vector<float> logits = logitsOf(kFour);
  SamplingParams p = at(1.0f);
  // Mass above 0.3 is 0.5 < 0.7: kept; above 0.15 is 0.8: dropped.
  p.topP = 0.7f;
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0, 1}));
  expectDraws(logits, nullptr, p, renormalized(kFour, {0, 1}));
  p.topP = 0.82f;
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0, 1, 2}));
  expectDraws(logits, nullptr, p, renormalized(kFour, {0, 1, 2}));
  // Below the top probability: the top token alone.
  p.topP = 0.45f;
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0}));
  p.topP = 1.0f;
  expectProbabilities(logits, nullptr, p, kFour);
  // Equal values are kept or dropped together.
  std::vector<float> tied = logitsOf({0.4, 0.2, 0.2, 0.2});
  p.topP = 0.5f;
  expectProbabilities(tied, nullptr, p,
                      renormalized({0.4, 0.2, 0.2, 0.2}, {0, 1, 2, 3}));
}

TEST(ReferenceSamplerTest, TopPAppliesAfterTopK) {
  std::vector<float> logits = logitsOf(kFour);
  SamplingParams p = at(1.0f);
  p.topP = 0.82f; // alone: keeps 3 tokens (mass above the third is 0.8)
  p.topK = 3;     // renormalized over 0.95, 0.8 / 0.95 = 0.84 ≥ 0.82: drop it
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0, 1}));
  expectDraws(logits, nullptr, p, renormalized(kFour, {0, 1}));
}

TEST(ReferenceSamplerTest, TopPSeesTheTemperature) {
  std::vector<float> logits = logitsOf(kFour);
  SamplingParams p = at(2.0f); // probabilities ∝ sqrt: .379 .294 .208 .120
  p.topP = 0.62f;              // mass above the third: 0.673: dropped
  std::vector<double> flatter;
  for (double q : kFour)
    flatter.push_back(std::sqrt(q));
  expectProbabilities(logits, nullptr, p, renormalized(flatter, {0, 1}));
  expectDraws(logits, nullptr, p, renormalized(flatter, {0, 1}));
}

TEST(ReferenceSamplerTest, MinPKeepsTokensNearTheTop) {
  std::vector<float> logits = logitsOf(kFour);
  SamplingParams p = at(1.0f);
  p.minP = 0.25f; // keep probability ≥ 0.125
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0, 1, 2}));
  expectDraws(logits, nullptr, p, renormalized(kFour, {0, 1, 2}));
  p.minP = 0.5f; // ≥ 0.25
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0, 1}));
  expectDraws(logits, nullptr, p, renormalized(kFour, {0, 1}));
  p.minP = 1.0f; // the maximum alone
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0}));
  // Relative to the tempered distribution: at T = 2, 0.05 is sqrt(0.1) =
  // 0.316 of the top, kept at min_p 0.3.
  p = at(2.0f);
  p.minP = 0.3f;
  std::vector<double> flatter;
  for (double q : kFour)
    flatter.push_back(std::sqrt(q));
  expectProbabilities(logits, nullptr, p, renormalized(flatter, {0, 1, 2, 3}));
}

TEST(ReferenceSamplerTest, PresencePenaltySubtractsOncePerGeneratedToken) {
  std::vector<float> logits(4, 0.0f);
  std::vector<int32_t> counts = {0, 1, 3, 0};
  SamplingParams p = at(1.0f);
  p.presencePenalty = 1.0f;
  std::vector<double> expected =
      renormalized({1, std::exp(-1.0), std::exp(-1.0), 1}, {0, 1, 2, 3});
  expectProbabilities(logits, &counts, p, expected);
  expectDraws(logits, &counts, p, expected);
}

TEST(ReferenceSamplerTest, FrequencyPenaltySubtractsPerOccurrence) {
  std::vector<float> logits(4, 0.0f);
  std::vector<int32_t> counts = {0, 1, 3, 0};
  SamplingParams p = at(1.0f);
  p.frequencyPenalty = 0.5f;
  std::vector<double> expected =
      renormalized({1, std::exp(-0.5), std::exp(-1.5), 1}, {0, 1, 2, 3});
  expectProbabilities(logits, &counts, p, expected);
  expectDraws(logits, &counts, p, expected);
  // Both, then divided by the temperature: z = -(0.5 c + 0.25 [c > 0]) / 0.5.
  p.presencePenalty = 0.25f;
  p.temperature = 0.5f;
  expected = renormalized({1, std::exp(-1.5), std::exp(-3.5), 1}, {0, 1, 2, 3});
  expectProbabilities(logits, &counts, p, expected);
  expectDraws(logits, &counts, p, expected);
  // Negative penalties favour repetition.
  p = at(1.0f);
  p.frequencyPenalty = -1.0f;
  expected = renormalized({1, std::exp(1.0), std::exp(3.0), 1}, {0, 1, 2, 3});
  expectProbabilities(logits, &counts, p, expected);
  expectDraws(logits, &counts, p, expected);
}

TEST(ReferenceSamplerTest, VocabLimitExcludesHigherIds) {
  std::vector<float> logits = logitsOf(kFour);
  SamplingParams p = at(1.0f);
  p.vocabLimit = 2;
  expectProbabilities(logits, nullptr, p, renormalized(kFour, {0, 1}));
  expectDraws(logits, nullptr, p, renormalized(kFour, {0, 1}));
  std::vector<float> highLast = {0.0f, 0.0f, 9.0f};
  p.temperature = 0.0f;
  EXPECT_EQ(sampleToken(highLast.data(), 3, nullptr, p), 0);
}

TEST(ReferenceSamplerTest, SeedAndStepDecideTheDraw) {
  std::vector<float> logits(1000, 0.0f); // uniform over 1000 ids
  SamplingParams p = at(1.0f);
  p.seed = 42;
  p.step = 3;
  const int32_t first = sampleToken(logits.data(), 1000, nullptr, p);
  EXPECT_EQ(sampleToken(logits.data(), 1000, nullptr, p), first);
  // Over 200 steps (or seeds), draws from 1000 ids spread out.
  std::vector<int32_t> bySteps, bySeeds;
  for (uint64_t k = 0; k < 200; ++k) {
    p.seed = 42;
    p.step = k;
    bySteps.push_back(sampleToken(logits.data(), 1000, nullptr, p));
    p.seed = k;
    p.step = 3;
    bySeeds.push_back(sampleToken(logits.data(), 1000, nullptr, p));
  }
  std::sort(bySteps.begin(), bySteps.end());
  std::sort(bySeeds.begin(), bySeeds.end());
  // 200 uniform draws of 1000 repeat an id about 18 times.
  EXPECT_GT(std::unique(bySteps.begin(), bySteps.end()) - bySteps.begin(), 150);
  EXPECT_GT(std::unique(bySeeds.begin(), bySeeds.end()) - bySeeds.begin(), 150);
}

TEST(ReferenceSamplerTest, PhiloxMatchesItsPublishedAnswers) {
  // Random123's known-answer vectors for philox4x32_10.
  uint32_t zero[4] = {0, 0, 0, 0};
  philox4x32(zero, 0, 0);
  EXPECT_EQ(zero[0], 0x6627e8d5u);
  EXPECT_EQ(zero[1], 0xe169c58du);
  EXPECT_EQ(zero[2], 0xbc57ac4cu);
  EXPECT_EQ(zero[3], 0x9b00dbd8u);
  uint32_t ones[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
  philox4x32(ones, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(ones[0], 0x408f276du);
  EXPECT_EQ(ones[1], 0x41c83b0eu);
  EXPECT_EQ(ones[2], 0xa20bc7c6u);
  EXPECT_EQ(ones[3], 0x6d5451fdu);
  uint32_t pi[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
  philox4x32(pi, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi[0], 0xd16cfe09u);
  EXPECT_EQ(pi[1], 0x94fdccebu);
  EXPECT_EQ(pi[2], 0x5001e420u);
  EXPECT_EQ(pi[3], 0x24126ea1u);
}

TEST(ReferenceSamplerTest, MultiplyHighIsTheUpperHalfOfTheProduct) {
  const uint64_t values[] = {0, 1, 0xffffffffu, 0x100000000ull, 0xdeadbeefcafef00dull,
                             ~0ull, 0x8000000000000000ull, 12345678901234567ull};
  for (uint64_t a : values)
    for (uint64_t b : values)
      EXPECT_EQ(multiplyHigh(a, b),
                static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64))
          << a << " * " << b;
}

TEST(ReferenceSamplerTest, KeysOrderLikeTheFloats) {
  const float values[] = {-INFINITY, -1e30f, -2.5f, -1e-30f, -0.0f, 0.0f,
                          1e-30f,    1.0f,   3.0f,  1e30f,   INFINITY};
  for (size_t i = 1; i < std::size(values); ++i)
    EXPECT_LT(orderedKey(values[i - 1]), orderedKey(values[i])) << values[i];
}

TEST(ReferenceSamplerTest, FixedWeightsAreExpInUnitsOfTwoToTheMinus44) {
  EXPECT_EQ(fixedWeight(0.0f), uint64_t{1} << 44);
  EXPECT_NEAR(static_cast<double>(fixedWeight(-1.0f)), std::exp(-1.0) * 17592186044416.0,
              17592186044416.0 * 2e-7);
  EXPECT_EQ(fixedWeight(-40.0f), 0u);
  EXPECT_EQ(fixedWeight(-INFINITY), 0u);
}

} // namespace
} // namespace dsv3::sample
