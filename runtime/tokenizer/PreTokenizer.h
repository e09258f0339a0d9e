//===- PreTokenizer.h - splitting text into words before BPE ----*- C++ -*-===//
//
// The pre-tokenizer of tokenizer.json cuts each stretch of text between added
// tokens into pieces ("words"); BPE then runs on each piece alone. Supported,
// as byte-level BPE tokenizers use them:
//
//   Sequence   its steps in order, each applied to every piece so far
//   Split      a Regex or String pattern with behavior "Isolated" and
//              invert false: matches and the text between them both become
//              pieces (empty ones dropped)
//   ByteLevel  the last step, add_prefix_space false; with use_regex true it
//              first splits with GPT-2's pattern. Its byte-to-character
//              mapping is implicit: pieces stay raw bytes (ByteLevel.h).
//
// Anything else is refused with an error naming the field, rather than
// tokenizing differently from the reference.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_PRETOKENIZER_H
#define DSV3_RUNTIME_TOKENIZER_PRETOKENIZER_H

#include "runtime/Status.h"
#include "runtime/tokenizer/JsonFields.h"
#include "runtime/tokenizer/Regex.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace dsv3::tokenizer {

/// A piece of text: bytes [begin, end) of the text being split.
struct Span {
  uint32_t begin, end;
};

/// Buffers for one thread's split() calls, reused across calls.
struct PreTokenizerScratch {
  RegexScratch regex;
  std::vector<Span> current, next;
};

class PreTokenizer {
public:
  /// Reads the "pre_tokenizer" value `config` of `place.file`.
  static StatusOr<PreTokenizer> fromJson(const json &config,
                                         const JsonPlace &place);

  /// Appends the pieces of `text` (valid UTF-8, under 4 GiB) to `pieces`, in
  /// order, as spans of `text`.
  Status split(std::string_view text, PreTokenizerScratch &scratch,
               std::vector<Span> &pieces) const;

  /// How many Split patterns run (for tests and messages).
  std::size_t patternCount() const { return patterns_.size(); }

private:
  static Status addStep(PreTokenizer &result, const json &step,
                        const JsonPlace &place, bool &sawByteLevel);

  /// Applied in order, each isolating its matches.
  std::vector<Regex> patterns_;
};

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_PRETOKENIZER_H
