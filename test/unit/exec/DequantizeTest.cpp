//===- DequantizeTest.cpp - host FP8 block dequantization to bf16 ---------===//
//
// Checked against a reference written differently: e4m3 decoded with ldexp
// from its fields, the block scale looked up by explicit block indices, and
// bf16 rounding chosen by comparing the two neighbouring bf16 values.
// Inputs are fresh random codes and scales (the seed is printed on failure).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Dequantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace dsv3::exec;

namespace {

float referenceE4m3(uint8_t code) {
  const int sign = code >> 7, exponent = (code >> 3) & 0xF, mantissa = code & 7;
  if (exponent == 0xF && mantissa == 7)
    return NAN;
  const double magnitude = exponent == 0
                               ? std::ldexp(mantissa, -9)
                               : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return static_cast<float>(sign ? -magnitude : magnitude);
}

float bf16Value(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

/// Nearest bf16 to a finite `value`, ties to the even mantissa.
uint16_t referenceBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint16_t truncated = static_cast<uint16_t>(bits >> 16);
  const uint16_t next = static_cast<uint16_t>(truncated + 1); // away from 0
  const double magnitude = std::fabs(static_cast<double>(value));
  // Past the largest bf16 the next value up is 2^128 (rounding gives inf).
  const double nextMagnitude = (next & 0x7FFF) == 0x7F80
                                   ? std::ldexp(1.0, 128)
                                   : std::fabs(static_cast<double>(bf16Value(next)));
  const double below = magnitude - std::fabs(static_cast<double>(bf16Value(truncated)));
  const double above = nextMagnitude - magnitude;
  if (below < above)
    return truncated;
  if (above < below)
    return next;
  return (truncated & 1) ? next : truncated;
}

TEST(DequantizeTest, EveryE4m3Code) {
  for (int code = 0; code < 256; ++code) {
    const float expected = referenceE4m3(static_cast<uint8_t>(code));
    const float actual = e4m3ToFloat(static_cast<uint8_t>(code));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(actual)) << "code " << code;
      continue;
    }
    EXPECT_EQ(actual, expected) << "code " << code;
    EXPECT_EQ(std::signbit(actual), (code & 0x80) != 0) << "code " << code;
  }
  EXPECT_EQ(e4m3ToFloat(0x7E), 448.0f);         // the largest
  EXPECT_EQ(e4m3ToFloat(0x01), 0.001953125f);   // 2^-9, the smallest
  EXPECT_EQ(e4m3ToFloat(0x08), 0.015625f);      // 2^-6, the smallest normal
}

TEST(DequantizeTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3F80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(floatToBf16(1.0f + 0x1p-8f), 0x3F80);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up.
  EXPECT_EQ(floatToBf16(1.0f + 3 * 0x1p-8f), 0x3F82);
  EXPECT_EQ(floatToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81); // above half
  EXPECT_EQ(floatToBf16(-2.0f), 0xC000);
  EXPECT_EQ(floatToBf16(3.4e38f), 0x7F80); // rounds past the largest: inf
  const uint16_t nan = floatToBf16(-NAN);
  EXPECT_TRUE(std::isnan(bf16Value(nan)));
  EXPECT_TRUE(nan & 0x8000);

  std::random_device seeder;
  const unsigned seed = seeder();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  std::uniform_int_distribution<uint32_t> anyBits(0, 0x7F7FFFFF); // finite
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = anyBits(random) | (random() & 1u) << 31;
    float value;
    std::memcpy(&value, &bits, sizeof value);
    ASSERT_EQ(floatToBf16(value), referenceBf16(value)) << "value " << value;
  }
}

struct BlockTensor {
  int64_t rows, cols, blockRows, blockCols;
  std::vector<uint8_t> codes;
  std::vector<float> scales;

  int64_t scaleCols() const { return (cols + blockCols - 1) / blockCols; }
};

BlockTensor randomTensor(std::mt19937 &random, int64_t rows, int64_t cols,
                         int64_t blockRows, int64_t blockCols) {
  BlockTensor tensor{rows, cols, blockRows, blockCols, {}, {}};
  tensor.codes.resize(rows * cols);
  for (uint8_t &code : tensor.codes) {
    do
      code = static_cast<uint8_t>(random());
    while ((code & 0x7F) == 0x7F); // NaN codes are tested on their own
  }
  const int64_t scaleRows = (rows + blockRows - 1) / blockRows;
  tensor.scales.resize(scaleRows * tensor.scaleCols());
  std::uniform_real_distribution<float> exponent(-14.0f, -2.0f);
  for (float &scale : tensor.scales)
    scale = std::exp2(exponent(random)) * (1.0f + static_cast<float>(random() % 1000) / 1000);
  return tensor;
}

TEST(DequantizeTest, PartialBlocksMatchTheReference) {
  std::random_device seeder;
  const unsigned seed = seeder();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  // kv_a_proj_with_mqa's 576 rows end in a half block; 200 columns too.
  BlockTensor tensor = randomTensor(random, 576, 200, 128, 128);
  ASSERT_EQ(tensor.scales.size(), 5u * 2u);
  std::vector<uint16_t> out(576 * 200, 0xFFFF); // poisoned
  dequantizeFp8ToBf16(tensor.codes.data(), tensor.scales.data(), 576, 200, 128,
                      128, out.data(), 1);

  double errorSquares = 0, referenceSquares = 0;
  for (int64_t r = 0; r < 576; ++r)
    for (int64_t c = 0; c < 200; ++c) {
      const float scale =
          tensor.scales[(r / 128) * tensor.scaleCols() + (c / 128)];
      const double exact =
          static_cast<double>(referenceE4m3(tensor.codes[r * 200 + c])) * scale;
      // fp32 product, then bf16: what (weight.float() * scale).bfloat16() does.
      const uint16_t expected = referenceBf16(static_cast<float>(exact));
      ASSERT_EQ(out[r * 200 + c], expected) << "row " << r << " col " << c;
      const double actual = bf16Value(out[r * 200 + c]);
      errorSquares += (actual - exact) * (actual - exact);
      referenceSquares += exact * exact;
    }
  ASSERT_GT(referenceSquares, 0);
  const double relative = std::sqrt(errorSquares / referenceSquares);
  EXPECT_LT(relative, 0x1p-8); // bf16 keeps 8 significant bits
  EXPECT_GT(relative, 0);      // and it is bf16, not a copy of the product
  // The last, partial block uses the last scale.
  EXPECT_EQ(bf16Value(out[575 * 200 + 199]),
            bf16Value(referenceBf16(referenceE4m3(tensor.codes[575 * 200 + 199]) *
                                    tensor.scales[4 * 2 + 1])));
}

TEST(DequantizeTest, ThreadsGiveTheSameBits) {
  std::random_device seeder;
  const unsigned seed = seeder();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  BlockTensor tensor = randomTensor(random, 1537, 1500, 128, 128);
  std::vector<uint16_t> serial(1537 * 1500, 0xFFFF), parallel(1537 * 1500, 0);
  dequantizeFp8ToBf16(tensor.codes.data(), tensor.scales.data(), 1537, 1500,
                      128, 128, serial.data(), 1);
  dequantizeFp8ToBf16(tensor.codes.data(), tensor.scales.data(), 1537, 1500,
                      128, 128, parallel.data(), 4);
  EXPECT_EQ(serial, parallel);
}

TEST(DequantizeTest, NaNCodesStayNaN) {
  const uint8_t codes[4] = {0x7F, 0xFF, 0x38, 0xB8}; // NaN, NaN, 1, -1
  const float scale = 0.5f;
  uint16_t out[4] = {0, 0, 0, 0};
  dequantizeFp8ToBf16(codes, &scale, 1, 4, 128, 128, out, 1);
  EXPECT_TRUE(std::isnan(bf16Value(out[0])));
  EXPECT_TRUE(std::isnan(bf16Value(out[1])));
  EXPECT_EQ(bf16Value(out[2]), 0.5f);
  EXPECT_EQ(bf16Value(out[3]), -0.5f);
}

} // namespace
