//===- Utf8.h - UTF-8 checks and lossy decoding for the tokenizer -*- C++ -*-===//
//
// The tokenizer works on UTF-8 bytes throughout. Input text must be valid
// UTF-8 (checked once per call, so the regex engine can skip its own checks);
// token bytes produced by decoding may cut a character in half, and are turned
// into text the way the WHATWG TextDecoder does (each maximal ill-formed
// subsequence becomes one U+FFFD), which is what the reference tokenizer
// (transformers.js) and Python's `errors="replace"` both produce.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_UTF8_H
#define DSV3_RUNTIME_TOKENIZER_UTF8_H

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dsv3::tokenizer {

/// The byte offset of the first ill-formed UTF-8 sequence in `text` (overlong
/// forms, surrogates and values above U+10FFFF included), or nullopt.
std::optional<std::size_t> findInvalidUtf8(std::string_view text);

/// Appends `bytes` to `out` as UTF-8 text, replacing each maximal ill-formed
/// subsequence with U+FFFD (WHATWG "replacement" error mode).
void appendUtf8Lossy(std::string_view bytes, std::string &out);

/// The length (0 to 3) of the tail of `bytes` that is the start of a valid
/// UTF-8 character still missing bytes: what a streaming decoder holds back
/// until the next token completes (or breaks) it.
std::size_t incompleteUtf8Tail(std::string_view bytes);

/// Appends the UTF-8 encoding of `codePoint` (at most U+10FFFF) to `out`.
void appendCodePoint(char32_t codePoint, std::string &out);

/// The code point starting at `text[offset]` in valid UTF-8, and its length.
struct DecodedCodePoint {
  char32_t codePoint;
  std::size_t length;
};
DecodedCodePoint decodeCodePoint(std::string_view text, std::size_t offset);

/// Whether `codePoint` is white space as JavaScript's `\s` and `trim()` see
/// it (WhiteSpace and LineTerminator of ECMA-262): the set the reference
/// tokenizer uses. It differs from Unicode's White_Space property (Rust,
/// Python): U+FEFF is in, U+0085 is out.
bool isJavaScriptWhiteSpace(char32_t codePoint);

/// The PCRE2 character-class body (without brackets) listing exactly the
/// code points isJavaScriptWhiteSpace() accepts.
const char *javaScriptWhiteSpaceClass();

/// `text` without the JavaScript white space at its end / its start.
std::string_view trimJavaScriptWhiteSpaceEnd(std::string_view text);
std::string_view trimJavaScriptWhiteSpaceStart(std::string_view text);

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_UTF8_H
