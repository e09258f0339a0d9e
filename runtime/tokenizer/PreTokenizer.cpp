//===- PreTokenizer.cpp - splitting text into words before BPE ------------===//

#include "runtime/tokenizer/PreTokenizer.h"

#include "runtime/tokenizer/Utf8.h"

namespace dsv3::tokenizer {

namespace {

/// GPT-2's pattern, which ByteLevel with use_regex true applies (the text
/// of Hugging Face's and transformers.js' ByteLevel pre-tokenizer).
constexpr const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

/// Splits piece `span` of `text` at the matches of `pattern`, appending the
/// matches and the text between them (both non-empty) to `out`. Empty
/// matches move the search on by one character, as JavaScript's matchAll
/// with the `u` flag does.
Status splitPiece(std::string_view text, Span span, const Regex &pattern,
                  RegexScratch &scratch, std::vector<Span> &out) {
  const std::string_view subject = text.substr(span.begin, span.end - span.begin);
  const auto at = [&](std::size_t offset) {
    return static_cast<uint32_t>(span.begin + offset);
  };
  std::size_t searchFrom = 0, pieceStart = 0;
  while (searchFrom <= subject.size()) {
    std::size_t begin = 0, end = 0;
    Regex::Match found = pattern.find(subject, searchFrom, scratch, begin, end);
    if (found == Regex::Match::NotFound)
      break;
    if (found == Regex::Match::Failed)
      return Status::error("pre-tokenizer pattern failed on a piece of {} "
                           "bytes: {}",
                           subject.size(), Regex::failureMessage(scratch));
    if (begin > pieceStart)
      out.push_back({at(pieceStart), at(begin)});
    if (end > begin)
      out.push_back({at(begin), at(end)});
    pieceStart = end;
    if (end > begin)
      searchFrom = end;
    else if (end < subject.size())
      searchFrom = end + decodeCodePoint(subject, end).length;
    else
      break;
  }
  if (pieceStart < subject.size())
    out.push_back({at(pieceStart), at(subject.size())});
  return Status::success();
}

} // namespace

Status PreTokenizer::addStep(PreTokenizer &result, const json &step,
                             const JsonPlace &place, bool &sawByteLevel) {
  if (!step.is_object())
    return place.error("is {}, expected a pre-tokenizer object",
                       describeJson(step));
  DSV3_ASSIGN_OR_RETURN(const json *typeValue,
                        requireMember(step, "type", place));
  DSV3_ASSIGN_OR_RETURN(std::string type,
                        requireString(*typeValue, place.child("type")));
  if (sawByteLevel)
    return place.error("a '{}' step after ByteLevel is not supported "
                       "(ByteLevel must be the last step)",
                       type);

  if (type == "Sequence") {
    JsonPlace listPlace = place.child("pretokenizers");
    DSV3_ASSIGN_OR_RETURN(const json *list,
                          requireMember(step, "pretokenizers", place));
    if (!list->is_array())
      return listPlace.error("is {}, expected an array of pre-tokenizers",
                             describeJson(*list));
    for (std::size_t i = 0; i < list->size(); ++i)
      DSV3_RETURN_IF_ERROR(
          addStep(result, (*list)[i], listPlace.element(i), sawByteLevel));
    return Status::success();
  }

  if (type == "Split") {
    DSV3_ASSIGN_OR_RETURN(const json *behaviorValue,
                          requireMember(step, "behavior", place));
    DSV3_ASSIGN_OR_RETURN(std::string behavior,
                          requireString(*behaviorValue, place.child("behavior")));
    if (behavior != "Isolated")
      return place.child("behavior")
          .error("'{}' is not supported (only 'Isolated')", behavior);
    DSV3_ASSIGN_OR_RETURN(bool invert,
                          optionalBool(step, "invert", false, place));
    if (invert)
      return place.child("invert").error("true is not supported");
    DSV3_ASSIGN_OR_RETURN(const json *pattern,
                          requireMember(step, "pattern", place));
    JsonPlace patternPlace = place.child("pattern");
    if (pattern->is_object() && pattern->contains("Regex")) {
      JsonPlace regexPlace = patternPlace.child("Regex");
      DSV3_ASSIGN_OR_RETURN(std::string text,
                            requireString((*pattern)["Regex"], regexPlace));
      StatusOr<Regex> regex = Regex::compile(text);
      if (!regex.ok())
        return regexPlace.error("bad regex: {}", regex.status().message());
      result.patterns_.push_back(std::move(regex).value());
      return Status::success();
    }
    if (pattern->is_object() && pattern->contains("String")) {
      JsonPlace stringPlace = patternPlace.child("String");
      DSV3_ASSIGN_OR_RETURN(std::string text,
                            requireString((*pattern)["String"], stringPlace));
      if (text.empty())
        return stringPlace.error("is empty");
      StatusOr<Regex> regex = Regex::compileLiteral(text);
      if (!regex.ok())
        return stringPlace.error("bad pattern: {}", regex.status().message());
      result.patterns_.push_back(std::move(regex).value());
      return Status::success();
    }
    return patternPlace.error("is {}, expected {{\"Regex\": ...}} or "
                              "{{\"String\": ...}}",
                              pattern->is_object() ? "an object without "
                                                     "'Regex' or 'String'"
                                                   : describeJson(*pattern));
  }

  if (type == "ByteLevel") {
    DSV3_ASSIGN_OR_RETURN(bool addPrefixSpace,
                          optionalBool(step, "add_prefix_space", true, place));
    if (addPrefixSpace)
      return place.child("add_prefix_space")
          .error("true (or absent, which Hugging Face reads as true) is not "
                 "supported: only false");
    DSV3_ASSIGN_OR_RETURN(bool useRegex,
                          optionalBool(step, "use_regex", true, place));
    if (useRegex) {
      StatusOr<Regex> regex = Regex::compile(kGpt2Pattern);
      if (!regex.ok())
        return place.error("GPT-2 pattern: {}", regex.status().message());
      result.patterns_.push_back(std::move(regex).value());
    }
    sawByteLevel = true;
    return Status::success();
  }

  return place.child("type").error(
      "pre-tokenizer type '{}' is not supported (supported: Sequence, Split, "
      "ByteLevel)",
      type);
}

StatusOr<PreTokenizer> PreTokenizer::fromJson(const json &config,
                                              const JsonPlace &place) {
  PreTokenizer result;
  bool sawByteLevel = false;
  if (config.is_null())
    return place.error("is null; a byte-level BPE needs a ByteLevel "
                       "pre-tokenizer");
  DSV3_RETURN_IF_ERROR(addStep(result, config, place, sawByteLevel));
  if (!sawByteLevel)
    return place.error("has no ByteLevel step; a byte-level BPE needs one");
  return result;
}

Status PreTokenizer::split(std::string_view text, PreTokenizerScratch &scratch,
                           std::vector<Span> &pieces) const {
  if (text.empty())
    return Status::success();
  std::vector<Span> &current = scratch.current;
  std::vector<Span> &next = scratch.next;
  current.clear();
  current.push_back({0, static_cast<uint32_t>(text.size())});
  for (const Regex &pattern : patterns_) {
    next.clear();
    for (Span span : current)
      DSV3_RETURN_IF_ERROR(
          splitPiece(text, span, pattern, scratch.regex, next));
    current.swap(next);
  }
  pieces.insert(pieces.end(), current.begin(), current.end());
  return Status::success();
}

} // namespace dsv3::tokenizer
