//===- norm.cuh - embedding lookup, RMSNorm and row gathers ---------------===//
//
// Row-wise kernels over bf16 activations of width H: one block of 128 threads
// per row. A row is cut into 16-byte chunks of 8 bf16 (when H % 8 == 0);
// thread i handles chunks i, i + 128, i + 256, ... so that each load of a warp
// covers 512 consecutive bytes. A row whose pointers are not all 16-byte
// aligned (an odd stride, a pointer into the middle of a buffer) takes the
// same chunk layout with scalar loads: correct for any pointer, just slower.
//
// RMSNorm follows Hugging Face's DeepseekV3RMSNorm exactly:
//   h = x (fp32) * rsqrt(mean(x^2) + eps);  y = bf16(w * bf16(h))
// i.e. the normalized value is rounded to bf16 before the weight multiplies
// it (`weight * hidden.to(input_dtype)`), and the product is rounded again.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

namespace norm_detail {

constexpr int kThreads = 128;

/// Elements per chunk: a 16-byte vector when the row width allows one.
template <int H> struct RowChunks {
  static constexpr int kVec = H % 8 == 0 ? 8 : 1;
  static constexpr int kCount = H / kVec;
  static constexpr int kPerThread = ceilDiv(kCount, kThreads);
};

__device__ __forceinline__ bool aligned16(const void *p) {
  return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

/// Reads kVec bf16 at p as floats: one 16-byte load when `vectorized`.
template <int kVec>
__device__ __forceinline__ void loadChunk(const bf16 *p, bool vectorized, float (&out)[kVec]) {
  if (kVec == 8 && vectorized) {
    uint4 raw = *reinterpret_cast<const uint4 *>(p);
    const __nv_bfloat162 *pairs = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
    for (int i = 0; i < kVec / 2; ++i) {
      float2 f = __bfloat1622float2(pairs[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      out[i] = toFloat(p[i]);
  }
}

/// Writes kVec floats to p as bf16 (round to nearest even).
template <int kVec>
__device__ __forceinline__ void storeChunk(bf16 *p, bool vectorized, const float (&in)[kVec]) {
  if (kVec == 8 && vectorized) {
    uint4 raw;
    __nv_bfloat162 *pairs = reinterpret_cast<__nv_bfloat162 *>(&raw);
#pragma unroll
    for (int i = 0; i < kVec / 2; ++i)
      pairs[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    *reinterpret_cast<uint4 *>(p) = raw;
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      p[i] = __float2bfloat16(in[i]);
  }
}

/// Copies one row of H bf16 with the whole block (embedding, gather).
template <int H> __device__ __forceinline__ void copyRow(const bf16 *src, bf16 *dst) {
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  if (kVec == 8 && aligned16(src) && aligned16(dst)) {
    const uint4 *from = reinterpret_cast<const uint4 *>(src);
    uint4 *to = reinterpret_cast<uint4 *>(dst);
    for (int c = threadIdx.x; c < Chunks::kCount; c += kThreads)
      to[c] = from[c];
  } else {
    for (int i = threadIdx.x; i < H; i += kThreads)
      dst[i] = src[i];
  }
}

/// y = bf16(w * bf16(x * rsqrt(mean(x^2) + eps))) for one row of H values held
/// in registers (values[k] is chunk threadIdx.x + k * kThreads). Called by the
/// whole block of kThreads; x's sum of squares comes from the registers.
template <int H>
__device__ __forceinline__ void
normalizeHeldRow(const float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec],
                 const bf16 *w, bf16 *y, float eps) {
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  float sumSquares = 0.0f;
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount) {
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        sumSquares += values[k][i] * values[k][i];
    }
  }
  float total = blockSum<kThreads>(sumSquares);
  float inverseRms = rsqrtf(total / static_cast<float>(H) + eps);
  bool vectorized = aligned16(w) && aligned16(y);
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount) {
      float weight[kVec], result[kVec];
      loadChunk<kVec>(w + chunk * kVec, vectorized, weight);
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        float normalized = toFloat(__float2bfloat16(values[k][i] * inverseRms));
        result[i] = weight[i] * normalized;
      }
      storeChunk<kVec>(y + chunk * kVec, vectorized, result);
    }
  }
}

/// Loads one row of H bf16 into registers in normalizeHeldRow's layout.
template <int H>
__device__ __forceinline__ void
loadRow(const bf16 *x, float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec]) {
  using Chunks = RowChunks<H>;
  bool vectorized = aligned16(x);
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount)
      loadChunk<Chunks::kVec>(x + chunk * Chunks::kVec, vectorized, values[k]);
  }
}

/// The whole RMSNorm of one row: y = rms_norm(x) * w. Called by the whole block.
template <int H>
__device__ __forceinline__ void rmsNormRow(const bf16 *x, const bf16 *w, bf16 *y, float eps) {
  using Chunks = RowChunks<H>;
  float values[Chunks::kPerThread][Chunks::kVec];
  loadRow<H>(x, values);
  normalizeHeldRow<H>(values, w, y, eps);
}

} // namespace norm_detail

/// Embedding lookup: out[t, :] = table[tokens[t], :]; table is [vocab, H],
/// out is [T, H]. Token ids must lie in [0, vocab): the kernel does not know
/// vocab and does not check.
/// Launch: grid = (T, 1, 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int H>
__global__ void __launch_bounds__(norm_detail::kThreads)
    embed(const int *tokens, const bf16 *table, bf16 *out, int T) {
  int t = blockIdx.x;
  if (t >= T)
    return;
  long long row = tokens[t];
  norm_detail::copyRow<H>(table + row * H, out + static_cast<long long>(t) * H);
}

/// RMSNorm of the first H columns of each of T rows: y[t, 0:H] =
/// bf16(w * bf16(x[t, 0:H] * rsqrt(mean(x[t, 0:H]^2) + eps))). Row t of x starts
/// at x + t * ldx and of y at y + t * ldy (strides in elements, >= H), which
/// covers the kv_a case (H = 512 of ldx = 576) and writing into one half of a
/// [T, 2H] buffer. y must not overlap x.
/// Launch: grid = (T, 1, 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int H>
__global__ void __launch_bounds__(norm_detail::kThreads)
    rms_norm(const bf16 *x, int ldx, const bf16 *w, bf16 *y, int ldy, int T, float eps) {
  int t = blockIdx.x;
  if (t >= T)
    return;
  norm_detail::rmsNormRow<H>(x + static_cast<long long>(t) * ldx, w,
                             y + static_cast<long long>(t) * ldy, eps);
}

/// Residual add fused with the next RMSNorm, rows [T, H] contiguous:
/// sum[t] = bf16(residual[t] + delta[t]) (fp32 add, one rounding, as
/// bf16 + bf16 in PyTorch), then y[t] = rms_norm(sum[t]) * w computed from the
/// rounded sum. sum may be residual itself (each thread reads its chunks
/// before it writes them); y must not overlap residual, delta or sum.
/// Launch: grid = (T, 1, 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int H>
__global__ void __launch_bounds__(norm_detail::kThreads)
    add_rms_norm(const bf16 *residual, const bf16 *delta, const bf16 *w, bf16 *sum, bf16 *y,
                 int T, float eps) {
  using namespace norm_detail;
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  int t = blockIdx.x;
  if (t >= T)
    return;
  const bf16 *residualRow = residual + static_cast<long long>(t) * H;
  const bf16 *deltaRow = delta + static_cast<long long>(t) * H;
  bf16 *sumRow = sum + static_cast<long long>(t) * H;
  bool vectorized = aligned16(residualRow) && aligned16(deltaRow) && aligned16(sumRow);
  float values[Chunks::kPerThread][kVec];
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount) {
      float added[kVec];
      loadChunk<kVec>(residualRow + chunk * kVec, vectorized, values[k]);
      loadChunk<kVec>(deltaRow + chunk * kVec, vectorized, added);
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        values[k][i] = toFloat(__float2bfloat16(values[k][i] + added[i]));
      // Each thread writes back only the chunks it read: no other thread of
      // this block touches them, so no barrier is needed before the store.
      storeChunk<kVec>(sumRow + chunk * kVec, vectorized, values[k]);
    }
  }
  normalizeHeldRow<H>(values, w, y + static_cast<long long>(t) * H, eps);
}

/// Row gather: out[r, :] = x[rows[r], :] for r < R; x and out are [*, H]
/// contiguous (picks each sequence's last token before the LM head).
/// Launch: grid = (R, 1, 1), block = (128, 1, 1), dynamic shared memory = 0 bytes
template <int H>
__global__ void __launch_bounds__(norm_detail::kThreads)
    gather_rows(const bf16 *x, const int *rows, bf16 *out, int R) {
  int r = blockIdx.x;
  if (r >= R)
    return;
  long long row = rows[r];
  norm_detail::copyRow<H>(x + row * H, out + static_cast<long long>(r) * H);
}

} // namespace dsv3k
