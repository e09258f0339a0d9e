//===- Utf8.cpp - UTF-8 checks and lossy decoding for the tokenizer -------===//

#include "runtime/tokenizer/Utf8.h"

#include <cstdint>

namespace dsv3::tokenizer {

namespace {

bool isContinuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

/// For a lead byte: how many continuation bytes follow and the range the
/// first of them must lie in (which rules out overlong forms, surrogates and
/// values above U+10FFFF). `need` is -1 for a byte that cannot start a
/// character.
struct LeadByte {
  int need;
  unsigned char firstLow, firstHigh;
};

LeadByte classifyLead(unsigned char byte) {
  if (byte < 0x80)
    return {0, 0, 0};
  if (byte >= 0xC2 && byte <= 0xDF)
    return {1, 0x80, 0xBF};
  if (byte == 0xE0)
    return {2, 0xA0, 0xBF};
  if (byte == 0xED)
    return {2, 0x80, 0x9F};
  if (byte >= 0xE1 && byte <= 0xEF)
    return {2, 0x80, 0xBF};
  if (byte == 0xF0)
    return {3, 0x90, 0xBF};
  if (byte >= 0xF1 && byte <= 0xF3)
    return {3, 0x80, 0xBF};
  if (byte == 0xF4)
    return {3, 0x80, 0x8F};
  return {-1, 0, 0};
}

constexpr char kReplacement[] = "\xEF\xBF\xBD"; // U+FFFD

} // namespace

std::optional<std::size_t> findInvalidUtf8(std::string_view text) {
  const auto *bytes = reinterpret_cast<const unsigned char *>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    // ASCII runs dominate most text: skip them eight bytes at a time.
    while (i + 8 <= size) {
      uint64_t word;
      __builtin_memcpy(&word, bytes + i, 8);
      if (word & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= size)
      break;
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    const LeadByte kind = classifyLead(lead);
    if (kind.need < 0 || size - i <= static_cast<std::size_t>(kind.need))
      return i;
    if (bytes[i + 1] < kind.firstLow || bytes[i + 1] > kind.firstHigh)
      return i;
    for (int k = 2; k <= kind.need; ++k)
      if (!isContinuation(bytes[i + k]))
        return i;
    i += 1 + kind.need;
  }
  return std::nullopt;
}

void appendUtf8Lossy(std::string_view text, std::string &out) {
  const auto *bytes = reinterpret_cast<const unsigned char *>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      out.push_back(static_cast<char>(lead));
      ++i;
      continue;
    }
    const LeadByte kind = classifyLead(lead);
    if (kind.need < 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    // Consume continuation bytes while they are acceptable; the first one
    // that is not ends the ill-formed subsequence and is read again as the
    // start of what follows.
    std::size_t end = i + 1;
    int have = 0;
    while (have < kind.need && end < size) {
      const unsigned char byte = bytes[end];
      const bool acceptable = have == 0
                                  ? byte >= kind.firstLow && byte <= kind.firstHigh
                                  : isContinuation(byte);
      if (!acceptable)
        break;
      ++have;
      ++end;
    }
    if (have == kind.need)
      out.append(text.data() + i, end - i);
    else
      out += kReplacement;
    i = end;
  }
}

std::size_t incompleteUtf8Tail(std::string_view text) {
  const auto *bytes = reinterpret_cast<const unsigned char *>(text.data());
  const std::size_t size = text.size();
  for (std::size_t back = 1; back <= 3 && back <= size; ++back) {
    const unsigned char byte = bytes[size - back];
    if (isContinuation(byte))
      continue;
    const LeadByte lead = classifyLead(byte);
    // Complete already (or not a lead byte at all): nothing to wait for.
    if (lead.need < static_cast<int>(back))
      return 0;
    if (back >= 2 && (bytes[size - back + 1] < lead.firstLow ||
                      bytes[size - back + 1] > lead.firstHigh))
      return 0; // can never become valid
    return back;
  }
  return 0;
}

void appendCodePoint(char32_t codePoint, std::string &out) {
  if (codePoint < 0x80) {
    out.push_back(static_cast<char>(codePoint));
  } else if (codePoint < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (codePoint >> 6)));
    out.push_back(static_cast<char>(0x80 | (codePoint & 0x3F)));
  } else if (codePoint < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (codePoint >> 12)));
    out.push_back(static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (codePoint & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (codePoint >> 18)));
    out.push_back(static_cast<char>(0x80 | ((codePoint >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (codePoint & 0x3F)));
  }
}

DecodedCodePoint decodeCodePoint(std::string_view text, std::size_t offset) {
  const auto *bytes =
      reinterpret_cast<const unsigned char *>(text.data()) + offset;
  const unsigned char lead = bytes[0];
  if (lead < 0x80)
    return {lead, 1};
  if (lead < 0xE0)
    return {static_cast<char32_t>(((lead & 0x1F) << 6) | (bytes[1] & 0x3F)), 2};
  if (lead < 0xF0)
    return {static_cast<char32_t>(((lead & 0x0F) << 12) |
                                  ((bytes[1] & 0x3F) << 6) | (bytes[2] & 0x3F)),
            3};
  return {static_cast<char32_t>(((lead & 0x07) << 18) |
                                ((bytes[1] & 0x3F) << 12) |
                                ((bytes[2] & 0x3F) << 6) | (bytes[3] & 0x3F)),
          4};
}

bool isJavaScriptWhiteSpace(char32_t c) {
  switch (c) {
  case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
  case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
  case 0x205F: case 0x3000: case 0xFEFF:
    return true;
  default:
    return c >= 0x2000 && c <= 0x200A;
  }
}

const char *javaScriptWhiteSpaceClass() {
  return "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}"
         "\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";
}

std::string_view trimJavaScriptWhiteSpaceEnd(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && isContinuation(static_cast<unsigned char>(text[start])))
      --start;
    if (!isJavaScriptWhiteSpace(decodeCodePoint(text, start).codePoint))
      break;
    end = start;
  }
  return text.substr(0, end);
}

std::string_view trimJavaScriptWhiteSpaceStart(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    DecodedCodePoint decoded = decodeCodePoint(text, start);
    if (!isJavaScriptWhiteSpace(decoded.codePoint))
      break;
    start += decoded.length;
  }
  return text.substr(start);
}

} // namespace dsv3::tokenizer
