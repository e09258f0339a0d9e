//===- OpenAiRequest.h - OpenAI completion request bodies -------*- C++ -*-===//
//
// Reads the JSON bodies of POST /v1/completions and /v1/chat/completions
// into a typed request, or an OpenAI-style error (ApiError): the server
// answers every bad request with a body a client library understands, and
// never with a crash. Then toServeRequest turns a parsed request into the
// scheduler's (prompt ids, sampling, stop strings), which is where a prompt
// longer than the context is refused.
//
// Accepted fields: model (required), prompt (a string, a list of one
// string, or a list of token ids) or messages, max_tokens (chat also
// max_completion_tokens), temperature [0, 2] (default 1), top_p (0, 1],
// top_k (0 or -1: off), min_p [0, 1], presence_penalty and
// frequency_penalty [-2, 2], seed, stop (a string or up to 4), stream,
// stream_options.include_usage, n and best_of (1 only), log-probabilities
// (completions: logprobs 0..20; chat: logprobs true/false and top_logprobs
// 0..20, which needs logprobs true), and vLLM's return_tokens_as_token_ids
// (tokens in log-probabilities shown as "token_id:N"). Others are ignored.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SERVE_OPENAIREQUEST_H
#define DSV3_RUNTIME_SERVE_OPENAIREQUEST_H

#include "runtime/sample/SamplingParams.h"
#include "runtime/serve/Scheduler.h"
#include "runtime/tokenizer/ChatTemplate.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::serve {

/// An OpenAI error: its HTTP status and its body's fields.
struct ApiError {
  int httpStatus = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param; ///< empty: null
  std::string code;  ///< empty: null
  /// {"error": {"message", "type", "param", "code"}}.
  std::string body() const;
};

enum class Endpoint { Completions, ChatCompletions };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;
  std::string prompt;                   ///< completions, as text
  std::vector<int32_t> promptIds;       ///< completions, as token ids
  bool promptIsIds = false;
  std::vector<ChatMessage> messages;    ///< chat
  std::optional<int64_t> maxTokens;     ///< absent: the rest of the context
  sample::SamplingParams sampling;      ///< temperature 1 unless given
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool streamUsage = false; ///< stream_options.include_usage
  /// Top log-probabilities per token: -1 none; else how many besides the
  /// chosen token's (completions' `logprobs`, chat's `top_logprobs`).
  int32_t logprobs = -1;
  bool tokensAsIds = false; ///< return_tokens_as_token_ids
};

/// Parses `body` for `endpoint`; nullopt and `out` filled on success.
std::optional<ApiError> parseCompletionRequest(Endpoint endpoint,
                                               std::string_view body,
                                               CompletionRequest &out);

/// The scheduler's request for `request`: the prompt encoded (chat through
/// the tokenizer's template, with the generation prompt), at most
/// `contextTokens` tokens with the new ones; `defaultSeed` when the request
/// gives none. nullopt and `out` filled on success.
std::optional<ApiError> toServeRequest(const CompletionRequest &request,
                                       const Tokenizer &tokenizer,
                                       int64_t vocab, int64_t contextTokens,
                                       uint64_t defaultSeed, ServeRequest &out);

} // namespace dsv3::serve

#endif // DSV3_RUNTIME_SERVE_OPENAIREQUEST_H
