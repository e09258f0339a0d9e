//===- AddedTokens.h - finding added and special tokens in text -*- C++ -*-===//
//
// Added tokens ("<｜begin▁of▁sentence｜>", "<｜User｜>", ...) are matched in
// the raw text before normalization and pre-tokenization, so that their text
// never reaches BPE. Matching follows the reference: scanning left to right,
// at each position the longest added token starting there wins; text between
// matches is left for the pre-tokenizer.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_ADDEDTOKENS_H
#define DSV3_RUNTIME_TOKENIZER_ADDEDTOKENS_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  /// Strip JavaScript white space from the text before / after the token.
  bool lstrip, rstrip;
};

/// A byte trie over the added tokens' contents.
class AddedTokenMatcher {
public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken> &tokens);

  /// The index (into the constructor's vector) of the longest token that
  /// starts at `text[offset]`, or -1; `length` receives its byte length.
  int32_t longestAt(std::string_view text, std::size_t offset,
                    std::size_t &length) const;
  /// The first offset at or after `offset` where some token may start (its
  /// first byte matches), or text.size().
  std::size_t nextCandidate(std::string_view text, std::size_t offset) const;
  /// The index of the token whose content is exactly `text`, or -1.
  int32_t exact(std::string_view text) const;
  bool empty() const { return nodes_.size() <= 1; }

private:
  struct Node {
    /// (byte, child node) pairs, sorted by byte.
    std::vector<std::pair<uint8_t, int32_t>> children;
    int32_t token = -1;
  };
  int32_t child(int32_t node, uint8_t byte) const;

  std::vector<Node> nodes_{Node()};
  bool startsToken_[256] = {};
};

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_ADDEDTOKENS_H
