//===- Regex.cpp - tokenizer.json regexes on PCRE2 ------------------------===//

#include "runtime/tokenizer/Regex.h"

#include "runtime/tokenizer/Utf8.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace dsv3::tokenizer {

namespace {

std::string pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  int length = pcre2_get_error_message(code, buffer, sizeof buffer);
  if (length < 0)
    return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char *>(buffer),
                     static_cast<std::size_t>(length));
}

template <typename T> T *checkAllocated(T *pointer, const char *what) {
  if (!pointer) {
    std::fprintf(stderr, "dsv3: out of memory creating %s\n", what);
    std::abort();
  }
  return pointer;
}

/// The rewrite of translateJavaScriptRegex, also recording for each output
/// byte the offset of the pattern byte it came from (for error offsets).
StatusOr<std::string> translate(std::string_view pattern,
                                std::vector<std::size_t> &sourceOffsets) {
  const std::string whiteSpace = javaScriptWhiteSpaceClass();
  std::string out;
  sourceOffsets.clear();
  auto emit = [&](std::string_view text, std::size_t source) {
    out += text;
    sourceOffsets.insert(sourceOffsets.end(), text.size(), source);
  };
  bool inClass = false;
  for (std::size_t i = 0; i < pattern.size();) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        emit(inClass ? whiteSpace : "[" + whiteSpace + "]", i);
      } else if (next == 'S') {
        if (inClass)
          return Status::error("\\S inside a character class (at offset {}) "
                               "is not supported",
                               i);
        emit("[^" + whiteSpace + "]", i);
      } else if (next == 'Q') {
        // \Q...\E quotes everything up to \E (or the end) literally.
        std::size_t stop = pattern.find("\\E", i + 2);
        std::size_t end = stop == std::string_view::npos ? pattern.size()
                                                         : stop + 2;
        for (std::size_t k = i; k < end; ++k)
          emit(pattern.substr(k, 1), k);
        i = end;
        continue;
      } else {
        emit(pattern.substr(i, 2), i);
      }
      i += 2;
      continue;
    }
    if (inClass) {
      if (c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':')
        return Status::error("POSIX character class (at offset {}) is not "
                             "supported",
                             i);
      if (c == ']')
        inClass = false;
      emit(pattern.substr(i, 1), i);
    } else if (c == '[') {
      inClass = true;
      emit("[", i);
      // A '^' right after '[' negates; ']' right after that closes the
      // (empty) class, as in JavaScript: leave both to the loop.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') {
        emit("^", i + 1);
        ++i;
      }
    } else if (c == '.') {
      emit("[^\\n\\r\\x{2028}\\x{2029}]", i);
    } else {
      emit(pattern.substr(i, 1), i);
    }
    ++i;
  }
  return out;
}

} // namespace

RegexScratch::RegexScratch() {
  matchData_ = checkAllocated(pcre2_match_data_create(1, nullptr),
                              "PCRE2 match data");
  matchContext_ = checkAllocated(pcre2_match_context_create(nullptr),
                                 "a PCRE2 match context");
  jitStack_ = checkAllocated(pcre2_jit_stack_create(32 * 1024, 1024 * 1024,
                                                    nullptr),
                             "a PCRE2 JIT stack");
  pcre2_jit_stack_assign(matchContext_, nullptr, jitStack_);
}

RegexScratch::~RegexScratch() {
  pcre2_jit_stack_free(jitStack_);
  pcre2_match_context_free(matchContext_);
  pcre2_match_data_free(matchData_);
}

StatusOr<std::string> translateJavaScriptRegex(std::string_view pattern) {
  std::vector<std::size_t> offsets;
  return translate(pattern, offsets);
}

StatusOr<Regex> Regex::compile(std::string_view pattern) {
  std::vector<std::size_t> sourceOffsets;
  DSV3_ASSIGN_OR_RETURN(std::string translated,
                        translate(pattern, sourceOffsets));
  int errorCode = 0;
  PCRE2_SIZE errorOffset = 0;
  pcre2_code *code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
      PCRE2_UTF | PCRE2_ALLOW_EMPTY_CLASS | PCRE2_DOLLAR_ENDONLY, &errorCode,
      &errorOffset, nullptr);
  if (!code) {
    std::size_t offset = errorOffset < sourceOffsets.size()
                             ? sourceOffsets[errorOffset]
                             : pattern.size();
    return Status::error("{} (at offset {})", pcre2Message(errorCode), offset);
  }
  Regex regex;
  regex.code_.reset(code);
  // Without JIT support (some platforms) matching falls back to the
  // interpreter, which gives the same matches.
  regex.jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return regex;
}

StatusOr<Regex> Regex::compileLiteral(std::string_view text) {
  int errorCode = 0;
  PCRE2_SIZE errorOffset = 0;
  pcre2_code *code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()),
                                   text.size(), PCRE2_UTF | PCRE2_LITERAL,
                                   &errorCode, &errorOffset, nullptr);
  if (!code)
    return Status::error("{} (at offset {})", pcre2Message(errorCode),
                         errorOffset);
  Regex regex;
  regex.code_.reset(code);
  regex.jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return regex;
}

Regex::Match Regex::find(std::string_view subject, std::size_t start,
                         RegexScratch &scratch, std::size_t &begin,
                         std::size_t &end) const {
  const auto *bytes = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // The caller checked the subject once (findInvalidUtf8); PCRE2 would
  // otherwise check it again on every call.
  int rc = jit_ ? pcre2_jit_match(code_.get(), bytes, subject.size(), start,
                                  PCRE2_NO_UTF_CHECK, scratch.matchData_,
                                  scratch.matchContext_)
                : pcre2_match(code_.get(), bytes, subject.size(), start,
                              PCRE2_NO_UTF_CHECK, scratch.matchData_,
                              scratch.matchContext_);
  if (rc == PCRE2_ERROR_NOMATCH)
    return Match::NotFound;
  if (rc < 0) {
    scratch.lastError_ = rc;
    return Match::Failed;
  }
  const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(scratch.matchData_);
  begin = ovector[0];
  end = ovector[1];
  return Match::Found;
}

std::string Regex::failureMessage(const RegexScratch &scratch) {
  return pcre2Message(scratch.lastError_);
}

} // namespace dsv3::tokenizer
