//===- Dequantize.cpp - FP8 block-scaled weights to bf16, on the host -----===//

#include "runtime/exec/Dequantize.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>
#include <vector>

namespace dsv3::exec {

namespace {

/// The float bit pattern of e4m3 code `code`, built at compile time.
constexpr uint32_t e4m3Bits(unsigned code) {
  const uint32_t sign = (code & 0x80u) << 24;
  const unsigned exponent = (code >> 3) & 0xFu;
  const unsigned mantissa = code & 0x7u;
  if (exponent == 0xF && mantissa == 0x7)
    return sign | 0x7FC00000u; // NaN
  if (exponent == 0) {
    if (mantissa == 0)
      return sign; // ±0
    // Subnormal: mantissa x 2^-9. Normalize around its highest set bit.
    unsigned top = mantissa >= 4 ? 2 : mantissa >= 2 ? 1 : 0;
    uint32_t floatExponent = top - 9 + 127;
    uint32_t fraction = (mantissa - (1u << top)) << (23 - top);
    return sign | (floatExponent << 23) | fraction;
  }
  return sign | ((exponent - 7 + 127) << 23) | (mantissa << 20);
}

constexpr std::array<uint32_t, 256> makeE4m3Table() {
  std::array<uint32_t, 256> table{};
  for (unsigned code = 0; code < 256; ++code)
    table[code] = e4m3Bits(code);
  return table;
}

/// Every e4m3 code's value as float bits: immutable, computed by the compiler.
constexpr std::array<uint32_t, 256> kE4m3Table = makeE4m3Table();

void dequantizeRows(const uint8_t *values, const float *scales, int64_t cols,
                    int64_t blockRows, int64_t blockCols, int64_t rowBegin,
                    int64_t rowEnd, uint16_t *out) {
  const int64_t scaleCols = (cols + blockCols - 1) / blockCols;
  for (int64_t r = rowBegin; r < rowEnd; ++r) {
    const float *rowScales = scales + (r / blockRows) * scaleCols;
    const uint8_t *rowValues = values + r * cols;
    uint16_t *rowOut = out + r * cols;
    for (int64_t blockStart = 0; blockStart < cols; blockStart += blockCols) {
      const float scale = rowScales[blockStart / blockCols];
      const int64_t blockEnd = std::min(cols, blockStart + blockCols);
      for (int64_t c = blockStart; c < blockEnd; ++c)
        rowOut[c] = floatToBf16(e4m3ToFloat(rowValues[c]) * scale);
    }
  }
}

} // namespace

float e4m3ToFloat(uint8_t code) {
  float value;
  std::memcpy(&value, &kE4m3Table[code], sizeof value);
  return value;
}

uint16_t floatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) // NaN: keep sign, force quiet
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

void dequantizeFp8ToBf16(const uint8_t *values, const float *scales,
                         int64_t rows, int64_t cols, int64_t blockRows,
                         int64_t blockCols, uint16_t *out, unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  // Below ~1M elements a thread costs more than it saves.
  const int64_t useful = std::max<int64_t>(1, rows * cols / (1 << 20));
  const int64_t workers = std::min<int64_t>({threads, useful, rows});
  if (workers <= 1) {
    dequantizeRows(values, scales, cols, blockRows, blockCols, 0, rows, out);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (int64_t w = 0; w < workers; ++w) {
    const int64_t begin = rows * w / workers, end = rows * (w + 1) / workers;
    pool.emplace_back(dequantizeRows, values, scales, cols, blockRows,
                      blockCols, begin, end, out);
  }
  for (std::thread &thread : pool)
    thread.join();
}

} // namespace dsv3::exec
