//===- JsonFields.cpp - reading tokenizer files' JSON with errors ---------===//

#include "runtime/tokenizer/JsonFields.h"

#include "runtime/Safetensors.h"
#include "runtime/TextFile.h"

#include <cstring>

namespace dsv3::tokenizer {

std::string describeJson(const json &value) {
  if (value.is_number() || value.is_boolean() || value.is_null())
    return value.dump();
  std::string type = value.type_name();
  bool vowel = !type.empty() && std::strchr("aeiou", type[0]) != nullptr;
  return (vowel ? "an " : "a ") + type;
}

StatusOr<json> readJsonFile(const std::string &path) {
  DSV3_ASSIGN_OR_RETURN(std::string text, readTextFile(path));
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    std::optional<JsonSyntaxError> syntax = findJsonSyntaxError(text);
    return Status::error("{}: not valid JSON: {} (at byte {})", path,
                         syntax ? syntax->reason : "syntax error",
                         syntax ? syntax->offset : 0);
  }
  if (!value.is_object())
    return Status::error("{}: top level is {}, expected a JSON object", path,
                         describeJson(value));
  return value;
}

std::string fieldPath(const std::string &path, const std::string &key) {
  return path.empty() ? key : path + "." + key;
}

StatusOr<const json *> requireMember(const json &object, const char *key,
                                     const JsonPlace &place) {
  if (!object.is_object())
    return place.error("is {}, expected an object with '{}'",
                       describeJson(object), key);
  auto found = object.find(key);
  if (found == object.end())
    return place.child(key).error("missing");
  return &*found;
}

StatusOr<std::string> requireString(const json &value, const JsonPlace &place) {
  if (!value.is_string())
    return place.error("is {}, expected a string", describeJson(value));
  return value.get<std::string>();
}

StatusOr<bool> optionalBool(const json &object, const char *key, bool fallback,
                            const JsonPlace &place) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null())
    return fallback;
  if (!found->is_boolean())
    return place.child(key).error("is {}, expected true or false",
                                  describeJson(*found));
  return found->get<bool>();
}

} // namespace dsv3::tokenizer
