//===- dsv3-ckpt.cpp - random checkpoints, and listing checkpoints --------===//
//
// dsv3-ckpt random CONFIG OUT_DIR [--fp8|--bf16] [--seed N] [--shard-size B]
// dsv3-ckpt ls DIR
// dsv3-ckpt stats DIR [TENSOR...]
//
// `random` writes a checkpoint in exactly Hugging Face's layout and names for
// any DeepSeek-V3-family configuration, so that the runtime and transformers
// can be tested on models nobody trained. The tensor list is the compiler's
// (the same `dsv3.weight` ops `dsv3c --emit=weights` prints), so a checkpoint
// written here has exactly what a compiled plan asks for. Values depend only on
// the seed and each tensor's name (a counter-based generator), never on the
// number of threads or shards, and are generated in parallel straight into the
// output files.
//
//===----------------------------------------------------------------------===//

#include "compiler/CheckpointTensors.h"
#include "compiler/Compiler.h"
#include "frontend/ModelConfig.h"
#include "runtime/Checkpoint.h"
#include "runtime/Safetensors.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using dsv3::Dtype;
using dsv3::Status;
using dsv3::StatusOr;

namespace {

const char kUsage[] = R"(dsv3-ckpt: random DeepSeek-V3-family checkpoints in Hugging Face's layout

USAGE:
  dsv3-ckpt random CONFIG OUT_DIR [--fp8 | --bf16] [--seed N] [--shard-size BYTES] [--threads N]
  dsv3-ckpt ls DIR
  dsv3-ckpt stats DIR [TENSOR...]

random   Writes a checkpoint with every tensor the compiler reads for CONFIG (a
         Hugging Face config.json or a DeepSeek inference config), filled with
         random values, plus OUT_DIR/config.json so that transformers can load
         the directory. Previous checkpoint files in OUT_DIR are replaced.
  --fp8             FP8 (e4m3) weights with 128x128 block scales when CONFIG has
                    no quantization_config (CONFIG's own block size otherwise)
  --bf16            BF16 weights, no scales (quantization_config removed)
                    (default: as CONFIG says)
  --seed N          values are a function of N and each tensor's name (default 0)
  --shard-size B    one model.safetensors when the tensors total at most B
                    bytes, else shards of at most B bytes (a bigger tensor gets
                    its own) and model.safetensors.index.json; B may end in
                    KB, MB, GB (powers of 1000, as Hugging Face) or KiB, MiB,
                    GiB (default 5GB)
  --threads N       generating threads (default: one per hardware thread)

ls       Prints every tensor of the checkpoint in DIR as `name dtype [shape]`,
         sorted by name (compare with `dsv3c CONFIG --emit=weights | sort`).

stats    Prints mean, standard deviation, min and max of every tensor (or of
         the TENSORs named), FP8 weights dequantized with their block scales,
         and for those the number of blocks whose largest value uses the full
         e4m3 range (448).
)";

int fail(const std::string &message) {
  llvm::errs() << "dsv3-ckpt: error: " << message << "\n";
  return 1;
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
  dsv3::CheckpointTensor tensor;
  Dtype dtype = Dtype::F32;
  Distribution distribution = Distribution::Linear;
  uint64_t stream = 0;
  uint64_t byteSize = 0;
  float stddev = 1.0f;
  /// For an FP8 weight and for its scale tensor: the weight's scales. The
  /// scale tensor's values come from the weight's stream.
  std::shared_ptr<BlockScales> blockScales;
  uint64_t weightStream = 0;
  float weightStddev = 1.0f;
};

bool endsWith(const std::string &text, llvm::StringRef suffix) {
  return llvm::StringRef(text).ends_with(suffix);
}

StatusOr<Distribution> distributionOf(const dsv3::CheckpointTensor &tensor) {
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
                       tensor.name, tensor.dtype,
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
  case Dtype::F8_E4M3: // unscaled; only reached for tensors without scales
    for (std::size_t i = 0; i < count; ++i)
      out[i] = toE4M3(values[i]);
    break;
  default:
    std::abort(); // planTensors admits only the dtypes above
  }
}

/// Produces bytes [offset, offset + size) of `plan`.
Status fillTensor(const PlannedTensor &plan, uint64_t offset, std::uint8_t *out,
                  std::size_t size) {
  thread_local std::vector<float> values;
  const std::size_t elementSize = dsv3::dtypeSize(plan.dtype);

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
      generateUniform(plan.stream, first + done, batch, -0.1f, 0.1f,
                      values.data());
      break;
    case Distribution::BlockScale:
      break; // handled above
    }
    encode(plan.dtype, values.data(), batch, out + done * elementSize);
  }
  return Status::success();
}

/// Decides dtype, distribution, stream and block scales of every tensor.
StatusOr<std::vector<PlannedTensor>>
planTensors(const std::vector<dsv3::CheckpointTensor> &tensors,
            const dsv3::ModelConfig &config, uint64_t seed) {
  std::vector<PlannedTensor> plans(tensors.size());
  std::map<std::string, std::size_t> indexByName;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    PlannedTensor &plan = plans[i];
    plan.tensor = tensors[i];
    const dsv3::CheckpointTensor &tensor = plan.tensor;
    std::optional<Dtype> dtype = dsv3::parseDtype(tensor.dtype);
    if (!dtype || (*dtype != Dtype::F32 && *dtype != Dtype::BF16 &&
                   *dtype != Dtype::F16 && *dtype != Dtype::F8_E4M3))
      return Status::error("tensor '{}': cannot generate dtype '{}'",
                           tensor.name, tensor.dtype);
    plan.dtype = *dtype;
    DSV3_ASSIGN_OR_RETURN(plan.distribution, distributionOf(tensor));
    plan.stream = streamOf(seed, tensor.name);
    plan.byteSize = *dsv3::tensorByteSize(plan.dtype, tensor.shape);
    if (plan.distribution == Distribution::Linear)
      plan.stddev = 1.0f / std::sqrt(float(tensor.shape[1]));
    indexByName[tensor.name] = i;
  }

  for (PlannedTensor &plan : plans) {
    if (plan.distribution != Distribution::BlockScale)
      continue;
    const dsv3::CheckpointTensor &tensor = plan.tensor;
    auto weightIndex = indexByName.find(tensor.scaleOf);
    if (weightIndex == indexByName.end())
      return Status::error("tensor '{}': scales '{}', which is not in the "
                           "checkpoint",
                           tensor.name, tensor.scaleOf);
    PlannedTensor &weight = plans[weightIndex->second];
    if (weight.dtype != Dtype::F8_E4M3 || weight.tensor.shape.size() != 2 ||
        tensor.shape.size() != 2 || tensor.blockRows <= 0 ||
        tensor.blockCols <= 0)
      return Status::error("tensor '{}': block scales of '{}' ({} {}) are not "
                           "those of a 2-D F8_E4M3 weight",
                           tensor.name, tensor.scaleOf, weight.tensor.dtype,
                           dsv3::formatShape(weight.tensor.shape));
    auto scales = std::make_shared<BlockScales>();
    scales->rows = weight.tensor.shape[0];
    scales->cols = weight.tensor.shape[1];
    scales->blockRows = tensor.blockRows;
    scales->blockCols = tensor.blockCols;
    scales->scaleRows = tensor.shape[0];
    scales->scaleCols = tensor.shape[1];
    if (scales->scaleRows !=
            (scales->rows + scales->blockRows - 1) / scales->blockRows ||
        scales->scaleCols !=
            (scales->cols + scales->blockCols - 1) / scales->blockCols)
      return Status::error("tensor '{}': shape {} does not match {}x{} blocks "
                           "of '{}' {}",
                           tensor.name, dsv3::formatShape(tensor.shape),
                           tensor.blockRows, tensor.blockCols, tensor.scaleOf,
                           dsv3::formatShape(weight.tensor.shape));
    scales->powerOfTwo = config.fp8 && config.fp8->scaleFormat == "ue8m0";
    scales->scales.assign(size_t(scales->scaleRows * scales->scaleCols), 0.0f);
    scales->rowDone.reset(new std::once_flag[size_t(scales->scaleRows)]);
    weight.blockScales = scales;
    plan.blockScales = scales;
    plan.weightStream = weight.stream;
    plan.weightStddev = weight.stddev;
  }
  return plans;
}

/// Fill granularity for the writer: whole rows of blocks for FP8 weights, the
/// whole (small) tensor for scales, elements otherwise.
uint64_t fillGranularity(const PlannedTensor &plan) {
  if (plan.distribution == Distribution::BlockScale)
    return 0;
  if (plan.blockScales)
    return uint64_t(plan.blockScales->blockRows * plan.blockScales->cols);
  return dsv3::dtypeSize(plan.dtype);
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

// nlohmann's ordered_json rather than llvm::json: it keeps the input's key
// order and prints numbers in their shortest form (1e-06, not
// 9.9999999999999995e-07), so the config.json written reads like the input.
using OrderedJson = nlohmann::ordered_json;

OrderedJson quantizationConfig(const dsv3::Fp8Quantization &fp8) {
  OrderedJson quantization = {
      {"activation_scheme", "dynamic"},
      {"fmt", "e4m3"},
      {"quant_method", "fp8"},
      {"weight_block_size", {fp8.blockRows, fp8.blockCols}}};
  if (!fp8.scaleFormat.empty())
    quantization["scale_fmt"] = fp8.scaleFormat;
  return quantization;
}

/// A Hugging Face config.json for `config` (read from DeepSeek's inference
/// format, which transformers cannot load), field for field.
OrderedJson huggingFaceConfig(const dsv3::ModelConfig &config) {
  auto nullIfZero = [](int64_t value) {
    return value == 0 ? OrderedJson(nullptr) : OrderedJson(value);
  };
  OrderedJson hf = {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"torch_dtype", "bfloat16"},
      {"vocab_size", config.vocabSize},
      {"hidden_size", config.hiddenSize},
      {"intermediate_size", config.intermediateSize},
      {"moe_intermediate_size", config.moeIntermediateSize},
      {"num_hidden_layers", config.numHiddenLayers},
      {"first_k_dense_replace", config.firstKDenseReplace},
      {"moe_layer_freq", config.moeLayerFreq},
      {"num_nextn_predict_layers", config.numNextnPredictLayers},
      {"num_attention_heads", config.numAttentionHeads},
      {"num_key_value_heads", config.numAttentionHeads},
      {"q_lora_rank", nullIfZero(config.qLoraRank.value_or(0))},
      {"kv_lora_rank", config.kvLoraRank},
      {"qk_nope_head_dim", config.qkNopeHeadDim},
      {"qk_rope_head_dim", config.qkRopeHeadDim},
      {"v_head_dim", config.vHeadDim},
      {"n_routed_experts", nullIfZero(config.nRoutedExperts)},
      {"n_shared_experts", config.nSharedExperts},
      {"num_experts_per_tok", config.numExpertsPerTok},
      {"n_group", config.nGroup},
      {"topk_group", config.topkGroup},
      {"topk_method", dsv3::stringifyTopkMethod(config.topkMethod).str()},
      {"scoring_func", dsv3::stringifyScoringFunc(config.scoringFunc).str()},
      {"norm_topk_prob", config.normTopkProb},
      {"routed_scaling_factor", config.routedScalingFactor},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"max_position_embeddings", config.maxPositionEmbeddings},
      {"rms_norm_eps", config.rmsNormEps},
      {"rope_theta", config.ropeTheta},
      {"tie_word_embeddings", config.tieWordEmbeddings},
  };
  if (config.yarn)
    hf["rope_scaling"] = {
        {"type", "yarn"},
        {"rope_type", "yarn"},
        {"factor", config.yarn->factor},
        {"original_max_position_embeddings",
         config.yarn->originalMaxPositionEmbeddings},
        {"beta_fast", config.yarn->betaFast},
        {"beta_slow", config.yarn->betaSlow},
        {"mscale", config.yarn->mscale},
        {"mscale_all_dim", config.yarn->mscaleAllDim}};
  return hf;
}

/// The config.json to write: CONFIG's own text (a Hugging Face config) with
/// quantization_config set or removed to match the weights written, or a
/// translation of a DeepSeek inference config.
StatusOr<std::string> outputConfigText(llvm::StringRef inputText,
                                       const dsv3::ModelConfig &input,
                                       const dsv3::ModelConfig &output) {
  OrderedJson root;
  if (input.format == dsv3::ConfigFormat::HuggingFace) {
    root = OrderedJson::parse(inputText.begin(), inputText.end(), nullptr,
                              /*allow_exceptions=*/false);
    if (root.is_discarded() || !root.is_object()) // parseModelConfig took it
      return Status::error("{}: cannot re-read as a JSON object",
                           input.sourceName);
  } else {
    root = huggingFaceConfig(output);
  }
  if (!output.fp8)
    root.erase("quantization_config");
  else if (!input.fp8 || input.format != dsv3::ConfigFormat::HuggingFace)
    root["quantization_config"] = quantizationConfig(*output.fp8);
  return root.dump(2) + "\n";
}

//===----------------------------------------------------------------------===//
// random
//===----------------------------------------------------------------------===//

enum class Precision { AsConfig, Fp8, Bf16 };

struct RandomOptions {
  std::string configPath, outDir;
  Precision precision = Precision::AsConfig;
  uint64_t seed = 0;
  uint64_t shardSize = 5'000'000'000ULL; // Hugging Face's "5GB"
  unsigned threads = 0;
};

std::optional<uint64_t> parseUnsigned(llvm::StringRef text) {
  uint64_t value;
  if (text.empty() || text.getAsInteger(10, value))
    return std::nullopt;
  return value;
}

/// "5000000000", "5GB", "500MiB": bytes.
std::optional<uint64_t> parseByteSize(llvm::StringRef text) {
  static const std::pair<const char *, uint64_t> kSuffixes[] = {
      {"kib", 1ULL << 10}, {"mib", 1ULL << 20}, {"gib", 1ULL << 30},
      {"kb", 1000ULL},     {"mb", 1000000ULL},  {"gb", 1000000000ULL},
      {"b", 1}};
  std::string lower = text.lower();
  llvm::StringRef number(lower);
  uint64_t unit = 1;
  for (const auto &[suffix, factor] : kSuffixes)
    if (number.consume_back(suffix)) {
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
    llvm::StringRef arg = argv[i];
    auto value = [&](llvm::StringRef flag) -> StatusOr<llvm::StringRef> {
      if (arg.consume_front(flag.str() + "="))
        return arg;
      if (i + 1 >= argc)
        return Status::error("{} needs a value", flag.str());
      return llvm::StringRef(argv[++i]);
    };
    if (arg == "--fp8" || arg == "--bf16") {
      Precision precision = arg == "--fp8" ? Precision::Fp8 : Precision::Bf16;
      if (options.precision != Precision::AsConfig &&
          options.precision != precision)
        return Status::error("--fp8 and --bf16 exclude each other");
      options.precision = precision;
    } else if (arg == "--seed" || arg.starts_with("--seed=")) {
      DSV3_ASSIGN_OR_RETURN(llvm::StringRef text, value("--seed"));
      std::optional<uint64_t> seed = parseUnsigned(text);
      if (!seed)
        return Status::error("--seed: expected a non-negative integer, got "
                             "'{}'",
                             text.str());
      options.seed = *seed;
    } else if (arg == "--shard-size" || arg.starts_with("--shard-size=")) {
      DSV3_ASSIGN_OR_RETURN(llvm::StringRef text, value("--shard-size"));
      std::optional<uint64_t> size = parseByteSize(text);
      if (!size)
        return Status::error("--shard-size: expected a positive number of "
                             "bytes (e.g. 5GB, 500MiB, 100000), got '{}'",
                             text.str());
      options.shardSize = *size;
    } else if (arg == "--threads" || arg.starts_with("--threads=")) {
      DSV3_ASSIGN_OR_RETURN(llvm::StringRef text, value("--threads"));
      std::optional<uint64_t> threads = parseUnsigned(text);
      if (!threads || *threads == 0 || *threads > 4096)
        return Status::error("--threads: expected 1 to 4096, got '{}'",
                             text.str());
      options.threads = unsigned(*threads);
    } else if (arg.starts_with("-") && arg != "-") {
      return Status::error("random: unknown option '{}' (see dsv3-ckpt --help)",
                           arg.str());
    } else {
      positional.push_back(arg.str());
    }
  }
  if (positional.size() != 2)
    return Status::error("random: expected CONFIG and OUT_DIR, got {} "
                         "arguments (see dsv3-ckpt --help)",
                         positional.size());
  options.configPath = positional[0];
  options.outDir = positional[1];
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

/// A checkpoint file dsv3-ckpt (or Hugging Face) writes into a directory.
bool isCheckpointFileName(llvm::StringRef name) {
  static const llvm::Regex shard("^model-[0-9]+-of-[0-9]+\\.safetensors$");
  return name == dsv3::kSingleFileName || name == dsv3::kIndexFileName ||
         shard.match(name);
}

/// Removes the checkpoint files of `directory` (index first, so that no
/// moment exists where an index names shards already gone).
Status removeCheckpointFiles(const std::string &directory) {
  std::vector<std::string> doomed;
  std::error_code error;
  for (llvm::sys::fs::directory_iterator entry(directory, error), end;
       !error && entry != end; entry.increment(error)) {
    llvm::StringRef name = llvm::sys::path::filename(entry->path());
    if (isCheckpointFileName(name))
      doomed.push_back(entry->path());
  }
  if (error)
    return Status::error("{}: cannot list: {}", directory, error.message());
  std::stable_partition(doomed.begin(), doomed.end(), [](const std::string &p) {
    return llvm::sys::path::filename(p) == dsv3::kIndexFileName;
  });
  for (const std::string &path : doomed)
    if (std::error_code removeError = llvm::sys::fs::remove(path))
      return Status::error("{}: cannot remove the previous checkpoint file: {}",
                           path, removeError.message());
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
    llvm::errs() << llvm::formatv(
        "{0}dsv3-ckpt: {1}: {2:f2} of {3:f2} GB ({4:f0}%), {5:f0} MB/s{6}",
        terminal_ ? "\r" : "", file, done / 1e9, total_ / 1e9,
        100.0 * double(done) / double(std::max<uint64_t>(total_, 1)),
        seconds > 0 ? done / 1e6 / seconds : 0.0,
        terminal_ && !final ? "" : "\n");
  }

  /// Ends a line left open on a terminal, before an error message.
  void abandon() {
    if (enabled_ && terminal_ && last_ != start_)
      llvm::errs() << "\n";
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

  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> configText =
      llvm::MemoryBuffer::getFile(options.configPath, /*IsText=*/true);
  if (!configText)
    return fail(options.configPath +
                ": cannot read: " + configText.getError().message());
  llvm::Expected<dsv3::ModelConfig> inputConfig = dsv3::parseModelConfig(
      (*configText)->getBuffer(), options.configPath);
  if (!inputConfig)
    return fail(llvm::toString(inputConfig.takeError()));
  dsv3::ModelConfig config = *inputConfig;
  if (options.precision == Precision::Bf16)
    config.fp8.reset();
  else if (options.precision == Precision::Fp8 && !config.fp8)
    config.fp8 = dsv3::Fp8Quantization{}; // 128×128, fp32 scales

  mlir::DialectRegistry registry;
  dsv3::registerDsv3Dialects(registry);
  mlir::MLIRContext context(registry);
  auto module = dsv3::compileModelConfig(context, config, {});
  if (!module)
    return fail(llvm::toString(module.takeError()));
  std::vector<dsv3::CheckpointTensor> tensors =
      dsv3::listCheckpointTensors(**module);

  // The config.json written must describe exactly these tensors; compile it
  // back and compare rather than trust the translation.
  StatusOr<std::string> outputConfig =
      outputConfigText((*configText)->getBuffer(), *inputConfig, config);
  if (!outputConfig.ok())
    return fail(outputConfig.status().message());
  {
    std::string name = options.outDir + "/config.json";
    llvm::Expected<dsv3::ModelConfig> reread =
        dsv3::parseModelConfig(*outputConfig, name);
    if (!reread)
      return fail("internal error: the config.json written does not parse: " +
                  llvm::toString(reread.takeError()));
    mlir::MLIRContext checkContext(registry);
    auto checkModule = dsv3::compileModelConfig(checkContext, *reread, {});
    if (!checkModule)
      return fail("internal error: the config.json written does not compile: " +
                  llvm::toString(checkModule.takeError()));
    std::vector<dsv3::CheckpointTensor> rereadTensors =
        dsv3::listCheckpointTensors(**checkModule);
    bool same = rereadTensors.size() == tensors.size();
    for (std::size_t i = 0; same && i < tensors.size(); ++i)
      same = rereadTensors[i].name == tensors[i].name &&
             rereadTensors[i].dtype == tensors[i].dtype &&
             rereadTensors[i].shape == tensors[i].shape;
    if (!same)
      return fail("internal error: the config.json written describes other "
                  "tensors than " + options.configPath);
  }

  StatusOr<std::vector<PlannedTensor>> planned =
      planTensors(tensors, config, options.seed);
  if (!planned.ok())
    return fail(planned.status().message());
  std::vector<PlannedTensor> &plans = *planned;
  std::vector<std::vector<std::size_t>> shards =
      planShards(plans, options.shardSize);
  uint64_t totalBytes = 0;
  for (const PlannedTensor &plan : plans)
    totalBytes += plan.byteSize;

  // Everything that can be checked is checked; now touch the directory.
  if (std::error_code error =
          llvm::sys::fs::create_directories(options.outDir))
    return fail(options.outDir + ": cannot create directory: " +
                error.message());
  if (!llvm::sys::fs::is_directory(options.outDir))
    return fail(options.outDir + ": not a directory");
  if (Status status = removeCheckpointFiles(options.outDir); !status.ok())
    return fail(status.message());
  if (Status status = dsv3::writeFileAtomically(
          options.outDir + "/config.json", *outputConfig);
      !status.ok())
    return fail(status.message());

  // Shards become visible one by one; the index, written last, makes them a
  // checkpoint. On failure the shards written so far go again.
  std::vector<std::string> written;
  ProgressLine progress(totalBytes);
  auto failAndClean = [&](const std::string &message) {
    for (const std::string &path : written)
      llvm::sys::fs::remove(path);
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
          plan.tensor.name, plan.dtype, plan.tensor.shape,
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
  if (shards.size() > 1)
    if (Status status =
            dsv3::writeCheckpointIndex(options.outDir, weightMap, totalBytes);
        !status.ok())
      return failAndClean(status.message());

  llvm::outs() << llvm::formatv(
      "{0}: {1} tensors, {2} bytes in {3} ({4}), seed {5}\n", options.outDir,
      plans.size(), totalBytes,
      shards.size() == 1 ? std::string(dsv3::kSingleFileName)
                         : llvm::formatv("{0} shards", shards.size()).str(),
      config.fp8 ? "FP8" : "BF16", options.seed);
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
    llvm::outs() << location.tensor->name << " "
                 << dsv3::dtypeName(location.tensor->dtype) << " "
                 << dsv3::formatShape(location.tensor->shape) << "\n";
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
  int64_t blockRows = 128, blockCols = 128;
  if (llvm::sys::fs::exists(directory + "/config.json")) {
    llvm::Expected<dsv3::ModelConfig> config =
        dsv3::readModelConfigFile(directory + "/config.json");
    if (!config)
      return fail(llvm::toString(config.takeError()));
    if (config->fp8) {
      blockRows = config->fp8->blockRows;
      blockCols = config->fp8->blockCols;
    }
  }

  std::vector<const dsv3::TensorInfo *> selected;
  for (int i = 3; i < argc; ++i) {
    const dsv3::TensorInfo *tensor = checkpoint->find(argv[i]);
    if (!tensor)
      return fail(directory + ": no tensor '" + argv[i] + "'");
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
      return fail(tensor->name + "_scale_inv: not F32 block scales of " +
                  std::to_string(blockRows) + "x" + std::to_string(blockCols) +
                  " blocks of '" + tensor->name + "'");
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
    llvm::outs() << tensor->name << " " << dsv3::dtypeName(tensor->dtype)
                 << " " << dsv3::formatShape(tensor->shape);
    if (!numeric || count == 0) {
      llvm::outs() << "\n";
      continue;
    }
    double mean = sum / double(count);
    double variance = std::max(0.0, sumSquares / double(count) - mean * mean);
    llvm::outs() << llvm::formatv(" mean {0:e3} std {1:e3} min {2:e3} max "
                                  "{3:e3}",
                                  mean, std::sqrt(variance), low, high);
    if (scale) {
      std::size_t full = 0;
      for (float codeMax : blockCodeMax)
        full += codeMax == 448.0f;
      llvm::outs() << llvm::formatv(" full-range blocks {0}/{1}", full,
                                    blockCodeMax.size());
    }
    llvm::outs() << "\n";
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::StringRef command = argc > 1 ? argv[1] : "";
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg = argv[i];
    if (arg == "--help" || arg == "-h" || (i == 1 && arg == "help")) {
      llvm::outs() << kUsage;
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
  return fail("unknown command '" + command.str() +
              "' (expected random, ls or stats; see dsv3-ckpt --help)");
}
