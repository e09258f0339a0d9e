//===- TextPartsTest.cpp - UTF-8, the byte alphabet and regex rewriting ---===//

#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/Regex.h"
#include "runtime/tokenizer/Utf8.h"

#include <gtest/gtest.h>

#include <set>

using namespace dsv3;
using namespace dsv3::tokenizer;

namespace {

std::string lossy(std::string_view bytes) {
  std::string out;
  appendUtf8Lossy(bytes, out);
  return out;
}

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(Utf8, FindsTheFirstIllFormedByte) {
  EXPECT_EQ(findInvalidUtf8("plain ASCII text, long enough to use words"),
            std::nullopt);
  EXPECT_EQ(findInvalidUtf8("\xE4\xB8\xAD\xF0\x9F\x98\x80"), std::nullopt);
  EXPECT_EQ(findInvalidUtf8("abc\x80"), 3u);           // stray continuation
  EXPECT_EQ(findInvalidUtf8("ab\xC0\xAF"), 2u);        // overlong '/'
  EXPECT_EQ(findInvalidUtf8("\xED\xA0\x80"), 0u);      // surrogate U+D800
  EXPECT_EQ(findInvalidUtf8("x\xF4\x90\x80\x80"), 1u); // above U+10FFFF
  EXPECT_EQ(findInvalidUtf8("0123456789\xE4\xB8"), 10u); // cut short
}

TEST(Utf8, LossyDecodingReplacesMaximalSubparts) {
  // The WHATWG / Unicode "maximal subpart" examples.
  EXPECT_EQ(lossy("a\xC3"), "a" + kReplacement);
  EXPECT_EQ(lossy("\xE4\xB8"), kReplacement);             // one subpart
  EXPECT_EQ(lossy("\xE4\xB8z"), kReplacement + "z");
  EXPECT_EQ(lossy("\x80\x80"), kReplacement + kReplacement);
  EXPECT_EQ(lossy("\xF0\x80\x80"), kReplacement + kReplacement + kReplacement);
  EXPECT_EQ(lossy("\xED\xA0\x80"), kReplacement + kReplacement + kReplacement);
  EXPECT_EQ(lossy("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(lossy("\xF0\x9F\x98"), kReplacement);
}

TEST(Utf8, JavaScriptWhiteSpace) {
  for (char32_t c : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x2000,
                     0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF})
    EXPECT_TRUE(isJavaScriptWhiteSpace(c)) << std::hex << uint32_t(c);
  for (char32_t c : {0x85, 0x180E, 0x200B, 0x1C, 0x61})
    EXPECT_FALSE(isJavaScriptWhiteSpace(c)) << std::hex << uint32_t(c);
  EXPECT_EQ(trimJavaScriptWhiteSpaceEnd("ab \t\xE3\x80\x80\n"), "ab");
  EXPECT_EQ(trimJavaScriptWhiteSpaceStart("\xEF\xBB\xBF x"), "x");
  EXPECT_EQ(trimJavaScriptWhiteSpaceStart("\xC2\x85x"), "\xC2\x85x");
}

TEST(ByteLevel, AlphabetIsABijection) {
  std::set<char32_t> seen;
  for (int byte = 0; byte < 256; ++byte) {
    char32_t c = byteLevelCodePoint(static_cast<uint8_t>(byte));
    EXPECT_TRUE(seen.insert(c).second);
    EXPECT_EQ(byteLevelByte(c), byte);
  }
  EXPECT_EQ(byteLevelCodePoint(' '), 0x120u);  // 'Ġ'
  EXPECT_EQ(byteLevelCodePoint('\n'), 0x10Au); // 'Ċ'
  EXPECT_EQ(byteLevelCodePoint('A'), char32_t('A'));
  EXPECT_EQ(byteLevelByte(0x144), std::nullopt); // past the 68 shifted bytes
  EXPECT_EQ(bytesToByteLevel(" the\n"), "Ġthe\xC4\x8A");
  EXPECT_EQ(byteLevelToBytes("Ġthe\xC4\x8A"), " the\n");
  EXPECT_EQ(byteLevelToBytes("\xEF\xBD\x9C"), std::nullopt); // '｜'
}

std::vector<std::string> matches(const Regex &regex, std::string_view text) {
  RegexScratch scratch;
  std::vector<std::string> out;
  std::size_t from = 0, begin = 0, end = 0;
  while (from <= text.size() &&
         regex.find(text, from, scratch, begin, end) == Regex::Match::Found) {
    out.emplace_back(text.substr(begin, end - begin));
    from = end > begin ? end : end + 1;
  }
  return out;
}

TEST(Regex, WhiteSpaceIsJavaScripts) {
  StatusOr<Regex> spaces = Regex::compile("\\s+");
  ASSERT_TRUE(spaces.ok()) << spaces.status().message();
  // U+FEFF and U+3000 are white space in JavaScript; U+0085 is not.
  EXPECT_EQ(matches(*spaces, "a\xEF\xBB\xBF\xE3\x80\x80" "b\xC2\x85" "c"),
            std::vector<std::string>({"\xEF\xBB\xBF\xE3\x80\x80"}));
  StatusOr<Regex> lookahead = Regex::compile("\\s+(?!\\S)|\\s+");
  ASSERT_TRUE(lookahead.ok());
  EXPECT_EQ(matches(*lookahead, "a   b"), std::vector<std::string>({"  ", " "}));
  StatusOr<Regex> inClass = Regex::compile("[\\s,]+");
  ASSERT_TRUE(inClass.ok());
  EXPECT_EQ(matches(*inClass, "a ,\xC2\xA0" "b"),
            std::vector<std::string>({" ,\xC2\xA0"}));
}

TEST(Regex, UnicodePropertiesAndAsciiShorthands) {
  StatusOr<Regex> letters = Regex::compile("[\\p{L}\\p{M}]+");
  ASSERT_TRUE(letters.ok());
  EXPECT_EQ(matches(*letters, "e\xCC\x81t\xC3\xA9 \xD0\xBC\xD0\xB8\xD1\x80"),
            std::vector<std::string>({"e\xCC\x81t\xC3\xA9", "\xD0\xBC\xD0\xB8\xD1\x80"}));
  // \d stays ASCII, as in JavaScript; \p{N} takes every numeral.
  StatusOr<Regex> ascii = Regex::compile("\\d+");
  StatusOr<Regex> numbers = Regex::compile("\\p{N}+");
  ASSERT_TRUE(ascii.ok() && numbers.ok());
  EXPECT_EQ(matches(*ascii, "12\xEF\xBC\x93"), std::vector<std::string>({"12"}));
  EXPECT_EQ(matches(*numbers, "12\xEF\xBC\x93"),
            std::vector<std::string>({"12\xEF\xBC\x93"}));
}

TEST(Regex, DotAndDollarAreJavaScripts) {
  StatusOr<Regex> dot = Regex::compile(".+");
  ASSERT_TRUE(dot.ok());
  EXPECT_EQ(matches(*dot, "ab\rc\xE2\x80\xA8" "d"),
            std::vector<std::string>({"ab", "c", "d"}));
  StatusOr<Regex> end = Regex::compile("b$");
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(matches(*end, "ab\n").empty()); // PCRE2 alone would match
}

TEST(Regex, RefusedConstructs) {
  EXPECT_FALSE(translateJavaScriptRegex("[\\S]").ok());
  EXPECT_FALSE(translateJavaScriptRegex("[[:alpha:]]").ok());
  StatusOr<std::string> quoted = translateJavaScriptRegex("\\Q\\s.\\E\\s");
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(quoted->substr(0, 7), "\\Q\\s.\\E");
  StatusOr<Regex> bad = Regex::compile("a{2,1}");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("(at offset"), std::string::npos);
}

TEST(Regex, LiteralPatterns) {
  StatusOr<Regex> literal = Regex::compileLiteral("a.b");
  ASSERT_TRUE(literal.ok());
  EXPECT_EQ(matches(*literal, "axb a.b"), std::vector<std::string>({"a.b"}));
}

} // namespace
