//===- Logprobs.h - log-probabilities of a step's tokens --------*- C++ -*-===//
//
// What OpenAI's `logprobs` options return for each generated token: the
// log-probability of the token that was chosen and of the N most likely
// ones. They are computed on the host from the step's logits as the model
// gave them (a log-softmax over the ids the server can emit), before
// temperature, penalties or any truncation: the distribution of the model,
// not of the sampler. So a greedy token is always the first of the top N
// (unless penalties moved the pick), and a token's log-probability does not
// depend on the request's sampling settings.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SERVE_LOGPROBS_H
#define DSV3_RUNTIME_SERVE_LOGPROBS_H

#include <cstdint>
#include <string_view>
#include <vector>

namespace dsv3::serve {

/// The most top log-probabilities a request may ask for per token (chat's
/// top_logprobs allows 20 in OpenAI's API; we allow it for completions'
/// `logprobs` too, where OpenAI stops at 5).
constexpr int32_t kMaxTopLogprobs = 20;

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0; ///< natural log; -inf for a token of probability 0
};

/// One generated token's log-probabilities.
struct StepLogprobs {
  TokenLogprob chosen;
  /// The `topN` most likely ids, most likely first (equal ones: lower id
  /// first, as greedy sampling breaks ties).
  std::vector<TokenLogprob> top;
};

/// Log-softmax of logits[0..vocab), its value at `chosen`, and its `topN`
/// largest values. A logit that is NaN counts as -inf; if none is finite,
/// every log-probability is -inf.
StepLogprobs computeLogprobs(const float *logits, int64_t vocab, int32_t chosen,
                             int32_t topN);

/// Characters (UTF-8 code points) that start in `bytes`: how far a token
/// moves the text offset (a character split across tokens counts at the
/// token holding its first byte).
int64_t characterStarts(std::string_view bytes);

} // namespace dsv3::serve

#endif // DSV3_RUNTIME_SERVE_LOGPROBS_H
