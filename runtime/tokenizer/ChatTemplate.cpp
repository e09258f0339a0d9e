//===- ChatTemplate.cpp - DeepSeek-V3's chat format -----------------------===//

#include "runtime/tokenizer/ChatTemplate.h"

#include "runtime/Safetensors.h"

#include <algorithm>

namespace dsv3 {

using tokenizer::describeJson;
using tokenizer::json;

namespace {

/// DeepSeek-V3's chat_template, character for character as its
/// tokenizer_config.json holds it (the Jinja renderDeepSeekV3 implements).
constexpr std::string_view kDeepSeekV3Template =
R"jinja({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '

' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '
' + '```json' + '
' + tool['function']['arguments'] + '
' + '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'
' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '
' + '```json' + '
' + tool['function']['arguments'] + '
' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'
<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %})jinja";

constexpr std::string_view kUser = "<｜User｜>";
constexpr std::string_view kAssistant = "<｜Assistant｜>";
constexpr std::string_view kEndOfSentence = "<｜end▁of▁sentence｜>";
constexpr std::string_view kToolCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kToolCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kToolCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kToolCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kToolSep = "<｜tool▁sep｜>";
constexpr std::string_view kToolOutputsBegin = "<｜tool▁outputs▁begin｜>";
constexpr std::string_view kToolOutputsEnd = "<｜tool▁outputs▁end｜>";
constexpr std::string_view kToolOutputBegin = "<｜tool▁output▁begin｜>";
constexpr std::string_view kToolOutputEnd = "<｜tool▁output▁end｜>";

std::string &operator<<(std::string &out, std::string_view text) {
  return out.append(text.data(), text.size());
}

/// One tool call as the template writes it, after its opening tokens.
void appendToolCall(std::string &out, const ChatToolCall &call) {
  out << call.type << kToolSep << call.name << "\n```json\n" << call.arguments
      << "\n```" << kToolCallEnd;
}

/// The template's Jinja, statement for statement: `ns.is_first` is never
/// reset, so only the very first tool call of the conversation opens with
/// <｜Assistant｜><｜tool▁calls▁begin｜>, and <｜tool▁calls▁end｜> follows
/// every later call (not the first).
std::string renderDeepSeekV3(const std::vector<ChatMessage> &messages,
                             bool addGenerationPrompt,
                             std::string_view bosToken) {
  std::string systemPrompt;
  bool firstSystem = true;
  for (const ChatMessage &message : messages) {
    if (message.role != "system")
      continue;
    if (!firstSystem)
      systemPrompt << "\n\n";
    systemPrompt << *message.content;
    firstSystem = false;
  }
  std::string out;
  out << bosToken << systemPrompt;
  bool isFirst = false, isTool = false, isOutputFirst = true;
  for (const ChatMessage &message : messages) {
    if (message.role == "user") {
      isTool = false;
      out << kUser << *message.content;
    } else if (message.role == "assistant" && !message.content) {
      isTool = false;
      for (const ChatToolCall &call : message.toolCalls) {
        if (!isFirst) {
          out << kAssistant << kToolCallsBegin << kToolCallBegin;
          appendToolCall(out, call);
          isFirst = true;
        } else {
          out << "\n" << kToolCallBegin;
          appendToolCall(out, call);
          out << kToolCallsEnd << kEndOfSentence;
        }
      }
    } else if (message.role == "assistant") {
      out << (isTool ? kToolOutputsEnd : kAssistant) << *message.content
          << kEndOfSentence;
      isTool = false;
    } else if (message.role == "tool") {
      isTool = true;
      if (isOutputFirst) {
        out << kToolOutputsBegin << kToolOutputBegin << *message.content
            << kToolOutputEnd;
        isOutputFirst = false;
      } else {
        out << "\n" << kToolOutputBegin << *message.content << kToolOutputEnd;
      }
    }
  }
  if (isTool)
    out << kToolOutputsEnd;
  if (addGenerationPrompt && !isTool)
    out << kAssistant;
  return out;
}

/// The messages renderDeepSeekV3 can render as the Jinja would: an error
/// where the Jinja would fail, or drop or coerce input.
Status checkDeepSeekV3Messages(const std::vector<ChatMessage> &messages) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage &message = messages[i];
    const std::string &role = message.role;
    if (role != "system" && role != "user" && role != "assistant" &&
        role != "tool")
      return Status::error("message {}: role '{}' is not one the DeepSeek-V3 "
                           "template renders (system, user, assistant, tool)",
                           i, role);
    if (!message.content && role != "assistant")
      return Status::error("message {} ({}): content is null; only an "
                           "assistant message of tool calls may have no "
                           "content",
                           i, role);
    if (!message.content && message.toolCalls.empty())
      return Status::error("message {} (assistant): content is null and "
                           "there are no tool_calls",
                           i);
  }
  return Status::success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Messages
//===----------------------------------------------------------------------===//

StatusOr<std::vector<ChatMessage>>
chatMessagesFromJson(const json &array, const std::string &source) {
  if (!array.is_array())
    return Status::error("{}: messages are {}, expected an array of "
                         "{{\"role\", \"content\"}} objects",
                         source, describeJson(array));
  std::vector<ChatMessage> messages;
  for (std::size_t i = 0; i < array.size(); ++i) {
    const json &object = array[i];
    auto fail = [&](const std::string &field, const std::string &problem) {
      return Status::error("{}: message {}: {}{}", source, i,
                           field.empty() ? "" : "field '" + field + "': ",
                           problem);
    };
    if (!object.is_object())
      return fail("", "is " + describeJson(object) + ", expected an object");
    ChatMessage message;
    auto role = object.find("role");
    if (role == object.end())
      return fail("role", "missing");
    if (!role->is_string())
      return fail("role", "is " + describeJson(*role) + ", expected a string");
    message.role = role->get<std::string>();
    auto content = object.find("content");
    if (content == object.end())
      return fail("content", "missing (use null for an assistant message of "
                             "tool calls)");
    if (content->is_string())
      message.content = content->get<std::string>();
    else if (!content->is_null())
      return fail("content", "is " + describeJson(*content) +
                                 ", expected a string or null");
    auto calls = object.find("tool_calls");
    if (calls != object.end() && !calls->is_null()) {
      if (!calls->is_array())
        return fail("tool_calls",
                    "is " + describeJson(*calls) + ", expected an array");
      for (std::size_t k = 0; k < calls->size(); ++k) {
        const json &call = (*calls)[k];
        const std::string field = "tool_calls[" + std::to_string(k) + "]";
        auto text = [&](const json &parent, const char *key,
                        const std::string &path,
                        std::string &value) -> Status {
          auto found = parent.is_object() ? parent.find(key) : parent.end();
          if (!parent.is_object() || found == parent.end())
            return fail(path, std::string("missing '") + key + "'");
          if (!found->is_string())
            return fail(path + "." + key, "is " + describeJson(*found) +
                                              ", expected a string");
          value = found->get<std::string>();
          return Status::success();
        };
        ChatToolCall toolCall;
        DSV3_RETURN_IF_ERROR(text(call, "type", field, toolCall.type));
        auto function = call.find("function");
        if (function == call.end())
          return fail(field, "missing 'function'");
        DSV3_RETURN_IF_ERROR(
            text(*function, "name", field + ".function", toolCall.name));
        DSV3_RETURN_IF_ERROR(text(*function, "arguments", field + ".function",
                                  toolCall.arguments));
        message.toolCalls.push_back(std::move(toolCall));
      }
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

StatusOr<std::vector<ChatMessage>> parseChatMessages(std::string_view jsonText,
                                                     const std::string &source) {
  json value = json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    std::optional<JsonSyntaxError> syntax = findJsonSyntaxError(jsonText);
    return Status::error("{}: not valid JSON: {} (at byte {})", source,
                         syntax ? syntax->reason : "syntax error",
                         syntax ? syntax->offset : 0);
  }
  return chatMessagesFromJson(value, source);
}

//===----------------------------------------------------------------------===//
// ChatTemplate
//===----------------------------------------------------------------------===//

StatusOr<ChatTemplate> ChatTemplate::recognize(std::string_view templateText,
                                               const std::string &where) {
  if (templateText == kDeepSeekV3Template)
    return ChatTemplate();
  const std::size_t common =
      std::mismatch(templateText.begin(),
                    templateText.begin() +
                        std::min(templateText.size(), kDeepSeekV3Template.size()),
                    kDeepSeekV3Template.begin())
          .first -
      templateText.begin();
  return Status::error("{}: not a chat template this renderer implements: it "
                       "departs from DeepSeek-V3's at byte {} of {}; a Jinja "
                       "interpreter would be needed to render it",
                       where, common, templateText.size());
}

std::string_view ChatTemplate::deepSeekV3Text() { return kDeepSeekV3Template; }

const char *ChatTemplate::name() const { return "DeepSeek-V3"; }

StatusOr<std::string> ChatTemplate::render(const std::vector<ChatMessage> &messages,
                                           bool addGenerationPrompt,
                                           std::string_view bosToken) const {
  DSV3_RETURN_IF_ERROR(checkDeepSeekV3Messages(messages));
  return renderDeepSeekV3(messages, addGenerationPrompt, bosToken);
}

} // namespace dsv3
