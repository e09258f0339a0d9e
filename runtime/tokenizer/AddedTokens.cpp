//===- AddedTokens.cpp - finding added and special tokens in text ---------===//

#include "runtime/tokenizer/AddedTokens.h"

#include <algorithm>
#include <cstring>

namespace dsv3::tokenizer {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken> &tokens) {
  for (std::size_t index = 0; index < tokens.size(); ++index) {
    const std::string &content = tokens[index].content;
    if (content.empty())
      continue;
    startsToken_[static_cast<uint8_t>(content[0])] = true;
    int32_t node = 0;
    for (char c : content) {
      const uint8_t byte = static_cast<uint8_t>(c);
      int32_t next = child(node, byte);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        auto &children = nodes_[node].children;
        children.insert(std::lower_bound(children.begin(), children.end(),
                                         std::make_pair(byte, int32_t(-1))),
                        {byte, next});
      }
      node = next;
    }
    // A content listed twice keeps its last entry, as in the reference.
    nodes_[node].token = static_cast<int32_t>(index);
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t byte) const {
  const auto &children = nodes_[node].children;
  auto found = std::lower_bound(
      children.begin(), children.end(), byte,
      [](const std::pair<uint8_t, int32_t> &edge, uint8_t b) {
        return edge.first < b;
      });
  return found != children.end() && found->first == byte ? found->second : -1;
}

int32_t AddedTokenMatcher::longestAt(std::string_view text, std::size_t offset,
                                     std::size_t &length) const {
  int32_t node = 0, best = -1;
  for (std::size_t i = offset; i < text.size(); ++i) {
    node = child(node, static_cast<uint8_t>(text[i]));
    if (node < 0)
      break;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      length = i + 1 - offset;
    }
  }
  return best;
}

std::size_t AddedTokenMatcher::nextCandidate(std::string_view text,
                                             std::size_t offset) const {
  const auto *bytes = reinterpret_cast<const uint8_t *>(text.data());
  for (std::size_t i = offset; i < text.size(); ++i)
    if (startsToken_[bytes[i]])
      return i;
  return text.size();
}

int32_t AddedTokenMatcher::exact(std::string_view text) const {
  int32_t node = 0;
  for (char c : text) {
    node = child(node, static_cast<uint8_t>(c));
    if (node < 0)
      return -1;
  }
  return nodes_[node].token;
}

} // namespace dsv3::tokenizer
