//===- TextStream.h - generated tokens to text, as they come ----*- C++ -*-===//
//
// Turns one sequence's generated token ids into text incrementally, for
// streaming to a terminal or a client, and ends it at stop strings:
//   - byte-level tokens may end inside a UTF-8 character: those bytes are
//     held back until the character is complete (or can no longer become
//     valid, then they become U+FFFD as in Tokenizer::decode);
//   - special tokens (BOS, EOS, ...) produce no text;
//   - stop strings are searched in the text, across token boundaries; the
//     text ends just before the first one found, and text that might be the
//     beginning of a stop string is held back until it is known not to be.
// So every piece takeReady() returns is final: concatenated, the pieces are
// the sequence's text.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_GENERATE_TEXTSTREAM_H
#define DSV3_RUNTIME_GENERATE_TEXTSTREAM_H

#include "runtime/tokenizer/Tokenizer.h"

#include <string>
#include <vector>

namespace dsv3::generate {

class TextStream {
public:
  /// `tokenizer` must outlive the stream; stop strings must not be empty.
  TextStream(const Tokenizer &tokenizer, std::vector<std::string> stopStrings);

  /// Adds the next generated token. Returns true when the text now holds a
  /// stop string (from then on tokens are ignored). Ids that are no token
  /// add nothing.
  bool push(int32_t token);
  /// The final text not yet taken.
  std::string takeReady();
  /// Ends the sequence: bytes still held back become text (an incomplete
  /// character as U+FFFD), and all text not yet taken is returned.
  std::string finish();

  bool stopped() const { return stopped_; }
  /// All text so far, held-back parts included (after a stop: the text
  /// before it).
  const std::string &text() const { return text_; }

private:
  void appendText(std::string_view piece);
  void findStop();

  const Tokenizer &tokenizer_;
  std::vector<std::string> stopStrings_;
  std::string pendingBytes_; ///< an incomplete UTF-8 character
  std::string text_;
  size_t taken_ = 0; ///< bytes of text_ already returned
  size_t ready_ = 0; ///< bytes of text_ known final
  bool stopped_ = false;
};

} // namespace dsv3::generate

#endif // DSV3_RUNTIME_GENERATE_TEXTSTREAM_H
