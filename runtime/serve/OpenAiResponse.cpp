//===- OpenAiResponse.cpp - OpenAI completion response bodies -------------===//

#include "runtime/serve/OpenAiResponse.h"

#include <nlohmann/json.hpp>

#include <cmath>

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

/// OpenAI writes -9999.0 where a probability is 0; JSON has no -inf.
double logprobJson(float logprob) {
  return std::isfinite(logprob) ? static_cast<double>(logprob) : -9999.0;
}

const std::string *bytesOf(const ResponseHeader &header, int32_t token) {
  return header.tokenizer ? header.tokenizer->tokenBytes(token) : nullptr;
}

std::string tokenName(const ResponseHeader &header, int32_t token) {
  if (header.tokensAsIds)
    return fmt::format("token_id:{}", token);
  const std::string *bytes = bytesOf(header, token);
  return bytes ? *bytes : std::string();
}

json bytesJson(const ResponseHeader &header, int32_t token) {
  const std::string *bytes = bytesOf(header, token);
  if (!bytes)
    return nullptr;
  json list = json::array();
  for (unsigned char byte : *bytes)
    list.push_back(static_cast<int>(byte));
  return list;
}

json chatLogprobEntry(const ResponseHeader &header, const TokenLogprob &entry) {
  return {{"token", tokenName(header, entry.token)},
          {"logprob", logprobJson(entry.logprob)},
          {"bytes", bytesJson(header, entry.token)}};
}

json logprobsJson(const ResponseHeader &header, const LogprobsPart *part) {
  if (!part)
    return nullptr;
  if (isChat(header)) {
    json content = json::array();
    for (const StepLogprobs &step : part->steps) {
      json entry = chatLogprobEntry(header, step.chosen);
      json top = json::array();
      for (const TokenLogprob &alternative : step.top)
        top.push_back(chatLogprobEntry(header, alternative));
      entry["top_logprobs"] = std::move(top);
      content.push_back(std::move(entry));
    }
    return {{"content", std::move(content)}};
  }
  json tokens = json::array(), logprobs = json::array(), top = json::array();
  for (const StepLogprobs &step : part->steps) {
    tokens.push_back(tokenName(header, step.chosen.token));
    logprobs.push_back(logprobJson(step.chosen.logprob));
    // OpenAI: the N most likely, and always the chosen token.
    json alternatives = json::object();
    for (const TokenLogprob &alternative : step.top)
      alternatives[tokenName(header, alternative.token)] =
          logprobJson(alternative.logprob);
    alternatives[tokenName(header, step.chosen.token)] =
        logprobJson(step.chosen.logprob);
    top.push_back(std::move(alternatives));
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", part->textOffsets}};
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

void appendLogprobs(LogprobsPart &part, const StepLogprobs &step,
                    const Tokenizer &tokenizer, int64_t &offset) {
  part.steps.push_back(step);
  part.textOffsets.push_back(offset);
  const int32_t token = step.chosen.token;
  if (tokenizer.isSpecialToken(token))
    return;
  if (const std::string *bytes = tokenizer.tokenBytes(token))
    offset += characterStarts(*bytes);
}

std::string completionResponse(const ResponseHeader &header,
                               const std::string &text, EndReason reason,
                               const Usage &usage, const LogprobsPart *logprobs) {
  json choice = {{"index", 0}};
  if (isChat(header))
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  choice["logprobs"] = logprobsJson(header, logprobs);
  choice["finish_reason"] = finishJson(reason);
  return dump({{"id", header.id},
               {"object", isChat(header) ? "chat.completion" : "text_completion"},
               {"created", header.created},
               {"model", header.model},
               {"choices", json::array({choice})},
               {"usage", usageJson(usage)}});
}

std::string streamChunk(const ResponseHeader &header, const std::string &delta,
                        bool first, std::optional<EndReason> end,
                        const LogprobsPart *logprobs) {
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
  choice["logprobs"] = logprobsJson(header, logprobs);
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
