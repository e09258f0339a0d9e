//===- OpenAiResponse.h - OpenAI completion response bodies -----*- C++ -*-===//
//
// The bodies the server sends back, in OpenAI's shapes: a whole completion
// ("text_completion" or "chat.completion", with usage), or, for
// `stream: true`, server-sent events: one `data: {json}\n\n` per chunk
// ("text_completion" or "chat.completion.chunk"), a last chunk with the
// finish reason, an optional usage chunk, then `data: [DONE]\n\n`.
// Log-probabilities, when asked, go in each choice's `logprobs` (of a
// response: every token; of a chunk: its tokens) in the endpoint's shape:
//   completions: {"tokens": [...], "token_logprobs": [...],
//                 "top_logprobs": [{token: logprob, ...}], "text_offset": [...]}
//                 (each dict: the N most likely and the chosen token);
//   chat: {"content": [{"token", "logprob", "bytes",
//                       "top_logprobs": [{"token", "logprob", "bytes"}]}]}.
// A token is named by its bytes (invalid UTF-8 replaced by U+FFFD in the
// JSON; "bytes" keeps them exact), or "token_id:N" with
// return_tokens_as_token_ids. A log-probability of -inf is written -9999.0,
// as OpenAI does (JSON has no infinity).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SERVE_OPENAIRESPONSE_H
#define DSV3_RUNTIME_SERVE_OPENAIRESPONSE_H

#include "runtime/serve/OpenAiRequest.h"
#include "runtime/serve/Logprobs.h"
#include "runtime/serve/Scheduler.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <optional>
#include <string>

namespace dsv3::serve {

struct Usage {
  int64_t promptTokens = 0, completionTokens = 0;
};

/// What every chunk and response of one request shares.
struct ResponseHeader {
  Endpoint endpoint = Endpoint::Completions;
  std::string id;    ///< "cmpl-..." or "chatcmpl-..."
  std::string model;
  int64_t created = 0; ///< Unix seconds
  /// Names the tokens of log-probabilities (needed when any are sent).
  const Tokenizer *tokenizer = nullptr;
  bool tokensAsIds = false; ///< "token_id:N" instead of the token's text
};

/// Log-probabilities of consecutive tokens of one reply: all of them, or
/// one chunk's.
struct LogprobsPart {
  std::vector<StepLogprobs> steps;
  /// Characters (code points) of the reply's text before each token.
  std::vector<int64_t> textOffsets;
};

/// Appends `step` to `part`; `offset` is the reply's length in characters
/// so far and grows by the token's text (nothing for a special token,
/// which the text leaves out).
void appendLogprobs(LogprobsPart &part, const StepLogprobs &step,
                    const Tokenizer &tokenizer, int64_t &offset);

/// OpenAI's finish_reason: "length" at max tokens, "stop" at EOS or a stop
/// sequence; nullopt for ends that are no finish (cancelled, failed).
std::optional<std::string> openAiFinishReason(EndReason reason);

/// The whole response of a request that was not streamed; `logprobs` null
/// when none were asked for.
std::string completionResponse(const ResponseHeader &header,
                               const std::string &text, EndReason reason,
                               const Usage &usage,
                               const LogprobsPart *logprobs = nullptr);

/// One streamed chunk: `delta` text, and the finish reason on the last.
/// Chat's first chunk (`first`) carries the assistant role.
std::string streamChunk(const ResponseHeader &header, const std::string &delta,
                        bool first, std::optional<EndReason> end,
                        const LogprobsPart *logprobs = nullptr);
/// The usage chunk (stream_options.include_usage): no choices.
std::string streamUsageChunk(const ResponseHeader &header, const Usage &usage);
/// An error inside a stream (after the 200 status went out).
std::string streamError(const ApiError &error);
/// `data: [DONE]\n\n`.
std::string streamDone();

} // namespace dsv3::serve

#endif // DSV3_RUNTIME_SERVE_OPENAIRESPONSE_H
