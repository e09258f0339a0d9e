//===- ReferenceTest.cpp - DeepSeek-V3's tokenizer against transformers.js ===//
//
// Runs when scripts/test.sh has fetched the real tokenizer files and written
// the reference (scripts/tokenizer-reference.sh), naming them in
//   DSV3_TOKENIZER_DIR        tokenizer.json and tokenizer_config.json
//   DSV3_TOKENIZER_REFERENCE  corpus.jsonl, encode.jsonl, decode.jsonl,
//                             chat.json
// and is skipped otherwise. Every corpus line must encode to the reference's
// ids and decode back to itself; the first mismatch is printed with both id
// lists.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/Tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

using namespace dsv3;
using json = nlohmann::json;

namespace {

std::string environment(const char *name) {
  const char *value = std::getenv(name);
  return value ? value : "";
}

std::vector<json> readJsonLines(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << "cannot read " << path;
  std::vector<json> lines;
  std::string line;
  while (std::getline(file, line))
    if (!line.empty())
      lines.push_back(json::parse(line));
  return lines;
}

json readJson(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << "cannot read " << path;
  std::stringstream text;
  text << file.rdbuf();
  return json::parse(text.str());
}

/// "[1, 2, 3]", at most `limit` ids around `center`.
std::string formatIds(const std::vector<int32_t> &ids, std::size_t center,
                      std::size_t limit = 40) {
  std::size_t begin = center > limit / 2 ? center - limit / 2 : 0;
  std::size_t end = std::min(ids.size(), begin + limit);
  std::string out = begin > 0 ? "[... " : "[";
  for (std::size_t i = begin; i < end; ++i)
    out += (i > begin ? ", " : "") + std::to_string(ids[i]);
  return out + (end < ids.size() ? " ...]" : "]") + " (" +
         std::to_string(ids.size()) + " ids)";
}

class DeepSeekV3Reference : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    const std::string dir = environment("DSV3_TOKENIZER_DIR");
    referenceDir() = environment("DSV3_TOKENIZER_REFERENCE");
    if (dir.empty() || referenceDir().empty())
      return;
    StatusOr<Tokenizer> loaded = Tokenizer::load(dir);
    if (!loaded.ok()) {
      loadError() = loaded.status().message();
      return;
    }
    tokenizer() = std::make_unique<Tokenizer>(std::move(loaded).value());
    for (const json &line : readJsonLines(referenceDir() + "/corpus.jsonl"))
      texts().push_back(line.get<std::string>());
    reference() = readJsonLines(referenceDir() + "/encode.jsonl");
  }
  static void TearDownTestSuite() { tokenizer().reset(); }

  void SetUp() override {
    if (referenceDir().empty())
      GTEST_SKIP() << "DSV3_TOKENIZER_DIR and DSV3_TOKENIZER_REFERENCE are "
                      "not set (scripts/test.sh sets them after running "
                      "scripts/tokenizer-reference.sh)";
    ASSERT_TRUE(tokenizer()) << loadError();
    ASSERT_EQ(texts().size(), reference().size())
        << "corpus.jsonl and encode.jsonl differ in length";
  }

  static std::string &referenceDir() {
    static std::string dir;
    return dir;
  }
  static std::string &loadError() {
    static std::string error;
    return error;
  }
  static std::unique_ptr<Tokenizer> &tokenizer() {
    static std::unique_ptr<Tokenizer> instance;
    return instance;
  }
  static std::vector<std::string> &texts() {
    static std::vector<std::string> lines;
    return lines;
  }
  static std::vector<json> &reference() {
    static std::vector<json> lines;
    return lines;
  }
};

TEST_F(DeepSeekV3Reference, CorpusIsLargeAndVaried) {
  std::size_t bytes = 0, newlines = 0, special = 0, nonAscii = 0;
  for (const std::string &text : texts()) {
    bytes += text.size();
    newlines += text.find('\n') != std::string::npos;
    special += text.find("<｜") != std::string::npos;
    nonAscii += std::any_of(text.begin(), text.end(),
                            [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  }
  EXPECT_GE(bytes, 1'000'000u);
  EXPECT_GT(newlines, texts().size() / 10);
  EXPECT_GT(special, texts().size() / 20);
  EXPECT_GT(nonAscii, texts().size() / 3);
}

TEST_F(DeepSeekV3Reference, EncodeEqualsReferenceOnEveryLine) {
  std::size_t mismatches = 0, bytes = 0, tokens = 0;
  for (std::size_t line = 0; line < texts().size(); ++line) {
    const std::string &text = texts()[line];
    const std::vector<int32_t> expected =
        reference()[line]["ids"].get<std::vector<int32_t>>();
    StatusOr<std::vector<int32_t>> ids = tokenizer()->encode(text, false);
    ASSERT_TRUE(ids.ok()) << "corpus line " << line + 1 << ": "
                          << ids.status().message();
    bytes += text.size();
    tokens += ids->size();
    if (*ids == expected)
      continue;
    if (mismatches++ == 0) {
      std::size_t first = 0;
      while (first < ids->size() && first < expected.size() &&
             (*ids)[first] == expected[first])
        ++first;
      ADD_FAILURE() << "corpus line " << line + 1 << " (first mismatch, at id "
                    << first << "): " << json(text).dump() << "\n  ours:      "
                    << formatIds(*ids, first) << "\n  reference: "
                    << formatIds(expected, first);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "lines whose ids differ from the reference";
  std::printf("[ tokenizer ] %zu texts, %zu bytes, %zu tokens: %zu "
              "mismatching lines\n",
              texts().size(), bytes, tokens, mismatches);
}

TEST_F(DeepSeekV3Reference, DecodeGivesTheTextBack) {
  std::size_t failures = 0;
  DecodeOptions skip;
  skip.skipSpecialTokens = true;
  for (std::size_t line = 0; line < texts().size(); ++line) {
    const std::string &text = texts()[line];
    StatusOr<std::vector<int32_t>> ids = tokenizer()->encode(text, false);
    ASSERT_TRUE(ids.ok());
    StatusOr<std::string> decoded = tokenizer()->decode(*ids);
    StatusOr<std::string> skipped = tokenizer()->decode(*ids, skip);
    ASSERT_TRUE(decoded.ok() && skipped.ok());
    const std::string expectedSkip = reference()[line]["skip"].get<std::string>();
    if (*decoded == text && *skipped == expectedSkip)
      continue;
    if (failures++ == 0)
      ADD_FAILURE() << "corpus line " << line + 1 << ": " << json(text).dump()
                    << "\n  decoded:            " << json(*decoded).dump()
                    << "\n  skipping specials:  " << json(*skipped).dump()
                    << "\n  reference skipping: " << json(expectedSkip).dump();
  }
  EXPECT_EQ(failures, 0u);
}

TEST_F(DeepSeekV3Reference, DecodeOfRandomIdsEqualsReference) {
  std::vector<json> sequences = readJsonLines(referenceDir() + "/decode.jsonl");
  ASSERT_GT(sequences.size(), 1000u);
  std::size_t failures = 0;
  DecodeOptions skip;
  skip.skipSpecialTokens = true;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const std::vector<int32_t> ids = sequences[i]["ids"].get<std::vector<int32_t>>();
    StatusOr<std::string> text = tokenizer()->decode(ids);
    StatusOr<std::string> skipped = tokenizer()->decode(ids, skip);
    ASSERT_TRUE(text.ok()) << text.status().message();
    ASSERT_TRUE(skipped.ok());
    if (*text == sequences[i]["text"].get<std::string>() &&
        *skipped == sequences[i]["skip"].get<std::string>())
      continue;
    if (failures++ == 0)
      ADD_FAILURE() << "sequence " << i + 1 << " " << sequences[i]["ids"].dump()
                    << "\n  ours:      " << json(*text).dump() << " / "
                    << json(*skipped).dump() << "\n  reference: "
                    << sequences[i]["text"].dump() << " / "
                    << sequences[i]["skip"].dump();
  }
  EXPECT_EQ(failures, 0u);
}

TEST_F(DeepSeekV3Reference, ChatEqualsApplyChatTemplate) {
  const json conversations =
      readJson(std::string(DSV3_TOKENIZER_TEST_DATA) + "/chat-conversations.json");
  const json rendered = readJson(referenceDir() + "/chat.json");
  ASSERT_EQ(conversations.size(), rendered.size());
  ASSERT_GE(conversations.size(), 10u);
  StatusOr<const ChatTemplate *> chat = tokenizer()->chatTemplate();
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_STREQ((*chat)->name(), "DeepSeek-V3");
  for (std::size_t i = 0; i < conversations.size(); ++i) {
    const std::string name = conversations[i]["name"].get<std::string>();
    StatusOr<std::vector<ChatMessage>> messages =
        chatMessagesFromJson(conversations[i]["messages"], name);
    ASSERT_TRUE(messages.ok()) << messages.status().message();
    StatusOr<std::string> text = tokenizer()->renderChat(
        *messages, conversations[i]["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(text.ok()) << name << ": " << text.status().message();
    EXPECT_EQ(*text, rendered[i]["text"].get<std::string>()) << name;
    StatusOr<std::vector<int32_t>> ids = tokenizer()->encode(*text, false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, rendered[i]["ids"].get<std::vector<int32_t>>()) << name;
  }
}

TEST_F(DeepSeekV3Reference, BosComesFromTheConfig) {
  EXPECT_TRUE(tokenizer()->addBosToken());
  EXPECT_EQ(tokenizer()->bosId(), 0);
  EXPECT_EQ(tokenizer()->eosId(), 1);
  EXPECT_EQ(tokenizer()->bosToken(), "<｜begin▁of▁sentence｜>");
  StatusOr<std::vector<int32_t>> plain = tokenizer()->encode(texts()[0], false);
  StatusOr<std::vector<int32_t>> withBos = tokenizer()->encode(texts()[0], true);
  ASSERT_TRUE(plain.ok() && withBos.ok());
  ASSERT_EQ(withBos->size(), plain->size() + 1);
  EXPECT_EQ(withBos->front(), 0);
  EXPECT_TRUE(std::equal(plain->begin(), plain->end(), withBos->begin() + 1));
  EXPECT_EQ(tokenizer()->addedTokenId("<｜User｜>"), 128803);
  EXPECT_TRUE(tokenizer()->isSpecialToken(1));
  EXPECT_EQ(tokenizer()->vocabSize(), 128815u);
}

TEST_F(DeepSeekV3Reference, ThreadsEncodeConcurrently) {
  // Four threads, each through the corpus from another starting point, all
  // borrowing scratch buffers from the same tokenizer at once.
  const std::size_t count = std::min<std::size_t>(texts().size(), 1200);
  std::vector<std::size_t> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t k = 0; k < count; ++k) {
        std::size_t line = (k + t * count / 4) % count;
        StatusOr<std::vector<int32_t>> ids = tokenizer()->encode(texts()[line], false);
        if (!ids.ok() || *ids != reference()[line]["ids"].get<std::vector<int32_t>>())
          ++mismatches[t];
      }
    });
  for (std::thread &thread : threads)
    thread.join();
  EXPECT_EQ(mismatches, std::vector<std::size_t>(4, 0));
}

} // namespace
