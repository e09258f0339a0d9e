//===- Tokenizer.h - Hugging Face byte-level BPE tokenizers -----*- C++ -*-===//
//
// Reads a model's tokenizer.json and tokenizer_config.json and turns text into
// token ids and back, as the reference (transformers.js, which CI compares
// against; docs/tokenizer.md) does for DeepSeek-V3's files:
//
//   encode: added tokens are found in the raw text first (AddedTokens.h);
//           each stretch between them is split by the pre-tokenizer
//           (PreTokenizer.h: PCRE2 regexes) and each piece is BPE-encoded
//           on its bytes (Bpe.h).
//   decode: ids → bytes (added tokens → their text), byte runs → UTF-8 with
//           U+FFFD for broken sequences, special tokens kept or skipped.
//
// What the files may contain is deliberately narrow (byte-level BPE, the
// pre-tokenizers byte-level models use); anything else is an error naming
// the file and the field, never an approximation.
//
// A Tokenizer is immutable once loaded; encode() and decode() may be called
// from several threads at once (each call borrows scratch buffers from a
// small pool, so steady-state encoding allocates only its output).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_TOKENIZER_H
#define DSV3_RUNTIME_TOKENIZER_TOKENIZER_H

#include "runtime/Status.h"
#include "runtime/tokenizer/ChatTemplate.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

struct DecodeOptions {
  /// Leave out special tokens (BOS, EOS, the added tokens marked special).
  bool skipSpecialTokens = false;
};

class Tokenizer {
public:
  /// The file names Hugging Face uses.
  static constexpr const char *kTokenizerFileName = "tokenizer.json";
  static constexpr const char *kConfigFileName = "tokenizer_config.json";

  /// Reads DIRECTORY/tokenizer.json and DIRECTORY/tokenizer_config.json.
  static StatusOr<Tokenizer> load(const std::string &directory);
  /// Reads the two files by path; with `configPath` empty there is no BOS or
  /// EOS token and no chat template.
  static StatusOr<Tokenizer> loadFiles(const std::string &tokenizerPath,
                                       const std::string &configPath);

  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

  /// The ids of `text` (which must be valid UTF-8), after the BOS id when
  /// `addBos` (an error if the tokenizer has no bos_token).
  StatusOr<std::vector<int32_t>> encode(std::string_view text,
                                        bool addBos) const;
  /// The same, appended to `ids`.
  Status encodeInto(std::string_view text, bool addBos,
                    std::vector<int32_t> &ids) const;

  /// The text of `ids`. Fails for an id that is no token.
  StatusOr<std::string> decode(const std::vector<int32_t> &ids,
                               const DecodeOptions &options = {}) const;
  StatusOr<std::string> decode(const int32_t *ids, std::size_t count,
                               const DecodeOptions &options = {}) const;

  /// The bytes token `id` stands for (an added token: its text), or nullptr
  /// when `id` is no token. A run of byte-level tokens may end inside a
  /// UTF-8 character: streaming decoders hold such bytes back.
  const std::string *tokenBytes(int32_t id) const;
  /// Whether `id` is an added token (decoded verbatim, never by bytes).
  bool isAddedToken(int32_t id) const;
  /// Whether decode(..., {skipSpecialTokens = true}) leaves `id` out.
  bool isSpecialToken(int32_t id) const;
  /// The id of the added token whose text is `content` ("<｜User｜>").
  std::optional<int32_t> addedTokenId(std::string_view content) const;
  /// One more than the largest id.
  std::size_t vocabSize() const;

  /// tokenizer_config.json's add_bos_token: whether prompts start with BOS.
  bool addBosToken() const;
  /// The BOS / EOS token and id, if the config names them.
  std::optional<int32_t> bosId() const;
  std::optional<int32_t> eosId() const;
  const std::string &bosToken() const;
  const std::string &eosToken() const;

  /// The prompt text tokenizer_config.json's chat_template makes of
  /// `messages` (ChatTemplate.h). Fails when the config has no template or
  /// one that is not recognized. Encode the result with addBos false: the
  /// template writes BOS itself.
  StatusOr<std::string> renderChat(const std::vector<ChatMessage> &messages,
                                   bool addGenerationPrompt) const;
  /// The recognized template, or the reason there is none.
  StatusOr<const ChatTemplate *> chatTemplate() const;

private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace dsv3

#endif // DSV3_RUNTIME_TOKENIZER_TOKENIZER_H
