//===- Tokenizer.cpp - Hugging Face byte-level BPE tokenizers -------------===//

#include "runtime/tokenizer/Tokenizer.h"

#include "runtime/tokenizer/AddedTokens.h"
#include "runtime/tokenizer/Bpe.h"
#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/JsonFields.h"
#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/Utf8.h"

#include <limits>
#include <mutex>
#include <unordered_set>

namespace dsv3 {

using namespace tokenizer;

namespace {

/// One thread's buffers for an encode call.
struct EncodeScratch {
  PreTokenizerScratch preTokenizer;
  BpeScratch bpe;
  std::vector<Span> pieces;
  /// The text between added tokens and the added tokens themselves, in order.
  struct Section {
    std::string_view text;
    /// Index into the added tokens, or -1 for text.
    int32_t added;
  };
  std::vector<Section> sections;
};

/// What decode needs per id.
struct TokenEntry {
  /// Raw bytes (byte-level tokens) or the text (added tokens).
  std::string bytes;
  bool present = false;
  /// Written as its text, separately from byte runs (as the reference's
  /// ByteLevel decoder treats every string equal to an added token's).
  bool verbatim = false;
  bool special = false;
};

/// The text of a token named in tokenizer_config.json: a string, or an
/// AddedToken object {"content": ...}; nullopt for null or absent.
StatusOr<std::optional<std::string>> configToken(const json &config,
                                                 const char *key,
                                                 const JsonPlace &root) {
  auto found = config.find(key);
  if (found == config.end() || found->is_null())
    return std::optional<std::string>();
  JsonPlace place = root.child(key);
  if (found->is_string())
    return std::optional<std::string>(found->get<std::string>());
  if (found->is_object()) {
    DSV3_ASSIGN_OR_RETURN(const json *content,
                          requireMember(*found, "content", place));
    DSV3_ASSIGN_OR_RETURN(std::string text,
                          requireString(*content, place.child("content")));
    return std::optional<std::string>(std::move(text));
  }
  return place.error("is {}, expected a string or an AddedToken object",
                     describeJson(*found));
}

/// Accepts an empty normalizer (null, or Sequences of nothing): the text is
/// not changed before pre-tokenization.
Status checkNormalizer(const json &normalizer, const JsonPlace &place) {
  if (normalizer.is_null())
    return Status::success();
  if (!normalizer.is_object())
    return place.error("is {}, expected a normalizer object or null",
                       describeJson(normalizer));
  DSV3_ASSIGN_OR_RETURN(const json *typeValue,
                        requireMember(normalizer, "type", place));
  DSV3_ASSIGN_OR_RETURN(std::string type,
                        requireString(*typeValue, place.child("type")));
  if (type != "Sequence")
    return place.child("type").error(
        "normalizer type '{}' is not supported (only an empty Sequence or "
        "null)",
        type);
  JsonPlace listPlace = place.child("normalizers");
  DSV3_ASSIGN_OR_RETURN(const json *list,
                        requireMember(normalizer, "normalizers", place));
  if (!list->is_array())
    return listPlace.error("is {}, expected an array", describeJson(*list));
  for (std::size_t i = 0; i < list->size(); ++i)
    DSV3_RETURN_IF_ERROR(checkNormalizer((*list)[i], listPlace.element(i)));
  return Status::success();
}

/// Accepts the components whose only effect is on offsets (ByteLevel), or
/// none: BOS comes from tokenizer_config.json's add_bos_token.
Status checkComponent(const json &component, const JsonPlace &place,
                      const char *what, bool required) {
  if (component.is_null()) {
    if (required)
      return place.error("is null; a byte-level BPE needs a ByteLevel {}",
                         what);
    return Status::success();
  }
  if (!component.is_object())
    return place.error("is {}, expected a {} object", describeJson(component),
                       what);
  DSV3_ASSIGN_OR_RETURN(const json *typeValue,
                        requireMember(component, "type", place));
  DSV3_ASSIGN_OR_RETURN(std::string type,
                        requireString(*typeValue, place.child("type")));
  if (type != "ByteLevel")
    return place.child("type").error("{} type '{}' is not supported (only "
                                     "ByteLevel)",
                                     what, type);
  return Status::success();
}

StatusOr<std::vector<AddedToken>> readAddedTokens(const json &root,
                                                  const JsonPlace &rootPlace) {
  std::vector<AddedToken> tokens;
  auto found = root.find("added_tokens");
  if (found == root.end() || found->is_null())
    return tokens;
  JsonPlace place = rootPlace.child("added_tokens");
  if (!found->is_array())
    return place.error("is {}, expected an array", describeJson(*found));
  for (std::size_t i = 0; i < found->size(); ++i) {
    const json &entry = (*found)[i];
    JsonPlace entryPlace = place.element(i);
    DSV3_ASSIGN_OR_RETURN(const json *idValue,
                          requireMember(entry, "id", entryPlace));
    if (!idValue->is_number_integer() || idValue->get<int64_t>() < 0 ||
        idValue->get<int64_t>() >= std::numeric_limits<int32_t>::max())
      return entryPlace.child("id").error("is {}, expected an id",
                                          describeJson(*idValue));
    DSV3_ASSIGN_OR_RETURN(const json *contentValue,
                          requireMember(entry, "content", entryPlace));
    JsonPlace contentPlace = entryPlace.child("content");
    DSV3_ASSIGN_OR_RETURN(std::string content,
                          requireString(*contentValue, contentPlace));
    if (content.empty())
      return contentPlace.error("is empty");
    if (std::optional<std::size_t> bad = findInvalidUtf8(content))
      return contentPlace.error("is not valid UTF-8 (byte {})", *bad);
    AddedToken token{std::move(content),
                     static_cast<int32_t>(idValue->get<int64_t>()), false,
                     false, false};
    DSV3_ASSIGN_OR_RETURN(token.special,
                          optionalBool(entry, "special", false, entryPlace));
    DSV3_ASSIGN_OR_RETURN(token.lstrip,
                          optionalBool(entry, "lstrip", false, entryPlace));
    DSV3_ASSIGN_OR_RETURN(token.rstrip,
                          optionalBool(entry, "rstrip", false, entryPlace));
    DSV3_ASSIGN_OR_RETURN(bool singleWord, optionalBool(entry, "single_word",
                                                        false, entryPlace));
    if (singleWord)
      return entryPlace.child("single_word")
          .error("true is not supported (the reference ignores it, Hugging "
                 "Face does not)");
    tokens.push_back(std::move(token));
  }
  return tokens;
}

/// Replaces every `from` in `text` with `to`.
void replaceAll(std::string &text, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t start = 0;
  for (std::size_t at; (at = text.find(from, start)) != std::string::npos;
       start = at + from.size())
    out.append(text, start, at - start).append(to);
  if (start == 0)
    return;
  out.append(text, start, std::string::npos);
  text.swap(out);
}

} // namespace

struct Tokenizer::Impl {
  std::string tokenizerPath, configPath;
  BpeModel model;
  PreTokenizer preTokenizer;
  std::vector<AddedToken> addedTokens;
  AddedTokenMatcher addedMatcher;
  std::vector<TokenEntry> tokens;

  std::string bosToken, eosToken;
  std::optional<int32_t> bosId, eosId;
  bool addBos = false;
  bool cleanUpSpaces = true;
  std::optional<ChatTemplate> chatTemplate;
  Status chatTemplateProblem;

  mutable std::mutex scratchMutex;
  mutable std::vector<std::unique_ptr<EncodeScratch>> scratchPool;

  /// Borrows scratch buffers for one call; returns them on destruction.
  class ScratchLease {
  public:
    explicit ScratchLease(const Impl &impl) : impl_(impl) {
      std::lock_guard<std::mutex> lock(impl.scratchMutex);
      if (impl.scratchPool.empty()) {
        scratch_ = std::make_unique<EncodeScratch>();
      } else {
        scratch_ = std::move(impl.scratchPool.back());
        impl.scratchPool.pop_back();
      }
    }
    ~ScratchLease() {
      std::lock_guard<std::mutex> lock(impl_.scratchMutex);
      impl_.scratchPool.push_back(std::move(scratch_));
    }
    EncodeScratch &operator*() { return *scratch_; }

  private:
    const Impl &impl_;
    std::unique_ptr<EncodeScratch> scratch_;
  };

  Status readTokenizerJson(const json &root);
  Status readConfig(const json &config);
  std::optional<int32_t> idOfText(std::string_view text) const;
};

std::optional<int32_t> Tokenizer::Impl::idOfText(std::string_view text) const {
  int32_t added = addedMatcher.exact(text);
  if (added >= 0)
    return addedTokens[added].id;
  // A vocabulary entry, in its tokenizer.json spelling.
  std::optional<std::string> bytes = findInvalidUtf8(text)
                                         ? std::nullopt
                                         : byteLevelToBytes(text);
  if (!bytes)
    return std::nullopt;
  for (std::size_t id = 0; id < tokens.size(); ++id)
    if (tokens[id].present && !tokens[id].verbatim && tokens[id].bytes == *bytes)
      return static_cast<int32_t>(id);
  return std::nullopt;
}

Status Tokenizer::Impl::readTokenizerJson(const json &root) {
  const JsonPlace rootPlace{tokenizerPath, ""};
  DSV3_ASSIGN_OR_RETURN(addedTokens, readAddedTokens(root, rootPlace));
  std::unordered_map<std::string, int32_t> addedIds;
  for (const AddedToken &token : addedTokens)
    addedIds[token.content] = token.id;

  DSV3_ASSIGN_OR_RETURN(const json *model,
                        requireMember(root, "model", rootPlace));
  DSV3_ASSIGN_OR_RETURN(this->model, BpeModel::fromJson(
                                         *model, rootPlace.child("model"),
                                         addedIds));
  const json absent;
  auto component = [&](const char *key) -> const json & {
    auto found = root.find(key);
    return found == root.end() ? absent : *found;
  };
  DSV3_RETURN_IF_ERROR(
      checkNormalizer(component("normalizer"), rootPlace.child("normalizer")));
  DSV3_ASSIGN_OR_RETURN(preTokenizer, PreTokenizer::fromJson(
                                          component("pre_tokenizer"),
                                          rootPlace.child("pre_tokenizer")));
  DSV3_RETURN_IF_ERROR(checkComponent(component("post_processor"),
                                      rootPlace.child("post_processor"),
                                      "post-processor", false));
  DSV3_RETURN_IF_ERROR(checkComponent(component("decoder"),
                                      rootPlace.child("decoder"), "decoder",
                                      true));

  // The id table: vocabulary bytes, then added tokens over them.
  std::size_t size = this->model.vocabEnd();
  for (const AddedToken &token : addedTokens)
    size = std::max(size, static_cast<std::size_t>(token.id) + 1);
  tokens.assign(size, TokenEntry());
  for (std::size_t id = 0; id < this->model.vocabEnd(); ++id)
    if (const std::string *bytes =
            this->model.tokenBytes(static_cast<int32_t>(id))) {
      tokens[id].bytes = *bytes;
      tokens[id].present = true;
      // A vocabulary entry spelled like an added token decodes verbatim.
      tokens[id].verbatim = addedIds.count(bytesToByteLevel(*bytes)) > 0;
    }
  for (const AddedToken &token : addedTokens) {
    TokenEntry &entry = tokens[token.id];
    entry.bytes = token.content;
    entry.present = entry.verbatim = true;
    entry.special = token.special;
  }
  addedMatcher = AddedTokenMatcher(addedTokens);
  return Status::success();
}

Status Tokenizer::Impl::readConfig(const json &config) {
  const JsonPlace root{configPath, ""};
  auto tokenId = [&](const char *key, const std::string &text) -> StatusOr<int32_t> {
    std::optional<int32_t> id = idOfText(text);
    if (!id)
      return root.child(key).error("'{}' is not a token of {}", text,
                                   tokenizerPath);
    return *id;
  };
  DSV3_ASSIGN_OR_RETURN(std::optional<std::string> bos,
                        configToken(config, "bos_token", root));
  if (bos) {
    DSV3_ASSIGN_OR_RETURN(int32_t id, tokenId("bos_token", *bos));
    bosToken = *bos;
    bosId = id;
  }
  DSV3_ASSIGN_OR_RETURN(std::optional<std::string> eos,
                        configToken(config, "eos_token", root));
  if (eos) {
    DSV3_ASSIGN_OR_RETURN(int32_t id, tokenId("eos_token", *eos));
    eosToken = *eos;
    eosId = id;
  }
  DSV3_ASSIGN_OR_RETURN(addBos,
                        optionalBool(config, "add_bos_token", false, root));
  if (addBos && !bosId)
    return root.child("add_bos_token").error("is true but there is no "
                                             "bos_token");
  DSV3_ASSIGN_OR_RETURN(bool addEos,
                        optionalBool(config, "add_eos_token", false, root));
  if (addEos)
    return root.child("add_eos_token").error("true is not supported");
  DSV3_ASSIGN_OR_RETURN(cleanUpSpaces,
                        optionalBool(config, "clean_up_tokenization_spaces",
                                     true, root));

  // The reference replaces the pre-tokenizer of a non-legacy Llama
  // tokenizer with a Metaspace one.
  auto tokenizerClass = config.find("tokenizer_class");
  if (tokenizerClass != config.end() && tokenizerClass->is_string() &&
      tokenizerClass->get<std::string>().rfind("LlamaTokenizer", 0) == 0) {
    DSV3_ASSIGN_OR_RETURN(bool legacy,
                          optionalBool(config, "legacy", true, root));
    if (!legacy)
      return root.child("legacy").error(
          "false is not supported for {} (the reference then switches to a "
          "Metaspace pre-tokenizer)",
          tokenizerClass->get<std::string>());
  }

  // Extra tokens decode(skipSpecialTokens) leaves out.
  auto extra = config.find("additional_special_tokens");
  if (extra != config.end() && !extra->is_null()) {
    JsonPlace place = root.child("additional_special_tokens");
    if (!extra->is_array())
      return place.error("is {}, expected an array", describeJson(*extra));
    for (std::size_t i = 0; i < extra->size(); ++i) {
      const json &item = (*extra)[i];
      std::string text;
      if (item.is_object() && item.contains("content") &&
          item["content"].is_string())
        text = item["content"].get<std::string>();
      else if (item.is_string())
        text = item.get<std::string>();
      else
        return place.element(i).error("is {}, expected a token",
                                      describeJson(item));
      if (std::optional<int32_t> id = idOfText(text))
        tokens[*id].special = true;
    }
  }

  // The chat template: kept as "none" with the reason when absent or not
  // recognized, so that encoding still works.
  auto chat = config.find("chat_template");
  JsonPlace chatPlace = root.child("chat_template");
  const std::string where = configPath + ": field 'chat_template'";
  if (chat == config.end() || chat->is_null()) {
    chatTemplateProblem =
        Status::error("{}: has no chat_template", configPath);
  } else if (chat->is_string()) {
    StatusOr<ChatTemplate> recognized =
        ChatTemplate::recognize(chat->get<std::string>(), where);
    if (recognized.ok())
      chatTemplate = *recognized;
    else
      chatTemplateProblem = recognized.status();
  } else if (chat->is_array()) {
    // [{"name": "default", "template": ...}, ...]: the default one.
    const json *chosen = nullptr;
    for (const json &item : *chat)
      if (item.is_object() && item.value("name", "") == "default" &&
          item.contains("template") && item["template"].is_string())
        chosen = &item["template"];
    if (!chosen) {
      chatTemplateProblem = chatPlace.error("lists no template named "
                                            "'default'");
    } else {
      StatusOr<ChatTemplate> recognized =
          ChatTemplate::recognize(chosen->get<std::string>(), where);
      if (recognized.ok())
        chatTemplate = *recognized;
      else
        chatTemplateProblem = recognized.status();
    }
  } else {
    return chatPlace.error("is {}, expected a string or a list of named "
                           "templates",
                           describeJson(*chat));
  }
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

StatusOr<Tokenizer> Tokenizer::load(const std::string &directory) {
  return loadFiles(directory + "/" + kTokenizerFileName,
                   directory + "/" + kConfigFileName);
}

StatusOr<Tokenizer> Tokenizer::loadFiles(const std::string &tokenizerPath,
                                         const std::string &configPath) {
  auto impl = std::make_unique<Impl>();
  impl->tokenizerPath = tokenizerPath;
  impl->configPath = configPath;
  impl->chatTemplateProblem = Status::error("no tokenizer_config.json given");
  {
    DSV3_ASSIGN_OR_RETURN(json root, readJsonFile(tokenizerPath));
    DSV3_RETURN_IF_ERROR(impl->readTokenizerJson(root));
  }
  if (!configPath.empty()) {
    DSV3_ASSIGN_OR_RETURN(json config, readJsonFile(configPath));
    DSV3_RETURN_IF_ERROR(impl->readConfig(config));
  }
  return Tokenizer(std::move(impl));
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

StatusOr<std::vector<int32_t>> Tokenizer::encode(std::string_view text,
                                                 bool addBos) const {
  std::vector<int32_t> ids;
  DSV3_RETURN_IF_ERROR(encodeInto(text, addBos, ids));
  return ids;
}

Status Tokenizer::encodeInto(std::string_view text, bool addBos,
                             std::vector<int32_t> &ids) const {
  const Impl &impl = *impl_;
  if (text.size() >= std::numeric_limits<uint32_t>::max())
    return Status::error("text of {} bytes is too long to encode at once "
                         "(at most 4 GiB)",
                         text.size());
  if (std::optional<std::size_t> bad = findInvalidUtf8(text))
    return Status::error("text is not valid UTF-8 at byte {}", *bad);
  if (addBos) {
    if (!impl.bosId)
      return Status::error("cannot add BOS: {} names no bos_token",
                           impl.configPath.empty() ? "the tokenizer"
                                                   : impl.configPath);
    ids.push_back(*impl.bosId);
  }

  Impl::ScratchLease lease(impl);
  EncodeScratch &scratch = *lease;

  // Sections: text between added tokens, and the added tokens.
  auto &sections = scratch.sections;
  sections.clear();
  std::size_t sectionStart = 0;
  for (std::size_t at = impl.addedMatcher.nextCandidate(text, 0);
       at < text.size(); at = impl.addedMatcher.nextCandidate(text, at)) {
    std::size_t length = 0;
    const int32_t added = impl.addedMatcher.longestAt(text, at, length);
    if (added < 0) {
      ++at;
      continue;
    }
    if (at > sectionStart)
      sections.push_back({text.substr(sectionStart, at - sectionStart), -1});
    sections.push_back({text.substr(at, length), added});
    at += length;
    sectionStart = at;
  }
  if (sectionStart < text.size())
    sections.push_back({text.substr(sectionStart), -1});

  // lstrip / rstrip take white space off the neighbouring sections.
  for (std::size_t i = 0; i < sections.size(); ++i) {
    if (sections[i].added < 0)
      continue;
    const AddedToken &token = impl.addedTokens[sections[i].added];
    if (token.lstrip && i > 0)
      sections[i - 1].text = trimJavaScriptWhiteSpaceEnd(sections[i - 1].text);
    if (token.rstrip && i + 1 < sections.size())
      sections[i + 1].text = trimJavaScriptWhiteSpaceStart(sections[i + 1].text);
  }

  for (const EncodeScratch::Section &section : sections) {
    if (section.text.empty())
      continue;
    if (section.added >= 0) {
      // Still an added token unless stripping changed its text (possible
      // only for a token that starts or ends with white space).
      int32_t index =
          section.text.size() == impl.addedTokens[section.added].content.size()
              ? section.added
              : impl.addedMatcher.exact(section.text);
      if (index >= 0) {
        ids.push_back(impl.addedTokens[index].id);
        continue;
      }
    }
    scratch.pieces.clear();
    DSV3_RETURN_IF_ERROR(impl.preTokenizer.split(
        section.text, scratch.preTokenizer, scratch.pieces));
    for (Span piece : scratch.pieces)
      impl.model.encodeWord(
          section.text.substr(piece.begin, piece.end - piece.begin),
          scratch.bpe, ids);
  }
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

StatusOr<std::string> Tokenizer::decode(const std::vector<int32_t> &ids,
                                        const DecodeOptions &options) const {
  return decode(ids.data(), ids.size(), options);
}

StatusOr<std::string> Tokenizer::decode(const int32_t *ids, std::size_t count,
                                        const DecodeOptions &options) const {
  const Impl &impl = *impl_;
  std::string text, pendingBytes;
  for (std::size_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || static_cast<std::size_t>(id) >= impl.tokens.size() ||
        !impl.tokens[id].present)
      return Status::error("id {} (position {}) is not a token of {}", id, i,
                           impl.tokenizerPath);
    const TokenEntry &entry = impl.tokens[id];
    if (options.skipSpecialTokens && entry.special)
      continue;
    if (entry.verbatim) {
      appendUtf8Lossy(pendingBytes, text);
      pendingBytes.clear();
      text += entry.bytes;
    } else {
      pendingBytes += entry.bytes;
    }
  }
  appendUtf8Lossy(pendingBytes, text);
  if (impl.cleanUpSpaces) {
    // transformers' clean_up_tokenization, in its order.
    static constexpr std::pair<std::string_view, std::string_view> kCleanUps[] = {
        {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},
        {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},
        {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto &[from, to] : kCleanUps)
      replaceAll(text, from, to);
  }
  return text;
}

//===----------------------------------------------------------------------===//
// Queries
//===----------------------------------------------------------------------===//

const std::string *Tokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->tokens.size() ||
      !impl_->tokens[id].present)
    return nullptr;
  return &impl_->tokens[id].bytes;
}

bool Tokenizer::isAddedToken(int32_t id) const {
  return tokenBytes(id) && impl_->tokens[id].verbatim;
}

bool Tokenizer::isSpecialToken(int32_t id) const {
  return tokenBytes(id) && impl_->tokens[id].special;
}

std::optional<int32_t> Tokenizer::addedTokenId(std::string_view content) const {
  int32_t index = impl_->addedMatcher.exact(content);
  if (index < 0)
    return std::nullopt;
  return impl_->addedTokens[index].id;
}

std::size_t Tokenizer::vocabSize() const { return impl_->tokens.size(); }
bool Tokenizer::addBosToken() const { return impl_->addBos; }
std::optional<int32_t> Tokenizer::bosId() const { return impl_->bosId; }
std::optional<int32_t> Tokenizer::eosId() const { return impl_->eosId; }
const std::string &Tokenizer::bosToken() const { return impl_->bosToken; }
const std::string &Tokenizer::eosToken() const { return impl_->eosToken; }

StatusOr<const ChatTemplate *> Tokenizer::chatTemplate() const {
  if (!impl_->chatTemplate)
    return impl_->chatTemplateProblem;
  return &*impl_->chatTemplate;
}

StatusOr<std::string>
Tokenizer::renderChat(const std::vector<ChatMessage> &messages,
                      bool addGenerationPrompt) const {
  DSV3_ASSIGN_OR_RETURN(const ChatTemplate *chat, chatTemplate());
  return chat->render(messages, addGenerationPrompt, impl_->bosToken);
}

} // namespace dsv3
