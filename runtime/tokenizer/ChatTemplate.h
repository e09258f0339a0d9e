//===- ChatTemplate.h - DeepSeek-V3's chat format ---------------*- C++ -*-===//
//
// tokenizer_config.json's `chat_template` is a Jinja program that turns a
// list of messages into the model's prompt text. Rather than interpret Jinja,
// ChatTemplate recognizes the templates it implements, by their exact text,
// and renders them in C++; any other template is refused with an error, never
// rendered as something else.
//
// Recognized: DeepSeek-V3's template (as published with the model), which
// renders
//
//   BOS + all system contents joined by "\n\n"
//   then per message, in order:
//     user        <｜User｜>CONTENT
//     assistant   <｜Assistant｜>CONTENT<｜end▁of▁sentence｜>
//                 (after tool outputs: <｜tool▁outputs▁end｜>CONTENT<｜end▁of▁sentence｜>)
//     assistant with content null and tool_calls: the calls in the
//                 template's <｜tool▁calls▁begin｜>... format
//     tool        <｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>CONTENT<｜tool▁output▁end｜>
//                 (later outputs: \n<｜tool▁output▁begin｜>CONTENT<｜tool▁output▁end｜>)
//   <｜tool▁outputs▁end｜> if the last message was a tool output, else
//   <｜Assistant｜> when a generation prompt is asked for.
//
// Where the Jinja would fail or silently drop input (a role the template
// does not know, content that is not a string), render() returns an error.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_CHATTEMPLATE_H
#define DSV3_RUNTIME_TOKENIZER_CHATTEMPLATE_H

#include "runtime/Status.h"
#include "runtime/tokenizer/JsonFields.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

/// One call in an assistant message's "tool_calls" (OpenAI's shape:
/// {"type": "function", "function": {"name": ..., "arguments": "..."}}).
struct ChatToolCall {
  std::string type;
  std::string name;
  /// The arguments as JSON text, rendered verbatim.
  std::string arguments;
};

struct ChatMessage {
  /// "system", "user", "assistant" or "tool".
  std::string role;
  /// The text; nullopt for JSON null (an assistant message of tool calls).
  std::optional<std::string> content;
  std::vector<ChatToolCall> toolCalls;
};

/// Reads messages in the OpenAI / Hugging Face shape: a JSON array of
/// {"role": ..., "content": ..., "tool_calls": [...]} objects. Errors name
/// `source`, the message index and the field.
StatusOr<std::vector<ChatMessage>>
chatMessagesFromJson(const nlohmann::json &array, const std::string &source);
StatusOr<std::vector<ChatMessage>> parseChatMessages(std::string_view jsonText,
                                                     const std::string &source);

class ChatTemplate {
public:
  /// Recognizes `templateText`, the chat_template found at `where` (a file
  /// and field, for the error). Fails for any template it does not
  /// implement character for character, naming the first byte where the
  /// text departs from the closest known template.
  static StatusOr<ChatTemplate> recognize(std::string_view templateText,
                                          const std::string &where);

  /// DeepSeek-V3's template, and its Jinja text as the model publishes it.
  static ChatTemplate deepSeekV3() { return ChatTemplate(); }
  static std::string_view deepSeekV3Text();

  /// The template's name ("DeepSeek-V3").
  const char *name() const;

  /// The prompt text for `messages`, starting with `bosToken` (empty when
  /// the tokenizer has none); `addGenerationPrompt` appends the opening of
  /// the assistant's reply.
  StatusOr<std::string> render(const std::vector<ChatMessage> &messages,
                               bool addGenerationPrompt,
                               std::string_view bosToken) const;

private:
  ChatTemplate() = default;
};

} // namespace dsv3

#endif // DSV3_RUNTIME_TOKENIZER_CHATTEMPLATE_H
