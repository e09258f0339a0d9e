//===- dsv3-ckpt.cpp - random checkpoints for a plan, and listing them ----===//
//
// dsv3-ckpt random PLAN CONFIG OUT_DIR [--seed N] [--shard-size B] [--threads N]
//                [--pinned-routing]
// dsv3-ckpt ls DIR
// dsv3-ckpt stats DIR [TENSOR...]
//
// `random` writes a checkpoint in exactly Hugging Face's layout and names,
// holding every checkpoint tensor a plan reads (the sources of its weights),
// so that the runtime and transformers can be tested on models nobody
// trained. The plan is the tensor list, as it is for dsv3-run: the tool is
// runtime-side (no LLVM/MLIR, DESIGN.md section 3) so that it runs on the GPU
// machine, where the multi-GB checkpoints are needed. Values depend only on
// the seed and each tensor's name (a counter-based generator), never on the
// number of threads or shards, and are generated in parallel straight into
// the output files.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checkpoint.h"
#include "runtime/Safetensors.h"
#include "runtime/TextFile.h"
#include "runtime/plan/PlanFile.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unistd.h>

using dsv3::Dtype;
using dsv3::Status;
using dsv3::StatusOr;

namespace {

const char kUsage[] = R"(dsv3-ckpt: random DeepSeek-V3-family checkpoints in Hugging Face's layout

USAGE:
  dsv3-ckpt random PLAN CONFIG OUT_DIR [--seed N] [--shard-size BYTES] [--threads N]
                   [--pinned-routing]
  dsv3-ckpt ls DIR
  dsv3-ckpt stats DIR [TENSOR...]

random   Writes a checkpoint with every tensor PLAN reads (the checkpoint
         sources of its weights, as `dsv3c CONFIG --emit=plan` wrote them),
         filled with random values, plus CONFIG as OUT_DIR/config.json so that
         transformers can load the directory. CONFIG is the Hugging Face
         config.json PLAN was compiled from; its quantization_config is kept
         (or added) for an FP8 plan and removed for a BF16 one: compile with
         `dsv3c --weight-dtype=fp8|bf16` to choose. Previous checkpoint files
         in OUT_DIR are replaced.
  --seed N          values are a function of N and each tensor's name (default 0)
  --shard-size B    one model.safetensors when the tensors total at most B
                    bytes, else shards of at most B bytes (a bigger tensor gets
                    its own) and model.safetensors.index.json; B may end in
                    KB, MB, GB (powers of 1000, as Hugging Face) or KiB, MiB,
                    GiB (default 5GB)
  --threads N       generating threads (default: one per hardware thread)
  --pinned-routing  router weights 1000x smaller, correction biases U(-1, 1):
                    noaux_tc routers pick experts by bias alone, far from ties

ls       Prints every tensor of the checkpoint in DIR as `name dtype [shape]`,
         sorted by name (compare with `dsv3c CONFIG --emit=weights | sort`).

stats    Prints mean, standard deviation, min and max of every tensor (or of
         the TENSORs named), FP8 weights dequantized with their block scales,
         and for those the number of blocks whose largest value uses the full
         e4m3 range (448).
)";

int fail(const std::string &message) {
  std::fflush(stdout);
  fmt::print(stderr, "dsv3-ckpt: error: {}\n", message);
  return 1;
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

bool consumePrefix(std::string_view &text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix)
    return false;
  text.remove_prefix(prefix.size());
  return true;
}

//===----------------------------------------------------------------------===//
// Number formats
//===----------------------------------------------------------------------===//

inline uint32_t floatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float bitsToFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// float → bfloat16, rounding to nearest even (inputs are finite).
inline uint16_t toBf16(float value) {
  uint32_t bits = floatBits(value);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

float fromBf16(uint16_t bits) { return bitsToFloat(uint32_t(bits) << 16); }

/// float → float8_e4m3fn (1 sign, 4 exponent bits biased by 7, 3 mantissa
/// bits; no infinities; 0x7F/0xFF are NaN), rounding to nearest even and
/// saturating at ±448 so that no NaN code is ever produced. Both candidate
/// codes are computed and one selected on integers, so loops vectorize.
inline uint8_t toE4M3(float value) {
  uint32_t bits = floatBits(value);
  uint32_t sign = (bits >> 24) & 0x80;
  uint32_t magnitudeBits = bits & 0x7FFFFFFF;
  // Normal (|value| ≥ 2^-6): keep 3 of float's 23 mantissa bits, rounding to
  // nearest even; a carry out of the mantissa correctly bumps the exponent.
  uint32_t rounded =
      magnitudeBits + (1u << 19) - 1 + ((magnitudeBits >> 20) & 1);
  int32_t normal = int32_t(rounded >> 20) - ((127 - 7) << 3);
  normal = normal < 0x7E ? normal : 0x7E; // 448 = 1.75·2^8, the largest
  // Subnormal: m·2^-9, m = round(|value|·512) by the 2^23 trick (exact here);
  // m = 8 is the smallest normal, 0x08, as it should be.
  float scaled = bitsToFloat(magnitudeBits) * 512.0f + 0x1p23f;
  int32_t subnormal = int32_t(floatBits(scaled) - floatBits(0x1p23f));
  int32_t code = magnitudeBits < 0x3C800000u ? subnormal : normal; // 2^-6
  code = magnitudeBits < 0x43E00000u ? code : 0x7E;                 // 448
  return static_cast<uint8_t>(sign | uint32_t(code));
}

float fromE4M3(uint8_t code) {
  float sign = (code & 0x80) ? -1.0f : 1.0f;
  int exponent = (code >> 3) & 0xF;
  int mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7)
    return NAN;
  if (exponent == 0)
    return sign * std::ldexp(float(mantissa), -9);
  return sign * std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
}

//===----------------------------------------------------------------------===//
// The counter-based generator
//===----------------------------------------------------------------------===//

// The hot loops below are written so that GCC vectorizes them (no libm calls,
// selects on integers, int32 → float conversions), and are compiled for
// SSE2, AVX2 and AVX-512, picked at load time. Because CMakeLists.txt turns
// off floating-point contraction, every version computes bit-identical
// values: a checkpoint depends on the seed, never on the machine.
#if defined(__x86_64__) && defined(__GNUC__)
#define DSV3_VECTORIZED                                                        \
  __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define DSV3_VECTORIZED
#endif

/// SplitMix64's output function: a bijective mix whose outputs over the Weyl
/// sequence key + n·γ pass BigCrush. Draw n of a stream needs no state, so any
/// element of any tensor can be generated alone, by any thread, in any order.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
constexpr uint64_t kWeylIncrement = 0x9E3779B97F4A7C15ULL;

inline uint64_t draw(uint64_t stream, uint64_t n) {
  return mix64(stream + (n + 1) * kWeylIncrement);
}

/// The stream of a tensor: a function of the seed and its name only.
uint64_t streamOf(uint64_t seed, const std::string &name) {
  uint64_t hash = 0xCBF29CE484222325ULL; // FNV-1a
  for (unsigned char c : name)
    hash = (hash ^ c) * 0x100000001B3ULL;
  return mix64(mix64(hash) ^ mix64(seed + kWeylIncrement));
}

/// ln(u) for u in [2^-24, 1], within 1e-7: u = 2^e · m with m in (√½, √2],
/// ln m = 2·atanh(t), t = (m−1)/(m+1), |t| ≤ 0.172, by its series to t^9.
inline float logOfUnitInterval(float u) {
  uint32_t bits = floatBits(u);
  uint32_t mantissa = bits & 0x7FFFFF;
  uint32_t aboveSqrt2 = mantissa > 0x3504F3 ? 1u : 0u; // 1.mantissa > √2
  float m = bitsToFloat(mantissa | (0x3F800000u - (aboveSqrt2 << 23)));
  int32_t exponent = int32_t(bits >> 23) - 127 + int32_t(aboveSqrt2);
  float t = (m - 1.0f) / (m + 1.0f);
  float t2 = t * t;
  float series =
      1.0f + t2 * (1.0f / 3 + t2 * (1.0f / 5 + t2 * (1.0f / 7 + t2 / 9)));
  return float(exponent) * 0.693147180559945f + 2.0f * t * series;
}

/// Box–Muller from one 64-bit draw: radius from 24 bits (so the tails stop
/// at 5.8 standard deviations), angle from 24 bits as a quarter turn (2 bits)
/// plus θ in [−π/4, π/4) (22 bits), where Taylor series to θ^9 and θ^8 give
/// sin and cos within 2e-9. The angle starts at −π/4 rather than 0, which
/// leaves it uniform on the circle.
inline void boxMuller(uint64_t bits, float stddev, float &z0, float &z1) {
  float u1 = float(int32_t(bits >> 40) + 1) * 0x1p-24f; // (0, 1]
  float radius = std::sqrt(-2.0f * logOfUnitInterval(u1)) * stddev;
  uint32_t quarterTurns = uint32_t(bits >> 22) & 3;
  float x = float(int32_t(bits & 0x3FFFFF)) * 0x1p-22f - 0.5f; // [−½, ½)
  float theta = x * 1.57079632679489662f;
  float t2 = theta * theta;
  float s = theta * (1.0f + t2 * (-1.0f / 6 + t2 * (1.0f / 120 +
                     t2 * (-1.0f / 5040 + t2 * (1.0f / 362880)))));
  float c = 1.0f + t2 * (-0.5f + t2 * (1.0f / 24 + t2 * (-1.0f / 720 +
                         t2 * (1.0f / 40320))));
  // Rotate (cos θ, sin θ) by quarterTurns·π/2: swap on odd turns, then
  // negate cos on turns 1 and 2, sin on turns 2 and 3; bitwise, so that the
  // loop has no branches.
  uint32_t swap = 0u - (quarterTurns & 1);
  uint32_t sBits = floatBits(s), cBits = floatBits(c);
  uint32_t cosBits = (sBits & swap) | (cBits & ~swap);
  uint32_t sinBits = (cBits & swap) | (sBits & ~swap);
  cosBits ^= ((quarterTurns ^ (quarterTurns >> 1)) & 1) << 31;
  sinBits ^= (quarterTurns >> 1) << 31;
  z0 = radius * bitsToFloat(cosBits);
  z1 = radius * bitsToFloat(sinBits);
}

/// Elements [first, first + count) of N(0, stddev²) over `stream`: element i
/// is half i%2 of the Box–Muller pair from draw i/2.
DSV3_VECTORIZED
void generateNormal(uint64_t stream, uint64_t first, std::size_t count,
                    float stddev, float *out) {
  uint64_t i = first, end = first + count;
  float z0, z1;
  if (i < end && (i & 1)) {
    boxMuller(draw(stream, i >> 1), stddev, z0, z1);
    *out++ = z1;
    ++i;
  }
  const std::size_t pairs = (end - i) / 2;
  const uint64_t firstPair = i >> 1;
  for (std::size_t k = 0; k < pairs; ++k)
    boxMuller(draw(stream, firstPair + k), stddev, out[2 * k], out[2 * k + 1]);
  i += 2 * pairs;
  if (i < end) {
    boxMuller(draw(stream, i >> 1), stddev, z0, z1);
    out[2 * pairs] = z0;
  }
}

/// Elements [first, first + count) of U(low, high) over `stream`.
DSV3_VECTORIZED
void generateUniform(uint64_t stream, uint64_t first, std::size_t count,
                     float low, float high, float *out) {
  for (std::size_t k = 0; k < count; ++k) {
    float unit = float(int32_t(draw(stream, first + k) >> 40)) * 0x1p-24f;
    out[k] = low + (high - low) * unit;
  }
}

/// The largest |value| of each block of a row of blocks (`rows` rows of
/// `cols` values, blocks `blockCols` wide). On non-negative floats the order
/// of the bit patterns is the order of the values, which vectorizes.
DSV3_VECTORIZED
void blockAbsMax(const float *values, int64_t rows, int64_t cols,
                 int64_t blockCols, float *absMax) {
  const int64_t blocks = (cols + blockCols - 1) / blockCols;
  for (int64_t block = 0; block < blocks; ++block) {
    int64_t firstCol = block * blockCols;
    int64_t width = std::min(blockCols, cols - firstCol);
    uint32_t largest = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = values + r * cols + firstCol;
      for (int64_t c = 0; c < width; ++c)
        largest = std::max(largest, floatBits(row[c]) & 0x7FFFFFFFu);
    }
    absMax[block] = bitsToFloat(largest);
  }
}

/// codes = e4m3(value / scale of its block), for a row of blocks.
DSV3_VECTORIZED
void quantizeBlockRow(const float *values, int64_t rows, int64_t cols,
                      int64_t blockCols, const float *blockScale,
                      std::uint8_t *codes) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t firstCol = 0; firstCol < cols; firstCol += blockCols) {
      const float scale = blockScale[firstCol / blockCols];
      const int64_t lastCol = std::min(firstCol + blockCols, cols);
      for (int64_t c = firstCol; c < lastCol; ++c)
        codes[r * cols + c] = toE4M3(values[r * cols + c] / scale);
    }
}


//===----------------------------------------------------------------------===//
// What each tensor holds
//===----------------------------------------------------------------------===//

/// One checkpoint tensor the plan reads.
struct SourceTensor {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  /// For a block-scale tensor (`<weight>_scale_inv`), the FP8 weight it
  /// scales; empty otherwise.
  std::string scaleOf;
};

/// How FP8 weights are quantized: config.json's quantization_config.
struct BlockQuantization {
  int64_t blockRows = 128, blockCols = 128;
  bool powerOfTwoScales = false; ///< scale_fmt "ue8m0"
  /// Where the block size came from, for messages.
  std::string origin;
};

enum class Distribution {
  Linear,     ///< N(0, 1/in_features): activations stay O(1) layer to layer
  Embedding,  ///< N(0, 1): embeddings and output heads
  Norm,       ///< 1 + U(-0.1, 0.1)
  RouterBias, ///< U(-0.1, 0.1): e_score_correction_bias
  BlockScale, ///< the weight_scale_inv of an FP8 weight
};

/// The per-block scales of one FP8 weight, computed by whichever of the weight
/// or its scale tensor gets to a row of blocks first (they may be written by
/// different threads, even into different shards).
struct BlockScales {
  int64_t rows = 0, cols = 0, blockRows = 0, blockCols = 0;
  int64_t scaleRows = 0, scaleCols = 0;
  bool powerOfTwo = false; ///< ue8m0 scales
  std::vector<float> scales;
  std::unique_ptr<std::once_flag[]> rowDone;
};

struct PlannedTensor {
  SourceTensor tensor;
  Distribution distribution = Distribution::Linear;
  uint64_t stream = 0;
  uint64_t byteSize = 0;
  float stddev = 1.0f;
  /// RouterBias: U(biasLow, biasHigh).
  float biasLow = -0.1f, biasHigh = 0.1f;
  /// For an FP8 weight and for its scale tensor: the weight's scales. The
  /// scale tensor's values come from the weight's stream.
  std::shared_ptr<BlockScales> blockScales;
  uint64_t weightStream = 0;
  float weightStddev = 1.0f;
};

StatusOr<Distribution> distributionOf(const SourceTensor &tensor) {
  if (!tensor.scaleOf.empty())
    return Distribution::BlockScale;
  if (endsWith(tensor.name, "e_score_correction_bias"))
    return Distribution::RouterBias;
  if (tensor.shape.size() == 1 && endsWith(tensor.name, "norm.weight"))
    return Distribution::Norm;
  if (tensor.shape.size() == 2) {
    if (endsWith(tensor.name, "embed_tokens.weight") ||
        endsWith(tensor.name, "lm_head.weight") ||
        endsWith(tensor.name, "shared_head.head.weight"))
      return Distribution::Embedding;
    return Distribution::Linear;
  }
  // Never invent a distribution for a tensor kind nobody thought about.
  return Status::error("tensor '{}' ({} {}): no value distribution is defined "
                       "for it",
                       tensor.name, dsv3::dtypeName(tensor.dtype),
                       dsv3::formatShape(tensor.shape));
}

/// Generates row of blocks `blockRow` (blockRows rows, fewer at the bottom
/// edge) of the FP8 weight that `scales` describes, as floats, into `values`,
/// and the scale of each of its blocks into `blockScale` (scaleCols entries).
void generateBlockRow(uint64_t stream, float stddev, const BlockScales &scales,
                      int64_t blockRow, std::vector<float> &values,
                      float *blockScale) {
  int64_t firstRow = blockRow * scales.blockRows;
  int64_t rowCount = std::min(scales.blockRows, scales.rows - firstRow);
  std::size_t count = static_cast<std::size_t>(rowCount * scales.cols);
  values.resize(count);
  generateNormal(stream, uint64_t(firstRow * scales.cols), count, stddev,
                 values.data());
  blockAbsMax(values.data(), rowCount, scales.cols, scales.blockCols,
              blockScale);
  for (int64_t block = 0; block < scales.scaleCols; ++block) {
    float amax = blockScale[block];
    // DeepSeek's convention: dequantized = e4m3 × scale_inv, scale_inv =
    // amax / 448 so that the block's largest value becomes ±448.
    float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    if (scales.powerOfTwo) { // ue8m0: round up to a power of two
      int exponent;
      float mantissa = std::frexp(scale, &exponent);
      scale = std::ldexp(1.0f, mantissa == 0.5f ? exponent - 1 : exponent);
    }
    blockScale[block] = scale;
  }
}

/// Stores a row of block scales once; the weight and its scale tensor both
/// call this and compute identical values, so whoever is first wins.
void publishBlockRow(BlockScales &scales, int64_t blockRow,
                     const float *blockScale) {
  std::call_once(scales.rowDone[blockRow], [&] {
    std::copy(blockScale, blockScale + scales.scaleCols,
              scales.scales.begin() + blockRow * scales.scaleCols);
  });
}

/// The scales of one row of blocks, generating the weight's values for it
/// if the weight itself has not been written yet.
const float *blockRowScales(const PlannedTensor &scaleTensor,
                            int64_t blockRow) {
  BlockScales &scales = *scaleTensor.blockScales;
  std::call_once(scales.rowDone[blockRow], [&] {
    std::vector<float> values;
    generateBlockRow(scaleTensor.weightStream, scaleTensor.weightStddev,
                     scales, blockRow, values,
                     scales.scales.data() + blockRow * scales.scaleCols);
  });
  return scales.scales.data() + blockRow * scales.scaleCols;
}

DSV3_VECTORIZED
void encodeBf16(const float *values, std::size_t count, std::uint8_t *out) {
  for (std::size_t i = 0; i < count; ++i) {
    uint16_t bits = toBf16(values[i]);
    std::memcpy(out + 2 * i, &bits, 2);
  }
}

/// Encodes `count` floats as `dtype` into `out`.
void encode(Dtype dtype, const float *values, std::size_t count,
            std::uint8_t *out) {
  switch (dtype) {
  case Dtype::F32:
    std::memcpy(out, values, count * sizeof(float)); // little-endian hosts
    break;
  case Dtype::BF16:
    encodeBf16(values, count, out);
    break;
  case Dtype::F16:
    for (std::size_t i = 0; i < count; ++i) {
      _Float16 half = static_cast<_Float16>(values[i]); // rounds to even
      std::memcpy(out + 2 * i, &half, 2);
    }
    break;
  default:
    std::abort(); // planTensors admits only these (FP8 goes through blocks)
  }
}

/// Produces bytes [offset, offset + size) of `plan`.
Status fillTensor(const PlannedTensor &plan, uint64_t offset, std::uint8_t *out,
                  std::size_t size) {
  thread_local std::vector<float> values;
  const std::size_t elementSize = dsv3::dtypeSize(plan.tensor.dtype);

  if (plan.distribution == Distribution::BlockScale) {
    // Whole tensor per call (fill granularity 0): a few floats per block.
    const BlockScales &scales = *plan.blockScales;
    for (int64_t row = 0; row < scales.scaleRows; ++row)
      std::memcpy(out + row * scales.scaleCols * sizeof(float),
                  blockRowScales(plan, row), scales.scaleCols * sizeof(float));
    return Status::success();
  }

  if (plan.blockScales) {
    // An FP8 weight; calls start at a row of blocks (the fill granularity).
    BlockScales &scales = *plan.blockScales;
    const uint64_t blockRowBytes = uint64_t(scales.blockRows * scales.cols);
    std::vector<float> blockScale(scales.scaleCols);
    for (uint64_t done = 0; done < size; done += blockRowBytes) {
      int64_t blockRow = int64_t((offset + done) / blockRowBytes);
      generateBlockRow(plan.stream, plan.stddev, scales, blockRow, values,
                       blockScale.data());
      publishBlockRow(scales, blockRow, blockScale.data());
      quantizeBlockRow(values.data(), int64_t(values.size()) / scales.cols,
                       scales.cols, scales.blockCols, blockScale.data(),
                       out + done);
    }
    return Status::success();
  }

  // Element-wise distributions, generated in cache-sized batches.
  constexpr std::size_t kBatch = 8192;
  values.resize(kBatch);
  uint64_t first = offset / elementSize;
  std::size_t count = size / elementSize;
  for (std::size_t done = 0; done < count; done += kBatch) {
    std::size_t batch = std::min(kBatch, count - done);
    switch (plan.distribution) {
    case Distribution::Linear:
    case Distribution::Embedding:
      generateNormal(plan.stream, first + done, batch, plan.stddev,
                     values.data());
      break;
    case Distribution::Norm:
      generateUniform(plan.stream, first + done, batch, 0.9f, 1.1f,
                      values.data());
      break;
    case Distribution::RouterBias:
      generateUniform(plan.stream, first + done, batch, plan.biasLow,
                      plan.biasHigh, values.data());
      break;
    case Distribution::BlockScale:
      break; // handled above
    }
    encode(plan.tensor.dtype, values.data(), batch, out + done * elementSize);
  }
  return Status::success();
}


//===----------------------------------------------------------------------===//
// The tensors of a plan
//===----------------------------------------------------------------------===//

/// The safetensors dtype of a plan dtype (the enumerators are named alike).
Dtype dtypeOf(dsv3::plan::DType dtype) {
  switch (dtype) {
  case dsv3::plan::DType::BF16:
    return Dtype::BF16;
  case dsv3::plan::DType::F16:
    return Dtype::F16;
  case dsv3::plan::DType::F32:
    return Dtype::F32;
  case dsv3::plan::DType::F8_E4M3:
    return Dtype::F8_E4M3;
  case dsv3::plan::DType::I32:
    return Dtype::I32;
  }
  return Dtype::U8; // verifyPlan admits only the values above
}

/// The checkpoint tensors `planFile` reads: the sources of all its weights,
/// each once, in order of first appearance. A tensor that several weights
/// read must have the same dtype and shape in each.
StatusOr<std::vector<SourceTensor>>
planSources(const dsv3::plan::PlanFile &planFile) {
  const dsv3::plan::Plan &plan = planFile.plan();
  std::vector<SourceTensor> sources;
  struct FirstUse {
    std::size_t source, weight;
  };
  std::map<std::string, FirstUse, std::less<>> firstUse;
  const auto *weights = plan.weights();
  for (std::size_t w = 0; weights && w < weights->size(); ++w) {
    const auto *weightSources = weights->Get(w)->sources();
    for (std::size_t s = 0; weightSources && s < weightSources->size(); ++s) {
      const dsv3::plan::CheckpointTensor *source = weightSources->Get(s);
      SourceTensor tensor;
      tensor.name = source->name()->str(); // verifyPlan: never empty
      tensor.dtype = dtypeOf(source->dtype());
      if (const auto *shape = source->shape())
        for (std::size_t d = 0; d < shape->size(); ++d)
          tensor.shape.push_back(shape->Get(d));
      auto [use, inserted] =
          firstUse.try_emplace(tensor.name, FirstUse{sources.size(), w});
      if (inserted) {
        sources.push_back(std::move(tensor));
        continue;
      }
      const SourceTensor &first = sources[use->second.source];
      if (first.dtype != tensor.dtype || first.shape != tensor.shape)
        return Status::error(
            "{}: checkpoint tensor '{}' is {} {} in weight#{} but {} {} in "
            "weight#{}",
            planFile.name(), tensor.name, dsv3::dtypeName(first.dtype),
            dsv3::formatShape(first.shape), use->second.weight,
            dsv3::dtypeName(tensor.dtype), dsv3::formatShape(tensor.shape), w);
    }
  }
  if (sources.empty())
    return Status::error("{}: the plan reads no checkpoint tensors",
                         planFile.name());
  return sources;
}

/// A weight the plan dequantizes at load time names its block size; the
/// scales written must be made with that same size.
Status checkDequantizeBlocks(const dsv3::plan::PlanFile &planFile,
                             const BlockQuantization &quantization) {
  const auto *weights = planFile.plan().weights();
  for (std::size_t w = 0; weights && w < weights->size(); ++w) {
    const dsv3::plan::Weight *weight = weights->Get(w);
    if (weight->transform() != dsv3::plan::WeightTransform::DequantizeBf16 ||
        !weight->block() || weight->block()->size() != 2)
      continue; // verifyPlan: a DequantizeBf16 block is [rows, cols]
    int64_t rows = weight->block()->Get(0), cols = weight->block()->Get(1);
    if (rows != quantization.blockRows || cols != quantization.blockCols)
      return Status::error("{}: weight#{} dequantizes '{}' in blocks of [{}, "
                           "{}], but the block size is [{}, {}] ({})",
                           planFile.name(), w,
                           weight->sources()->Get(0)->name()->str(), rows, cols,
                           quantization.blockRows, quantization.blockCols,
                           quantization.origin);
  }
  return Status::success();
}

/// Decides distribution, stream and block scales of every tensor. FP8
/// weights and their `_scale_inv` tensors are paired by name, as in the
/// checkpoint, and each scale tensor's shape must be the weight's block grid.
/// How the routers of a random checkpoint decide.
enum class Routing {
  Random, ///< router weights like any projection: choices vary by token
  /// Router weights 1000 times smaller and correction biases U(-1, 1): noaux_tc
  /// routers then choose by bias alone, far from any tie, the same experts
  /// for every token. A comparison between engines then measures arithmetic,
  /// not which engine's rounding tips a near-tie.
  Pinned,
};

StatusOr<std::vector<PlannedTensor>>
planTensors(const std::vector<SourceTensor> &sources, Routing routing,
            const BlockQuantization &quantization, uint64_t seed,
            const std::string &planName) {
  static constexpr std::string_view kScaleSuffix = "_scale_inv";
  std::vector<PlannedTensor> plans(sources.size());
  std::map<std::string, std::size_t, std::less<>> indexByName;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    PlannedTensor &plan = plans[i];
    plan.tensor = sources[i];
    SourceTensor &tensor = plan.tensor;
    if (tensor.dtype != Dtype::F32 && tensor.dtype != Dtype::BF16 &&
        tensor.dtype != Dtype::F16 && tensor.dtype != Dtype::F8_E4M3)
      return Status::error("{}: tensor '{}': cannot generate dtype {}",
                           planName, tensor.name,
                           dsv3::dtypeName(tensor.dtype));
    if (endsWith(tensor.name, kScaleSuffix))
      tensor.scaleOf =
          tensor.name.substr(0, tensor.name.size() - kScaleSuffix.size());
    StatusOr<Distribution> distribution = distributionOf(tensor);
    if (!distribution.ok())
      return distribution.status().withPrefix(planName + ": ");
    plan.distribution = *distribution;
    plan.stream = streamOf(seed, tensor.name);
    std::optional<uint64_t> byteSize =
        dsv3::tensorByteSize(tensor.dtype, tensor.shape);
    if (!byteSize) // verifyPlan rejects such shapes; never trust, though
      return Status::error("{}: tensor '{}': shape {} has no byte size",
                           planName, tensor.name,
                           dsv3::formatShape(tensor.shape));
    plan.byteSize = *byteSize;
    if (plan.distribution == Distribution::Linear)
      plan.stddev =
          1.0f / std::sqrt(float(std::max<int64_t>(tensor.shape[1], 1)));
    if (routing == Routing::Pinned) {
      if (endsWith(tensor.name, "mlp.gate.weight"))
        plan.stddev *= 1e-3f;
      if (plan.distribution == Distribution::RouterBias) {
        plan.biasLow = -1.0f;
        plan.biasHigh = 1.0f;
      }
    }
    indexByName[tensor.name] = i;
  }

  for (PlannedTensor &plan : plans) {
    if (plan.distribution != Distribution::BlockScale)
      continue;
    const SourceTensor &tensor = plan.tensor;
    auto weightIndex = indexByName.find(tensor.scaleOf);
    if (weightIndex == indexByName.end())
      return Status::error("{}: tensor '{}' holds block scales of '{}', which "
                           "the plan does not read",
                           planName, tensor.name, tensor.scaleOf);
    PlannedTensor &weight = plans[weightIndex->second];
    if (weight.tensor.dtype != Dtype::F8_E4M3 ||
        weight.tensor.shape.size() != 2 || tensor.dtype != Dtype::F32 ||
        tensor.shape.size() != 2)
      return Status::error("{}: tensor '{}' ({} {}) is not F32 block scales "
                           "of a 2-D F8_E4M3 weight: '{}' is {} {}",
                           planName, tensor.name, dsv3::dtypeName(tensor.dtype),
                           dsv3::formatShape(tensor.shape), tensor.scaleOf,
                           dsv3::dtypeName(weight.tensor.dtype),
                           dsv3::formatShape(weight.tensor.shape));
    auto scales = std::make_shared<BlockScales>();
    scales->rows = weight.tensor.shape[0];
    scales->cols = weight.tensor.shape[1];
    scales->blockRows = quantization.blockRows;
    scales->blockCols = quantization.blockCols;
    scales->scaleRows = tensor.shape[0];
    scales->scaleCols = tensor.shape[1];
    // Partial edge blocks count: 576 rows in blocks of 128 are 5 blocks.
    std::vector<int64_t> grid = {
        (scales->rows + scales->blockRows - 1) / scales->blockRows,
        (scales->cols + scales->blockCols - 1) / scales->blockCols};
    if (tensor.shape != grid)
      return Status::error("{}: tensor '{}' has shape {}, but '{}' {} in "
                           "blocks of [{}, {}] ({}) needs {}",
                           planName, tensor.name,
                           dsv3::formatShape(tensor.shape), tensor.scaleOf,
                           dsv3::formatShape(weight.tensor.shape),
                           quantization.blockRows, quantization.blockCols,
                           quantization.origin, dsv3::formatShape(grid));
    scales->powerOfTwo = quantization.powerOfTwoScales;
    scales->scales.assign(size_t(scales->scaleRows * scales->scaleCols), 0.0f);
    scales->rowDone.reset(new std::once_flag[size_t(scales->scaleRows)]);
    weight.blockScales = scales;
    plan.blockScales = scales;
    plan.weightStream = weight.stream;
    plan.weightStddev = weight.stddev;
  }

  // An FP8 weight without its scales would be a checkpoint no reader can
  // dequantize; a plan asking for one is wrong.
  for (const PlannedTensor &plan : plans)
    if (plan.tensor.dtype == Dtype::F8_E4M3 && !plan.blockScales)
      return Status::error("{}: tensor '{}' is F8_E4M3, but the plan does not "
                           "read its block scales '{}{}'",
                           planName, plan.tensor.name, plan.tensor.name,
                           kScaleSuffix);
  return plans;
}

/// Fill granularity for the writer: whole rows of blocks for FP8 weights, the
/// whole (small) tensor for scales, elements otherwise.
uint64_t fillGranularity(const PlannedTensor &plan) {
  if (plan.distribution == Distribution::BlockScale)
    return 0;
  if (plan.blockScales)
    return uint64_t(plan.blockScales->blockRows * plan.blockScales->cols);
  return dsv3::dtypeSize(plan.tensor.dtype);
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

// nlohmann's ordered_json: it keeps the input's key order and prints numbers
// in their shortest form (1e-06, not 9.9999999999999995e-07), so a
// config.json that transformers wrote comes back as it was.
using OrderedJson = nlohmann::ordered_json;

/// "a string", "an array", ...: a JSON value's kind, for messages.
const char *kindOf(const OrderedJson &value) {
  switch (value.type()) {
  case OrderedJson::value_t::null:
    return "null";
  case OrderedJson::value_t::object:
    return "an object";
  case OrderedJson::value_t::array:
    return "an array";
  case OrderedJson::value_t::string:
    return "a string";
  case OrderedJson::value_t::boolean:
    return "a boolean";
  case OrderedJson::value_t::number_integer:
  case OrderedJson::value_t::number_unsigned:
    return "an integer";
  case OrderedJson::value_t::number_float:
    return "a number";
  default:
    return "a value";
  }
}

/// The JSON object in the file at `path`.
StatusOr<OrderedJson> readJsonObject(const std::string &path) {
  DSV3_ASSIGN_OR_RETURN(std::string text, dsv3::readTextFile(path));
  OrderedJson root = OrderedJson::parse(text, nullptr,
                                        /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    if (std::optional<dsv3::JsonSyntaxError> syntax =
            dsv3::findJsonSyntaxError(text))
      return Status::error("{}: not valid JSON: {} (at byte {})", path,
                           syntax->reason, syntax->offset);
    return Status::error("{}: not valid JSON", path);
  }
  if (!root.is_object())
    return Status::error("{}: top level is {}, expected a JSON object", path,
                         kindOf(root));
  return root;
}

/// CONFIG becomes the checkpoint's config.json, from which transformers
/// builds the model: it must be a Hugging Face config of the model the plan
/// was compiled for. The fields the plan records are compared.
Status checkConfigMatchesPlan(const OrderedJson &config,
                              const std::string &path,
                              const dsv3::plan::PlanFile &planFile) {
  auto type = config.find("model_type");
  if (type == config.end()) {
    if (config.contains("dim"))
      return Status::error(
          "{}: a DeepSeek inference config ('dim', no 'model_type'); CONFIG "
          "becomes the checkpoint's config.json, which transformers reads, so "
          "give the model's Hugging Face config.json",
          path);
    return Status::error("{}: not a Hugging Face config.json (no "
                         "'model_type')",
                         path);
  }
  if (!type->is_string() || type->get<std::string>() != "deepseek_v3")
    return Status::error("{}: field 'model_type' is {}, expected "
                         "\"deepseek_v3\"",
                         path, type->dump());

  const dsv3::plan::Model &model = *planFile.plan().model(); // verifyPlan
  struct Field {
    const char *name;
    int64_t planValue;
    std::optional<int64_t> defaultValue; ///< transformers' default
  };
  const Field fields[] = {
      {"vocab_size", model.vocab_size(), std::nullopt},
      {"hidden_size", model.hidden_size(), std::nullopt},
      {"num_hidden_layers", model.num_layers(), std::nullopt},
      {"num_nextn_predict_layers", model.num_mtp_layers(), 0},
  };
  // A malformed config is reported as such before any difference in value.
  int64_t configValues[std::size(fields)];
  for (std::size_t f = 0; f < std::size(fields); ++f) {
    const Field &field = fields[f];
    auto value = config.find(field.name);
    if (value == config.end()) {
      if (!field.defaultValue)
        return Status::error("{}: missing required field '{}'", path,
                             field.name);
      configValues[f] = *field.defaultValue;
    } else if (!value->is_number_integer()) {
      return Status::error("{}: field '{}': expected an integer, got {}", path,
                           field.name, kindOf(*value));
    } else {
      configValues[f] = value->get<int64_t>();
    }
  }
  for (std::size_t f = 0; f < std::size(fields); ++f) {
    const Field &field = fields[f];
    const int64_t configValue = configValues[f];
    if (configValue != field.planValue)
      return Status::error("{}: field '{}' is {}, but {} was compiled for {} "
                           "(CONFIG must be the config the plan was compiled "
                           "from)",
                           path, field.name, configValue, planFile.name(),
                           field.planValue);
  }
  return Status::success();
}

/// The FP8 quantization `config` describes: quantization_config's
/// weight_block_size ([128, 128] without one, as in dsv3c) and scale_fmt.
StatusOr<BlockQuantization> readBlockQuantization(const OrderedJson &config,
                                                  const std::string &path) {
  BlockQuantization quantization;
  quantization.origin = fmt::format(
      "the default: {} sets no quantization_config.weight_block_size", path);
  auto settings = config.find("quantization_config");
  if (settings == config.end() || settings->is_null())
    return quantization;
  if (!settings->is_object())
    return Status::error("{}: field 'quantization_config': expected an "
                         "object, got {}",
                         path, kindOf(*settings));
  auto method = settings->find("quant_method");
  if (method == settings->end())
    return Status::error("{}: missing required field "
                         "'quantization_config.quant_method'",
                         path);
  if (!method->is_string() || method->get<std::string>() != "fp8")
    return Status::error("{}: field 'quantization_config.quant_method': "
                         "unsupported quantization method {} (expected "
                         "\"fp8\")",
                         path, method->dump());
  auto block = settings->find("weight_block_size");
  if (block != settings->end()) {
    auto positive = [](const OrderedJson &size) {
      return size.is_number_integer() && size.get<int64_t>() >= 1;
    };
    if (!block->is_array() || block->size() != 2 || !positive((*block)[0]) ||
        !positive((*block)[1]))
      return Status::error("{}: field 'quantization_config.weight_block_size': "
                           "expected two positive integers, got {}",
                           path, block->dump());
    quantization.blockRows = (*block)[0].get<int64_t>();
    quantization.blockCols = (*block)[1].get<int64_t>();
    quantization.origin =
        fmt::format("quantization_config.weight_block_size of {}", path);
  }
  auto scaleFormat = settings->find("scale_fmt");
  if (scaleFormat != settings->end() && !scaleFormat->is_null()) {
    if (!scaleFormat->is_string() ||
        scaleFormat->get<std::string>() != "ue8m0")
      return Status::error("{}: field 'quantization_config.scale_fmt': "
                           "unsupported scale format {} (expected \"ue8m0\" "
                           "or null)",
                           path, scaleFormat->dump());
    quantization.powerOfTwoScales = true;
  }
  return quantization;
}

/// The config.json to write: CONFIG with quantization_config removed (BF16
/// weights) or, for FP8 weights, kept, or added with the default 128x128
/// blocks the scales were then made with.
std::string outputConfigText(OrderedJson config, bool fp8) {
  if (!fp8) {
    config.erase("quantization_config");
  } else {
    auto settings = config.find("quantization_config");
    if (settings == config.end() || settings->is_null()) {
      BlockQuantization defaults;
      config["quantization_config"] = {
          {"activation_scheme", "dynamic"},
          {"fmt", "e4m3"},
          {"quant_method", "fp8"},
          {"weight_block_size", {defaults.blockRows, defaults.blockCols}}};
    }
  }
  return config.dump(2) + "\n";
}

//===----------------------------------------------------------------------===//
// random
//===----------------------------------------------------------------------===//

struct RandomOptions {
  std::string planPath, configPath, outDir;
  uint64_t seed = 0;
  uint64_t shardSize = 5'000'000'000ULL; // Hugging Face's "5GB"
  unsigned threads = 0;
  Routing routing = Routing::Random;
};

std::optional<uint64_t> parseUnsigned(std::string_view text) {
  uint64_t value;
  const char *end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end)
    return std::nullopt;
  return value;
}

/// "5000000000", "5GB", "500MiB": bytes.
std::optional<uint64_t> parseByteSize(std::string_view text) {
  static const std::pair<const char *, uint64_t> kSuffixes[] = {
      {"kib", 1ULL << 10}, {"mib", 1ULL << 20}, {"gib", 1ULL << 30},
      {"kb", 1000ULL},     {"mb", 1000000ULL},  {"gb", 1000000000ULL},
      {"b", 1}};
  std::string lower(text);
  for (char &c : lower)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  std::string_view number(lower);
  uint64_t unit = 1;
  for (const auto &[suffix, factor] : kSuffixes)
    if (endsWith(number, suffix)) {
      number.remove_suffix(std::strlen(suffix));
      unit = factor;
      break;
    }
  std::optional<uint64_t> count = parseUnsigned(number);
  uint64_t bytes;
  if (!count || __builtin_mul_overflow(*count, unit, &bytes) || bytes == 0)
    return std::nullopt;
  return bytes;
}

StatusOr<RandomOptions> parseRandomOptions(int argc, char **argv) {
  RandomOptions options;
  std::vector<std::string> positional;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto isFlag = [&](std::string_view flag) {
      std::string_view rest = arg;
      return arg == flag || (consumePrefix(rest, flag) && !rest.empty() &&
                             rest.front() == '=');
    };
    auto value = [&](std::string_view flag) -> StatusOr<std::string_view> {
      std::string_view rest = arg;
      if (consumePrefix(rest, flag) && consumePrefix(rest, "="))
        return rest;
      if (i + 1 >= argc)
        return Status::error("{} needs a value", flag);
      return std::string_view(argv[++i]);
    };
    if (arg == "--fp8" || arg == "--bf16") {
      // Gone since the plan names every tensor with its dtype.
      return Status::error("random: {} is gone: the plan decides the weight "
                           "format (compile it with dsv3c --weight-dtype={})",
                           arg, arg.substr(2));
    } else if (isFlag("--seed")) {
      DSV3_ASSIGN_OR_RETURN(std::string_view text, value("--seed"));
      std::optional<uint64_t> seed = parseUnsigned(text);
      if (!seed)
        return Status::error("--seed: expected a non-negative integer, got "
                             "'{}'",
                             text);
      options.seed = *seed;
    } else if (isFlag("--shard-size")) {
      DSV3_ASSIGN_OR_RETURN(std::string_view text, value("--shard-size"));
      std::optional<uint64_t> size = parseByteSize(text);
      if (!size)
        return Status::error("--shard-size: expected a positive number of "
                             "bytes (e.g. 5GB, 500MiB, 100000), got '{}'",
                             text);
      options.shardSize = *size;
    } else if (arg == "--pinned-routing") {
      options.routing = Routing::Pinned;
    } else if (isFlag("--threads")) {
      DSV3_ASSIGN_OR_RETURN(std::string_view text, value("--threads"));
      std::optional<uint64_t> threads = parseUnsigned(text);
      if (!threads || *threads == 0 || *threads > 4096)
        return Status::error("--threads: expected 1 to 4096, got '{}'", text);
      options.threads = unsigned(*threads);
    } else if (arg.size() > 1 && arg.front() == '-') {
      return Status::error("random: unknown option '{}' (see dsv3-ckpt --help)",
                           arg);
    } else {
      positional.emplace_back(arg);
    }
  }
  if (positional.size() != 3)
    return Status::error("random: expected PLAN, CONFIG and OUT_DIR, got {} "
                         "arguments (see dsv3-ckpt --help)",
                         positional.size());
  options.planPath = positional[0];
  options.configPath = positional[1];
  options.outDir = positional[2];
  return options;
}

/// Tensor indices per shard, packed greedily in order like Hugging Face's
/// split_torch_state_dict_into_shards: a new shard starts when the next
/// tensor would push the current one past the limit.
std::vector<std::vector<std::size_t>>
planShards(const std::vector<PlannedTensor> &plans, uint64_t shardSize) {
  std::vector<std::vector<std::size_t>> shards(1);
  uint64_t current = 0;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (!shards.back().empty() && current + plans[i].byteSize > shardSize) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += plans[i].byteSize;
  }
  return shards;
}

bool consumeDigits(std::string_view &text) {
  std::size_t count = 0;
  while (count < text.size() && text[count] >= '0' && text[count] <= '9')
    ++count;
  text.remove_prefix(count);
  return count > 0;
}

/// A checkpoint file dsv3-ckpt (or Hugging Face) writes into a directory:
/// model.safetensors, the index, or model-<digits>-of-<digits>.safetensors.
bool isCheckpointFileName(std::string_view name) {
  if (name == dsv3::kSingleFileName || name == dsv3::kIndexFileName)
    return true;
  return consumePrefix(name, "model-") && consumeDigits(name) &&
         consumePrefix(name, "-of-") && consumeDigits(name) &&
         name == ".safetensors";
}

/// Removes the checkpoint files of `directory` (index first, so that no
/// moment exists where an index names shards already gone).
Status removeCheckpointFiles(const std::string &directory) {
  namespace fs = std::filesystem;
  std::vector<fs::path> doomed;
  std::error_code error;
  for (fs::directory_iterator entry(directory, error), end;
       !error && entry != end; entry.increment(error))
    if (isCheckpointFileName(entry->path().filename().string()))
      doomed.push_back(entry->path());
  if (error)
    return Status::error("{}: cannot list: {}", directory, error.message());
  std::stable_partition(doomed.begin(), doomed.end(), [](const fs::path &p) {
    return p.filename() == dsv3::kIndexFileName;
  });
  for (const fs::path &path : doomed)
    if (!fs::remove(path, error) && error)
      return Status::error("{}: cannot remove the previous checkpoint file: {}",
                           path.string(), error.message());
  return Status::success();
}

/// Progress on stderr for large outputs: one line, rewritten in place on a
/// terminal, a new line every few seconds otherwise.
class ProgressLine {
public:
  explicit ProgressLine(uint64_t total)
      : total_(total), enabled_(total >= (512ULL << 20)),
        terminal_(::isatty(STDERR_FILENO)),
        start_(std::chrono::steady_clock::now()), last_(start_) {}

  void update(const std::string &file, uint64_t done, bool final = false) {
    if (!enabled_)
      return;
    auto now = std::chrono::steady_clock::now();
    auto interval = terminal_ ? std::chrono::milliseconds(250)
                              : std::chrono::milliseconds(5000);
    if (!final && now - last_ < interval)
      return;
    last_ = now;
    double seconds = std::chrono::duration<double>(now - start_).count();
    fmt::print(stderr,
               "{}dsv3-ckpt: {}: {:.2f} of {:.2f} GB ({:.0f}%), {:.0f} MB/s{}",
               terminal_ ? "\r" : "", file, double(done) / 1e9,
               double(total_) / 1e9,
               100.0 * double(done) / double(std::max<uint64_t>(total_, 1)),
               seconds > 0 ? double(done) / 1e6 / seconds : 0.0,
               terminal_ && !final ? "" : "\n");
  }

  /// Ends a line left open on a terminal, before an error message.
  void abandon() {
    if (enabled_ && terminal_ && last_ != start_)
      std::fputs("\n", stderr);
  }

private:
  uint64_t total_;
  bool enabled_, terminal_;
  std::chrono::steady_clock::time_point start_, last_;
};

int runRandom(int argc, char **argv) {
  StatusOr<RandomOptions> parsedOptions = parseRandomOptions(argc, argv);
  if (!parsedOptions.ok())
    return fail(parsedOptions.status().message());
  const RandomOptions &options = *parsedOptions;

  StatusOr<dsv3::plan::PlanFile> planFile =
      dsv3::plan::PlanFile::open(options.planPath);
  if (!planFile.ok())
    return fail(planFile.status().message());
  StatusOr<std::vector<SourceTensor>> sources = planSources(*planFile);
  if (!sources.ok())
    return fail(sources.status().message());
  // The plan decides the format: FP8 when any tensor it reads is FP8.
  const bool fp8 = std::any_of(
      sources->begin(), sources->end(),
      [](const SourceTensor &tensor) { return tensor.dtype == Dtype::F8_E4M3; });

  StatusOr<OrderedJson> config = readJsonObject(options.configPath);
  if (!config.ok())
    return fail(config.status().message());
  if (Status status =
          checkConfigMatchesPlan(*config, options.configPath, *planFile);
      !status.ok())
    return fail(status.message());
  BlockQuantization quantization; // unused without FP8 tensors
  if (fp8) {
    StatusOr<BlockQuantization> read =
        readBlockQuantization(*config, options.configPath);
    if (!read.ok())
      return fail(read.status().message());
    quantization = *read;
  }
  StatusOr<std::vector<PlannedTensor>> planned =
      planTensors(*sources, options.routing, quantization, options.seed,
                  planFile->name());
  if (!planned.ok())
    return fail(planned.status().message());
  if (fp8)
    if (Status status = checkDequantizeBlocks(*planFile, quantization);
        !status.ok())
      return fail(status.message());
  const std::string outputConfig = outputConfigText(*config, fp8);
  std::vector<PlannedTensor> &plans = *planned;
  std::vector<std::vector<std::size_t>> shards =
      planShards(plans, options.shardSize);
  uint64_t totalBytes = 0;
  for (const PlannedTensor &plan : plans)
    totalBytes += plan.byteSize;

  // Everything that can be checked is checked; now touch the directory.
  std::error_code error;
  std::filesystem::create_directories(options.outDir, error);
  if (error)
    return fail(fmt::format("{}: cannot create directory: {}", options.outDir,
                            error.message()));
  if (!std::filesystem::is_directory(options.outDir, error))
    return fail(options.outDir + ": not a directory");
  if (Status status = removeCheckpointFiles(options.outDir); !status.ok())
    return fail(status.message());
  if (Status status = dsv3::writeFileAtomically(
          options.outDir + "/config.json", outputConfig);
      !status.ok())
    return fail(status.message());

  // Shards become visible one by one; the index, written last, makes them a
  // checkpoint. On failure the files written so far go again.
  std::vector<std::string> written;
  ProgressLine progress(totalBytes);
  auto failAndClean = [&](const std::string &message) {
    std::error_code ignored;
    for (auto path = written.rbegin(); path != written.rend(); ++path)
      std::filesystem::remove(*path, ignored);
    progress.abandon();
    return fail(message);
  };
  uint64_t bytesBefore = 0;
  std::map<std::string, std::string> weightMap;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    std::string fileName = shards.size() == 1
                               ? std::string(dsv3::kSingleFileName)
                               : dsv3::shardFileName(s + 1, shards.size());
    dsv3::SafetensorsWriter writer;
    Status status = writer.setMetadata("format", "pt");
    for (std::size_t index : shards[s]) {
      if (!status.ok())
        break;
      const PlannedTensor &plan = plans[index];
      status = writer.addTensor(
          plan.tensor.name, plan.tensor.dtype, plan.tensor.shape,
          [&plan](uint64_t offset, std::uint8_t *out, std::size_t size) {
            return fillTensor(plan, offset, out, size);
          },
          fillGranularity(plan));
      weightMap[plan.tensor.name] = fileName;
    }
    if (!status.ok())
      return failAndClean(status.message());

    dsv3::SafetensorsWriteOptions writeOptions;
    writeOptions.threads = options.threads;
    writeOptions.progress = [&](uint64_t done, uint64_t) {
      progress.update(fileName, bytesBefore + done);
    };
    std::string path = options.outDir + "/" + fileName;
    status = writer.write(path, writeOptions);
    if (!status.ok())
      return failAndClean(status.message());
    written.push_back(path);
    bytesBefore += writer.dataSize();
  }
  progress.update(shards.size() == 1 ? dsv3::kSingleFileName : "shards",
                  totalBytes, /*final=*/true);
  if (shards.size() > 1) {
    if (Status status =
            dsv3::writeCheckpointIndex(options.outDir, weightMap, totalBytes);
        !status.ok())
      return failAndClean(status.message());
    written.push_back(options.outDir + "/" + dsv3::kIndexFileName);
  }

  // Read the directory back the way dsv3-run does and check every tensor the
  // plan reads, rather than trust the writer.
  {
    StatusOr<dsv3::Checkpoint> reread = dsv3::Checkpoint::open(options.outDir);
    if (!reread.ok())
      return failAndClean("internal error: the checkpoint written does not "
                          "open: " +
                          reread.status().message());
    for (const PlannedTensor &plan : plans)
      if (Status status = reread->checkTensor(
              plan.tensor.name, plan.tensor.dtype, plan.tensor.shape);
          !status.ok())
        return failAndClean("internal error: the checkpoint written does not "
                            "match the plan: " +
                            status.message());
    if (reread->tensorCount() != plans.size())
      return failAndClean(fmt::format(
          "internal error: {}: the checkpoint written holds {} tensors, the "
          "plan reads {}",
          options.outDir, reread->tensorCount(), plans.size()));
  }

  fmt::print("{}: {} tensors, {} bytes in {} ({}), seed {}\n", options.outDir,
             plans.size(), totalBytes,
             shards.size() == 1 ? std::string(dsv3::kSingleFileName)
                                : fmt::format("{} shards", shards.size()),
             fp8 ? "FP8" : "BF16", options.seed);
  return 0;
}

//===----------------------------------------------------------------------===//
// ls and stats
//===----------------------------------------------------------------------===//

int runList(int argc, char **argv) {
  if (argc != 3)
    return fail("ls: expected one checkpoint directory (see dsv3-ckpt --help)");
  StatusOr<dsv3::Checkpoint> checkpoint = dsv3::Checkpoint::open(argv[2]);
  if (!checkpoint.ok())
    return fail(checkpoint.status().message());
  for (const dsv3::Checkpoint::Location &location : checkpoint->tensors())
    fmt::print("{} {} {}\n", location.tensor->name,
               dsv3::dtypeName(location.tensor->dtype),
               dsv3::formatShape(location.tensor->shape));
  return 0;
}

/// Element `i` of `tensor` as a float; nullopt for dtypes without a float
/// meaning here.
std::optional<float> elementAsFloat(const dsv3::TensorInfo &tensor,
                                    uint64_t i) {
  const std::uint8_t *bytes = tensor.bytes.data;
  switch (tensor.dtype) {
  case Dtype::F32: {
    float value;
    std::memcpy(&value, bytes + 4 * i, 4);
    return value;
  }
  case Dtype::BF16: {
    uint16_t bits;
    std::memcpy(&bits, bytes + 2 * i, 2);
    return fromBf16(bits);
  }
  case Dtype::F16: {
    _Float16 half;
    std::memcpy(&half, bytes + 2 * i, 2);
    return float(half);
  }
  case Dtype::F8_E4M3:
    return fromE4M3(bytes[i]);
  default:
    return std::nullopt;
  }
}

int runStats(int argc, char **argv) {
  if (argc < 3)
    return fail("stats: expected a checkpoint directory (see dsv3-ckpt --help)");
  std::string directory = argv[2];
  StatusOr<dsv3::Checkpoint> checkpoint = dsv3::Checkpoint::open(directory);
  if (!checkpoint.ok())
    return fail(checkpoint.status().message());
  // The block size of FP8 scales is in config.json; 128×128 without one.
  BlockQuantization quantization;
  std::string configPath = directory + "/config.json";
  std::error_code error;
  if (std::filesystem::exists(configPath, error)) {
    StatusOr<OrderedJson> config = readJsonObject(configPath);
    if (!config.ok())
      return fail(config.status().message());
    StatusOr<BlockQuantization> read =
        readBlockQuantization(*config, configPath);
    if (!read.ok())
      return fail(read.status().message());
    quantization = *read;
  }
  const int64_t blockRows = quantization.blockRows;
  const int64_t blockCols = quantization.blockCols;

  std::vector<const dsv3::TensorInfo *> selected;
  for (int i = 3; i < argc; ++i) {
    const dsv3::TensorInfo *tensor = checkpoint->find(argv[i]);
    if (!tensor)
      return fail(fmt::format("{}: no tensor '{}'", directory, argv[i]));
    selected.push_back(tensor);
  }
  if (argc == 3)
    for (const dsv3::Checkpoint::Location &location : checkpoint->tensors())
      selected.push_back(location.tensor);

  for (const dsv3::TensorInfo *tensor : selected) {
    const dsv3::TensorInfo *scale =
        tensor->dtype == Dtype::F8_E4M3
            ? checkpoint->find(tensor->name + "_scale_inv")
            : nullptr;
    if (scale && (tensor->shape.size() != 2 || scale->dtype != Dtype::F32 ||
                  scale->shape !=
                      std::vector<int64_t>{
                          (tensor->shape[0] + blockRows - 1) / blockRows,
                          (tensor->shape[1] + blockCols - 1) / blockCols}))
      return fail(fmt::format("{}_scale_inv: not F32 block scales of {}x{} "
                              "blocks of '{}'",
                              tensor->name, blockRows, blockCols,
                              tensor->name));
    double sum = 0, sumSquares = 0;
    float low = INFINITY, high = -INFINITY;
    uint64_t count = tensor->numel();
    // Blocks whose largest |code| is 448, the top of the e4m3 range.
    std::vector<float> blockCodeMax;
    int64_t cols = tensor->shape.size() == 2 ? tensor->shape[1] : 1;
    int64_t scaleCols = scale ? scale->shape[1] : 0;
    if (scale)
      blockCodeMax.assign(scale->shape[0] * scaleCols, 0.0f);
    bool numeric = true;
    for (uint64_t i = 0; i < count && numeric; ++i) {
      std::optional<float> value = elementAsFloat(*tensor, i);
      if (!value) {
        numeric = false;
        break;
      }
      float element = *value;
      if (scale) {
        int64_t row = int64_t(i) / cols, col = int64_t(i) % cols;
        int64_t block = (row / blockRows) * scaleCols + col / blockCols;
        float blockScale;
        std::memcpy(&blockScale, scale->bytes.data + 4 * block, 4);
        blockCodeMax[block] = std::max(blockCodeMax[block], std::fabs(element));
        element *= blockScale;
      }
      sum += element;
      sumSquares += double(element) * element;
      low = std::min(low, element);
      high = std::max(high, element);
    }
    std::string line =
        fmt::format("{} {} {}", tensor->name, dsv3::dtypeName(tensor->dtype),
                    dsv3::formatShape(tensor->shape));
    if (numeric && count > 0) {
      double mean = sum / double(count);
      double variance = std::max(0.0, sumSquares / double(count) - mean * mean);
      line += fmt::format(" mean {:.3e} std {:.3e} min {:.3e} max {:.3e}", mean,
                          std::sqrt(variance), double(low), double(high));
      if (scale) {
        std::size_t full = 0;
        for (float codeMax : blockCodeMax)
          full += codeMax == 448.0f;
        line += fmt::format(" full-range blocks {}/{}", full,
                            blockCodeMax.size());
      }
    }
    fmt::print("{}\n", line);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::string_view command = argc > 1 ? argv[1] : "";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || (i == 1 && arg == "help")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (command == "random")
    return runRandom(argc, argv);
  if (command == "ls")
    return runList(argc, argv);
  if (command == "stats")
    return runStats(argc, argv);
  if (command.empty())
    return fail("expected a command: random, ls or stats (see dsv3-ckpt "
                "--help)");
  return fail(fmt::format("unknown command '{}' (expected random, ls or "
                          "stats; see dsv3-ckpt --help)",
                          command));
}
