// Log-probabilities on fixed logits: the log-softmax against a float64
// computation, the top N (order, ties, N larger than the vocabulary), the
// chosen token outside the top N, logits that would overflow a naive
// softmax, and NaN / infinite logits; text offsets in characters.
#include "runtime/serve/Logprobs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace dsv3::serve {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// log-softmax of `logits` at `i`, in double.
double reference(const std::vector<float> &logits, size_t i) {
  double sum = 0;
  for (float l : logits)
    sum += std::exp(static_cast<double>(l));
  return static_cast<double>(logits[i]) - std::log(sum);
}

TEST(LogprobsTest, LogSoftmaxAndTopN) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 3.0f, 0.0f, -1.5f};
  StepLogprobs step = computeLogprobs(logits.data(), 6, 4, 3);
  EXPECT_EQ(step.chosen.token, 4);
  EXPECT_NEAR(step.chosen.logprob, reference(logits, 4), 1e-6);
  ASSERT_EQ(step.top.size(), 3u);
  // 3.0 twice: the lower id first, as greedy sampling picks it.
  EXPECT_EQ(step.top[0].token, 2);
  EXPECT_EQ(step.top[1].token, 3);
  EXPECT_EQ(step.top[2].token, 1);
  for (const TokenLogprob &entry : step.top)
    EXPECT_NEAR(entry.logprob, reference(logits, entry.token), 1e-6);
  // The probabilities of the whole row add up to 1.
  double total = 0;
  for (int32_t id = 0; id < 6; ++id)
    total += std::exp(computeLogprobs(logits.data(), 6, id, 0).chosen.logprob);
  EXPECT_NEAR(total, 1.0, 1e-6);
}

TEST(LogprobsTest, TopNOfZeroOrMoreThanTheVocabulary) {
  const std::vector<float> logits = {0.5f, -0.5f, 2.0f};
  EXPECT_TRUE(computeLogprobs(logits.data(), 3, 0, 0).top.empty());
  StepLogprobs all = computeLogprobs(logits.data(), 3, 0, 20);
  ASSERT_EQ(all.top.size(), 3u);
  EXPECT_EQ(all.top[0].token, 2);
  EXPECT_EQ(all.top[1].token, 0);
  EXPECT_EQ(all.top[2].token, 1);
  // Only ids below `vocab` count (a model row padded beyond the tokenizer).
  StepLogprobs cut = computeLogprobs(logits.data(), 2, 1, 5);
  ASSERT_EQ(cut.top.size(), 2u);
  EXPECT_NEAR(cut.chosen.logprob, -0.5 - std::log(std::exp(0.5) + std::exp(-0.5)),
              1e-6);
}

TEST(LogprobsTest, AVocabularyOfRandomLogits) {
  // DeepSeek-V3's vocabulary: the top 5 are the 5 largest values, and each
  // log-probability matches float64.
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(129280);
  for (float &l : logits)
    l = normal(random);
  std::vector<size_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  StepLogprobs step = computeLogprobs(logits.data(), 129280, 12345, 5);
  ASSERT_EQ(step.top.size(), 5u);
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(step.top[k].token, static_cast<int32_t>(order[k]));
    EXPECT_NEAR(step.top[k].logprob, reference(logits, order[k]), 1e-4);
  }
  EXPECT_NEAR(step.chosen.logprob, reference(logits, 12345), 1e-4);
}

TEST(LogprobsTest, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {10000.0f, 10001.0f, 9990.0f};
  StepLogprobs step = computeLogprobs(logits.data(), 3, 0, 1);
  const double expected = -std::log(1 + std::exp(1.0) + std::exp(-10.0));
  EXPECT_NEAR(step.chosen.logprob, expected, 1e-5);
  EXPECT_EQ(step.top[0].token, 1);
  EXPECT_NEAR(step.top[0].logprob, 1 + expected, 1e-5);
}

TEST(LogprobsTest, NonFiniteLogits) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // NaN and -inf: probability 0, and never ahead of a finite logit.
  std::vector<float> logits = {nan, 1.0f, -kInf, 1.0f};
  StepLogprobs step = computeLogprobs(logits.data(), 4, 0, 4);
  EXPECT_EQ(step.chosen.logprob, -kInf);
  EXPECT_EQ(step.top[0].token, 1);
  EXPECT_NEAR(step.top[0].logprob, -std::log(2.0), 1e-6);
  EXPECT_EQ(step.top[1].token, 3);
  EXPECT_EQ(step.top[2].logprob, -kInf);
  EXPECT_EQ(step.top[3].logprob, -kInf);
  // +inf takes all the mass, shared between the infinite ones.
  logits = {kInf, 5.0f, kInf};
  step = computeLogprobs(logits.data(), 3, 2, 3);
  EXPECT_NEAR(step.chosen.logprob, -std::log(2.0), 1e-6);
  EXPECT_EQ(step.top[0].token, 0);
  EXPECT_EQ(step.top[2].token, 1);
  EXPECT_EQ(step.top[2].logprob, -kInf);
  // Nothing finite: every log-probability is -inf, none is NaN.
  logits = {nan, -kInf};
  step = computeLogprobs(logits.data(), 2, 1, 2);
  EXPECT_EQ(step.chosen.logprob, -kInf);
  for (const TokenLogprob &entry : step.top)
    EXPECT_EQ(entry.logprob, -kInf);
  // A chosen id outside the vocabulary has probability 0.
  logits = {1.0f, 2.0f};
  EXPECT_EQ(computeLogprobs(logits.data(), 2, 7, 1).chosen.logprob, -kInf);
}

TEST(LogprobsTest, CharacterStarts) {
  EXPECT_EQ(characterStarts(""), 0);
  EXPECT_EQ(characterStarts("abc"), 3);
  EXPECT_EQ(characterStarts("é中🙂"), 3);
  // A character split between tokens counts where its first byte is.
  const std::string smile = "🙂";
  EXPECT_EQ(characterStarts(smile.substr(0, 1)), 1);
  EXPECT_EQ(characterStarts(smile.substr(1)), 0);
}

} // namespace
} // namespace dsv3::serve
