//===- ChatTemplateTest.cpp - messages and the DeepSeek-V3 renderer -------===//
//
// The renderings themselves are checked against transformers.js in
// ReferenceTest.cpp; here: reading messages, and refusing what the Jinja
// would fail on or silently drop.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/ChatTemplate.h"

#include "test/unit/tokenizer/Contains.h"

#include <gtest/gtest.h>

using namespace dsv3;
using dsv3::test::contains;

namespace {

std::vector<ChatMessage> parse(std::string_view text) {
  StatusOr<std::vector<ChatMessage>> messages = parseChatMessages(text, "chat.json");
  EXPECT_TRUE(messages.ok()) << messages.status().message();
  return messages.ok() ? *messages : std::vector<ChatMessage>();
}

std::string parseError(std::string_view text) {
  StatusOr<std::vector<ChatMessage>> messages = parseChatMessages(text, "chat.json");
  EXPECT_FALSE(messages.ok());
  return messages.ok() ? "" : messages.status().message();
}

TEST(ChatMessages, ReadsRolesContentAndToolCalls) {
  std::vector<ChatMessage> messages = parse(R"([
    {"role": "system", "content": "S"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
    {"role": "tool", "content": "42"}])");
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].role, "system");
  EXPECT_EQ(messages[0].content, "S");
  EXPECT_FALSE(messages[1].content);
  ASSERT_EQ(messages[1].toolCalls.size(), 1u);
  EXPECT_EQ(messages[1].toolCalls[0].type, "function");
  EXPECT_EQ(messages[1].toolCalls[0].name, "f");
  EXPECT_EQ(messages[1].toolCalls[0].arguments, "{\"x\": 1}");
}

TEST(ChatMessages, ErrorsNameTheMessageAndField) {
  EXPECT_TRUE(contains(parseError("{\"role\": \"user\"}"), "chat.json: messages are an object, expected an array"));
  EXPECT_TRUE(contains(parseError("[{\"role\": \"user\", \"content\": \"a\"}, {\"content\": \"b\"}]"), "chat.json: message 1: field 'role': missing"));
  EXPECT_TRUE(contains(parseError("[{\"role\": \"user\"}]"), "message 0: field 'content': missing"));
  EXPECT_TRUE(contains(parseError("[{\"role\": \"user\", \"content\": 5}]"), "field 'content': is 5, expected a string or null"));
  EXPECT_TRUE(contains(parseError("[{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]"), "field 'content': is an array"));
  EXPECT_TRUE(contains(parseError(R"([{"role": "assistant", "content": null,
      "tool_calls": [{"type": "function", "function": {"name": "f"}}]}])"), "field 'tool_calls[0].function': missing 'arguments'"));
  EXPECT_TRUE(contains(parseError("[{\"role\": \"user\", \"content\": \"a\"}"), "chat.json: not valid JSON"));
}

std::string renderError(const std::vector<ChatMessage> &messages) {
  StatusOr<std::string> text =
      ChatTemplate::deepSeekV3().render(messages, true, "<BOS>");
  EXPECT_FALSE(text.ok());
  return text.ok() ? "" : text.status().message();
}

TEST(DeepSeekV3Template, RecognizesOnlyItsExactText) {
  const std::string text(ChatTemplate::deepSeekV3Text());
  StatusOr<ChatTemplate> recognized = ChatTemplate::recognize(text, "cfg.json");
  ASSERT_TRUE(recognized.ok()) << recognized.status().message();
  EXPECT_STREQ(recognized->name(), "DeepSeek-V3");
  // One character changed, or one appended: refused, naming the byte.
  std::string changed = text;
  changed[1000] = changed[1000] == 'x' ? 'y' : 'x';
  StatusOr<ChatTemplate> refused = ChatTemplate::recognize(changed, "cfg.json");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(contains(refused.status().message(), "cfg.json: not a chat template this renderer "
                        "implements: it departs from DeepSeek-V3's at byte "
                        "1000"));
  EXPECT_FALSE(ChatTemplate::recognize(text + " ", "cfg.json").ok());
  EXPECT_FALSE(ChatTemplate::recognize("", "cfg.json").ok());
}

TEST(DeepSeekV3Template, RendersTurnsInOrder) {
  std::vector<ChatMessage> messages = parse(R"([
    {"role": "user", "content": "a"}, {"role": "system", "content": "S1"},
    {"role": "assistant", "content": "b"}, {"role": "system", "content": "S2"},
    {"role": "user", "content": "c"}])");
  StatusOr<std::string> text =
      ChatTemplate::deepSeekV3().render(messages, true, "<BOS>");
  ASSERT_TRUE(text.ok()) << text.status().message();
  // System contents go first, joined by a blank line, wherever they are.
  EXPECT_EQ(*text, "<BOS>S1\n\nS2<｜User｜>a<｜Assistant｜>b<｜end▁of▁sentence｜>"
                   "<｜User｜>c<｜Assistant｜>");
  StatusOr<std::string> noPrompt =
      ChatTemplate::deepSeekV3().render(messages, false, "");
  ASSERT_TRUE(noPrompt.ok());
  EXPECT_EQ(*noPrompt, "S1\n\nS2<｜User｜>a<｜Assistant｜>b<｜end▁of▁sentence｜>"
                       "<｜User｜>c");
}

TEST(DeepSeekV3Template, RefusesWhatTheJinjaWouldDropOrFailOn) {
  EXPECT_TRUE(contains(renderError(parse(R"([{"role": "developer", "content": "x"}])")), "message 0: role 'developer' is not one the "
                        "DeepSeek-V3 template renders"));
  EXPECT_TRUE(contains(renderError(parse(R"([{"role": "user", "content": null}])")), "message 0 (user): content is null"));
  EXPECT_TRUE(contains(renderError(parse(R"([{"role": "user", "content": "x"},
                                    {"role": "assistant", "content": null}])")), "message 1 (assistant): content is null and there are "
                        "no tool_calls"));
}

} // namespace
