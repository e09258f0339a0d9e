//===- TextStream.cpp - generated tokens to text, as they come ------------===//

#include "runtime/generate/TextStream.h"

#include "runtime/tokenizer/Utf8.h"

#include <algorithm>

namespace dsv3::generate {

TextStream::TextStream(const Tokenizer &tokenizer,
                       std::vector<std::string> stopStrings)
    : tokenizer_(tokenizer), stopStrings_(std::move(stopStrings)) {}

bool TextStream::push(int32_t token) {
  if (stopped_)
    return true;
  const std::string *bytes = tokenizer_.tokenBytes(token);
  if (!bytes || tokenizer_.isSpecialToken(token))
    return false;
  if (tokenizer_.isAddedToken(token)) {
    // Written verbatim; it ends a run of bytes (as in Tokenizer::decode).
    std::string piece;
    tokenizer::appendUtf8Lossy(pendingBytes_, piece);
    pendingBytes_.clear();
    piece += *bytes;
    appendText(piece);
    return stopped_;
  }
  pendingBytes_ += *bytes;
  const size_t held = tokenizer::incompleteUtf8Tail(pendingBytes_);
  std::string piece;
  tokenizer::appendUtf8Lossy(
      std::string_view(pendingBytes_).substr(0, pendingBytes_.size() - held),
      piece);
  pendingBytes_.erase(0, pendingBytes_.size() - held);
  appendText(piece);
  return stopped_;
}

void TextStream::appendText(std::string_view piece) {
  if (piece.empty())
    return;
  text_ += piece;
  findStop();
  if (stopped_) {
    ready_ = text_.size();
    return;
  }
  // Hold back the longest tail that could begin a stop string.
  size_t held = 0;
  for (const std::string &stop : stopStrings_)
    for (size_t length = std::min(stop.size() - 1, text_.size() - ready_);
         length > held; --length)
      if (text_.compare(text_.size() - length, length, stop, 0, length) == 0) {
        held = length;
        break;
      }
  ready_ = text_.size() - held;
}

void TextStream::findStop() {
  // A stop string can only start in text not yet known final.
  size_t first = std::string::npos;
  for (const std::string &stop : stopStrings_) {
    const size_t at = text_.find(stop, ready_);
    first = std::min(first, at);
  }
  if (first != std::string::npos) {
    text_.resize(first);
    pendingBytes_.clear();
    stopped_ = true;
  }
}

std::string TextStream::takeReady() {
  std::string piece = text_.substr(taken_, ready_ - taken_);
  taken_ = ready_;
  return piece;
}

std::string TextStream::finish() {
  if (!stopped_ && !pendingBytes_.empty()) {
    std::string piece;
    tokenizer::appendUtf8Lossy(pendingBytes_, piece);
    pendingBytes_.clear();
    text_ += piece;
    findStop();
  }
  ready_ = text_.size();
  return takeReady();
}

} // namespace dsv3::generate
