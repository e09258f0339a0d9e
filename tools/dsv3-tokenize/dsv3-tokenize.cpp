//===- dsv3-tokenize.cpp - text to token ids and back, chat prompts -------===//
//
// A thin command line over runtime/tokenizer: encode lines, decode lines of
// ids, render a chat, and measure encoding speed on one core.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;

const char kUsage[] = R"(dsv3-tokenize: text to token ids and back with a Hugging Face tokenizer

USAGE:
  dsv3-tokenize --tokenizer DIR encode [FILE] [--jsonl] [--bos | --no-bos]
  dsv3-tokenize --tokenizer DIR decode [FILE] [--jsonl] [--skip-special-tokens]
  dsv3-tokenize --tokenizer DIR chat FILE [--add-generation-prompt] [--ids]
  dsv3-tokenize --tokenizer DIR --bench FILE [--jsonl] [--seconds S]

DIR holds tokenizer.json and tokenizer_config.json (byte-level BPE, as
DeepSeek-V3 ships them). FILE absent or '-' reads standard input.

encode  Writes one line per input line: its token ids, separated by spaces.
        The input line's '\n' is not part of the text. With --jsonl each
        input line is a JSON string instead, so a text may hold newlines.
        BOS comes first when tokenizer_config.json's add_bos_token is true;
        --bos / --no-bos override that.
decode  Reads one line of ids (separated by spaces or commas) per text and
        writes the text followed by '\n'; with --jsonl, as a JSON string.
        --skip-special-tokens leaves out BOS, EOS and other special tokens.
chat    FILE holds a JSON array of messages {"role", "content"} (roles
        system, user, assistant, tool; assistant tool calls as "tool_calls").
        Writes the prompt text chat_template makes of them, exactly (no
        newline added); --add-generation-prompt appends the assistant's
        opening; --ids writes its token ids instead, on one line. Only
        templates the renderer recognizes (DeepSeek-V3's) are accepted.
--bench Encodes every line of FILE on one thread: once from cold caches,
        then again and again for S seconds (default 3), and prints the
        speed in MB/s (10^6 bytes of UTF-8 input per second) and tokens/s.

Errors are one line on stderr naming the file (and line) at fault; the exit
status is then 1.
)";

int fail(const std::string &message) {
  std::fprintf(stderr, "dsv3-tokenize: error: %s\n", message.c_str());
  return 1;
}

/// Reads FILE, or standard input for "" or "-".
bool readInput(const std::string &path, std::string &contents,
               std::string &error) {
  if (path.empty() || path == "-") {
    std::ostringstream buffer;
    buffer << std::cin.rdbuf();
    contents = buffer.str();
    return true;
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << file.rdbuf();
  contents = buffer.str();
  return true;
}

/// The lines of `contents` without their '\n' (a final '\n' ends the last
/// line rather than starting an empty one).
std::vector<std::string_view> splitLines(const std::string &contents) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < contents.size()) {
    std::size_t end = contents.find('\n', start);
    if (end == std::string::npos)
      end = contents.size();
    lines.push_back(std::string_view(contents).substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

/// The texts of the input: its lines, or with `jsonl` the JSON string on
/// each line.
bool readTexts(const std::string &path, bool jsonl,
               std::vector<std::string> &texts, std::string &error) {
  std::string contents;
  if (!readInput(path, contents, error))
    return false;
  const std::string name = path.empty() || path == "-" ? "<stdin>" : path;
  std::vector<std::string_view> lines = splitLines(contents);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!jsonl) {
      texts.emplace_back(lines[i]);
      continue;
    }
    json value = json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_string()) {
      error = name + ":" + std::to_string(i + 1) +
              ": expected a JSON string on the line (--jsonl)";
      return false;
    }
    texts.push_back(value.get<std::string>());
  }
  return true;
}

std::string joinIds(const std::vector<int32_t> &ids) {
  std::string line;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i)
      line += ' ';
    line += std::to_string(ids[i]);
  }
  return line;
}

int encodeCommand(const dsv3::Tokenizer &tokenizer, const std::string &path,
                  bool jsonl, bool addBos) {
  std::vector<std::string> texts;
  std::string error;
  if (!readTexts(path, jsonl, texts, error))
    return fail(error);
  std::string out;
  std::vector<int32_t> ids;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ids.clear();
    dsv3::Status status = tokenizer.encodeInto(texts[i], addBos, ids);
    if (!status.ok())
      return fail("line " + std::to_string(i + 1) + ": " + status.message());
    out += joinIds(ids);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int decodeCommand(const dsv3::Tokenizer &tokenizer, const std::string &path,
                  bool jsonl, bool skipSpecial) {
  std::string contents, error;
  if (!readInput(path, contents, error))
    return fail(error);
  std::vector<std::string_view> lines = splitLines(contents);
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<int32_t> ids;
    std::string line(lines[i]);
    for (char &c : line)
      if (c == ',')
        c = ' ';
    std::istringstream fields(line);
    std::string field;
    while (fields >> field) {
      char *end = nullptr;
      errno = 0;
      long value = std::strtol(field.c_str(), &end, 10);
      if (*end != '\0' || errno != 0 || value < INT32_MIN || value > INT32_MAX)
        return fail("line " + std::to_string(i + 1) + ": '" + field +
                    "' is not a token id");
      ids.push_back(static_cast<int32_t>(value));
    }
    dsv3::DecodeOptions options;
    options.skipSpecialTokens = skipSpecial;
    dsv3::StatusOr<std::string> text = tokenizer.decode(ids, options);
    if (!text.ok())
      return fail("line " + std::to_string(i + 1) + ": " +
                  text.status().message());
    out += jsonl ? json(*text).dump() : *text;
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int chatCommand(const dsv3::Tokenizer &tokenizer, const std::string &path,
                bool addGenerationPrompt, bool printIds) {
  std::string contents, error;
  if (path.empty())
    return fail("chat needs a FILE of messages (see --help)");
  if (!readInput(path, contents, error))
    return fail(error);
  dsv3::StatusOr<std::vector<dsv3::ChatMessage>> messages =
      dsv3::parseChatMessages(contents, path == "-" ? "<stdin>" : path);
  if (!messages.ok())
    return fail(messages.status().message());
  dsv3::StatusOr<std::string> prompt =
      tokenizer.renderChat(*messages, addGenerationPrompt);
  if (!prompt.ok())
    return fail(prompt.status().message());
  if (!printIds) {
    std::fwrite(prompt->data(), 1, prompt->size(), stdout);
    return 0;
  }
  dsv3::StatusOr<std::vector<int32_t>> ids =
      tokenizer.encode(*prompt, /*addBos=*/false);
  if (!ids.ok())
    return fail(ids.status().message());
  std::printf("%s\n", joinIds(*ids).c_str());
  return 0;
}

int benchCommand(const dsv3::Tokenizer &tokenizer, const std::string &path,
                 bool jsonl, double seconds) {
  std::vector<std::string> texts;
  std::string error;
  if (!readTexts(path, jsonl, texts, error))
    return fail(error);
  std::size_t bytes = 0;
  for (const std::string &text : texts)
    bytes += text.size();
  if (bytes == 0)
    return fail("nothing to encode in " + path);

  using Clock = std::chrono::steady_clock;
  std::vector<int32_t> ids;
  std::size_t tokens = 0;
  auto pass = [&]() -> dsv3::Status {
    tokens = 0;
    for (const std::string &text : texts) {
      ids.clear();
      DSV3_RETURN_IF_ERROR(tokenizer.encodeInto(text, false, ids));
      tokens += ids.size();
    }
    return dsv3::Status::success();
  };
  auto start = Clock::now();
  dsv3::Status status = pass();
  if (!status.ok())
    return fail(status.message());
  const double cold = std::chrono::duration<double>(Clock::now() - start).count();

  int passes = 0;
  start = Clock::now();
  double elapsed = 0;
  do {
    status = pass();
    if (!status.ok())
      return fail(status.message());
    ++passes;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  const double warm = elapsed / passes;

  std::printf("input        %s: %zu texts, %zu bytes, %zu tokens (%.2f bytes "
              "per token)\n",
              path.c_str(), texts.size(), bytes, tokens,
              double(bytes) / double(tokens));
  std::printf("first pass   %.2f MB/s, %.0f tokens/s (empty caches)\n",
              bytes / cold / 1e6, tokens / cold);
  std::printf("later passes %.2f MB/s, %.0f tokens/s (mean of %d pass%s, "
              "one thread)\n",
              bytes / warm / 1e6, tokens / warm, passes,
              passes == 1 ? "" : "es");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::string tokenizerDir, command, file;
  bool jsonl = false, skipSpecial = false, addGenerationPrompt = false,
       printIds = false, bench = false;
  int bosChoice = -1; // -1: add_bos_token of the config
  double seconds = 3.0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char *option) -> const char * {
      if (i + 1 >= argc)
        return nullptr;
      (void)option;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--tokenizer") {
      const char *v = value("--tokenizer");
      if (!v)
        return fail("--tokenizer needs a directory");
      tokenizerDir = v;
    } else if (arg == "--jsonl") {
      jsonl = true;
    } else if (arg == "--bos") {
      bosChoice = 1;
    } else if (arg == "--no-bos") {
      bosChoice = 0;
    } else if (arg == "--skip-special-tokens") {
      skipSpecial = true;
    } else if (arg == "--add-generation-prompt") {
      addGenerationPrompt = true;
    } else if (arg == "--ids") {
      printIds = true;
    } else if (arg == "--bench") {
      bench = true;
    } else if (arg == "--seconds") {
      const char *v = value("--seconds");
      char *end = nullptr;
      seconds = v ? std::strtod(v, &end) : -1;
      if (!v || *end != '\0' || !(seconds >= 0))
        return fail("--seconds needs a number of seconds");
    } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
      return fail("unknown option '" + arg + "' (see --help)");
    } else if (command.empty() && !bench) {
      command = arg;
    } else if (file.empty()) {
      file = arg;
    } else {
      return fail("unexpected argument '" + arg + "' (see --help)");
    }
  }
  if (tokenizerDir.empty())
    return fail("--tokenizer DIR is required (see --help)");
  if (!bench && command != "encode" && command != "decode" && command != "chat")
    return fail(command.empty()
                    ? "expected a command: encode, decode, chat or --bench"
                    : "unknown command '" + command +
                          "': expected encode, decode, chat or --bench");
  if (bench && file.empty())
    return fail("--bench needs a FILE to encode");

  dsv3::StatusOr<dsv3::Tokenizer> tokenizer = dsv3::Tokenizer::load(tokenizerDir);
  if (!tokenizer.ok())
    return fail(tokenizer.status().message());
  if (bench)
    return benchCommand(*tokenizer, file, jsonl, seconds);
  if (command == "encode")
    return encodeCommand(*tokenizer, file, jsonl,
                         bosChoice < 0 ? tokenizer->addBosToken() : bosChoice == 1);
  if (command == "decode")
    return decodeCommand(*tokenizer, file, jsonl, skipSpecial);
  return chatCommand(*tokenizer, file, addGenerationPrompt, printIds);
}
