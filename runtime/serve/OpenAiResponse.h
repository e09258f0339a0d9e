//===- OpenAiResponse.h - OpenAI completion response bodies -----*- C++ -*-===//
//
// The bodies the server sends back, in OpenAI's shapes: a whole completion
// ("text_completion" or "chat.completion", with usage), or, for
// `stream: true`, server-sent events: one `data: {json}\n\n` per chunk
// ("text_completion" or "chat.completion.chunk"), a last chunk with the
// finish reason, an optional usage chunk, then `data: [DONE]\n\n`.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SERVE_OPENAIRESPONSE_H
#define DSV3_RUNTIME_SERVE_OPENAIRESPONSE_H

#include "runtime/serve/OpenAiRequest.h"
#include "runtime/serve/Scheduler.h"

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
};

/// OpenAI's finish_reason: "length" at max tokens, "stop" at EOS or a stop
/// sequence; nullopt for ends that are no finish (cancelled, failed).
std::optional<std::string> openAiFinishReason(EndReason reason);

/// The whole response of a request that was not streamed.
std::string completionResponse(const ResponseHeader &header,
                               const std::string &text, EndReason reason,
                               const Usage &usage);

/// One streamed chunk: `delta` text, and the finish reason on the last.
/// Chat's first chunk (`first`) carries the assistant role.
std::string streamChunk(const ResponseHeader &header, const std::string &delta,
                        bool first, std::optional<EndReason> end);
/// The usage chunk (stream_options.include_usage): no choices.
std::string streamUsageChunk(const ResponseHeader &header, const Usage &usage);
/// An error inside a stream (after the 200 status went out).
std::string streamError(const ApiError &error);
/// `data: [DONE]\n\n`.
std::string streamDone();

} // namespace dsv3::serve

#endif // DSV3_RUNTIME_SERVE_OPENAIRESPONSE_H
