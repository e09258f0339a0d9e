//===- ByteLevel.h - GPT-2's byte-to-character alphabet ---------*- C++ -*-===//
//
// Byte-level BPE vocabularies (GPT-2 and its descendants, DeepSeek-V3's among
// them) spell every token as a string over a 256-character alphabet: each byte
// stands for one printable code point, so that spaces and control bytes never
// appear in vocabulary entries. The printable bytes '!'..'~', '¡'..'¬' and
// '®'..'ÿ' stand for themselves; the other 68 bytes, in increasing order, for
// U+0100, U+0101, ... (the space 0x20 becomes U+0120 'Ġ').
//
// The tokenizer converts vocabulary and merges from this spelling to raw bytes
// once, when it loads, and then works on raw bytes only.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TOKENIZER_BYTELEVEL_H
#define DSV3_RUNTIME_TOKENIZER_BYTELEVEL_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv3::tokenizer {

/// The code point that stands for `byte`.
char32_t byteLevelCodePoint(uint8_t byte);

/// The byte that `codePoint` stands for, or nullopt when it is not one of the
/// 256 characters of the alphabet.
std::optional<uint8_t> byteLevelByte(char32_t codePoint);

/// The raw bytes a token spelled in the alphabet stands for ("Ġthe" → " the"),
/// or nullopt when `token` (valid UTF-8) holds another character.
std::optional<std::string> byteLevelToBytes(std::string_view token);

/// `bytes` spelled in the alphabet (" the" → "Ġthe").
std::string bytesToByteLevel(std::string_view bytes);

} // namespace dsv3::tokenizer

#endif // DSV3_RUNTIME_TOKENIZER_BYTELEVEL_H
