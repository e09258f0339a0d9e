//===- mla.cuh - Multi-head Latent Attention in absorbed form -------------===//
//
// DeepSeek's MLA with the kv_b projection absorbed into the query and the
// output, so attention runs directly on the paged latent cache (the demo's
// attn_impl="absorb"), for prefill and decode alike. Per layer:
//
//   mla_rope_q     q[t, h, NOPE:]  <- rope(q[t, h, NOPE:], positions[t])
//   q absorption   q_lat[t, h, :]   = q[t, h, :NOPE] . W_UK[h]        (KV_LORA)
//   mla_kv_write   cache[slot(t)]   = [rms_norm(kv_a[t, :KV_LORA]), rope(kv_a[t, KV_LORA:])]
//   mla_attention  out_lat[t, h, :] = softmax_j(scale (q_lat.c_j + q_pe.k_pe_j)) c_j
//   out absorption out[t, h, :]     = W_UV[h] . out_lat[t, h, :]      (V)
//
// The two absorptions are mla_absorb.cuh's kernels (tensor cores for many
// tokens, weight streaming for few); mla_decode.cuh has the tensor-core
// attention.
//
// kv_b (bf16, as the loader dequantizes it) is [HEADS (NOPE + V), KV_LORA]:
// rows h (NOPE + V) + n, n < NOPE, are W_UK[h]; the V rows after them W_UV[h].
// The cache is [num_pages * PAGE, KV_LORA + ROPE] bf16; position p of sequence
// s lives in row block_table[s * max_pages + p / PAGE] * PAGE + p % PAGE.
//
// RoPE rotates interleaved pairs (x[2i], x[2i+1]) by positions[t] * inv_freq[i]
// (product in fp32, as Hugging Face's fp32 `inv_freq @ position_ids`), with
// cos and sin multiplied by rope_scale (YaRN's attention factor, usually 1).
// Hugging Face de-interleaves the rotated output instead; since q and k get
// the same treatment, every q.k dot product is the same. cos and sin are
// evaluated in double precision from the fp32 angle: angles reach 16K radians
// at long context, where fast single-precision sincos is inaccurate, and
// doubles stay exact even under --use_fast_math.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"
#include "targets/cuda/kernels/norm.cuh"

namespace dsv3k {

namespace mla_detail {

/// cos and sin (times rope_scale) of position * inv_freq[i] for i < ROPE / 2,
/// into shared arrays; called by the whole block, followed by a barrier.
template <int ROPE>
__device__ __forceinline__ void ropeTable(int position, const float *inv_freq,
                                          float rope_scale, float *cosines, float *sines) {
  for (int i = threadIdx.x; i < ROPE / 2; i += blockDim.x) {
    float angle = static_cast<float>(position) * inv_freq[i];
    double s, c;
    sincos(static_cast<double>(angle), &s, &c);
    cosines[i] = static_cast<float>(c) * rope_scale;
    sines[i] = static_cast<float>(s) * rope_scale;
  }
}

/// The pair of values at p (4- or 8-byte aligned) as floats.
__device__ __forceinline__ float2 loadPair(const bf16 *p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(p));
}
__device__ __forceinline__ float2 loadPair(const float *p) {
  return *reinterpret_cast<const float2 *>(p);
}
__device__ __forceinline__ void storePair(bf16 *p, float2 v) {
  *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(v.x, v.y);
}
__device__ __forceinline__ void storePair(float *p, float2 v) {
  *reinterpret_cast<float2 *>(p) = v;
}

__device__ __forceinline__ long long cacheSlot(const int *block_table, int max_pages,
                                               int sequence, int position, int page_size) {
  long long page = block_table[static_cast<long long>(sequence) * max_pages + position / page_size];
  return page * page_size + position % page_size;
}

/// bf16 pair packed in a 32-bit word, as two floats.
__device__ __forceinline__ float2 unpackPair(unsigned word) {
  return make_float2(__uint_as_float(word << 16), __uint_as_float(word & 0xFFFF0000u));
}

/// -inf without <cmath>'s INFINITY (NVRTC has no standard headers).
__device__ __forceinline__ float negativeInfinity() { return __uint_as_float(0xFF800000u); }

/// Heads one attention block handles: the largest of 8, 4, 2, 1 dividing HEADS.
template <int HEADS> struct AttentionHeads {
  static constexpr int kPerBlock = HEADS % 8 == 0 ? 8 : HEADS % 4 == 0 ? 4 : HEADS % 2 == 0 ? 2 : 1;
};

inline constexpr int kRopeThreads = 128;
inline constexpr int kRopeHeadsPerBlock = 8; ///< mla_rope_q's heads per block
inline constexpr int kKvWriteThreads = norm_detail::kThreads; // rmsNormRow strides by them
inline constexpr int kAttentionThreads = 256;
inline constexpr int kKeysPerTile = 16;
inline constexpr float kLog2e = 1.4426950408889634f;

} // namespace mla_detail

/// RoPE on the query, in place: for every token t and head h rotates the ROPE
/// values q[t, h (NOPE + ROPE) + NOPE + 0 : ROPE] as interleaved pairs by
/// positions[t] * inv_freq[i]; q is [T, HEADS (NOPE + ROPE)]. Block (t, y)
/// takes heads [8 y, 8 y + 8): a decode token's 128 heads spread over 16
/// blocks, and each thread loads all its pairs before it stores any (the
/// stores, in place, would otherwise hold back the next loads).
/// Launch: grid = (T, ceil(HEADS / 8), 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int HEADS, int NOPE, int ROPE, typename QT = bf16>
__global__ void __launch_bounds__(mla_detail::kRopeThreads)
    mla_rope_q(QT *q, const int *positions, const float *inv_freq, float rope_scale, int T) {
  awaitPrecedingKernels();
  static_assert(NOPE % 2 == 0 && ROPE % 2 == 0, "pairs must be 4-byte aligned");
  constexpr int kPairs = ROPE / 2;
  constexpr int kBlockPairs = mla_detail::kRopeHeadsPerBlock * kPairs;
  constexpr int kPerThread = ceilDiv(kBlockPairs, mla_detail::kRopeThreads);
  __shared__ float cosines[kPairs], sines[kPairs];
  int t = blockIdx.x;
  if (t >= T)
    return;
  QT *row = q + static_cast<long long>(t) * HEADS * (NOPE + ROPE);
  const int firstHead = blockIdx.y * mla_detail::kRopeHeadsPerBlock;
  float2 pair[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    int p = threadIdx.x + j * mla_detail::kRopeThreads, head = firstHead + p / kPairs;
    if (p < kBlockPairs && head < HEADS)
      pair[j] = mla_detail::loadPair(row + head * (NOPE + ROPE) + NOPE + 2 * (p % kPairs));
  }
  mla_detail::ropeTable<ROPE>(positions[t], inv_freq, rope_scale, cosines, sines);
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    int p = threadIdx.x + j * mla_detail::kRopeThreads, head = firstHead + p / kPairs;
    if (p < kBlockPairs && head < HEADS) {
      int i = p % kPairs;
      float c = cosines[i], s = sines[i];
      mla_detail::storePair(row + head * (NOPE + ROPE) + NOPE + 2 * i,
                            make_float2(pair[j].x * c - pair[j].y * s, pair[j].x * s + pair[j].y * c));
    }
  }
}

/// Latent cache write: for token t, c = rms_norm(kv_a[t, 0:KV_LORA]) * norm_w
/// (as rms_norm) and k_pe = rope(kv_a[t, KV_LORA:KV_LORA + ROPE], positions[t])
/// (as mla_rope_q); writes [c, k_pe] to cache row
/// block_table[token_seq[t] * max_pages + positions[t] / PAGE] * PAGE + positions[t] % PAGE.
/// kv_a is [T, KV_LORA + ROPE] of InT (bf16 or float), cache
/// [num_pages * PAGE, KV_LORA + ROPE] bf16.
/// Launch: grid = (T, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int KV_LORA, int ROPE, int PAGE, typename InT = bf16>
__global__ void __launch_bounds__(mla_detail::kKvWriteThreads)
    mla_kv_write(const InT *kv_a, const bf16 *norm_w, const int *positions, const int *token_seq,
                 const int *block_table, int max_pages, const float *inv_freq, float rope_scale,
                 bf16 *cache, int T, float eps) {
  awaitPrecedingKernels();
  static_assert(KV_LORA % 2 == 0 && ROPE % 2 == 0, "pairs must be 4-byte aligned");
  constexpr int kRow = KV_LORA + ROPE;
  constexpr int kPairs = ROPE / 2;
  __shared__ float cosines[kPairs], sines[kPairs];
  int t = blockIdx.x;
  if (t >= T)
    return;
  int position = positions[t];
  long long slot = mla_detail::cacheSlot(block_table, max_pages, token_seq[t], position, PAGE);
  const InT *source = kv_a + static_cast<long long>(t) * kRow;
  bf16 *target = cache + slot * kRow;

  mla_detail::ropeTable<ROPE>(position, inv_freq, rope_scale, cosines, sines);
  norm_detail::rmsNormRow<KV_LORA>(source, norm_w, target, eps); // has barriers
  __syncthreads();
  for (int i = threadIdx.x; i < kPairs; i += blockDim.x) {
    float2 v = mla_detail::loadPair(source + KV_LORA + 2 * i);
    float c = cosines[i], s = sines[i];
    mla_detail::storePair(target + KV_LORA + 2 * i,
                          make_float2(v.x * c - v.y * s, v.x * s + v.y * c));
  }
}

/// Absorbed MLA attention over the paged latent cache. For token t and head h:
///   score_j = (q_lat[t, h, :] . c_j + q_pe[t, h, :] . k_pe_j) * softmax_scale
/// for cache positions j = 0 .. positions[t] of sequence token_seq[t] (causal;
/// the token's own entry must already be in the cache), p = softmax(score) in
/// fp32, out_lat[t, h, :] = sum_j p_j c_j (fp32, stored as OutT). q_pe is the
/// roped last ROPE values of head h in q [T, HEADS (NOPE + ROPE)]; q_lat and
/// out_lat are [T, HEADS, KV_LORA]; q and q_lat are QT (bf16 or float); cache
/// rows are [c_j (KV_LORA), k_pe_j (ROPE)] bf16.
///
/// Block (t, g) handles token t and heads G g .. G g + G - 1 (G =
/// HEADS_PER_BLOCK, which must divide HEADS and be at most 8; by default the
/// largest of 8, 4, 2, 1 dividing HEADS); keys shared by all heads (the latent
/// cache is one "KV head") are staged once per tile of 16 positions and used
/// by all G heads. A large G reuses each staged key for more heads (prefill,
/// many tokens); G = 1 gives a decode step of few tokens HEADS blocks per
/// token instead of HEADS / 8, so the cache reads spread over the whole GPU.
/// Online softmax across tiles: shared memory does not grow with the context
/// (about 38 KB static at DeepSeek-V3's shapes), so any context that fits the
/// block table works.
/// Launch: grid = (T, HEADS / HEADS_PER_BLOCK, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int HEADS, int NOPE, int ROPE, int KV_LORA, int PAGE, typename QT = bf16,
          typename OutT = bf16, int HEADS_PER_BLOCK = mla_detail::AttentionHeads<HEADS>::kPerBlock>
__global__ void __launch_bounds__(mla_detail::kAttentionThreads)
    mla_attention(const QT *q_lat, const QT *q, const bf16 *cache, const int *block_table,
                  int max_pages, const int *token_seq, const int *positions, OutT *out_lat, int T,
                  float softmax_scale) {
  awaitPrecedingKernels();
  using namespace mla_detail;
  constexpr int kThreads = kAttentionThreads;
  constexpr int G = HEADS_PER_BLOCK;
  static_assert(G >= 1 && G <= 8 && HEADS % G == 0, "whole heads per block, one warp each");
  constexpr int N = kKeysPerTile;
  constexpr int kRow = KV_LORA + ROPE;
  static_assert(KV_LORA % 8 == 0 && ROPE % 8 == 0, "cache rows are read in 16-byte chunks");
  constexpr int kRowWords = kRow / 2;
  // An odd word stride puts the 16 keys a warp reads at one column in 16
  // different banks.
  constexpr int kKeyStride = kRowWords % 2 == 0 ? kRowWords + 1 : kRowWords;
  // Score phase: G x N dot products of kRowWords words, each split into
  // kSplits contiguous word ranges so that all threads have one.
  static_assert(kThreads % (G * N) == 0, "score work must divide the block");
  constexpr int kSplits = kThreads / (G * N);
  constexpr int kSplitWords = ceilDiv(kRowWords, kSplits);
  constexpr int kLatentWords = KV_LORA / 2;
  constexpr int kWordsPerThread = ceilDiv(kLatentWords, kThreads);
  static_assert(G * kRow * 4 + N * kKeyStride * 4 <= 44 * 1024,
                "tiles must fit in static shared memory");

  __shared__ __align__(16) float query[G][kRow]; // pre-scaled by softmax_scale * log2(e)
  __shared__ unsigned keys[N][kKeyStride];       // bf16 pairs of the current tile
  __shared__ float partialScores[kSplits][G][N];
  __shared__ __align__(16) float probabilities[N][G];
  __shared__ float rescale[G];
  __shared__ float denominators[G];
  __shared__ long long keySlots[N];

  int t = blockIdx.x;
  if (t >= T)
    return;
  int firstHead = blockIdx.y * G;
  int sequence = token_seq[t];
  int keyCount = positions[t] + 1;
  float queryScale = softmax_scale * kLog2e;

  for (int e = threadIdx.x; e < G * kRow; e += kThreads) {
    int g = e / kRow, d = e % kRow;
    int head = firstHead + g;
    float v = d < KV_LORA
                  ? toFloat(q_lat[(static_cast<long long>(t) * HEADS + head) * KV_LORA + d])
                  : toFloat(q[static_cast<long long>(t) * HEADS * (NOPE + ROPE) +
                              head * (NOPE + ROPE) + NOPE + (d - KV_LORA)]);
    query[g][d] = v * queryScale;
  }

  // Score-phase role of this thread: key j, head g, word range [w0, w1).
  const int scoreKey = threadIdx.x % N;
  const int scoreSplit = (threadIdx.x / N) % kSplits;
  const int scoreHead = threadIdx.x / (N * kSplits);
  const int w0 = scoreSplit * kSplitWords;
  const int w1 = w0 + kSplitWords < kRowWords ? w0 + kSplitWords : kRowWords;

  // Softmax state of head g lives in every lane of warp g (g < G <= 8 warps).
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float runningMax = negativeInfinity(), runningSum = 0.0f;

  float acc[kWordsPerThread][G][2];
#pragma unroll
  for (int k = 0; k < kWordsPerThread; ++k)
#pragma unroll
    for (int g = 0; g < G; ++g)
      acc[k][g][0] = acc[k][g][1] = 0.0f;

  for (int tileStart = 0; tileStart < keyCount; tileStart += N) {
    int tileKeys = keyCount - tileStart < N ? keyCount - tileStart : N;
    __syncthreads(); // previous tile's keys and probabilities are no longer read
    if (threadIdx.x < tileKeys) {
      keySlots[threadIdx.x] =
          cacheSlot(block_table, max_pages, sequence, tileStart + threadIdx.x, PAGE);
    }
    __syncthreads();
    constexpr int kChunksPerRow = kRow / 8;
    for (int e = threadIdx.x; e < tileKeys * kChunksPerRow; e += kThreads) {
      int j = e / kChunksPerRow, chunk = e % kChunksPerRow;
      uint4 raw = reinterpret_cast<const uint4 *>(
          cache + keySlots[j] * kRow)[chunk];
      unsigned *dst = &keys[j][chunk * 4];
      dst[0] = raw.x, dst[1] = raw.y, dst[2] = raw.z, dst[3] = raw.w;
    }
    __syncthreads();

    // Partial dot products: one (head, key, word range) per thread.
    {
      float dot = 0.0f;
      if (scoreKey < tileKeys) {
        const unsigned *keyRow = keys[scoreKey];
        const float *queryRow = query[scoreHead];
        for (int w = w0; w < w1; ++w) {
          float2 k2 = unpackPair(keyRow[w]);
          float2 q2 = *reinterpret_cast<const float2 *>(&queryRow[2 * w]);
          dot += q2.x * k2.x + q2.y * k2.y;
        }
      }
      partialScores[scoreSplit][scoreHead][scoreKey] = dot;
    }
    __syncthreads();

    // Online softmax update, warp g for head g, lane j for key j.
    if (warp < G) {
      float score = negativeInfinity();
      if (lane < tileKeys) {
        score = 0.0f;
#pragma unroll
        for (int s = 0; s < kSplits; ++s)
          score += partialScores[s][warp][lane];
      }
      float newMax = fmaxf(runningMax, warpMax(score));
      float p = lane < tileKeys ? exp2f(score - newMax) : 0.0f;
      float factor = exp2f(runningMax - newMax); // 0 on the first tile
      runningSum = runningSum * factor + warpSum(p);
      runningMax = newMax;
      if (lane < N)
        probabilities[lane][warp] = p;
      if (lane == 0)
        rescale[warp] = factor;
    }
    __syncthreads();

    // acc = acc * factor + sum_j p_j c_j, each thread owning column pairs.
#pragma unroll
    for (int k = 0; k < kWordsPerThread; ++k) {
      int word = threadIdx.x + k * kThreads;
      if (word < kLatentWords) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
          acc[k][g][0] *= rescale[g];
          acc[k][g][1] *= rescale[g];
        }
        for (int j = 0; j < tileKeys; ++j) {
          float2 c2 = unpackPair(keys[j][word]);
#pragma unroll
          for (int g = 0; g < G; ++g) {
            float p = probabilities[j][g];
            acc[k][g][0] += p * c2.x;
            acc[k][g][1] += p * c2.y;
          }
        }
      }
    }
  }

  if (warp < G && lane == 0)
    denominators[warp] = runningSum;
  __syncthreads();
#pragma unroll
  for (int k = 0; k < kWordsPerThread; ++k) {
    int word = threadIdx.x + k * kThreads;
    if (word < kLatentWords) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float inverse = 1.0f / denominators[g];
        storePair(out_lat + (static_cast<long long>(t) * HEADS + firstHead + g) * KV_LORA +
                      2 * word,
                  make_float2(acc[k][g][0] * inverse, acc[k][g][1] * inverse));
      }
    }
  }
}

} // namespace dsv3k
