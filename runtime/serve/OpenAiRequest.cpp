//===- OpenAiRequest.cpp - OpenAI completion request bodies ---------------===//

#include "runtime/serve/OpenAiRequest.h"

#include <nlohmann/json.hpp>

#include <cmath>

namespace dsv3::serve {

using json = nlohmann::json;

std::string ApiError::body() const {
  json error = {{"message", message},
                {"type", type},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", code.empty() ? json(nullptr) : json(code)}};
  // Replace, not throw, on bytes that are not UTF-8 (they may echo input).
  return json{{"error", error}}.dump(-1, ' ', false,
                                     json::error_handler_t::replace);
}

namespace {

ApiError invalid(std::string param, std::string message) {
  ApiError error;
  error.param = std::move(param);
  error.message = std::move(message);
  return error;
}

/// A number in [low, high] (null: absent), or an error naming `key`.
std::optional<ApiError> readNumber(const json &body, const char *key,
                                   double low, double high, bool lowOpen,
                                   std::optional<double> &out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null())
    return std::nullopt;
  if (!it->is_number())
    return invalid(key, fmt::format("'{}' must be a number", key));
  const double value = it->get<double>();
  if (!std::isfinite(value) || value > high || value < low ||
      (lowOpen && value == low))
    return invalid(key, fmt::format("'{}' is {}; it must be in {}{}, {}]", key,
                                    it->dump(), lowOpen ? "(" : "[", low,
                                    high));
  out = value;
  return std::nullopt;
}

/// An integer (a JSON integer, or a float with an integral value).
std::optional<ApiError> readInteger(const json &body, const char *key,
                                    std::optional<int64_t> &out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null())
    return std::nullopt;
  if (it->is_number_integer()) {
    out = it->is_number_unsigned()
              ? static_cast<int64_t>(std::min<uint64_t>(
                    it->get<uint64_t>(), uint64_t(INT64_MAX)))
              : it->get<int64_t>();
    return std::nullopt;
  }
  if (it->is_number_float()) {
    const double value = it->get<double>();
    if (std::isfinite(value) && value == std::floor(value) &&
        std::fabs(value) < 9.2e18) {
      out = static_cast<int64_t>(value);
      return std::nullopt;
    }
  }
  return invalid(key, fmt::format("'{}' must be an integer", key));
}

std::optional<ApiError> readPrompt(const json &body, CompletionRequest &out) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null())
    return invalid("prompt", "'prompt' is required");
  if (it->is_string()) {
    out.prompt = it->get<std::string>();
    return std::nullopt;
  }
  if (!it->is_array() || it->empty())
    return invalid("prompt", "'prompt' must be a string, a list of one "
                             "string or a list of token ids");
  if ((*it)[0].is_string()) {
    if (it->size() != 1)
      return invalid("prompt", "one prompt per request is supported");
    out.prompt = (*it)[0].get<std::string>();
    return std::nullopt;
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json &id = (*it)[i];
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > INT32_MAX)
      return invalid("prompt", fmt::format("'prompt' item {} is not a token id "
                                           "(nor is a list of lists of ids "
                                           "supported)",
                                           i));
    out.promptIds.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  out.promptIsIds = true;
  return std::nullopt;
}

std::optional<ApiError> readStop(const json &body, CompletionRequest &out) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null())
    return std::nullopt;
  std::vector<json> items;
  if (it->is_string())
    items.push_back(*it);
  else if (it->is_array())
    items.assign(it->begin(), it->end());
  else
    return invalid("stop", "'stop' must be a string or a list of strings");
  if (items.size() > 4)
    return invalid("stop", "'stop' takes at most 4 sequences");
  for (const json &item : items) {
    if (!item.is_string())
      return invalid("stop", "'stop' must be a string or a list of strings");
    if (item.get<std::string>().empty())
      return invalid("stop", "a stop sequence is empty");
    out.stop.push_back(item.get<std::string>());
  }
  return std::nullopt;
}

/// A boolean field (null: absent).
std::optional<ApiError> readBoolean(const json &body, const char *key,
                                    std::optional<bool> &out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null())
    return std::nullopt;
  if (!it->is_boolean())
    return invalid(key, fmt::format("'{}' must be true or false", key));
  out = it->get<bool>();
  return std::nullopt;
}

/// Completions: `logprobs` N. Chat: `logprobs` true and `top_logprobs` N.
std::optional<ApiError> readLogprobs(const json &body, CompletionRequest &out) {
  std::optional<int64_t> count;
  const char *countKey =
      out.endpoint == Endpoint::Completions ? "logprobs" : "top_logprobs";
  if (auto error = readInteger(body, countKey, count))
    return error;
  if (count && (*count < 0 || *count > kMaxTopLogprobs))
    return invalid(countKey, fmt::format("'{}' is {}; it must be in [0, {}]",
                                         countKey, *count, kMaxTopLogprobs));
  if (out.endpoint == Endpoint::ChatCompletions) {
    std::optional<bool> wanted;
    if (auto error = readBoolean(body, "logprobs", wanted))
      return error;
    if (count && !wanted.value_or(false))
      return invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    if (wanted.value_or(false))
      count = count.value_or(0);
  }
  if (count)
    out.logprobs = static_cast<int32_t>(*count);
  std::optional<bool> asIds;
  if (auto error = readBoolean(body, "return_tokens_as_token_ids", asIds))
    return error;
  out.tokensAsIds = asIds.value_or(false);
  return std::nullopt;
}

std::optional<ApiError> readFields(const json &body, CompletionRequest &out) {
  auto model = body.find("model");
  if (model == body.end() || model->is_null())
    return invalid("model", "'model' is required");
  if (!model->is_string())
    return invalid("model", "'model' must be a string");
  out.model = model->get<std::string>();

  if (out.endpoint == Endpoint::Completions) {
    if (auto error = readPrompt(body, out))
      return error;
  } else {
    auto messages = body.find("messages");
    if (messages == body.end() || messages->is_null())
      return invalid("messages", "'messages' is required");
    StatusOr<std::vector<ChatMessage>> parsed =
        chatMessagesFromJson(*messages, "messages");
    if (!parsed.ok())
      return invalid("messages", parsed.status().message());
    if (parsed->empty())
      return invalid("messages", "'messages' is empty");
    out.messages = std::move(*parsed);
  }

  std::optional<int64_t> integer;
  for (const char *key : {"n", "best_of"}) {
    integer.reset();
    if (auto error = readInteger(body, key, integer))
      return error;
    if (integer && *integer != 1)
      return invalid(key, fmt::format("'{}' must be 1 (one choice per "
                                      "request)",
                                      key));
  }
  const char *maxKey = "max_tokens";
  if (out.endpoint == Endpoint::ChatCompletions &&
      body.contains("max_completion_tokens") &&
      !body["max_completion_tokens"].is_null())
    maxKey = "max_completion_tokens";
  if (auto error = readInteger(body, maxKey, out.maxTokens))
    return error;
  if (out.maxTokens && *out.maxTokens < 1)
    return invalid(maxKey, fmt::format("'{}' is {}; it must be at least 1",
                                       maxKey, *out.maxTokens));

  std::optional<double> number;
  out.sampling.temperature = 1.0f; // OpenAI's default
  if (auto error = readNumber(body, "temperature", 0, 2, false, number))
    return error;
  if (number)
    out.sampling.temperature = static_cast<float>(*number);
  number.reset();
  if (auto error = readNumber(body, "top_p", 0, 1, true, number))
    return error;
  if (number)
    out.sampling.topP = static_cast<float>(*number);
  number.reset();
  if (auto error = readNumber(body, "min_p", 0, 1, false, number))
    return error;
  if (number)
    out.sampling.minP = static_cast<float>(*number);
  number.reset();
  if (auto error = readNumber(body, "presence_penalty", -2, 2, false, number))
    return error;
  if (number)
    out.sampling.presencePenalty = static_cast<float>(*number);
  number.reset();
  if (auto error = readNumber(body, "frequency_penalty", -2, 2, false, number))
    return error;
  if (number)
    out.sampling.frequencyPenalty = static_cast<float>(*number);

  integer.reset();
  if (auto error = readInteger(body, "top_k", integer))
    return error;
  if (integer && (*integer < -1 || *integer > INT32_MAX))
    return invalid("top_k", fmt::format("'top_k' is {}; it must be at least 0 "
                                        "(0 or -1: off)",
                                        *integer));
  if (integer)
    out.sampling.topK = static_cast<int32_t>(std::max<int64_t>(0, *integer));

  integer.reset();
  if (auto error = readInteger(body, "seed", integer))
    return error;
  if (integer)
    out.seed = static_cast<uint64_t>(*integer);

  if (auto error = readStop(body, out))
    return error;

  if (auto error = readLogprobs(body, out))
    return error;

  auto stream = body.find("stream");
  if (stream != body.end() && !stream->is_null()) {
    if (!stream->is_boolean())
      return invalid("stream", "'stream' must be true or false");
    out.stream = stream->get<bool>();
  }
  auto options = body.find("stream_options");
  if (options != body.end() && !options->is_null()) {
    if (!out.stream)
      return invalid("stream_options", "'stream_options' needs 'stream': true");
    auto usage = options->is_object() ? options->find("include_usage")
                                      : options->end();
    if (!options->is_object() ||
        (usage != options->end() && !usage->is_boolean()))
      return invalid("stream_options", "'stream_options' must be "
                                       "{\"include_usage\": true or false}");
    out.streamUsage = usage != options->end() && usage->get<bool>();
  }
  return std::nullopt;
}

} // namespace

std::optional<ApiError> parseCompletionRequest(Endpoint endpoint,
                                               std::string_view body,
                                               CompletionRequest &out) {
  out = CompletionRequest{};
  out.endpoint = endpoint;
  json parsed = json::parse(body.begin(), body.end(), nullptr,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    return invalid("", "the body is not valid JSON");
  if (!parsed.is_object())
    return invalid("", "the body must be a JSON object");
  return readFields(parsed, out);
}

std::optional<ApiError> toServeRequest(const CompletionRequest &request,
                                       const Tokenizer &tokenizer,
                                       int64_t vocab, int64_t contextTokens,
                                       uint64_t defaultSeed, ServeRequest &out) {
  out = ServeRequest{};
  const char *promptParam =
      request.endpoint == Endpoint::Completions ? "prompt" : "messages";
  if (request.endpoint == Endpoint::ChatCompletions) {
    StatusOr<std::string> text =
        tokenizer.renderChat(request.messages, /*addGenerationPrompt=*/true);
    if (!text.ok())
      return invalid("messages", text.status().message());
    StatusOr<std::vector<int32_t>> ids = tokenizer.encode(*text, false);
    if (!ids.ok())
      return invalid("messages", ids.status().message());
    out.prompt = std::move(*ids);
  } else if (request.promptIsIds) {
    for (size_t i = 0; i < request.promptIds.size(); ++i)
      if (request.promptIds[i] >= vocab)
        return invalid("prompt", fmt::format("'prompt' item {} is {}, outside "
                                             "the vocabulary (0..{})",
                                             i, request.promptIds[i], vocab - 1));
    out.prompt = request.promptIds;
  } else {
    StatusOr<std::vector<int32_t>> ids =
        tokenizer.encode(request.prompt, tokenizer.addBosToken());
    if (!ids.ok())
      return invalid("prompt", ids.status().message());
    out.prompt = std::move(*ids);
  }
  const int64_t length = static_cast<int64_t>(out.prompt.size());
  if (length == 0)
    return invalid(promptParam, "the prompt has no tokens");
  if (length >= contextTokens || (request.maxTokens &&
                                  length + *request.maxTokens > contextTokens)) {
    ApiError error = invalid(
        promptParam,
        fmt::format("This model's maximum context length is {} tokens. "
                    "However, you requested {} tokens ({} in the prompt, {} "
                    "for the completion).",
                    contextTokens,
                    length + request.maxTokens.value_or(1), length,
                    request.maxTokens.value_or(1)));
    error.code = "context_length_exceeded";
    return error;
  }
  out.maxNewTokens = request.maxTokens.value_or(contextTokens - length);
  out.sampling = request.sampling;
  out.sampling.seed = request.seed.value_or(defaultSeed);
  out.sampling.vocabLimit = static_cast<int32_t>(
      std::min<int64_t>(vocab, static_cast<int64_t>(tokenizer.vocabSize())));
  out.stopStrings = request.stop;
  out.stopAtEos = true;
  out.logprobs = request.logprobs;
  return std::nullopt;
}

} // namespace dsv3::serve
