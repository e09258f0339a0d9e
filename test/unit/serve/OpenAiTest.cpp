// OpenAI request bodies: every validation rule gives a 400 with the param at
// fault in OpenAI's error shape; valid bodies give the typed request and the
// scheduler's request (prompt ids, context limit); responses and stream
// chunks have OpenAI's exact JSON shapes.
#include "runtime/serve/OpenAiRequest.h"
#include "runtime/serve/OpenAiResponse.h"

#include "test/unit/TempDir.h"
#include "test/unit/tokenizer/TinyTokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <limits>

namespace dsv3::serve {
namespace {

using json = nlohmann::json;

CompletionRequest parsed(Endpoint endpoint, const std::string &body) {
  CompletionRequest request;
  std::optional<ApiError> error = parseCompletionRequest(endpoint, body, request);
  EXPECT_FALSE(error) << body << ": " << (error ? error->message : "");
  return request;
}

/// The error for `body`: its status, param and a phrase of its message.
void expectError(Endpoint endpoint, const std::string &body,
                 const std::string &param, const std::string &words) {
  CompletionRequest request;
  std::optional<ApiError> error = parseCompletionRequest(endpoint, body, request);
  ASSERT_TRUE(error) << body;
  EXPECT_EQ(error->httpStatus, 400) << body;
  EXPECT_EQ(error->type, "invalid_request_error");
  EXPECT_EQ(error->param, param) << body;
  EXPECT_NE(error->message.find(words), std::string::npos)
      << body << ": " << error->message;
}

TEST(OpenAiRequestTest, ReadsACompletionBody) {
  CompletionRequest r = parsed(Endpoint::Completions, R"({
    "model": "m", "prompt": "Hi", "max_tokens": 7, "temperature": 0.5,
    "top_p": 0.9, "top_k": 40, "min_p": 0.05, "presence_penalty": -1.5,
    "frequency_penalty": 2, "seed": 42, "stop": ["a", "bc"], "stream": true,
    "stream_options": {"include_usage": true}, "n": 1, "user": "ignored"})");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_FALSE(r.promptIsIds);
  EXPECT_EQ(r.maxTokens, 7);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.topP, 0.9f);
  EXPECT_EQ(r.sampling.topK, 40);
  EXPECT_FLOAT_EQ(r.sampling.minP, 0.05f);
  EXPECT_FLOAT_EQ(r.sampling.presencePenalty, -1.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequencyPenalty, 2.0f);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.streamUsage);
}

TEST(OpenAiRequestTest, DefaultsAndOtherPromptForms) {
  CompletionRequest r = parsed(Endpoint::Completions, R"({"model": "m", "prompt": ["x"]})");
  EXPECT_EQ(r.prompt, "x");
  EXPECT_FALSE(r.maxTokens);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f); // OpenAI's default
  EXPECT_FALSE(r.seed);
  EXPECT_FALSE(r.stream);
  r = parsed(Endpoint::Completions, R"({"model": "m", "prompt": [5, 6, 7], "stop": "z", "top_k": -1, "max_tokens": 3.0})");
  EXPECT_TRUE(r.promptIsIds);
  EXPECT_EQ(r.promptIds, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"z"}));
  EXPECT_EQ(r.sampling.topK, 0);
  EXPECT_EQ(r.maxTokens, 3);
  r = parsed(Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "hey"}], "max_completion_tokens": 9})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.maxTokens, 9);
}

TEST(OpenAiRequestTest, RefusesEveryBadField) {
  const Endpoint C = Endpoint::Completions, Chat = Endpoint::ChatCompletions;
  expectError(C, R"({"model": "m", "prompt": )", "", "not valid JSON");
  expectError(C, "[1, 2]", "", "must be a JSON object");
  expectError(C, "\"x\"", "", "must be a JSON object");
  expectError(C, R"({"prompt": "x"})", "model", "'model' is required");
  expectError(C, R"({"model": 3, "prompt": "x"})", "model", "must be a string");
  expectError(C, R"({"model": "m"})", "prompt", "'prompt' is required");
  expectError(C, R"({"model": "m", "prompt": 5})", "prompt", "must be a string");
  expectError(C, R"({"model": "m", "prompt": []})", "prompt", "must be a string");
  expectError(C, R"({"model": "m", "prompt": ["a", "b"]})", "prompt", "one prompt per request");
  expectError(C, R"({"model": "m", "prompt": [1, -2]})", "prompt", "item 1 is not a token id");
  expectError(C, R"({"model": "m", "prompt": [[1, 2]]})", "prompt", "item 0 is not a token id");
  expectError(Chat, R"({"model": "m"})", "messages", "'messages' is required");
  expectError(Chat, R"({"model": "m", "messages": []})", "messages", "'messages' is empty");
  expectError(Chat, R"({"model": "m", "messages": {"role": "user"}})", "messages", "expected an array");
  expectError(Chat, R"({"model": "m", "messages": [{"content": "x"}]})", "messages", "message 0: field 'role': missing");
  const std::string base = R"({"model": "m", "prompt": "x", )";
  auto bad = [&](const std::string &field, const std::string &param,
                 const std::string &words) {
    expectError(C, base + field + "}", param, words);
  };
  bad(R"("max_tokens": 0)", "max_tokens", "it must be at least 1");
  bad(R"("max_tokens": 1.5)", "max_tokens", "must be an integer");
  bad(R"("max_tokens": "9")", "max_tokens", "must be an integer");
  bad(R"("temperature": 2.5)", "temperature", "must be in [0, 2]");
  bad(R"("temperature": -0.1)", "temperature", "must be in [0, 2]");
  bad(R"("temperature": "hot")", "temperature", "must be a number");
  bad(R"("top_p": 0)", "top_p", "must be in (0, 1]");
  bad(R"("top_p": 1.01)", "top_p", "must be in (0, 1]");
  bad(R"("top_k": -2)", "top_k", "must be at least 0");
  bad(R"("top_k": 0.5)", "top_k", "must be an integer");
  bad(R"("min_p": 1.5)", "min_p", "must be in [0, 1]");
  bad(R"("presence_penalty": 2.1)", "presence_penalty", "must be in [-2, 2]");
  bad(R"("frequency_penalty": -3)", "frequency_penalty", "must be in [-2, 2]");
  bad(R"("seed": "s")", "seed", "must be an integer");
  bad(R"("stop": 5)", "stop", "a string or a list of strings");
  bad(R"("stop": ["a", 1])", "stop", "a string or a list of strings");
  bad(R"("stop": ["a", "b", "c", "d", "e"])", "stop", "at most 4");
  bad(R"("stop": "")", "stop", "is empty");
  bad(R"("stream": "yes")", "stream", "must be true or false");
  bad(R"("stream_options": {"include_usage": true})", "stream_options", "needs 'stream': true");
  bad(R"("stream": true, "stream_options": {"include_usage": 1})", "stream_options", "include_usage");
  bad(R"("n": 2)", "n", "must be 1");
  bad(R"("best_of": 3)", "best_of", "must be 1");
}

TEST(OpenAiRequestTest, ReadsLogprobs) {
  const auto C = Endpoint::Completions, Chat = Endpoint::ChatCompletions;
  const std::string messages = R"("messages": [{"role": "user", "content": "hi"}])";
  auto chat = [&](const std::string &fields) {
    return R"({"model": "m", )" + messages + (fields.empty() ? "" : ", " + fields) + "}";
  };
  // Not asked: -1, on both endpoints.
  EXPECT_EQ(parsed(C, R"({"model": "m", "prompt": "x"})").logprobs, -1);
  EXPECT_EQ(parsed(C, R"({"model": "m", "prompt": "x", "logprobs": null})").logprobs, -1);
  EXPECT_EQ(parsed(Chat, chat("")).logprobs, -1);
  EXPECT_EQ(parsed(Chat, chat(R"("logprobs": false)")).logprobs, -1);
  // Completions: logprobs N in [0, 20].
  EXPECT_EQ(parsed(C, R"({"model": "m", "prompt": "x", "logprobs": 0})").logprobs, 0);
  EXPECT_EQ(parsed(C, R"({"model": "m", "prompt": "x", "logprobs": 20})").logprobs, 20);
  // Chat: logprobs true (the chosen token's only), top_logprobs N.
  EXPECT_EQ(parsed(Chat, chat(R"("logprobs": true)")).logprobs, 0);
  EXPECT_EQ(parsed(Chat, chat(R"("logprobs": true, "top_logprobs": 3)")).logprobs, 3);
  EXPECT_FALSE(parsed(Chat, chat(R"("logprobs": true)")).tokensAsIds);
  EXPECT_TRUE(parsed(C, R"({"model": "m", "prompt": "x", "return_tokens_as_token_ids": true})")
                  .tokensAsIds);

  const std::string base = R"({"model": "m", "prompt": "x", )";
  expectError(C, base + R"("logprobs": 21})", "logprobs", "must be in [0, 20]");
  expectError(C, base + R"("logprobs": -1})", "logprobs", "must be in [0, 20]");
  expectError(C, base + R"("logprobs": true})", "logprobs", "must be an integer");
  expectError(C, base + R"("logprobs": 2.5})", "logprobs", "must be an integer");
  expectError(C, base + R"("return_tokens_as_token_ids": 1})", "return_tokens_as_token_ids",
              "must be true or false");
  expectError(Chat, chat(R"("logprobs": 3)"), "logprobs", "must be true or false");
  expectError(Chat, chat(R"("top_logprobs": 3)"), "top_logprobs", "needs 'logprobs': true");
  expectError(Chat, chat(R"("logprobs": false, "top_logprobs": 1)"), "top_logprobs",
              "needs 'logprobs': true");
  expectError(Chat, chat(R"("logprobs": true, "top_logprobs": 21)"), "top_logprobs",
              "must be in [0, 20]");
  expectError(Chat, chat(R"("logprobs": true, "top_logprobs": "3")"), "top_logprobs",
              "must be an integer");
}

TEST(OpenAiRequestTest, ErrorBodyHasOpenAisShape) {
  ApiError error;
  error.message = "bad \xff byte";
  error.param = "top_p";
  EXPECT_EQ(json::parse(error.body()),
            json::parse(R"({"error": {"message": "bad \ufffd byte",
              "type": "invalid_request_error", "param": "top_p", "code": null}})"));
  ApiError bare;
  bare.message = "m";
  bare.code = "c";
  EXPECT_EQ(json::parse(bare.body())["error"]["param"], nullptr);
  EXPECT_EQ(json::parse(bare.body())["error"]["code"], "c");
}

class OpenAiTokenizerTest : public ::testing::Test {
protected:
  void SetUp() override {
    json config = test::tinyConfigJson();
    config["chat_template"] = std::string(ChatTemplate::deepSeekV3Text());
    test::writeTokenizer(dir, test::tinyTokenizerJson(), config);
    auto loaded = Tokenizer::load(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    tokenizer.emplace(std::move(*loaded));
  }
  test::TempDir dir;
  std::optional<Tokenizer> tokenizer;
  const int64_t vocab = 320; // a padded model vocabulary
};

TEST_F(OpenAiTokenizerTest, EncodesPromptsAndChecksTheContext) {
  ServeRequest out;
  CompletionRequest r = parsed(Endpoint::Completions,
                               R"({"model": "m", "prompt": "hello", "max_tokens": 4, "stop": "x"})");
  ASSERT_FALSE(toServeRequest(r, *tokenizer, vocab, 32, 99, out));
  auto ids = tokenizer->encode("hello", true);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(out.prompt, *ids);
  EXPECT_EQ(out.maxNewTokens, 4);
  EXPECT_EQ(out.sampling.seed, 99u); // the server's when none is given
  EXPECT_EQ(out.sampling.vocabLimit, int32_t(tokenizer->vocabSize()));
  EXPECT_EQ(out.stopStrings, (std::vector<std::string>{"x"}));
  // Without max_tokens: the rest of the context.
  r.maxTokens.reset();
  ASSERT_FALSE(toServeRequest(r, *tokenizer, vocab, 32, 99, out));
  EXPECT_EQ(out.maxNewTokens, 32 - int64_t(ids->size()));

  // Chat: the template's text with the generation prompt.
  r = parsed(Endpoint::ChatCompletions,
             R"({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 5})");
  ASSERT_FALSE(toServeRequest(r, *tokenizer, vocab, 200, 99, out));
  auto text = tokenizer->renderChat(r.messages, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(out.prompt, *tokenizer->encode(*text, false));
  EXPECT_EQ(out.sampling.seed, 5u);

  // Too long for the context: 400 context_length_exceeded.
  r = parsed(Endpoint::Completions, R"({"model": "m", "prompt": [1, 2, 3, 4], "max_tokens": 5})");
  std::optional<ApiError> error = toServeRequest(r, *tokenizer, vocab, 8, 0, out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->httpStatus, 400);
  EXPECT_EQ(error->code, "context_length_exceeded");
  EXPECT_EQ(error->param, "prompt");
  EXPECT_EQ(error->message, "This model's maximum context length is 8 tokens. "
                            "However, you requested 9 tokens (4 in the prompt, "
                            "5 for the completion).");
  r.maxTokens = 4;
  EXPECT_FALSE(toServeRequest(r, *tokenizer, vocab, 8, 0, out));
  r.maxTokens.reset();
  EXPECT_FALSE(toServeRequest(r, *tokenizer, vocab, 5, 0, out));
  ASSERT_TRUE(toServeRequest(r, *tokenizer, vocab, 4, 0, out)); // no room for one
  // Log-probabilities go through to the scheduler's request.
  r = parsed(Endpoint::Completions, R"({"model": "m", "prompt": [1, 2], "logprobs": 4})");
  ASSERT_FALSE(toServeRequest(r, *tokenizer, vocab, 64, 0, out));
  EXPECT_EQ(out.logprobs, 4);
  r = parsed(Endpoint::Completions, R"({"model": "m", "prompt": [1, 320]})");
  error = toServeRequest(r, *tokenizer, vocab, 64, 0, out);
  ASSERT_TRUE(error);
  EXPECT_NE(error->message.find("item 1 is 320, outside the vocabulary (0..319)"),
            std::string::npos);
  r = parsed(Endpoint::Completions, R"({"model": "m", "prompt": ""})");
  tokenizer.reset();
  json config = test::tinyConfigJson();
  config["add_bos_token"] = false;
  test::writeTokenizer(dir, test::tinyTokenizerJson(), config);
  auto plain = Tokenizer::load(dir.path());
  ASSERT_TRUE(plain.ok());
  error = toServeRequest(r, *plain, vocab, 64, 0, out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->message, "the prompt has no tokens");
}

TEST(OpenAiResponseTest, WholeResponses) {
  ResponseHeader header{Endpoint::Completions, "cmpl-1", "m", 1700000000};
  EXPECT_EQ(json::parse(completionResponse(header, "Hi!", EndReason::Length, {3, 2})),
            json::parse(R"({"id": "cmpl-1", "object": "text_completion",
              "created": 1700000000, "model": "m",
              "choices": [{"index": 0, "text": "Hi!", "logprobs": null, "finish_reason": "length"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})"));
  header.endpoint = Endpoint::ChatCompletions;
  header.id = "chatcmpl-1";
  EXPECT_EQ(json::parse(completionResponse(header, "Yo", EndReason::StopString, {4, 1})),
            json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion",
              "created": 1700000000, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Yo"},
                           "logprobs": null, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}})"));
  EXPECT_EQ(openAiFinishReason(EndReason::EndOfSequence), "stop");
  EXPECT_FALSE(openAiFinishReason(EndReason::Cancelled));
  EXPECT_FALSE(openAiFinishReason(EndReason::Failed));
}

/// The JSON of one `data: ...\n\n` event.
json eventJson(const std::string &event) {
  EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  return json::parse(event.substr(6, event.size() - 8));
}

TEST(OpenAiResponseTest, StreamChunks) {
  ResponseHeader chat{Endpoint::ChatCompletions, "chatcmpl-2", "m", 7};
  EXPECT_EQ(eventJson(streamChunk(chat, "He", true, std::nullopt)),
            json::parse(R"({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 7,
              "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"},
              "logprobs": null, "finish_reason": null}]})"));
  EXPECT_EQ(eventJson(streamChunk(chat, "llo", false, std::nullopt))["choices"][0]["delta"],
            json::parse(R"({"content": "llo"})"));
  json last = eventJson(streamChunk(chat, "", false, EndReason::Length));
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(eventJson(streamUsageChunk(chat, {2, 3})),
            json::parse(R"({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 7,
              "model": "m", "choices": [],
              "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}})"));
  ResponseHeader text{Endpoint::Completions, "cmpl-2", "m", 7};
  EXPECT_EQ(eventJson(streamChunk(text, "x", true, EndReason::EndOfSequence)),
            json::parse(R"({"id": "cmpl-2", "object": "text_completion", "created": 7,
              "model": "m", "choices": [{"index": 0, "text": "x", "logprobs": null,
              "finish_reason": "stop"}]})"));
  EXPECT_EQ(streamDone(), "data: [DONE]\n\n");
  ApiError error;
  error.message = "boom";
  error.type = "server_error";
  EXPECT_EQ(eventJson(streamError(error))["error"]["type"], "server_error");
}

/// Log-probabilities of three tokens of the tiny tokenizer: "hello" (259),
/// the byte 0xC3 (195, the first half of "é") and the special "</s>" (301).
LogprobsPart threeTokens(const Tokenizer &tokenizer) {
  const float inf = std::numeric_limits<float>::infinity();
  LogprobsPart part;
  int64_t offset = 0;
  appendLogprobs(part, {{259, -0.25f}, {{259, -0.25f}, {104, -2.0f}}}, tokenizer, offset);
  // Chosen outside the top 2 (sampled): completions' dict holds it too.
  appendLogprobs(part, {{195, -3.5f}, {{32, -1.0f}, {97, -1.5f}}}, tokenizer, offset);
  appendLogprobs(part, {{301, -inf}, {{32, -0.5f}, {301, -inf}}}, tokenizer, offset);
  return part;
}

TEST_F(OpenAiTokenizerTest, LogprobsInCompletionResponses) {
  ResponseHeader header{Endpoint::Completions, "cmpl-3", "m", 9, &*tokenizer};
  LogprobsPart part = threeTokens(*tokenizer);
  // Characters before each token: "hello" is 5, the half of "é" starts one,
  // "</s>" is left out of the text.
  EXPECT_EQ(part.textOffsets, (std::vector<int64_t>{0, 5, 6}));
  json body = json::parse(
      completionResponse(header, "hello\xc3", EndReason::EndOfSequence, {2, 3}, &part));
  EXPECT_EQ(body["choices"][0]["logprobs"], json::parse(R"({
      "tokens": ["hello", "\ufffd", "</s>"],
      "token_logprobs": [-0.25, -3.5, -9999.0],
      "top_logprobs": [{"hello": -0.25, "h": -2.0},
                       {" ": -1.0, "a": -1.5, "\ufffd": -3.5},
                       {" ": -0.5, "</s>": -9999.0}],
      "text_offset": [0, 5, 6]})"));
  header.tokensAsIds = true;
  body = json::parse(completionResponse(header, "x", EndReason::Length, {2, 3}, &part));
  EXPECT_EQ(body["choices"][0]["logprobs"]["tokens"],
            json::parse(R"(["token_id:259", "token_id:195", "token_id:301"])"));
  EXPECT_EQ(body["choices"][0]["logprobs"]["top_logprobs"][1],
            json::parse(R"({"token_id:32": -1.0, "token_id:97": -1.5, "token_id:195": -3.5})"));
  // Asked for, no tokens (cannot happen with a reply, but the shape holds).
  LogprobsPart none;
  body = json::parse(completionResponse(header, "", EndReason::Length, {2, 0}, &none));
  EXPECT_EQ(body["choices"][0]["logprobs"]["tokens"], json::array());
  // One chunk's tokens in a stream, at its absolute offsets.
  LogprobsPart last;
  last.steps = {part.steps[2]};
  last.textOffsets = {6};
  header.tokensAsIds = false;
  json chunk = eventJson(streamChunk(header, "", false, EndReason::EndOfSequence, &last));
  EXPECT_EQ(chunk["choices"][0]["logprobs"], json::parse(R"({"tokens": ["</s>"],
      "token_logprobs": [-9999.0], "top_logprobs": [{" ": -0.5, "</s>": -9999.0}],
      "text_offset": [6]})"));
  EXPECT_EQ(chunk["choices"][0]["finish_reason"], "stop");
}

TEST_F(OpenAiTokenizerTest, LogprobsInChatResponses) {
  ResponseHeader header{Endpoint::ChatCompletions, "chatcmpl-3", "m", 9, &*tokenizer};
  LogprobsPart part = threeTokens(*tokenizer);
  json body = json::parse(
      completionResponse(header, "hello", EndReason::EndOfSequence, {2, 3}, &part));
  EXPECT_EQ(body["choices"][0]["logprobs"], json::parse(R"({"content": [
      {"token": "hello", "logprob": -0.25, "bytes": [104, 101, 108, 108, 111],
       "top_logprobs": [{"token": "hello", "logprob": -0.25, "bytes": [104, 101, 108, 108, 111]},
                        {"token": "h", "logprob": -2.0, "bytes": [104]}]},
      {"token": "\ufffd", "logprob": -3.5, "bytes": [195],
       "top_logprobs": [{"token": " ", "logprob": -1.0, "bytes": [32]},
                        {"token": "a", "logprob": -1.5, "bytes": [97]}]},
      {"token": "</s>", "logprob": -9999.0, "bytes": [60, 47, 115, 62],
       "top_logprobs": [{"token": " ", "logprob": -0.5, "bytes": [32]},
                        {"token": "</s>", "logprob": -9999.0, "bytes": [60, 47, 115, 62]}]}]})"));
  // A stream chunk: this chunk's token only; ids as names when asked, bytes
  // still exact; an id that is no token has no bytes.
  header.tokensAsIds = true;
  LogprobsPart one;
  one.steps = {{{270, -1.0f}, {{270, -1.0f}}}};
  one.textOffsets = {0};
  json chunk = eventJson(streamChunk(header, "", true, std::nullopt, &one));
  EXPECT_EQ(chunk["choices"][0]["logprobs"], json::parse(R"({"content": [
      {"token": "token_id:270", "logprob": -1.0, "bytes": null,
       "top_logprobs": [{"token": "token_id:270", "logprob": -1.0, "bytes": null}]}]})"));
  EXPECT_EQ(chunk["choices"][0]["delta"], json::parse(R"({"role": "assistant", "content": ""})"));
  // Not asked: null.
  EXPECT_EQ(eventJson(streamChunk(header, "a", false, std::nullopt))["choices"][0]["logprobs"],
            nullptr);
}

} // namespace
} // namespace dsv3::serve
