//===- WeightFill.h - which random values each plan weight gets ----*- C++ -*-===//
//
// dsv3-bench runs a plan on random weights made on the GPU. The values
// follow dsv3-ckpt's distributions (docs/checkpoints.md), so that
// activations stay O(1) through the layers as they do in the end-to-end
// checks:
//   matrices (BF16, or FP8 after scaling)  N(0, 1/in_features)
//   embedding and output head              N(0, 1)
//   norm weights                           U(0.9, 1.1)
//   e_score_correction_bias                U(-0.1, 0.1)
// FP8 weights are e4m3 codes N(0, (448/4.5)²), saturating at ±448, and their
// block scales (weight_scale_inv) U(0.9, 1.1)·4.5σ/448 with σ = 1/√in of the
// weight they scale: dequantized values are N(0, σ²) within 10%, cut at 4.5σ,
// and a block's largest code is near 448, as DeepSeek's amax/448 scaling
// makes it. A weight of any other kind is an error rather than a guess.
//
// Values depend only on (seed, the weight's first checkpoint name, the
// element's index): a counter-based hash, no generator state.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_BENCH_WEIGHTFILL_H
#define DSV3_TOOLS_BENCH_WEIGHTFILL_H

#include "runtime/Status.h"
#include "runtime/plan/PlanFile.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace dsv3::bench {

/// How a device buffer is filled (RandomFill.cu implements each).
struct FillSpec {
  enum class Kind {
    Normal,  ///< N(a, b²), stored in the buffer's dtype (BF16 or F32)
    Uniform, ///< U(a, b), stored in the buffer's dtype (BF16 or F32)
    E4m3,    ///< e4m3 codes of N(0, b²), saturating at ±448
  };
  Kind kind = Kind::Normal;
  plan::DType dtype = plan::DType::BF16;
  float a = 0, b = 1;
  uint64_t stream = 0; ///< the hash stream, from the seed and the name
  uint64_t count = 0;  ///< elements
};

/// e4m3 codes are drawn with this many standard deviations to the largest
/// code, 448.
inline constexpr float kE4m3SigmasToMax = 4.5f;

/// The hash stream of a tensor named `name` under `seed`.
uint64_t fillStream(uint64_t seed, std::string_view name);

/// The fill of plan weight `index` (verified plan), or an error naming the
/// weight when no distribution is defined for its kind.
StatusOr<FillSpec> weightFill(const plan::Plan &plan, size_t index,
                              uint64_t seed);

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_WEIGHTFILL_H
