//===- ByteLevel.cpp - GPT-2's byte-to-character alphabet -----------------===//

#include "runtime/tokenizer/ByteLevel.h"

#include "runtime/tokenizer/Utf8.h"

#include <array>

namespace dsv3::tokenizer {

namespace {

constexpr bool standsForItself(unsigned byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

constexpr std::array<char32_t, 256> makeAlphabet() {
  std::array<char32_t, 256> alphabet{};
  char32_t next = 0x100;
  for (unsigned byte = 0; byte < 256; ++byte)
    alphabet[byte] = standsForItself(byte) ? char32_t(byte) : next++;
  return alphabet;
}

constexpr std::array<char32_t, 256> kAlphabet = makeAlphabet();

/// The bytes U+0100, U+0101, ... stand for (68 of them), indexed from U+0100.
constexpr unsigned kShiftedCount = 68;
constexpr std::array<uint8_t, kShiftedCount> makeShiftedBytes() {
  std::array<uint8_t, kShiftedCount> bytes{};
  unsigned next = 0;
  for (unsigned byte = 0; byte < 256; ++byte)
    if (!standsForItself(byte))
      bytes[next++] = static_cast<uint8_t>(byte);
  return bytes;
}
constexpr std::array<uint8_t, kShiftedCount> kShiftedBytes = makeShiftedBytes();

} // namespace

char32_t byteLevelCodePoint(uint8_t byte) { return kAlphabet[byte]; }

std::optional<uint8_t> byteLevelByte(char32_t codePoint) {
  if (codePoint < 0x100)
    return standsForItself(codePoint) ? std::optional<uint8_t>(codePoint)
                                      : std::nullopt;
  if (codePoint - 0x100 < kShiftedCount)
    return kShiftedBytes[codePoint - 0x100];
  return std::nullopt;
}

std::optional<std::string> byteLevelToBytes(std::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  for (std::size_t offset = 0; offset < token.size();) {
    DecodedCodePoint decoded = decodeCodePoint(token, offset);
    std::optional<uint8_t> byte = byteLevelByte(decoded.codePoint);
    if (!byte)
      return std::nullopt;
    bytes.push_back(static_cast<char>(*byte));
    offset += decoded.length;
  }
  return bytes;
}

std::string bytesToByteLevel(std::string_view bytes) {
  std::string token;
  for (char byte : bytes)
    appendCodePoint(kAlphabet[static_cast<uint8_t>(byte)], token);
  return token;
}

} // namespace dsv3::tokenizer
