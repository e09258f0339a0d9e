//===- Bpe.cpp - byte-level byte-pair encoding ----------------------------===//

#include "runtime/tokenizer/Bpe.h"

#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/Utf8.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>

namespace dsv3::tokenizer {

namespace {

uint64_t mix(uint64_t value) {
  value ^= value >> 33;
  value *= 0xff51afd7ed558ccdull;
  value ^= value >> 33;
  value *= 0xc4ceb9fe1a85ec53ull;
  value ^= value >> 33;
  return value;
}

/// A fast hash of a short byte string, never 0 (0 marks empty cache slots).
uint64_t hashWord(std::string_view word) {
  uint64_t hash = 0x9E3779B97F4A7C15ull ^ word.size();
  std::size_t i = 0;
  for (; i + 8 <= word.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, word.data() + i, 8);
    hash = (hash ^ chunk) * 0xbf58476d1ce4e5b9ull;
    hash ^= hash >> 31;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, word.data() + i, word.size() - i);
  return mix(hash ^ tail) | 1;
}

/// Quotes a token for messages in its tokenizer.json spelling.
std::string spelled(std::string_view bytes) {
  return "'" + bytesToByteLevel(bytes) + "'";
}

constexpr int32_t kDeadSymbol = -1;

} // namespace

//===----------------------------------------------------------------------===//
// BpeWordCache
//===----------------------------------------------------------------------===//

namespace {
constexpr std::size_t kCacheSlots = 1 << 17;        // power of two
constexpr std::size_t kCacheMaxEntries = kCacheSlots / 2;
constexpr std::size_t kCacheMaxKeyBytes = 8u << 20; // 8 MiB of words
} // namespace

BpeWordCache::BpeWordCache() : slots_(kCacheSlots) {}

void BpeWordCache::clear() {
  std::fill(slots_.begin(), slots_.end(), Slot());
  keys_.clear();
  ids_.clear();
  entries_ = 0;
}

const int32_t *BpeWordCache::find(std::string_view word, uint64_t hash,
                                  uint32_t &count) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot &slot = slots_[i];
    if (slot.hash == 0)
      return nullptr;
    if (slot.hash == hash && slot.keyLength == word.size() &&
        std::memcmp(keys_.data() + slot.keyOffset, word.data(), word.size()) ==
            0) {
      count = slot.idsCount;
      return ids_.data() + slot.idsOffset;
    }
  }
}

void BpeWordCache::insert(std::string_view word, uint64_t hash,
                          const int32_t *ids, uint32_t count) {
  if (word.size() > kMaxCachedWordBytes)
    return;
  if (entries_ >= kCacheMaxEntries || keys_.size() + word.size() > kCacheMaxKeyBytes)
    clear();
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].hash != 0)
    i = (i + 1) & mask;
  Slot &slot = slots_[i];
  slot.hash = hash;
  slot.keyOffset = static_cast<uint32_t>(keys_.size());
  slot.keyLength = static_cast<uint32_t>(word.size());
  slot.idsOffset = static_cast<uint32_t>(ids_.size());
  slot.idsCount = count;
  keys_.append(word);
  ids_.insert(ids_.end(), ids, ids + count);
  ++entries_;
}

//===----------------------------------------------------------------------===//
// BpeModel: reading
//===----------------------------------------------------------------------===//

StatusOr<BpeModel> BpeModel::fromJson(
    const json &config, const JsonPlace &place,
    const std::unordered_map<std::string, int32_t> &addedTokens) {
  if (!config.is_object())
    return place.error("is {}, expected the BPE model object",
                       describeJson(config));
  auto typeIt = config.find("type");
  if (typeIt != config.end()) {
    DSV3_ASSIGN_OR_RETURN(std::string type,
                          requireString(*typeIt, place.child("type")));
    if (type != "BPE")
      return place.child("type").error(
          "unknown model type '{}' (supported: BPE)", type);
  }
  auto dropout = config.find("dropout");
  if (dropout != config.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0))
    return place.child("dropout").error("{} is not supported (only null)",
                                        describeJson(*dropout));
  for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto value = config.find(key);
    if (value != config.end() && !value->is_null() &&
        !(value->is_string() && value->get<std::string>().empty()))
      return place.child(key).error("{} is not supported (only null)",
                                    describeJson(*value));
  }
  DSV3_ASSIGN_OR_RETURN(bool byteFallback,
                        optionalBool(config, "byte_fallback", false, place));
  if (byteFallback)
    return place.child("byte_fallback")
        .error("true is not supported (a byte-level BPE needs no fallback)");

  BpeModel model;
  DSV3_ASSIGN_OR_RETURN(model.ignoreMerges_,
                        optionalBool(config, "ignore_merges", false, place));

  // The vocabulary, as raw bytes.
  JsonPlace vocabPlace = place.child("vocab");
  DSV3_ASSIGN_OR_RETURN(const json *vocab,
                        requireMember(config, "vocab", place));
  if (!vocab->is_object())
    return vocabPlace.error("is {}, expected an object mapping tokens to ids",
                            describeJson(*vocab));
  std::unordered_map<std::string, int32_t> idsByBytes;
  idsByBytes.reserve(vocab->size() * 2);
  for (auto &[token, idValue] : vocab->items()) {
    if (!idValue.is_number_integer() || idValue.get<int64_t>() < 0 ||
        idValue.get<int64_t>() >= std::numeric_limits<int32_t>::max())
      return vocabPlace.error("token '{}' has id {}, expected an integer in "
                              "[0, 2^31-1)",
                              token, describeJson(idValue));
    const int32_t id = static_cast<int32_t>(idValue.get<int64_t>());
    if (static_cast<std::size_t>(id) >= model.bytesById_.size())
      model.bytesById_.resize(static_cast<std::size_t>(id) + 1);
    if (findInvalidUtf8(token))
      return vocabPlace.error("token with id {} is not valid UTF-8", id);
    std::optional<std::string> bytes = byteLevelToBytes(token);
    if (!bytes) {
      if (addedTokens.count(token))
        continue; // an added token, spelled as itself
      return vocabPlace.error("token '{}' (id {}) has a character outside "
                              "the byte-level alphabet and is not an added "
                              "token",
                              token, id);
    }
    if (model.bytesById_[id])
      return vocabPlace.error("id {} is given to two tokens, {} and '{}'", id,
                              spelled(*model.bytesById_[id]), token);
    idsByBytes[*bytes] = id;
    model.bytesById_[id] = std::move(bytes);
  }
  // As in the reference, an added token spelled like a vocabulary entry
  // takes its place when BPE produces that spelling.
  for (const auto &[content, id] : addedTokens)
    if (std::optional<std::string> bytes = byteLevelToBytes(content))
      idsByBytes[*bytes] = id;

  for (unsigned byte = 0; byte < 256; ++byte) {
    auto found = idsByBytes.find(std::string(1, static_cast<char>(byte)));
    if (found == idsByBytes.end())
      return vocabPlace.error("has no token for the byte 0x{:02X} ({}); a "
                              "byte-level vocabulary needs all 256",
                              byte, spelled(std::string(1, static_cast<char>(byte))));
    model.byteIds_[byte] = found->second;
  }

  // The merges, as id pairs.
  JsonPlace mergesPlace = place.child("merges");
  DSV3_ASSIGN_OR_RETURN(const json *merges,
                        requireMember(config, "merges", place));
  if (!merges->is_array())
    return mergesPlace.error("is {}, expected an array of merges",
                             describeJson(*merges));
  std::size_t capacity = 16;
  while (capacity < merges->size() * 2)
    capacity *= 2;
  model.merges_.assign(capacity, MergeEntry{kEmptyKey, 0, 0});
  model.mergeMask_ = capacity - 1;
  for (std::size_t rank = 0; rank < merges->size(); ++rank) {
    const json &merge = (*merges)[rank];
    JsonPlace mergePlace = mergesPlace.element(rank);
    std::string left, right;
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos ||
          space == 0 || space + 1 == text.size())
        return mergePlace.error("'{}' is not two tokens separated by one space",
                                text);
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return mergePlace.error("is {}, expected \"LEFT RIGHT\" or [LEFT, RIGHT]",
                              describeJson(merge));
    }
    int32_t ids[2];
    std::string bytes[2];
    const std::string *parts[2] = {&left, &right};
    for (int side = 0; side < 2; ++side) {
      std::optional<std::string> raw = findInvalidUtf8(*parts[side])
                                           ? std::nullopt
                                           : byteLevelToBytes(*parts[side]);
      auto found = raw ? idsByBytes.find(*raw) : idsByBytes.end();
      if (found == idsByBytes.end())
        return mergePlace.error("token '{}' is not in model.vocab",
                                *parts[side]);
      ids[side] = found->second;
      bytes[side] = std::move(*raw);
    }
    auto merged = idsByBytes.find(bytes[0] + bytes[1]);
    if (merged == idsByBytes.end())
      return mergePlace.error("'{}' + '{}' makes '{}{}', which is not in "
                              "model.vocab",
                              left, right, left, right);
    // A pair listed twice keeps its later rank, as in the reference.
    model.insertMerge(ids[0], ids[1], static_cast<int32_t>(rank),
                      merged->second);
  }
  if (model.ignoreMerges_)
    model.idsByBytes_ = std::move(idsByBytes);
  return model;
}

void BpeModel::insertMerge(int32_t left, int32_t right, int32_t rank,
                           int32_t merged) {
  const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  for (uint64_t i = mix(key) & mergeMask_;; i = (i + 1) & mergeMask_) {
    MergeEntry &entry = merges_[i];
    if (entry.key == key) {
      entry.rank = rank;
      entry.merged = merged;
      return;
    }
    if (entry.key == kEmptyKey) {
      entry = {key, rank, merged};
      ++mergeCount_;
      return;
    }
  }
}

const BpeModel::MergeEntry *BpeModel::findMerge(int32_t left,
                                                int32_t right) const {
  const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  for (uint64_t i = mix(key) & mergeMask_;; i = (i + 1) & mergeMask_) {
    const MergeEntry &entry = merges_[i];
    if (entry.key == key)
      return &entry;
    if (entry.key == kEmptyKey)
      return nullptr;
  }
}

const std::string *BpeModel::tokenBytes(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= bytesById_.size() ||
      !bytesById_[id])
    return nullptr;
  return &*bytesById_[id];
}

//===----------------------------------------------------------------------===//
// BpeModel: encoding
//===----------------------------------------------------------------------===//

void BpeModel::mergeSymbols(std::string_view word, BpeScratch &scratch) const {
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<int32_t> &symbols = scratch.symbols;
  std::vector<int32_t> &next = scratch.next;
  std::vector<int32_t> &prev = scratch.prev;
  std::vector<uint64_t> &heap = scratch.heap;
  symbols.resize(n);
  next.resize(n);
  prev.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = byteIds_[static_cast<uint8_t>(word[i])];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Candidates ordered by (rank, position of the left symbol): the lowest
  // rank first, the leftmost among equals.
  auto candidate = [](int32_t rank, int32_t position) {
    return (uint64_t(uint32_t(rank)) << 32) | uint32_t(position);
  };
  for (int32_t i = 0; i + 1 < n; ++i)
    if (const MergeEntry *merge = findMerge(symbols[i], symbols[i + 1]))
      heap.push_back(candidate(merge->rank, i));
  const auto later = std::greater<uint64_t>();
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const uint64_t top = heap.back();
    heap.pop_back();
    const int32_t rank = static_cast<int32_t>(top >> 32);
    const int32_t left = static_cast<int32_t>(top & 0xFFFFFFFFu);
    if (symbols[left] == kDeadSymbol)
      continue;
    const int32_t right = next[left];
    if (right < 0)
      continue;
    // A candidate is stale once either side has changed since it was
    // queued; the pair then has another rank (or none).
    const MergeEntry *merge = findMerge(symbols[left], symbols[right]);
    if (!merge || merge->rank != rank)
      continue;
    symbols[left] = merge->merged;
    symbols[right] = kDeadSymbol;
    next[left] = next[right];
    if (next[left] >= 0)
      prev[next[left]] = left;
    if (prev[left] >= 0)
      if (const MergeEntry *before = findMerge(symbols[prev[left]], symbols[left])) {
        heap.push_back(candidate(before->rank, prev[left]));
        std::push_heap(heap.begin(), heap.end(), later);
      }
    if (next[left] >= 0)
      if (const MergeEntry *after = findMerge(symbols[left], symbols[next[left]])) {
        heap.push_back(candidate(after->rank, left));
        std::push_heap(heap.begin(), heap.end(), later);
      }
  }
}

void BpeModel::encodeWord(std::string_view word, BpeScratch &scratch,
                          std::vector<int32_t> &out) const {
  if (word.size() == 1) {
    out.push_back(byteIds_[static_cast<uint8_t>(word[0])]);
    return;
  }
  if (ignoreMerges_) {
    auto whole = idsByBytes_.find(std::string(word));
    if (whole != idsByBytes_.end()) {
      out.push_back(whole->second);
      return;
    }
  }
  const uint64_t hash = hashWord(word);
  uint32_t count = 0;
  if (const int32_t *cached = scratch.cache.find(word, hash, count)) {
    out.insert(out.end(), cached, cached + count);
    return;
  }
  mergeSymbols(word, scratch);
  const std::size_t first = out.size();
  for (int32_t i = 0; i >= 0; i = scratch.next[i])
    out.push_back(scratch.symbols[i]);
  scratch.cache.insert(word, hash, out.data() + first,
                       static_cast<uint32_t>(out.size() - first));
}

} // namespace dsv3::tokenizer
