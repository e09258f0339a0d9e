//===- CommandLine.h - argv as the runtime-side tools read it ------*- C++ -*-===//
//
// dsv3-run and dsv3-bench take the same shape of command line: positional
// words, `--name value` or `--name=value`, flags, and `--help`/`-h`. The
// compiler-side tools use LLVM's cl instead; the runtime-side ones must not
// link LLVM (DESIGN.md section 3), so they share this small reader.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_COMMON_COMMANDLINE_H
#define DSV3_TOOLS_COMMON_COMMANDLINE_H

#include "runtime/Status.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>

namespace dsv3::tools {

/// Walks argv[1..argc): each next() classifies one word; an option's value is
/// read by value(), from `--name=value` or from the word after `--name`.
class CommandLineReader {
public:
  enum class Kind { End, Help, Positional, Option };

  CommandLineReader(int argc, const char *const *argv) : argc_(argc), argv_(argv) {}

  Kind next() {
    if (++index_ >= argc_)
      return Kind::End;
    std::string_view arg = argv_[index_];
    if (arg == "--help" || arg == "-h")
      return Kind::Help;
    word_ = arg;
    if (arg.substr(0, 2) != "--")
      return Kind::Positional;
    name_ = arg;
    inlineValue_ = {};
    hasInlineValue_ = false;
    if (size_t equals = arg.find('='); equals != std::string_view::npos) {
      name_ = arg.substr(0, equals);
      inlineValue_ = arg.substr(equals + 1);
      hasInlineValue_ = true;
    }
    return Kind::Option;
  }

  /// The current word (Positional).
  std::string_view word() const { return word_; }
  /// The current option's name, without any `=value` (Option).
  std::string_view name() const { return name_; }
  /// Whether the option was written `--name=value`.
  bool hasInlineValue() const { return hasInlineValue_; }
  /// The option's value: the `=value` part, else the next word (consumed).
  StatusOr<std::string_view> value() {
    if (hasInlineValue_)
      return inlineValue_;
    if (index_ + 1 >= argc_)
      return Status::error("{} needs a value", name_);
    return std::string_view(argv_[++index_]);
  }

private:
  int argc_;
  const char *const *argv_;
  int index_ = 0;
  std::string_view word_, name_, inlineValue_;
  bool hasInlineValue_ = false;
};

/// `text` as an integer of at least `min`; the error names `option`.
template <typename T>
Status parseInteger(std::string_view option, std::string_view text, T min, T &value) {
  const char *end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end || text.empty() || value < min)
    return Status::error("{}: '{}' is not an integer of at least {}", option, text, min);
  return Status::success();
}

/// `text` as a finite number (strtod syntax); false when it is not one.
inline bool parseFiniteNumber(std::string_view text, double &value) {
  std::string copy(text);
  char *end = nullptr;
  value = std::strtod(copy.c_str(), &end);
  return !copy.empty() && *end == '\0' && std::isfinite(value);
}

} // namespace dsv3::tools

#endif // DSV3_TOOLS_COMMON_COMMANDLINE_H
