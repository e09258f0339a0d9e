//===- sample.cuh - next-token sampling with per-row settings -------------===//
//
// One block per row of logits picks that row's next token under the row's
// own SamplingParams, so a batch may mix greedy and sampled sequences with
// different filters. In order (docs/runtime.md, "Sampling"):
//
//   1. penalties   z = logit - frequency·count - presence·[count > 0], count =
//                  how often the sequence has generated the token (a device
//                  [rows, V] int32 buffer this kernel increments);
//   2. greedy      temperature ≤ 0: argmax z, lowest id on ties; done;
//   3. temperature z *= 1 / temperature (the reciprocal rounded to float);
//                  m = max z; weights w = exp(z - m);
//   4. top-k       keep z ≥ the k-th largest z (ties at the boundary kept);
//   5. top-p       keep z ≥ v for the largest v whose mass above (the kept
//                  weights of values > v) is < top_p · (kept weight);
//   6. min-p       keep z - m ≥ log(min_p);
//   7. draw        inverse CDF over the kept tokens in id order, with one
//                  64-bit uniform from Philox-4x32-10 keyed by the row's seed
//                  and counted by its step.
//
// Weights are integers, exp(z - m) in 2^-44 fixed point, so every sum is
// exact and independent of thread order: a row's token depends only on its
// logits, counts and parameters, never on the launch or the rest of the batch.
// Thresholds are found by radix selection over the 32-bit order-preserving
// key of z (11 + 11 + 10 bits, one histogram pass per digit), so no sort and
// no copy of the row is needed: each pass re-reads the row (from L2).
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

/// One row's settings, in device memory. runtime/sample/SamplingParams.h
/// holds the same layout for the host (48 bytes, checked on both sides).
struct SamplingParams {
  float temperature;      ///< ≤ 0 or NaN: greedy argmax
  float topP;             ///< ≥ 1: off; ≤ 0: keep the largest value only
  float minP;             ///< ≤ 0: off
  float presencePenalty;  ///< subtracted once from every generated token
  float frequencyPenalty; ///< subtracted per occurrence of a generated token
  int topK;               ///< ≤ 0: off
  int vocabLimit;         ///< only ids below it are candidates; ≤ 0: all V
  int countsRow;          ///< row of `counts` for this sequence; < 0: none
  unsigned long long seed;
  unsigned long long step; ///< tokens this sequence has generated so far
};
static_assert(sizeof(SamplingParams) == 48, "the host mirrors this layout");

/// Threads of one sample_tokens block; the runtime launches with this many.
inline constexpr int kSampleThreads = 1024;

namespace sample_detail {

inline constexpr int kWarps = kSampleThreads / 32;
inline constexpr unsigned kFullMask = 0xffffffffu;
/// Weights are exp(z - m) · 2^44, rounded: at most 2^44 each, so a row of up
/// to 2^17 tokens sums below 2^61.
inline constexpr float kWeightScale = 17592186044416.0f; // 2^44
/// Larger than any vocabulary index: marks a thread that has no candidate.
inline constexpr int kNoIndex = 0x7fffffff;
/// Radix digits of the 32-bit key, most significant first.
__host__ __device__ constexpr int digitBits(int level) { return level < 2 ? 11 : 10; }
__host__ __device__ constexpr int digitShift(int level) {
  return level == 0 ? 21 : level == 1 ? 10 : 0;
}
inline constexpr int kBins = 2048;
/// Loads in flight per thread in a pass over the row.
inline constexpr int kUnroll = 8;

__device__ __forceinline__ float negInf() { return -__int_as_float(0x7f800000); }

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

/// The row's uniform 64-bit draw for (seed, step): Philox with key = seed and
/// counter = (0, 0, step low, step high), words x and y as high and low halves.
__device__ __forceinline__ unsigned long long uniformBits(unsigned long long seed,
                                                          unsigned long long step) {
  uint4 bits = philox4x32(make_uint4(0u, 0u, static_cast<unsigned>(step),
                                     static_cast<unsigned>(step >> 32)),
                          static_cast<unsigned>(seed), static_cast<unsigned>(seed >> 32));
  return (static_cast<unsigned long long>(bits.x) << 32) | bits.y;
}

/// Unsigned key with the order of the floats (NaN is never asked for).
__device__ __forceinline__ unsigned orderedKey(float z) {
  unsigned bits = __float_as_uint(z);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

/// exp(d) for d = z - m ≤ 0, in 2^-44 fixed point (0 below about -30.5).
__device__ __forceinline__ unsigned long long weightOf(float d) {
  return __float2ull_rn(expf(d) * kWeightScale);
}

__device__ __forceinline__ unsigned long long warpSumU64(unsigned long long v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

/// Inclusive prefix sum over the lanes of a warp.
__device__ __forceinline__ unsigned long long warpInclusiveScanU64(unsigned long long v) {
  const int lane = threadIdx.x % 32;
  for (int offset = 1; offset < 32; offset <<= 1) {
    unsigned long long other = __shfl_up_sync(kFullMask, v, offset);
    if (lane >= offset)
      v += other;
  }
  return v;
}

/// (key, index) maximum over a warp; equal keys go to the lower index.
__device__ __forceinline__ void warpArgMax(float &key, int &index) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    float otherKey = __shfl_xor_sync(kFullMask, key, offset);
    int otherIndex = __shfl_xor_sync(kFullMask, index, offset);
    if (otherIndex != kNoIndex &&
        (index == kNoIndex || otherKey > key || (otherKey == key && otherIndex < index))) {
      key = otherKey;
      index = otherIndex;
    }
  }
}

/// One row as the sampler sees it: z of token i from its logit and count.
struct RowView {
  const float *logits;
  const int *counts; ///< nullptr: no penalties
  float presence, frequency;
  float inverseTemperature; ///< 1 / T rounded to float: a multiply per token, not a division
  bool scale; ///< false for greedy rows: z is the penalized logit
  int limit;  ///< tokens [0, limit) are candidates

  /// Rounded operation by operation, no contraction, so the host reference
  /// (runtime/sample/ReferenceSampler.h) computes the same bits.
  __device__ __forceinline__ float z(float logit, int count) const {
    float value = logit;
    if (count > 0)
      value = __fsub_rn(value, __fmaf_rn(frequency, static_cast<float>(count), presence));
    return scale ? __fmul_rn(value, inverseTemperature) : value;
  }
};

/// Calls visit(i, z) for every candidate token i of the row, each thread over
/// ascending i, with kUnroll loads in flight. Whole warps run the same
/// iterations (lanes past the end call visit with i = -1), so visit may use
/// warp-synchronous intrinsics.
template <typename Visit>
__device__ __forceinline__ void forEachToken(const RowView &row, Visit visit) {
  const int lane = threadIdx.x % 32;
  for (int base = threadIdx.x; base - lane < row.limit; base += kSampleThreads * kUnroll) {
    float logit[kUnroll];
    int count[kUnroll];
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + j * kSampleThreads;
      logit[j] = i < row.limit ? row.logits[i] : 0.0f;
      count[j] = row.counts && i < row.limit ? row.counts[i] : 0;
    }
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + j * kSampleThreads;
      visit(i < row.limit ? i : -1, row.z(logit[j], count[j]));
    }
  }
}

/// Adds 1 to hist[bin] for each lane with `valid`. A warp whose lanes all
/// fall in one bin (a peaked or flat row: the case where per-lane atomics
/// would serialize on one address) adds them with one atomic.
__device__ __forceinline__ void countInBin(unsigned *hist, unsigned bin, bool valid) {
  const unsigned members = __ballot_sync(kFullMask, valid);
  if (!members)
    return; // the usual case past the first digit: nothing of this warp matches
  const unsigned lowest = __reduce_min_sync(kFullMask, valid ? bin : 0xffffffffu);
  const unsigned highest = __reduce_max_sync(kFullMask, valid ? bin : 0u);
  if (lowest == highest) {
    if (threadIdx.x % 32 == __ffs(members) - 1)
      atomicAdd(&hist[bin], __popc(members));
  } else if (valid) {
    atomicAdd(&hist[bin], 1u);
  }
}

/// Bin weights are kept as three 32-bit limbs of 15, 15 and the remaining
/// bits, each summed with 32-bit shared atomics (64-bit ones are far slower
/// when lanes collide). Exact: at most V ≤ 2^17 adds of < 2^15 per low limb,
/// and the top limb sums to at most (total weight) / 2^30 ≤ 2^31.
inline constexpr int kLimbBits = 15;
inline constexpr unsigned kLimbMask = (1u << kLimbBits) - 1;

__device__ __forceinline__ void addWeight(unsigned (*limbs)[kBins], unsigned bin,
                                          unsigned long long weight) {
  if (weight == 0)
    return;
  atomicAdd(&limbs[0][bin], static_cast<unsigned>(weight) & kLimbMask);
  atomicAdd(&limbs[1][bin], static_cast<unsigned>(weight >> kLimbBits) & kLimbMask);
  atomicAdd(&limbs[2][bin], static_cast<unsigned>(weight >> (2 * kLimbBits)));
}

__device__ __forceinline__ unsigned long long binWeight(const unsigned (*limbs)[kBins],
                                                        int bin) {
  return limbs[0][bin] + (static_cast<unsigned long long>(limbs[1][bin]) << kLimbBits) +
         (static_cast<unsigned long long>(limbs[2][bin]) << (2 * kLimbBits));
}

/// countInBin, and adds `weight` to the bin's weight likewise.
__device__ __forceinline__ void weighInBin(unsigned *hist, unsigned (*limbs)[kBins],
                                           unsigned bin, unsigned long long weight,
                                           bool valid) {
  const unsigned members = __ballot_sync(kFullMask, valid);
  if (!members)
    return;
  const unsigned lowest = __reduce_min_sync(kFullMask, valid ? bin : 0xffffffffu);
  const unsigned highest = __reduce_max_sync(kFullMask, valid ? bin : 0u);
  if (lowest == highest) {
    const unsigned long long sum = warpSumU64(valid ? weight : 0ull);
    if (threadIdx.x % 32 == __ffs(members) - 1) {
      atomicAdd(&hist[bin], __popc(members));
      addWeight(limbs, bin, sum);
    }
  } else if (valid) {
    atomicAdd(&hist[bin], 1u);
    addWeight(limbs, bin, weight);
  }
}

/// Exclusive prefix sum over the block's threads in thread order; `total`
/// gets the sum of all. Uses `scratch` (32 entries); ends synchronized.
__device__ __forceinline__ unsigned long long blockExclusiveScanU64(unsigned long long v,
                                                                    unsigned long long *scratch,
                                                                    unsigned long long &total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned long long inclusive = warpInclusiveScanU64(v);
  __syncthreads();
  if (lane == 31)
    scratch[warp] = inclusive;
  __syncthreads();
  const unsigned long long warpTotal = lane < kWarps ? scratch[lane] : 0ull;
  const unsigned long long warpInclusive = warpInclusiveScanU64(warpTotal);
  const unsigned long long before = __shfl_sync(kFullMask, warpInclusive - warpTotal, warp);
  total = __shfl_sync(kFullMask, warpInclusive, 31);
  __syncthreads();
  return before + inclusive - v;
}

struct SharedState {
  union {
    struct {
      unsigned count[kBins];
      unsigned weightLimbs[3][kBins]; ///< see addWeight
    } hist;
    /// Kept weight per (warp, chunk) of the draw pass.
    unsigned long long chunkWeight[kWarps][64];
  };
  unsigned long long scratch[32];
  float reduceKey[kWarps];
  int reduceIndex[kWarps];
  int found; ///< the bin, warp or chunk a search picked
  int token; ///< the drawn token
  unsigned long long remaining;
};

/// Greedy argmax of z over the row: ties to the lowest id; NaN never wins; a
/// row of NaN gives 0.
__device__ __forceinline__ int argmaxToken(const RowView &row, SharedState &s) {
  float bestKey = negInf();
  int bestIndex = kNoIndex;
  forEachToken(row, [&](int i, float z) {
    // Ascending i within the thread: strict > keeps the lowest on ties.
    if (i >= 0 && z == z && (bestIndex == kNoIndex || z > bestKey)) {
      bestKey = z;
      bestIndex = i;
    }
  });
  warpArgMax(bestKey, bestIndex);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) {
    s.reduceKey[warp] = bestKey;
    s.reduceIndex[warp] = bestIndex;
  }
  __syncthreads();
  bestKey = lane < kWarps ? s.reduceKey[lane] : negInf();
  bestIndex = lane < kWarps ? s.reduceIndex[lane] : kNoIndex;
  warpArgMax(bestKey, bestIndex);
  __syncthreads();
  return bestIndex == kNoIndex ? 0 : bestIndex;
}

/// Clears both histograms; ends synchronized.
__device__ __forceinline__ void clearHistograms(SharedState &s) {
  __syncthreads();
  for (int b = threadIdx.x; b < kBins; b += kSampleThreads) {
    s.hist.count[b] = 0;
    s.hist.weightLimbs[0][b] = s.hist.weightLimbs[1][b] = s.hist.weightLimbs[2][b] = 0;
  }
  __syncthreads();
}

/// Radix selection of the top-k threshold: the key of the k-th largest z
/// (counting repeats), with the first digit's histogram already in
/// s.hist.count. Returns 0 (keep everything) when the row has fewer than k
/// non-NaN values.
__device__ __forceinline__ unsigned topKThreshold(const RowView &row, int k, SharedState &s) {
  unsigned prefix = 0;
  unsigned long long above = 0; // values whose key is above the prefix's range
  for (int level = 0; level < 3; ++level) {
    if (level > 0) {
      clearHistograms(s);
      const int shift = digitShift(level - 1), lowShift = digitShift(level);
      const unsigned mask = (1u << digitBits(level)) - 1;
      forEachToken(row, [&](int i, float z) {
        const unsigned key = orderedKey(z);
        const bool match = i >= 0 && z == z && (key >> shift) == prefix;
        countInBin(s.hist.count, (key >> lowShift) & mask, match);
      });
      __syncthreads();
    }
    // Thread t owns bins 2t and 2t + 1 counted from the top, so the
    // exclusive scan over threads gives the count above each pair.
    const int bins = 1 << digitBits(level);
    const int high = bins - 1 - 2 * threadIdx.x, low = high - 1;
    const unsigned highCount = high >= 0 ? s.hist.count[high] : 0;
    const unsigned lowCount = low >= 0 ? s.hist.count[low] : 0;
    unsigned long long total = 0;
    const unsigned long long before =
        blockExclusiveScanU64(highCount + lowCount, s.scratch, total);
    if (threadIdx.x == 0)
      s.found = -1;
    __syncthreads();
    const unsigned long long beforeHigh = above + before, beforeLow = beforeHigh + highCount;
    if (high >= 0 && beforeHigh < static_cast<unsigned long long>(k) &&
        beforeHigh + highCount >= static_cast<unsigned long long>(k)) {
      s.found = high;
      s.remaining = beforeHigh;
    }
    if (low >= 0 && beforeLow < static_cast<unsigned long long>(k) &&
        beforeLow + lowCount >= static_cast<unsigned long long>(k)) {
      s.found = low;
      s.remaining = beforeLow;
    }
    __syncthreads();
    if (s.found < 0)
      return 0u; // fewer than k values
    prefix = (prefix << digitBits(level)) | static_cast<unsigned>(s.found);
    above = s.remaining;
    __syncthreads();
  }
  return prefix;
}

/// Radix selection of the top-p threshold among keys ≥ floorKey: the key of
/// the smallest kept value v, where v is kept when the weight of the values
/// above v is below ceil(topP · W), W the weight of all keys ≥ floorKey.
__device__ __forceinline__ unsigned topPThreshold(const RowView &row, float m, float topP,
                                                  unsigned floorKey, SharedState &s) {
  unsigned prefix = 0;
  unsigned long long above = 0, target = 0;
  for (int level = 0; level < 3; ++level) {
    clearHistograms(s);
    const int shift = level > 0 ? digitShift(level - 1) : 32, lowShift = digitShift(level);
    const unsigned mask = (1u << digitBits(level)) - 1;
    forEachToken(row, [&](int i, float z) {
      const unsigned key = orderedKey(z);
      const bool match = i >= 0 && z == z && key >= floorKey &&
                         (level == 0 || (key >> shift) == prefix);
      const unsigned long long weight = match ? weightOf(z - m) : 0ull;
      // A value of weight 0 has all the weight above it: top-p never keeps
      // it, so it need not be counted.
      weighInBin(s.hist.count, s.hist.weightLimbs, (key >> lowShift) & mask, weight,
                 weight > 0);
    });
    __syncthreads();
    const int bins = 1 << digitBits(level);
    const int high = bins - 1 - 2 * threadIdx.x, low = high - 1;
    const unsigned long long highWeight = high >= 0 ? binWeight(s.hist.weightLimbs, high) : 0;
    const unsigned long long lowWeight = low >= 0 ? binWeight(s.hist.weightLimbs, low) : 0;
    unsigned long long total = 0;
    const unsigned long long before =
        blockExclusiveScanU64(highWeight + lowWeight, s.scratch, total);
    if (level == 0)
      target = static_cast<unsigned long long>(
          ceil(static_cast<double>(topP) * static_cast<double>(total)));
    if (threadIdx.x == 0)
      s.found = -1;
    __syncthreads();
    // The kept bins are those with weight above < target; the threshold lies
    // in the lowest non-empty one of them.
    const unsigned long long aboveHigh = above + before, aboveLow = aboveHigh + highWeight;
    int lowest = -1;
    if (high >= 0 && s.hist.count[high] > 0 && aboveHigh < target)
      lowest = high;
    if (low >= 0 && s.hist.count[low] > 0 && aboveLow < target)
      lowest = low;
    if (lowest >= 0)
      atomicMin(reinterpret_cast<unsigned *>(&s.found), static_cast<unsigned>(lowest));
    __syncthreads();
    if (lowest >= 0 && lowest == s.found)
      s.remaining = lowest == high ? aboveHigh : aboveLow;
    __syncthreads();
    if (s.found < 0)
      return floorKey; // only when target is 0: topP ≤ 0 is handled before
    prefix = (prefix << digitBits(level)) | static_cast<unsigned>(s.found);
    above = s.remaining;
    __syncthreads();
  }
  return prefix;
}

/// The inverse-CDF draw over kept tokens in id order. Warp w owns the
/// contiguous ids [w·kWarpSpan, (w+1)·kWarpSpan), in 64 chunks of kChunk.
template <int V, typename Kept>
__device__ __forceinline__ int drawToken(const RowView &row, float m, Kept kept,
                                         unsigned long long uniform, SharedState &s) {
  constexpr int kChunks = 64;
  constexpr int kRounds = ceilDiv(ceilDiv(V, kWarps * 32), kChunks); // 32-id rounds per chunk
  constexpr int kChunk = kRounds * 32, kWarpSpan = kChunk * kChunks;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  auto weightAt = [&](int i, float logit, int count) -> unsigned long long {
    if (i >= row.limit)
      return 0ull;
    const float z = row.z(logit, count);
    return z == z && kept(z) ? weightOf(z - m) : 0ull;
  };
  __syncthreads();
  for (int chunk = 0; chunk < kChunks; chunk += 4) {
    float logit[4][kRounds];
    int count[4][kRounds];
#pragma unroll
    for (int c = 0; c < 4; ++c)
#pragma unroll
      for (int r = 0; r < kRounds; ++r) {
        const int i = warp * kWarpSpan + (chunk + c) * kChunk + r * 32 + lane;
        logit[c][r] = i < row.limit ? row.logits[i] : 0.0f;
        count[c][r] = row.counts && i < row.limit ? row.counts[i] : 0;
      }
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      unsigned long long sum = 0;
#pragma unroll
      for (int r = 0; r < kRounds; ++r)
        sum += weightAt(warp * kWarpSpan + (chunk + c) * kChunk + r * 32 + lane, logit[c][r],
                        count[c][r]);
      sum = warpSumU64(sum);
      if (lane == 0)
        s.chunkWeight[warp][chunk + c] = sum;
    }
  }
  __syncthreads();
  // Warp 0: which warp's span holds the target, then (below) which chunk.
  if (warp == 0) {
    unsigned long long spanWeight = 0;
    for (int c = 0; c < kChunks; ++c)
      spanWeight += s.chunkWeight[lane][c];
    const unsigned long long inclusive = warpInclusiveScanU64(spanWeight);
    const unsigned long long total = __shfl_sync(kFullMask, inclusive, 31);
    const unsigned long long target = __umul64hi(uniform, total); // in [0, total)
    const unsigned hit = __ballot_sync(kFullMask, inclusive > target);
    const int owner = __ffs(hit) - 1; // total > 0: the maximum is always kept
    if (lane == owner) {
      s.found = owner;
      s.remaining = target - (inclusive - spanWeight);
    }
  }
  __syncthreads();
  int token = -1;
  if (warp == s.found) { // only this warp writes shared state until the end
    // Lane l holds chunks 2l and 2l + 1.
    const unsigned long long first = s.chunkWeight[warp][2 * lane];
    const unsigned long long pair = first + s.chunkWeight[warp][2 * lane + 1];
    const unsigned long long inclusive = warpInclusiveScanU64(pair);
    unsigned long long remaining = s.remaining;
    const unsigned hit = __ballot_sync(kFullMask, inclusive > remaining);
    const int owner = __ffs(hit) - 1;
    const unsigned long long beforeOwner = __shfl_sync(kFullMask, inclusive - pair, owner);
    const unsigned long long ownerFirst = __shfl_sync(kFullMask, first, owner);
    remaining -= beforeOwner;
    int chunk = 2 * owner;
    if (remaining >= ownerFirst) {
      remaining -= ownerFirst;
      ++chunk;
    }
    for (int r = 0; r < kRounds && token < 0; ++r) {
      const int i = warp * kWarpSpan + chunk * kChunk + r * 32 + lane;
      const unsigned long long w =
          weightAt(i, i < row.limit ? row.logits[i] : 0.0f,
                   row.counts && i < row.limit ? row.counts[i] : 0);
      const unsigned long long roundInclusive = warpInclusiveScanU64(w);
      const unsigned crossing = __ballot_sync(kFullMask, roundInclusive > remaining);
      if (crossing)
        token = warp * kWarpSpan + chunk * kChunk + r * 32 + __ffs(crossing) - 1;
      else
        remaining -= __shfl_sync(kFullMask, roundInclusive, 31);
    }
    if (lane == 0)
      s.token = token;
  }
  __syncthreads();
  return s.token;
}

} // namespace sample_detail

/// One token per row r < R of logits [R, ld] fp32 (only the first V of each
/// row are read; ld ≥ V), drawn as the header describes under params[r].
/// counts [*, V] int32 (or nullptr): row params[r].countsRow holds how often
/// that sequence has generated each token; the kernel adds 1 for the token
/// it picks. tokens [R] int.
///
/// A row whose maximum z is not finite (all NaN, or ±inf present) takes the
/// greedy argmax. Launch: grid = (R, 1, 1), block = (1024, 1, 1), dynamic
/// shared memory = 0 bytes.
template <int V>
__global__ void __launch_bounds__(kSampleThreads)
    sample_tokens(const float *logits, int ld, const SamplingParams *params, int *counts,
                  int *tokens, int R) {
  awaitPrecedingKernels();
  static_assert(V >= 1 && V <= (1 << 17), "bin weight limbs hold sums of at most 2^17 tokens");
  using namespace sample_detail;
  __shared__ SharedState s;

  const int row = blockIdx.x;
  if (row >= R)
    return; // whole block leaves together
  const SamplingParams p = params[row];
  int *rowCounts = counts && p.countsRow >= 0
                       ? counts + static_cast<long long>(p.countsRow) * V
                       : nullptr;
  RowView view;
  view.logits = logits + static_cast<long long>(row) * ld;
  view.counts = rowCounts && (p.presencePenalty != 0.0f || p.frequencyPenalty != 0.0f)
                    ? rowCounts
                    : nullptr;
  view.presence = p.presencePenalty;
  view.frequency = p.frequencyPenalty;
  view.scale = p.temperature > 0.0f; // NaN: greedy
  view.inverseTemperature = view.scale ? __frcp_rn(p.temperature) : 1.0f;
  view.limit = p.vocabLimit > 0 && p.vocabLimit < V ? p.vocabLimit : V;

  int token = 0;
  const bool topK = p.topK > 0 && p.topK < view.limit;
  if (!view.scale) {
    token = argmaxToken(view, s);
  } else {
    // Pass 1: the maximum, and the top-k's first digit histogram.
    if (topK)
      clearHistograms(s);
    float localMax = negInf();
    forEachToken(view, [&](int i, float z) {
      const bool valid = i >= 0 && z == z;
      if (valid)
        localMax = fmaxf(localMax, z);
      if (topK)
        countInBin(s.hist.count, orderedKey(z) >> digitShift(0), valid);
    });
    for (int offset = 16; offset > 0; offset >>= 1)
      localMax = fmaxf(localMax, __shfl_xor_sync(kFullMask, localMax, offset));
    __syncthreads();
    if (threadIdx.x % 32 == 0)
      s.reduceKey[threadIdx.x / 32] = localMax;
    __syncthreads();
    float m = negInf();
    for (int w = 0; w < kWarps; ++w)
      m = fmaxf(m, s.reduceKey[w]);
    if (!(m > negInf() && m < -negInf())) {
      view.scale = false; // no finite maximum: the argmax decides
      token = argmaxToken(view, s);
    } else {
      unsigned threshold = topK ? topKThreshold(view, p.topK, s) : 0u;
      if (p.topP < 1.0f) // NaN: off
        threshold = p.topP > 0.0f ? topPThreshold(view, m, p.topP, threshold, s)
                                  : orderedKey(m);
      const float logMinP = p.minP > 0.0f ? logf(p.minP) : negInf();
      token = drawToken<V>(
          view, m,
          [&](float z) { return orderedKey(z) >= threshold && z - m >= logMinP; },
          uniformBits(p.seed, p.step), s);
    }
  }
  if (threadIdx.x == 0) {
    tokens[row] = token;
    if (rowCounts)
      rowCounts[token] += 1;
  }
}

} // namespace dsv3k
