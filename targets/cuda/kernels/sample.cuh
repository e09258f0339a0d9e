//===- sample.cuh - next-token sampling: argmax or Gumbel-max -------------===//
//
// Sampling from softmax(logits / temperature) as an argmax: with g_i drawn
// from a standard Gumbel distribution, argmax_i (logits_i / temperature + g_i)
// is distributed exactly as softmax(logits / temperature), so one pass over
// the row with a max-reduction samples it; no sort, no normalization.
// The noise comes from a counter-based generator (Philox-4x32, 10 rounds),
// keyed by the seed and counted by (step, row, vocabulary index): a run is
// reproducible from (seed, step) alone, whatever the launch order, and each
// decode step draws fresh noise.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

namespace sample_detail {

__device__ __forceinline__ float negInf() { return -__int_as_float(0x7f800000); }

/// Larger than any vocabulary index: marks a thread that has no candidate.
constexpr int kNoIndex = 0x7fffffff;

/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
/// 3", SC'11): ten rounds of two 32x32->64-bit multiplies, the high halves
/// xored with the other words and the round key (bumped by Weyl constants).
/// A bijection of the counter for each key; four 32-bit outputs per call.
__device__ __forceinline__ uint4 philox4x32(uint4 counter, unsigned key0, unsigned key1) {
  constexpr unsigned kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr unsigned kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    unsigned hi0 = __umulhi(kMul0, counter.x), lo0 = kMul0 * counter.x;
    unsigned hi1 = __umulhi(kMul1, counter.z), lo1 = kMul1 * counter.z;
    counter = make_uint4(hi1 ^ counter.y ^ key0, lo1, hi0 ^ counter.w ^ key1, lo0);
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

/// A standard Gumbel variate -log(-log(u)) from 32 random bits, with u =
/// (bits + 0.5) / 2^32 strictly inside (0, 1), so no draw is ever infinite.
/// The exponential variate -log(u) is what decides the winners near u = 1,
/// where a float u keeps only ~2^-25 absolute precision; there (1 - u < 1/16)
/// it comes from the series of -log1p(-v) in v = 1 - u, formed exactly from the
/// bits, good to 2^-24 relative; elsewhere -logf(u) is good to 2^-20 relative.
/// The outer log tolerates the fast __logf (at most ~4e-7 absolute on g).
__device__ __forceinline__ float gumbelFromBits(unsigned bits) {
  constexpr float kTwoToMinus32 = 2.3283064365386963e-10f;
  const float u = (static_cast<float>(bits) + 0.5f) * kTwoToMinus32;
  const float v = (static_cast<float>(~bits) + 0.5f) * kTwoToMinus32; // 1 - u
  float exponential; // -log(u), an Exp(1) variate, in [1.2e-10, 22.9]
  if (v < 0.0625f) // -log(1 - v) = v + v²/2 + ... + v⁶/6, the rest below v⁶/7
    exponential =
        v * (1.0f + v * (0.5f + v * (1.0f / 3 + v * (0.25f + v * (0.2f + v * (1.0f / 6))))));
  else
    exponential = -logf(u);
  return -__logf(exponential);
}

/// (key, index) maximum over a warp; equal keys go to the lower index.
__device__ __forceinline__ void warpArgMax(float &key, int &index) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    float otherKey = __shfl_xor_sync(0xffffffffu, key, offset);
    int otherIndex = __shfl_xor_sync(0xffffffffu, index, offset);
    if (otherKey > key || (otherKey == key && otherIndex < index)) {
      key = otherKey;
      index = otherIndex;
    }
  }
}

} // namespace sample_detail

/// Threads of one sample_tokens block; the code generator copies this number.
constexpr int kSampleThreads = 1024;

/// One token per row r < R of logits [R, ld] fp32 (only the first V of each
/// row are read; ld ≥ V):
///   temperature ≤ 0: argmax_i logits[r, i];
///   temperature > 0: argmax_i (logits[r, i] / temperature + g(seed, step, r, i)),
///     g a standard Gumbel variate from Philox-4x32-10 with key = seed and
///     counter = (i / 4, r, low and high 32 bits of step), output word i % 4.
/// Ties go to the lowest index. NaN logits never win (they rank as -inf); a
/// row with no finite or infinite logit at all (all NaN) gives token 0.
/// tokens [R] int.
///
/// One block per row: each thread walks groups of 4 consecutive vocabulary
/// entries (one Philox call per group), two groups at a time, and keeps its
/// best (key, index); a warp then block reduction picks the row's winner.
/// Launch: grid = (R, 1, 1), block = (1024, 1, 1), dynamic shared memory = 0 bytes
template <int V>
__global__ void __launch_bounds__(kSampleThreads)
    sample_tokens(const float *logits, int ld, int *tokens, int R, float temperature,
                  unsigned long long seed, unsigned long long step) {
  static_assert(V >= 1 && V <= (1 << 30), "vocabulary indices are ints");
  constexpr int kGroups = ceilDiv(V, 4);
  constexpr int kWarps = kSampleThreads / 32;
  __shared__ float warpKey[kWarps];
  __shared__ int warpIndex[kWarps];

  const int row = blockIdx.x;
  if (row >= R)
    return; // whole block leaves together
  const float *rowLogits = logits + static_cast<long long>(row) * ld;
  const bool greedy = !(temperature > 0.0f); // also NaN temperature: argmax
  const unsigned key0 = static_cast<unsigned>(seed), key1 = static_cast<unsigned>(seed >> 32);
  const unsigned stepLow = static_cast<unsigned>(step), stepHigh = static_cast<unsigned>(step >> 32);

  float bestKey = sample_detail::negInf();
  int bestIndex = sample_detail::kNoIndex;
  // Two groups per thread and step, all eight loads issued before any use.
  for (int base = threadIdx.x; base < kGroups; base += 2 * kSampleThreads) {
    float values[2][4];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int first = (base + half * kSampleThreads) * 4;
#pragma unroll
      for (int i = 0; i < 4; ++i)
        values[half][i] = first + i < V ? rowLogits[first + i] : sample_detail::negInf();
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int group = base + half * kSampleThreads, first = group * 4;
      if (group >= kGroups)
        break;
      if (!greedy) {
        uint4 bits = sample_detail::philox4x32(
            make_uint4(static_cast<unsigned>(group), static_cast<unsigned>(row), stepLow, stepHigh),
            key0, key1);
        values[half][0] = values[half][0] / temperature + sample_detail::gumbelFromBits(bits.x);
        values[half][1] = values[half][1] / temperature + sample_detail::gumbelFromBits(bits.y);
        values[half][2] = values[half][2] / temperature + sample_detail::gumbelFromBits(bits.z);
        values[half][3] = values[half][3] / temperature + sample_detail::gumbelFromBits(bits.w);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float key = values[half][i];
        // Ascending index within the thread: strict > keeps the lowest on ties.
        if (first + i < V && key == key &&
            (key > bestKey || bestIndex == sample_detail::kNoIndex)) {
          bestKey = key;
          bestIndex = first + i;
        }
      }
    }
  }

  sample_detail::warpArgMax(bestKey, bestIndex);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    warpKey[warp] = bestKey;
    warpIndex[warp] = bestIndex;
  }
  __syncthreads();
  if (warp == 0) {
    bestKey = lane < kWarps ? warpKey[lane] : sample_detail::negInf();
    bestIndex = lane < kWarps ? warpIndex[lane] : sample_detail::kNoIndex;
    sample_detail::warpArgMax(bestKey, bestIndex);
    if (lane == 0)
      tokens[row] = bestIndex == sample_detail::kNoIndex ? 0 : bestIndex;
  }
}

} // namespace dsv3k
