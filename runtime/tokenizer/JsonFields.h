//===- JsonFields.h - reading tokenizer files' JSON with errors -*- C++ -*-===//
//
// Helpers shared by the readers of tokenizer.json and tokenizer_config.json:
// every error names the file and the field path ("model.merges[17]",
// "pre_tokenizer.pretokenizers[2].pattern.Regex") and says what was found.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_JSONFIELDS_H
#define DSV3_RUNTIME_TOKENIZER_JSONFIELDS_H

#include "runtime/Status.h"

#include <nlohmann/json.hpp>

#include <string>

namespace dsv3::tokenizer {

using json = nlohmann::json;

/// "a string", "an array", "null", or the number or boolean itself.
std::string describeJson(const json &value);

/// Reads and parses `path` as JSON; a syntax error names the byte offset.
StatusOr<json> readJsonFile(const std::string &path);

/// "a.b" from field path "a" and key "b" (just "b" when `path` is empty).
std::string fieldPath(const std::string &path, const std::string &key);

/// Where a value is, for messages: the file and the field path.
struct JsonPlace {
  const std::string &file;
  std::string path;

  JsonPlace child(const std::string &key) const {
    return {file, fieldPath(path, key)};
  }
  JsonPlace element(std::size_t index) const {
    return {file, path + "[" + std::to_string(index) + "]"};
  }
  /// "FILE: field 'PATH': MESSAGE".
  template <typename... Args>
  Status error(fmt::format_string<Args...> format, Args &&...args) const {
    return Status::error("{}: field '{}': {}", file, path,
                         fmt::format(format, std::forward<Args>(args)...));
  }
};

/// The member `key` of `object` (an object), or an error naming it when it
/// is absent.
StatusOr<const json *> requireMember(const json &object, const char *key,
                                     const JsonPlace &place);
/// The string `value`, or an error saying what it is instead.
StatusOr<std::string> requireString(const json &value, const JsonPlace &place);
/// The boolean member `key`, `fallback` when absent or null.
StatusOr<bool> optionalBool(const json &object, const char *key, bool fallback,
                            const JsonPlace &place);

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_JSONFIELDS_H
