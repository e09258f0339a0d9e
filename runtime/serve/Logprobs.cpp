//===- Logprobs.cpp - log-probabilities of a step's tokens ----------------===//

#include "runtime/serve/Logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dsv3::serve {

namespace {
constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

float cleaned(float logit) { return std::isnan(logit) ? kMinusInfinity : logit; }
} // namespace

StepLogprobs computeLogprobs(const float *logits, int64_t vocab, int32_t chosen,
                             int32_t topN) {
  topN = static_cast<int32_t>(std::clamp<int64_t>(topN, 0, vocab));
  // The top N raw logits, kept sorted: most likely first, lower id first
  // among equals (ids come in increasing order and only a strictly larger
  // value moves ahead).
  std::vector<TokenLogprob> top;
  top.reserve(static_cast<size_t>(topN) + 1);
  float largest = kMinusInfinity;
  for (int64_t i = 0; i < vocab; ++i) {
    const float logit = cleaned(logits[i]);
    largest = std::max(largest, logit);
    if (topN == 0 ||
        (static_cast<int32_t>(top.size()) == topN && !(logit > top.back().logprob)))
      continue;
    auto at = std::upper_bound(top.begin(), top.end(), logit,
                               [](float value, const TokenLogprob &entry) {
                                 return value > entry.logprob;
                               });
    top.insert(at, {static_cast<int32_t>(i), logit});
    if (static_cast<int32_t>(top.size()) > topN)
      top.pop_back();
  }

  // log p_i = l_i - (m + log Σ exp(l_j - m)), m the largest logit, summed
  // in double over 10^5 terms. With +inf logits the mass is shared by them.
  double logNormalizer = 0;
  const bool infinite = std::isinf(largest) && largest > 0;
  const bool empty = std::isinf(largest) && largest < 0; // no finite logit
  if (infinite) {
    int64_t count = 0;
    for (int64_t i = 0; i < vocab; ++i)
      count += cleaned(logits[i]) == largest;
    logNormalizer = std::log(static_cast<double>(count));
  } else if (!empty) {
    double sum = 0; // float terms (each in (0, 1]), a double sum
    for (int64_t i = 0; i < vocab; ++i)
      sum += std::exp(cleaned(logits[i]) - largest);
    logNormalizer = largest + std::log(sum);
  }
  auto normalized = [&](float logit) -> float {
    if (empty)
      return kMinusInfinity;
    if (infinite)
      return logit == largest ? static_cast<float>(-logNormalizer) : kMinusInfinity;
    return static_cast<float>(static_cast<double>(logit) - logNormalizer);
  };

  StepLogprobs out;
  out.chosen.token = chosen;
  out.chosen.logprob = chosen >= 0 && chosen < vocab
                           ? normalized(cleaned(logits[chosen]))
                           : kMinusInfinity;
  for (TokenLogprob &entry : top)
    entry.logprob = normalized(entry.logprob);
  out.top = std::move(top);
  return out;
}

int64_t characterStarts(std::string_view bytes) {
  int64_t count = 0;
  for (unsigned char byte : bytes)
    count += (byte & 0xC0) != 0x80;
  return count;
}

} // namespace dsv3::serve
