//===- Regex.h - tokenizer.json regexes on PCRE2 ----------------*- C++ -*-===//
//
// Hugging Face tokenizer files hold their pre-tokenizer patterns in the
// Oniguruma dialect the Rust library compiles; the reference tokenizer
// (transformers.js) compiles the same text as JavaScript regexes with the `u`
// flag. PCRE2 (8-bit, UTF mode, JIT) reads nearly all of it the same way. The
// differences that matter for tokenizer patterns are bridged by rewriting the
// pattern before compiling, so that matches equal JavaScript's:
//
//   \s, \S   JavaScript's white space set, spelled out (PCRE2 without UCP
//            would take ASCII only; with UCP it would add U+0085 and U+180E
//            and drop U+FEFF)
//   .        any character but \n, \r, U+2028, U+2029
//   $        end of the subject only (PCRE2_DOLLAR_ENDONLY)
//   [] [^]   the empty class and any character (PCRE2_ALLOW_EMPTY_CLASS)
//
// \d, \w and \b stay ASCII, as in JavaScript (PCRE2_UCP is not set); \p{..}
// uses PCRE2's Unicode tables (Unicode 14 in Debian 12's PCRE2 10.42).
// POSIX classes ([:alpha:]) and \S inside a class are refused: JavaScript
// reads them differently and no tokenizer file needs them.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_REGEX_H
#define DSV3_RUNTIME_TOKENIZER_REGEX_H

#include "runtime/Status.h"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

namespace dsv3::tokenizer {

/// The state one thread needs to run matches: PCRE2 match data, a match
/// context and a JIT stack that grows up to 1 MiB for long subjects. Create
/// one per thread and reuse it; Regex objects themselves are shared.
class RegexScratch {
public:
  RegexScratch();
  ~RegexScratch();
  RegexScratch(const RegexScratch &) = delete;
  RegexScratch &operator=(const RegexScratch &) = delete;

private:
  friend class Regex;
  pcre2_match_data *matchData_ = nullptr;
  pcre2_match_context *matchContext_ = nullptr;
  pcre2_jit_stack *jitStack_ = nullptr;
  int lastError_ = 0;
};

/// `pattern` rewritten from JavaScript/Oniguruma syntax to PCRE2 syntax (see
/// the file comment), or an error naming the offset in `pattern` of a
/// construct that is refused.
StatusOr<std::string> translateJavaScriptRegex(std::string_view pattern);

/// A compiled pattern, JIT-compiled where the platform allows.
class Regex {
public:
  /// Compiles `pattern` (JavaScript/Oniguruma syntax). Errors carry PCRE2's
  /// message and the byte offset in `pattern` where compiling stopped.
  static StatusOr<Regex> compile(std::string_view pattern);
  /// A pattern matching `text` literally.
  static StatusOr<Regex> compileLiteral(std::string_view text);

  enum class Match { Found, NotFound, Failed };
  /// Looks for the first match in `subject` (valid UTF-8) that starts at or
  /// after byte `start` (a character boundary). On Found, [begin, end) is the
  /// match; on Failed (a resource limit), failureMessage(scratch) says why.
  Match find(std::string_view subject, std::size_t start, RegexScratch &scratch,
             std::size_t &begin, std::size_t &end) const;
  /// PCRE2's text for why the last find with `scratch` Failed.
  static std::string failureMessage(const RegexScratch &scratch);

private:
  struct CodeDeleter {
    void operator()(pcre2_code *code) const { pcre2_code_free(code); }
  };
  std::unique_ptr<pcre2_code, CodeDeleter> code_;
  bool jit_ = false;
};

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_REGEX_H
