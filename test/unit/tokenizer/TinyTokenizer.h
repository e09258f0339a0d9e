// Small tokenizer.json / tokenizer_config.json files for unit tests: a real
// byte-level vocabulary (all 256 bytes, ids 0-255) with a few merges, written
// into a TempDir, and a way to break one field at a time.
#pragma once

#include "runtime/tokenizer/ByteLevel.h"
#include "test/unit/TempDir.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace dsv3::test {

using json = nlohmann::json;

/// The ids of the merged tokens, in merge order, after the 256 bytes.
inline json tinyTokenizerJson() {
  json vocab = json::object();
  for (int byte = 0; byte < 256; ++byte)
    vocab[tokenizer::bytesToByteLevel(std::string(1, char(byte)))] = byte;
  // Merges (rank order): "l l", "h e", "he ll", "hell o", "Ġ w", "o r",
  // "Ġw or", "Ġwor l", "Ġworl d", "a a".
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"l", "l"},       {"h", "e"},      {"he", "ll"}, {"hell", "o"},
      {"Ġ", "w"},       {"o", "r"},      {"Ġw", "or"}, {"Ġwor", "l"},
      {"Ġworl", "d"},   {"a", "a"}};
  json mergeList = json::array();
  int next = 256;
  for (const auto &[left, right] : merges) {
    if (!vocab.contains(left + right))
      vocab[left + right] = next++;
    mergeList.push_back(left + " " + right);
  }
  json added = json::array();
  auto addToken = [&](const std::string &content, int id, bool special) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", special}});
  };
  addToken("<s>", 300, true);
  addToken("</s>", 301, true);
  addToken("<tool>", 302, false);
  addToken("<tool_long>", 303, false);
  json split = {{"type", "Split"},
                {"pattern", {{"Regex", "\\p{N}{1,3}"}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  json words = {{"type", "Split"},
                {"pattern", {{"Regex", " ?\\p{L}+|\\s+(?!\\S)|\\s+|[^\\s\\p{L}]+"}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  json byteLevel = {{"type", "ByteLevel"},
                    {"add_prefix_space", false},
                    {"trim_offsets", true},
                    {"use_regex", false}};
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers", json::array({split, words, byteLevel})}}},
          {"post_processor", byteLevel},
          {"decoder", byteLevel},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", mergeList}}}};
}

inline json tinyConfigJson() {
  return {{"add_bos_token", true},
          {"add_eos_token", false},
          {"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}}},
          {"eos_token", "</s>"},
          {"clean_up_tokenization_spaces", false}};
}

/// Writes `tokenizer` and `config` (skipped when null) into `dir`.
inline void writeTokenizer(const TempDir &dir, const json &tokenizer,
                           const json &config = tinyConfigJson()) {
  std::ofstream(dir.file("tokenizer.json")) << tokenizer.dump();
  if (!config.is_null())
    std::ofstream(dir.file("tokenizer_config.json")) << config.dump();
}

} // namespace dsv3::test
