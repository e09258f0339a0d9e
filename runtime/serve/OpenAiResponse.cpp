//===- OpenAiResponse.cpp - OpenAI completion response bodies -------------===//

#include "runtime/serve/OpenAiResponse.h"

#include <nlohmann/json.hpp>

namespace dsv3::serve {

using json = nlohmann::json;

namespace {

/// Model text is valid UTF-8 (TextStream replaces broken bytes), but a
/// dump must never throw: replace anything else.
std::string dump(const json &value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string event(const json &value) { return "data: " + dump(value) + "\n\n"; }

json finishJson(std::optional<EndReason> end) {
  if (!end)
    return nullptr;
  std::optional<std::string> reason = openAiFinishReason(*end);
  return reason ? json(*reason) : json(nullptr);
}

json usageJson(const Usage &usage) {
  return {{"prompt_tokens", usage.promptTokens},
          {"completion_tokens", usage.completionTokens},
          {"total_tokens", usage.promptTokens + usage.completionTokens}};
}

bool isChat(const ResponseHeader &header) {
  return header.endpoint == Endpoint::ChatCompletions;
}

} // namespace

std::optional<std::string> openAiFinishReason(EndReason reason) {
  switch (reason) {
  case EndReason::Length:
    return "length";
  case EndReason::EndOfSequence:
  case EndReason::StopString:
    return "stop";
  case EndReason::Cancelled:
  case EndReason::Failed:
    return std::nullopt;
  }
  return std::nullopt;
}

std::string completionResponse(const ResponseHeader &header,
                               const std::string &text, EndReason reason,
                               const Usage &usage) {
  json choice = {{"index", 0}};
  if (isChat(header))
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finishJson(reason);
  return dump({{"id", header.id},
               {"object", isChat(header) ? "chat.completion" : "text_completion"},
               {"created", header.created},
               {"model", header.model},
               {"choices", json::array({choice})},
               {"usage", usageJson(usage)}});
}

std::string streamChunk(const ResponseHeader &header, const std::string &delta,
                        bool first, std::optional<EndReason> end) {
  json choice = {{"index", 0}};
  if (isChat(header)) {
    json message = json::object();
    if (first)
      message["role"] = "assistant";
    if (!delta.empty() || (first && !end))
      message["content"] = delta;
    choice["delta"] = message;
  } else {
    choice["text"] = delta;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finishJson(end);
  return event({{"id", header.id},
                {"object", isChat(header) ? "chat.completion.chunk"
                                          : "text_completion"},
                {"created", header.created},
                {"model", header.model},
                {"choices", json::array({choice})}});
}

std::string streamUsageChunk(const ResponseHeader &header, const Usage &usage) {
  return event({{"id", header.id},
                {"object", isChat(header) ? "chat.completion.chunk"
                                          : "text_completion"},
                {"created", header.created},
                {"model", header.model},
                {"choices", json::array()},
                {"usage", usageJson(usage)}});
}

std::string streamError(const ApiError &error) {
  return "data: " + error.body() + "\n\n";
}

std::string streamDone() { return "data: [DONE]\n\n"; }

} // namespace dsv3::serve
