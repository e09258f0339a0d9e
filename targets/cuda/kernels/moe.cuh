//===- moe.cuh - mixture-of-experts routing, permutation and combine ------===//
//
// The routed half of a DeepSeek MoE layer runs as
//   router logits (fp32 GEMM) -> moe_route -> moe_align
//   -> grouped GEMMs over the expert-sorted rows -> moe_combine.
//
// Vocabulary used below: an *entry* is one (token, choice) pair, numbered
// e = t * TOPK + k; there are R = T * TOPK of them. A *row* is an entry's
// position after sorting the entries by expert; the grouped GEMMs work on rows
// (row r reads token row_tokens[r] as its A row and writes
// expert_out[r]), and moe_combine maps each entry back through entry_to_row.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

/// Router scoring and top-k methods, as in the configs' `topk_method` and
/// `scoring_func`.
enum MoeRouteMethod : int { kRouteGreedy = 0, kRouteGroupLimitedGreedy = 1, kRouteNoauxTc = 2 };
enum MoeRouteScore : int { kScoreSoftmax = 0, kScoreSigmoid = 1 };

namespace moe_detail {

__device__ __forceinline__ float negInf() { return -__int_as_float(0x7f800000); }

/// NaN compares false with everything, which would let lanes of one warp
/// disagree on a maximum; ranking treats it as -inf instead.
__device__ __forceinline__ float rankable(float v) { return v == v ? v : negInf(); }

/// Larger than any index: marks a lane that has no candidate.
inline constexpr int kNoIndex = 0x7fffffff;

/// (value, index) maximum over a warp; equal values go to the lower index, so
/// the choice is the same whatever order the lanes hold their candidates in.
__device__ __forceinline__ void warpArgMax(float &value, int &index) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    float otherValue = __shfl_xor_sync(0xffffffffu, value, offset);
    int otherIndex = __shfl_xor_sync(0xffffffffu, index, offset);
    if (otherValue > value || (otherValue == value && otherIndex < index)) {
      value = otherValue;
      index = otherIndex;
    }
  }
}

} // namespace moe_detail

/// Routes each token to TOPK of E experts, exactly as DeepSeek-V2/V3 do
/// (Hugging Face DeepseekV3TopkRouter, DeepSeek's inference/model.py Gate):
///   s = sigmoid(logits) (SCORE 1) or softmax(logits) over all E (SCORE 0), fp32;
///   METHOD 2 (noaux_tc): choice = s + bias; a group's score is the sum of its
///     two largest choice values; the TOPK_GROUPS best of GROUPS equal groups
///     are kept; the TOPK largest choice values among kept experts are picked;
///   METHOD 1 (group_limited_greedy): a group's score is its largest s; keep
///     TOPK_GROUPS groups; the TOPK largest s among kept experts are picked;
///   METHOD 0 (greedy): the TOPK largest s of all E;
///   weight = the unbiased s of each picked expert; if NORMALIZE, weights are
///   divided by (their sum + 1e-20); finally multiplied by route_scale.
/// Experts of dropped groups are excluded outright (masked to -inf, as
/// DeepSeek's inference code does; some transformers versions mask to 0.0,
/// which differs only if fewer than TOPK kept experts have a positive choice).
///
/// logits [T, E] fp32, bias [E] fp32 (read only for METHOD 2; may be null
/// otherwise), topk_ids [T, TOPK] int, topk_weights [T, TOPK] fp32. Within a
/// token the picks are written in descending choice order; equal values go to
/// the lower expert (or group) index.
///
/// One warp per token: each lane holds experts lane, lane + 32, ... in
/// registers; group scores go through 4·E floats of static shared memory.
/// Launch: grid = (ceilDiv(T, 4), 1, 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int E, int TOPK, int GROUPS, int TOPK_GROUPS, int METHOD, int SCORE, bool NORMALIZE>
__global__ void __launch_bounds__(128)
    moe_route(const float *logits, const float *bias, int *topk_ids, float *topk_weights, int T,
              float route_scale) {
  awaitPrecedingKernels();
  constexpr int kWarps = 4;
  constexpr int kPerLane = ceilDiv(E, 32);
  constexpr bool kGrouped = METHOD != kRouteGreedy && GROUPS > 1 && TOPK_GROUPS < GROUPS;
  constexpr int kGroupSize = E / (GROUPS > 0 ? GROUPS : 1);
  static_assert(METHOD >= 0 && METHOD <= 2, "METHOD: 0 greedy, 1 group_limited_greedy, 2 noaux_tc");
  static_assert(SCORE == kScoreSoftmax || SCORE == kScoreSigmoid, "SCORE: 0 softmax, 1 sigmoid");
  static_assert(E >= 1 && E <= 2048, "experts live in registers and 4·E floats of shared memory");
  static_assert(TOPK >= 1 && TOPK <= 32 && TOPK <= E, "one lane keeps each pick");
  static_assert(METHOD == kRouteGreedy || (GROUPS >= 1 && GROUPS <= 32 && E % GROUPS == 0),
                "groups are equal and one lane scores each");
  static_assert(METHOD == kRouteGreedy || (TOPK_GROUPS >= 1 && TOPK_GROUPS <= GROUPS &&
                                           TOPK <= TOPK_GROUPS * kGroupSize),
                "the kept groups must hold at least TOPK experts");
  static_assert(METHOD != kRouteNoauxTc || GROUPS == 1 || kGroupSize >= 2,
                "noaux_tc scores a group by its two best experts");

  __shared__ float groupInput[kWarps][kGrouped ? E : 1];

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int token = blockIdx.x * kWarps + warp;
  if (token >= T)
    return; // whole warp leaves; nothing below synchronizes across warps
  const float *row = logits + static_cast<long long>(token) * E;

  float score[kPerLane];  // s: what the weights are made of
  float choice[kPerLane]; // what the picks are ranked by
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    int expert = lane + 32 * j;
    score[j] = expert < E ? row[expert] : moe_detail::negInf();
  }

  if (SCORE == kScoreSigmoid) {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      score[j] = 1.0f / (1.0f + expf(-score[j])); // padding lanes: -inf -> 0, unused
  } else {
    float rowMax = moe_detail::negInf();
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      rowMax = fmaxf(rowMax, score[j]);
    rowMax = warpMax(rowMax);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      score[j] = expf(score[j] - rowMax); // padding: exp(-inf) = 0
      sum += score[j];
    }
    sum = warpSum(sum);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      score[j] /= sum;
  }

#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    int expert = lane + 32 * j;
    float value = score[j];
    if (METHOD == kRouteNoauxTc)
      value += expert < E ? bias[expert] : 0.0f;
    choice[j] = moe_detail::rankable(value);
  }
  // Bit j: slot j is no candidate (past E, or already picked). A flag rather
  // than a -inf choice, so that even -inf or NaN logits give distinct ids.
  unsigned long long taken = 0;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j)
    if (lane + 32 * j >= E)
      taken |= 1ull << j;

  if constexpr (kGrouped) {
    // Lane g scores group g from the warp's copy of the choice values.
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      if (lane + 32 * j < E)
        groupInput[warp][lane + 32 * j] = choice[j];
    __syncwarp();
    float groupScore = moe_detail::negInf();
    if (lane < GROUPS) {
      const float *group = &groupInput[warp][lane * kGroupSize];
      float best = moe_detail::negInf(), second = moe_detail::negInf();
      for (int i = 0; i < kGroupSize; ++i) {
        float v = group[i];
        if (v > best) {
          second = best;
          best = v;
        } else if (v > second) {
          second = v;
        }
      }
      groupScore = moe_detail::rankable(METHOD == kRouteNoauxTc ? best + second : best);
    }
    unsigned keptGroups = 0;
    bool groupTaken = lane >= GROUPS;
    for (int pick = 0; pick < TOPK_GROUPS; ++pick) {
      float value = groupTaken ? moe_detail::negInf() : groupScore;
      int index = groupTaken ? moe_detail::kNoIndex : lane;
      moe_detail::warpArgMax(value, index);
      keptGroups |= 1u << index;
      groupTaken |= lane == index;
    }
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      int expert = lane + 32 * j;
      if (expert < E && !(keptGroups >> (expert / kGroupSize) & 1u))
        taken |= 1ull << j;
    }
  }

  // TOPK rounds of a warp-wide argmax; lane k keeps the k-th pick.
  int myId = 0;
  float myWeight = 0.0f;
  for (int pick = 0; pick < TOPK; ++pick) {
    float value = moe_detail::negInf();
    int index = moe_detail::kNoIndex;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) { // ascending expert: strict > keeps the lower index
      if (!(taken >> j & 1ull) && (choice[j] > value || index == moe_detail::kNoIndex)) {
        value = choice[j];
        index = lane + 32 * j;
      }
    }
    moe_detail::warpArgMax(value, index);
    const int owner = index % 32, slot = index / 32;
    float ownerScore = 0.0f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      if (lane == owner && j == slot) {
        ownerScore = score[j];
        taken |= 1ull << j;
      }
    ownerScore = __shfl_sync(0xffffffffu, ownerScore, owner);
    if (lane == pick) {
      myId = index;
      myWeight = ownerScore;
    }
  }

  if (NORMALIZE) {
    float total = warpSum(lane < TOPK ? myWeight : 0.0f);
    myWeight /= total + 1e-20f;
  }
  myWeight *= route_scale;
  if (lane < TOPK) {
    topk_ids[static_cast<long long>(token) * TOPK + lane] = myId;
    topk_weights[static_cast<long long>(token) * TOPK + lane] = myWeight;
  }
}

/// Threads of one moe_align block; the code generator copies this number.
inline constexpr int kMoeAlignThreads = 512;

/// Sorts the R = T·TOPK entries by expert (a stable counting sort: within an
/// expert, entries keep ascending entry order, so rows read tokens in order).
///   expert_offsets [E + 1]: exclusive prefix sums of per-expert counts
///     (expert e owns rows [expert_offsets[e], expert_offsets[e + 1]),
///     expert_offsets[E] = R);
///   row_tokens [R]: the token of each row's entry (entry / TOPK), the A row
///     the grouped GEMM gathers;
///   entry_to_row [R]: the row of each entry, which the combine reads.
/// topk_ids [T, TOPK] must hold experts in [0, E) (moe_route's output does).
///
/// One block: each of its 16 warps owns a contiguous slice of the entries and
/// counts them per expert in its own row of a [16][E] shared table (warp-level
/// __match_any_sync, no atomics); a column scan turns the table into each
/// warp's first row per expert; a second pass over the same slices places the
/// entries. Works for any T ≥ 1; at T = 16384, TOPK = 8 each warp walks 8192
/// entries twice.
/// Launch: grid = (1, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int E, int TOPK>
__global__ void __launch_bounds__(kMoeAlignThreads)
    moe_align(const int *topk_ids, int *expert_offsets, int *row_tokens, int *entry_to_row,
              int T) {
  awaitPrecedingKernels();
  constexpr int kWarps = kMoeAlignThreads / 32;
  constexpr int kUnroll = 4; // independent 128-byte loads in flight per warp
  static_assert(E >= 1 && kWarps * E * 4 + E * 4 <= 44 * 1024,
                "the [16][E] count table must fit in static shared memory");
  static_assert(TOPK >= 1, "at least one pick per token");

  // cursor[w][e]: first the count of expert e in warp w's slice, then (after
  // the scan) the next free row for warp w's entries of expert e.
  __shared__ int cursor[kWarps][E];
  __shared__ int expertTotal[E];

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned lanesBelow = (1u << lane) - 1u;
  const int R = T * TOPK;
  // Slices are whole multiples of 32 entries so each step is one aligned load.
  const int sliceLength = ceilDiv(ceilDiv(R, kWarps), 32) * 32;
  const int sliceBegin = min(R, warp * sliceLength);
  const int sliceEnd = min(R, sliceBegin + sliceLength);

  for (int i = threadIdx.x; i < kWarps * E; i += kMoeAlignThreads)
    (&cursor[0][0])[i] = 0;
  __syncthreads();

  // Pass 1: count. For each group of lanes holding the same expert, the lowest
  // lane adds the group's size; groups of one warp touch distinct counters.
  for (int base = sliceBegin; base < sliceEnd; base += 32 * kUnroll) {
    int expert[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int entry = base + 32 * u + lane;
      expert[u] = entry < sliceEnd ? topk_ids[entry] : -1;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      unsigned peers = __match_any_sync(0xffffffffu, expert[u]);
      if (expert[u] >= 0 && (peers & lanesBelow) == 0)
        cursor[warp][expert[u]] += __popc(peers);
      __syncwarp();
    }
  }
  __syncthreads();

  // Column scan: per expert, the warps' counts become exclusive offsets within
  // the expert, and the expert's total goes to expertTotal.
  for (int e = threadIdx.x; e < E; e += kMoeAlignThreads) {
    int running = 0;
    for (int w = 0; w < kWarps; ++w) {
      int count = cursor[w][e];
      cursor[w][e] = running;
      running += count;
    }
    expertTotal[e] = running;
  }
  __syncthreads();

  // Exclusive scan of the E totals by warp 0: lane l sums a contiguous run of
  // experts, a warp shuffle scan adds the runs before it.
  if (warp == 0) {
    constexpr int kRun = ceilDiv(E, 32);
    const int first = lane * kRun;
    int runSum = 0;
    for (int i = 0; i < kRun; ++i)
      if (first + i < E)
        runSum += expertTotal[first + i];
    int inclusive = runSum;
    for (int offset = 1; offset < 32; offset <<= 1) {
      int below = __shfl_up_sync(0xffffffffu, inclusive, offset);
      if (lane >= offset)
        inclusive += below;
    }
    int offset = inclusive - runSum;
    for (int i = 0; i < kRun; ++i)
      if (first + i < E) {
        int count = expertTotal[first + i];
        expertTotal[first + i] = offset; // now the expert's first row
        expert_offsets[first + i] = offset;
        offset += count;
      }
    if (lane == 31)
      expert_offsets[E] = inclusive; // = R
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kWarps * E; i += kMoeAlignThreads)
    (&cursor[0][0])[i] += expertTotal[i % E];
  __syncthreads();

  // Pass 2: place. A lane's row is its warp's cursor for the expert plus the
  // number of lower lanes with the same expert; the lowest such lane then
  // advances the cursor by the group's size (after every lane has read it).
  for (int base = sliceBegin; base < sliceEnd; base += 32 * kUnroll) {
    int expert[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int entry = base + 32 * u + lane;
      expert[u] = entry < sliceEnd ? topk_ids[entry] : -1;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int entry = base + 32 * u + lane;
      unsigned peers = __match_any_sync(0xffffffffu, expert[u]);
      int row = 0;
      if (expert[u] >= 0) {
        row = cursor[warp][expert[u]] + __popc(peers & lanesBelow);
        row_tokens[row] = entry / TOPK;
        entry_to_row[entry] = row;
      }
      __syncwarp();
      if (expert[u] >= 0 && (peers & lanesBelow) == 0)
        cursor[warp][expert[u]] += __popc(peers);
      __syncwarp();
    }
  }
}

/// Threads of one moe_combine block and the columns each block covers (8 bf16,
/// one 16-byte vector, per thread).
inline constexpr int kMoeCombineThreads = 128;
inline constexpr int kMoeCombineColumns = kMoeCombineThreads * 8;

/// out[t] = Σ_k topk_weights[t, k] · expert_out[entry_to_row[t·TOPK + k]]
///          + (shared_out ? shared_out[t] : 0),
/// accumulated in fp32 in the order k = 0..TOPK-1, then the shared expert;
/// rounded once to OutT (no rounding for float).
/// expert_out [R, H] of InT in row (expert-sorted) order, entry_to_row [R],
/// topk_weights [T, TOPK] fp32, shared_out [T, H] of InT or null, out [T, H]
/// of OutT. expert_out, shared_out and out must be 16-byte aligned (H % 8 == 0
/// keeps every row aligned then). out may alias shared_out when InT is OutT
/// (each element is read before it is written, by the same thread).
/// Launch: grid = (T, ceilDiv(H, 1024), 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int H, int TOPK, typename InT = bf16, typename OutT = bf16>
__global__ void __launch_bounds__(kMoeCombineThreads)
    moe_combine(const InT *expert_out, const int *entry_to_row, const float *topk_weights,
                const InT *shared_out, OutT *out, int T) {
  awaitPrecedingKernels();
  static_assert(H % 8 == 0, "16-byte vectors of 8 values");
  static_assert(TOPK >= 1, "at least one pick per token");
  const int token = blockIdx.x;
  const int column = blockIdx.y * kMoeCombineColumns + threadIdx.x * 8;
  if (token >= T || column >= H)
    return;

  int rows[TOPK];
  float weights[TOPK];
#pragma unroll
  for (int k = 0; k < TOPK; ++k) {
    rows[k] = entry_to_row[static_cast<long long>(token) * TOPK + k];
    weights[k] = topk_weights[static_cast<long long>(token) * TOPK + k];
  }
  float loaded[TOPK][8]; // all TOPK gathers in flight before the first use
#pragma unroll
  for (int k = 0; k < TOPK; ++k)
    load8(expert_out + static_cast<long long>(rows[k]) * H + column, loaded[k]);

  float acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
    acc[i] = 0.0f;
#pragma unroll
  for (int k = 0; k < TOPK; ++k)
#pragma unroll
    for (int i = 0; i < 8; ++i)
      acc[i] = fmaf(weights[k], loaded[k][i], acc[i]);
  const long long outOffset = static_cast<long long>(token) * H + column;
  if (shared_out) {
    float shared[8];
    load8(shared_out + outOffset, shared);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      acc[i] += shared[i];
  }
  store8(out + outOffset, acc);
}

} // namespace dsv3k
