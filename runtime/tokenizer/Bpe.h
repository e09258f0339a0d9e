//===- Bpe.h - byte-level byte-pair encoding --------------------*- C++ -*-===//
//
// The "model" of a byte-level BPE tokenizer.json: a vocabulary (token string
// in GPT-2's byte alphabet → id) and a ranked list of merges ("Ġ t" or
// ["Ġ", "t"]). A word (one pre-tokenizer piece, as raw bytes) starts as one
// symbol per byte; the adjacent pair with the lowest merge rank is merged,
// the leftmost first among equal ranks, until no adjacent pair has a merge.
// This is the order of Hugging Face's and transformers.js' priority queues.
//
// Everything is converted to ids when the file is read: a merge is a pair of
// ids mapped to its rank and the id of the merged token, held in an
// open-addressing table. Results are cached per word in the caller's
// BpeScratch, since natural text repeats its words.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_BPE_H
#define DSV3_RUNTIME_TOKENIZER_BPE_H

#include "runtime/Status.h"
#include "runtime/tokenizer/JsonFields.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsv3::tokenizer {

/// Words → ids, remembered for words up to kMaxCachedWordBytes. Emptied
/// whole when full: cheap, and frequent words come back at once.
class BpeWordCache {
public:
  static constexpr std::size_t kMaxCachedWordBytes = 256;

  BpeWordCache();
  /// The ids of `word` (whose hash is `hash`), or nullptr.
  const int32_t *find(std::string_view word, uint64_t hash,
                      uint32_t &count) const;
  void insert(std::string_view word, uint64_t hash, const int32_t *ids,
              uint32_t count);
  std::size_t size() const { return entries_; }

private:
  struct Slot {
    uint64_t hash = 0; ///< 0: empty
    uint32_t keyOffset, keyLength, idsOffset, idsCount;
  };
  void clear();

  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  std::size_t entries_ = 0;
};

/// Buffers for one thread's encodeWord() calls, reused across calls.
struct BpeScratch {
  std::vector<int32_t> symbols, next, prev;
  std::vector<uint64_t> heap;
  BpeWordCache cache;
};

/// The BPE model of a tokenizer.json.
class BpeModel {
public:
  /// Reads the "model" object `config` of `place.file`. `addedTokens` maps
  /// the added tokens' contents to their ids: as in the reference, an added
  /// token spelled like a vocabulary entry takes that entry's place, and
  /// vocabulary entries outside the byte alphabet are accepted only when
  /// they are added tokens.
  static StatusOr<BpeModel>
  fromJson(const json &config, const JsonPlace &place,
           const std::unordered_map<std::string, int32_t> &addedTokens);

  /// Appends the ids of `word` (raw bytes, not empty) to `out`.
  void encodeWord(std::string_view word, BpeScratch &scratch,
                  std::vector<int32_t> &out) const;

  /// The raw bytes of vocabulary entry `id`, or nullptr when `id` is not a
  /// byte-alphabet entry of the vocabulary.
  const std::string *tokenBytes(int32_t id) const;
  /// One more than the largest vocabulary id.
  std::size_t vocabEnd() const { return bytesById_.size(); }
  std::size_t mergeCount() const { return mergeCount_; }

private:
  struct MergeEntry {
    uint64_t key; ///< left id << 32 | right id; kEmptyKey when free
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmptyKey = ~uint64_t(0);

  const MergeEntry *findMerge(int32_t left, int32_t right) const;
  void insertMerge(int32_t left, int32_t right, int32_t rank, int32_t merged);
  void mergeSymbols(std::string_view word, BpeScratch &scratch) const;

  int32_t byteIds_[256];
  std::vector<MergeEntry> merges_;
  uint64_t mergeMask_ = 0;
  std::size_t mergeCount_ = 0;
  std::vector<std::optional<std::string>> bytesById_;
  /// Raw bytes → id, kept only when ignore_merges asks for whole-word
  /// lookups.
  std::unordered_map<std::string, int32_t> idsByBytes_;
  bool ignoreMerges_ = false;
};

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_BPE_H
