//===- TokenizerFilesTest.cpp - reading tokenizer files, and their errors -===//
//
// A small byte-level tokenizer (TinyTokenizer.h) checks encoding rules one at
// a time; each bad-input test breaks one field and checks that the error names
// the file and that field.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/Tokenizer.h"
#include "test/unit/tokenizer/TinyTokenizer.h"

#include "test/unit/tokenizer/Contains.h"

#include <gtest/gtest.h>

using namespace dsv3;
using dsv3::test::json;
using dsv3::test::TempDir;
using dsv3::test::contains;

namespace {

/// Loads `tokenizer` (and `config`) written into a fresh directory.
StatusOr<Tokenizer> loadTiny(const json &tokenizer,
                             const json &config = test::tinyConfigJson()) {
  TempDir dir("tokenizer");
  test::writeTokenizer(dir, tokenizer, config);
  return Tokenizer::load(dir.path());
}

std::vector<int32_t> encodeOrDie(const Tokenizer &tokenizer,
                                 std::string_view text, bool addBos = false) {
  StatusOr<std::vector<int32_t>> ids = tokenizer.encode(text, addBos);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  return ids.ok() ? *ids : std::vector<int32_t>();
}

std::string loadError(const json &tokenizer,
                      const json &config = test::tinyConfigJson()) {
  StatusOr<Tokenizer> loaded = loadTiny(tokenizer, config);
  EXPECT_FALSE(loaded.ok()) << "expected the files to be refused";
  return loaded.ok() ? "" : loaded.status().message();
}

using Ids = std::vector<int32_t>;

//===----------------------------------------------------------------------===//
// Encoding rules
//===----------------------------------------------------------------------===//

TEST(TinyTokenizer, MergesLowestRankFirst) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  // "hello": l+l (rank 0) and h+e (rank 1) first, then he+ll, then hell+o.
  EXPECT_EQ(encodeOrDie(*tokenizer, "hello"), Ids({259}));
  // " world" is one piece (" ?\p{L}+"): Ġ+w, o+r, Ġw+or, +l, +d.
  EXPECT_EQ(encodeOrDie(*tokenizer, "hello world"), Ids({259, 264}));
  // "hel": only h+e applies.
  EXPECT_EQ(encodeOrDie(*tokenizer, "hel"), Ids({257, 'l'}));
  // Equal ranks: the leftmost pair merges first ("aaa" → "aa" "a").
  EXPECT_EQ(encodeOrDie(*tokenizer, "aaa"), Ids({265, 'a'}));
  EXPECT_EQ(encodeOrDie(*tokenizer, "aaaa"), Ids({265, 265}));
}

TEST(TinyTokenizer, BytesStandForThemselves) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  // Every byte is its own id in this vocabulary; "é" is two bytes.
  EXPECT_EQ(encodeOrDie(*tokenizer, "\xC3\xA9"), Ids({0xC3, 0xA9}));
  EXPECT_EQ(encodeOrDie(*tokenizer, "\t"), Ids({'\t'}));
  EXPECT_EQ(encodeOrDie(*tokenizer, ""), Ids());
}

TEST(TinyTokenizer, PreTokenizerIsolatesDigitGroups) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  // \p{N}{1,3} cuts "12345" into "123" "45"; no merges apply to digits, but
  // the split is visible through the cache-free byte ids staying in order.
  EXPECT_EQ(encodeOrDie(*tokenizer, "12345"), Ids({'1', '2', '3', '4', '5'}));
  // "ll" inside one piece merges; across a split ("l1l") it cannot.
  EXPECT_EQ(encodeOrDie(*tokenizer, "ll"), Ids({256}));
  EXPECT_EQ(encodeOrDie(*tokenizer, "l1l"), Ids({'l', '1', 'l'}));
}

TEST(TinyTokenizer, AddedTokensLongestMatchFirst) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  EXPECT_EQ(encodeOrDie(*tokenizer, "<s>hello</s>"), Ids({300, 259, 301}));
  // "<tool_long>" wins over its prefix "<tool>"; "<tool_lon" is text.
  EXPECT_EQ(encodeOrDie(*tokenizer, "<tool_long><tool>"), Ids({303, 302}));
  // An unfinished token is text: all of it goes to BPE.
  EXPECT_EQ(encodeOrDie(*tokenizer, "<tool_lon"),
            Ids({'<', 't', 'o', 'o', 'l', '_', 'l', 'o', 'n'}));
  EXPECT_EQ(encodeOrDie(*tokenizer, "<tool>_lon"),
            Ids({302, '_', 'l', 'o', 'n'}));
}

TEST(TinyTokenizer, AddBosPutsBosFirst) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  EXPECT_TRUE(tokenizer->addBosToken());
  EXPECT_EQ(tokenizer->bosId(), 300);
  EXPECT_EQ(tokenizer->eosId(), 301);
  EXPECT_EQ(encodeOrDie(*tokenizer, "hello", true), Ids({300, 259}));
}

TEST(TinyTokenizer, LstripAndRstripTrimNeighbours) {
  json files = test::tinyTokenizerJson();
  files["added_tokens"][2]["lstrip"] = true; // <tool>
  files["added_tokens"][2]["rstrip"] = true;
  StatusOr<Tokenizer> tokenizer = loadTiny(files);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  EXPECT_EQ(encodeOrDie(*tokenizer, "hello \t<tool>\n hello"),
            Ids({259, 302, 259}));
  // Without stripping the spaces stay.
  StatusOr<Tokenizer> plain = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(encodeOrDie(*plain, "hello <tool> hello").size(), 5u);
}

TEST(TinyTokenizer, InvalidUtf8IsRefusedWithItsOffset) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok());
  StatusOr<Ids> ids = tokenizer->encode("ab\xC3(", false);
  ASSERT_FALSE(ids.ok());
  EXPECT_TRUE(contains(ids.status().message(), "not valid UTF-8 at byte 2"));
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

TEST(TinyTokenizer, DecodeJoinsBytesAndReplacesBrokenCharacters) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ(*tokenizer->decode({259, 264}), "hello world");
  EXPECT_EQ(*tokenizer->decode({0xC3, 0xA9}), "\xC3\xA9");
  // A lone lead byte becomes U+FFFD; so does a character cut by an added
  // token, which is decoded apart from the bytes around it.
  EXPECT_EQ(*tokenizer->decode({0xC3}), "\xEF\xBF\xBD");
  EXPECT_EQ(*tokenizer->decode({0xC3, 302, 0xA9}),
            "\xEF\xBF\xBD<tool>\xEF\xBF\xBD");
}

TEST(TinyTokenizer, DecodeSkipsOnlySpecialTokens) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ(*tokenizer->decode({300, 259, 302, 301}), "<s>hello<tool></s>");
  DecodeOptions skip;
  skip.skipSpecialTokens = true;
  EXPECT_EQ(*tokenizer->decode({300, 259, 302, 301}, skip), "hello<tool>");
}

TEST(TinyTokenizer, DecodeRefusesUnknownIds) {
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(tokenizer.ok());
  StatusOr<std::string> hole = tokenizer->decode({259, 280});
  ASSERT_FALSE(hole.ok());
  EXPECT_TRUE(contains(hole.status().message(), "id 280 (position 1)"));
  EXPECT_FALSE(tokenizer->decode({-1}).ok());
  EXPECT_FALSE(tokenizer->decode({304}).ok());
  EXPECT_EQ(tokenizer->vocabSize(), 304u);
}

TEST(TinyTokenizer, CleanUpTokenizationSpacesWhenConfigured) {
  json config = test::tinyConfigJson();
  config["clean_up_tokenization_spaces"] = true;
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson(), config);
  ASSERT_TRUE(tokenizer.ok());
  StatusOr<Ids> ids = tokenizer->encode("hello , world . do n't", false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*tokenizer->decode(*ids), "hello, world. don't");
}

//===----------------------------------------------------------------------===//
// Bad files
//===----------------------------------------------------------------------===//

TEST(TokenizerFiles, MissingFile) {
  TempDir dir("tokenizer");
  StatusOr<Tokenizer> tokenizer = Tokenizer::load(dir.path());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_TRUE(contains(tokenizer.status().message(), dir.file("tokenizer.json") + ": cannot read"));
}

TEST(TokenizerFiles, MissingConfigFile) {
  TempDir dir("tokenizer");
  test::writeTokenizer(dir, test::tinyTokenizerJson(), nullptr);
  StatusOr<Tokenizer> tokenizer = Tokenizer::load(dir.path());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_TRUE(contains(tokenizer.status().message(), "tokenizer_config.json: cannot read"));
  // Without a config path it loads, with no BOS.
  StatusOr<Tokenizer> bare = Tokenizer::loadFiles(dir.file("tokenizer.json"), "");
  ASSERT_TRUE(bare.ok()) << bare.status().message();
  EXPECT_FALSE(bare->bosId());
  EXPECT_FALSE(bare->encode("x", true).ok());
}

TEST(TokenizerFiles, MalformedJson) {
  TempDir dir("tokenizer");
  std::ofstream(dir.file("tokenizer.json")) << "{\"model\": {\"vocab\": [1,}";
  std::ofstream(dir.file("tokenizer_config.json")) << "{}";
  StatusOr<Tokenizer> tokenizer = Tokenizer::load(dir.path());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_TRUE(contains(tokenizer.status().message(), "tokenizer.json: not valid JSON"));
  EXPECT_TRUE(contains(tokenizer.status().message(), "at byte 23"));
}

TEST(TokenizerFiles, MalformedConfigJson) {
  TempDir dir("tokenizer");
  test::writeTokenizer(dir, test::tinyTokenizerJson(), nullptr);
  std::ofstream(dir.file("tokenizer_config.json")) << "[1, 2]";
  StatusOr<Tokenizer> tokenizer = Tokenizer::load(dir.path());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_TRUE(contains(tokenizer.status().message(), "tokenizer_config.json: top level is an array"));
}

TEST(TokenizerFiles, MissingMerges) {
  json files = test::tinyTokenizerJson();
  files["model"].erase("merges");
  EXPECT_TRUE(contains(loadError(files), "tokenizer.json: field 'model.merges': missing"));
}

TEST(TokenizerFiles, BadMerge) {
  json files = test::tinyTokenizerJson();
  files["model"]["merges"][3] = "hell";
  EXPECT_TRUE(contains(loadError(files), "field 'model.merges[3]': 'hell' is not two tokens"));
  files["model"]["merges"][3] = "hell zz";
  EXPECT_TRUE(contains(loadError(files), "field 'model.merges[3]': token 'zz' is not in model.vocab"));
  files["model"]["merges"][3] = "o o";
  EXPECT_TRUE(contains(loadError(files), "makes 'oo', which is not in model.vocab"));
}

TEST(TokenizerFiles, UnknownModelType) {
  json files = test::tinyTokenizerJson();
  files["model"]["type"] = "Unigram";
  EXPECT_TRUE(contains(loadError(files), "field 'model.type': unknown model type 'Unigram'"));
}

TEST(TokenizerFiles, VocabularyWithoutEveryByte) {
  json files = test::tinyTokenizerJson();
  files["model"]["vocab"].erase("Ċ"); // the byte 0x0A
  EXPECT_TRUE(contains(loadError(files), "has no token for the byte 0x0A"));
}

TEST(TokenizerFiles, UnknownPreTokenizerType) {
  json files = test::tinyTokenizerJson();
  files["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Metaspace"}};
  EXPECT_TRUE(contains(loadError(files), "field 'pre_tokenizer.pretokenizers[1].type': "
                        "pre-tokenizer type 'Metaspace' is not supported"));
}

TEST(TokenizerFiles, UnsupportedSplitBehavior) {
  json files = test::tinyTokenizerJson();
  files["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithNext";
  EXPECT_TRUE(contains(loadError(files), "'pre_tokenizer.pretokenizers[0].behavior': "
                        "'MergedWithNext' is not supported"));
}

TEST(TokenizerFiles, BadRegexNamesPcre2MessageAndOffset) {
  json files = test::tinyTokenizerJson();
  files["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = "ab(c|\\p{L}";
  std::string message = loadError(files);
  EXPECT_TRUE(contains(message, "tokenizer.json: field "
                                 "'pre_tokenizer.pretokenizers[1].pattern.Regex'"
                                 ": bad regex: missing closing parenthesis"));
  EXPECT_TRUE(contains(message, "(at offset 10)"));
  files["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = "\\p{Nope}";
  EXPECT_TRUE(contains(loadError(files), "unknown property"));
}

TEST(TokenizerFiles, ByteLevelMustComeLast) {
  json files = test::tinyTokenizerJson();
  auto &steps = files["pre_tokenizer"]["pretokenizers"];
  std::swap(steps[1], steps[2]);
  EXPECT_TRUE(contains(loadError(files), "after ByteLevel is not supported"));
  files = test::tinyTokenizerJson();
  files["pre_tokenizer"]["pretokenizers"].erase(2);
  EXPECT_TRUE(contains(loadError(files), "has no ByteLevel step"));
}

TEST(TokenizerFiles, UnsupportedNormalizerAndDecoder) {
  json files = test::tinyTokenizerJson();
  files["normalizer"] = {{"type", "NFKC"}};
  EXPECT_TRUE(contains(loadError(files), "field 'normalizer.type': normalizer "
                                          "type 'NFKC' is not supported"));
  files = test::tinyTokenizerJson();
  files["decoder"] = {{"type", "Metaspace"}};
  EXPECT_TRUE(contains(loadError(files), "field 'decoder.type': decoder type 'Metaspace'"));
  files = test::tinyTokenizerJson();
  files["post_processor"] = {{"type", "TemplateProcessing"}};
  EXPECT_TRUE(contains(loadError(files), "field 'post_processor.type'"));
}

TEST(TokenizerFiles, BadAddedToken) {
  json files = test::tinyTokenizerJson();
  files["added_tokens"][1].erase("content");
  EXPECT_TRUE(contains(loadError(files), "field 'added_tokens[1].content': missing"));
  files = test::tinyTokenizerJson();
  files["added_tokens"][0]["single_word"] = true;
  EXPECT_TRUE(contains(loadError(files), "'added_tokens[0].single_word'"));
}

TEST(TokenizerFiles, ConfigTokenThatIsNoToken) {
  json config = test::tinyConfigJson();
  config["bos_token"] = "<bos>";
  EXPECT_TRUE(contains(loadError(test::tinyTokenizerJson(), config), "tokenizer_config.json: field 'bos_token': '<bos>' is "
                        "not a token of"));
  config = test::tinyConfigJson();
  config["add_bos_token"] = "yes";
  EXPECT_TRUE(contains(loadError(test::tinyTokenizerJson(), config), "field 'add_bos_token': is a string, expected true or "
                        "false"));
}

TEST(TokenizerFiles, UnrecognizedChatTemplateIsRefusedWhenUsed) {
  json config = test::tinyConfigJson();
  config["chat_template"] =
      "{% for message in messages %}{{ message['content'] }}{% endfor %}";
  StatusOr<Tokenizer> tokenizer = loadTiny(test::tinyTokenizerJson(), config);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  StatusOr<std::string> prompt =
      tokenizer->renderChat({{"user", std::string("hi"), {}}}, true);
  ASSERT_FALSE(prompt.ok());
  EXPECT_TRUE(contains(prompt.status().message(), "tokenizer_config.json: field 'chat_template': not a "
                        "chat template this renderer implements"));
  // No template at all.
  StatusOr<Tokenizer> none = loadTiny(test::tinyTokenizerJson());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(contains(none->renderChat({}, true).status().message(), "has no chat_template"));
}

} // namespace
