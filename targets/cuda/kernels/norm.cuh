//===- norm.cuh - embedding lookup, RMSNorm and row gathers ---------------===//
//
// Row-wise kernels over activations of width H (bf16, or float for the fp32
// residual stream and GEMM outputs): one block of 128 threads per row. A row
// is cut into chunks of 8 values (when H % 8 == 0), read in 16-byte vectors;
// thread i handles chunks i, i + 128, i + 256, ... so that each load of a warp
// covers 512 consecutive bytes. A row whose pointers are not all 16-byte
// aligned (an odd stride, a pointer into the middle of a buffer) takes the
// same chunk layout with scalar loads: correct for any pointer, just slower.
//
// RMSNorm computes in fp32 and rounds once:
//   y = bf16(w * (x * rsqrt(mean(x^2) + eps)))
// (Hugging Face's bf16 module rounds the normalized value before the weight
// multiplies it; its fp32 reference does not, and y is a GEMM input, the one
// place a bf16 rounding is needed.)
//
// rms_norm_quant / add_rms_norm_quant feed an FP8 GEMM instead: they round
// y to bf16 in registers and quantize it exactly as act_quant would (one
// scale per 128 channels = 16 chunks = 16 consecutive lanes of a warp), so
// that y never goes through memory.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"
#include "targets/cuda/kernels/quant.cuh" // blockScale: rms_norm_quant quantizes as act_quant

namespace dsv3k {

namespace norm_detail {

/// Threads of every row kernel here (a block per row). 512, not 128: a
/// decode step's single row is one block, whose latency is the kernel's
/// (add_rms_norm_quant of a 7168-wide row: 8 us with 128 threads, 5 us with
/// 512, about the same with 1024, on an H100 inside a decode step).
inline constexpr int kThreads = 512;

/// Elements per chunk: a 16-byte vector when the row width allows one.
template <int H> struct RowChunks {
  static constexpr int kVec = H % 8 == 0 ? 8 : 1;
  static constexpr int kCount = H / kVec;
  static constexpr int kPerThread = ceilDiv(kCount, kThreads);
};

/// Reads kVec values at p as floats: 16-byte loads when `vectorized`.
template <int kVec, typename T>
__device__ __forceinline__ void loadChunk(const T *p, bool vectorized, float (&out)[kVec]) {
  if constexpr (kVec == 8) {
    if (vectorized) {
      load8(p, out);
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kVec; ++i)
    out[i] = toFloat(p[i]);
}

/// Writes kVec floats to p as T (bf16: round to nearest even).
template <int kVec, typename T>
__device__ __forceinline__ void storeChunk(T *p, bool vectorized, const float (&in)[kVec]) {
  if constexpr (kVec == 8) {
    if (vectorized) {
      store8(p, in);
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kVec; ++i)
    p[i] = fromFloat<T>(in[i]);
}

/// Copies one row of H values with the whole block, converting from InT to
/// OutT (embedding, gather).
template <int H, typename InT, typename OutT>
__device__ __forceinline__ void copyRow(const InT *src, OutT *dst) {
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  bool vectorized = aligned16(src) && aligned16(dst);
  for (int c = threadIdx.x; c < Chunks::kCount; c += kThreads) {
    float values[kVec];
    loadChunk<kVec>(src + c * kVec, vectorized, values);
    storeChunk<kVec>(dst + c * kVec, vectorized, values);
  }
}

/// The fp32 RMSNorm of one row of H values held in registers (values[k] is
/// chunk threadIdx.x + k * kThreads), in place: values = w * (values *
/// rsqrt(mean(values^2) + eps)), not rounded. Called by the whole block of
/// kThreads; x's sum of squares comes from the registers.
template <int H>
__device__ __forceinline__ void
normalizeHeld(float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec], const bf16 *w,
              float eps) {
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  bool vectorized = aligned16(w);
  // The weight's loads go out before the reduction, whose barriers then
  // wait out their latency (a decode step's one block per row is
  // latency-bound).
  float weight[Chunks::kPerThread][kVec];
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount)
      loadChunk<kVec>(w + chunk * kVec, vectorized, weight[k]);
  }
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
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount) {
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        values[k][i] = weight[k][i] * (values[k][i] * inverseRms);
    }
  }
}

/// y = bf16(w * (x * rsqrt(mean(x^2) + eps))) for one row of H values held
/// in registers (normalizeHeld's layout; overwritten). Called by the whole
/// block of kThreads.
template <int H>
__device__ __forceinline__ void
normalizeHeldRow(float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec], const bf16 *w,
                 bf16 *y, float eps) {
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  normalizeHeld<H>(values, w, eps);
  bool vectorized = aligned16(y);
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount)
      storeChunk<kVec>(y + chunk * kVec, vectorized, values[k]);
  }
}

/// Whether p may be written with 8-byte vector stores (8 e4m3 codes).
__device__ __forceinline__ bool aligned8(const void *p) {
  return (reinterpret_cast<unsigned long long>(p) & 7ull) == 0;
}

/// Quantizes one normalized row held in registers (normalizeHeld's layout,
/// fp32, not yet rounded) exactly as act_quant<H, BLOCK, UE8M0> quantizes
/// the bf16 row y = bf16(values): per BLOCK channels scale =
/// blockScale<UE8M0>(amax |y|), q = e4m3(y / scale). A channel block is
/// BLOCK / 8 consecutive chunks, which the layout gives to as many
/// consecutive lanes of one warp (an aligned group: 128 % (BLOCK / 8) == 0),
/// so its amax is a shuffle reduction among them. Called by the whole block:
/// every lane takes part in the shuffles, also for a chunk past H.
template <int H, int BLOCK, bool UE8M0>
__device__ __forceinline__ void
quantizeHeldRow(const float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec], fp8 *qRow,
                float *scaleRow) {
  using Chunks = RowChunks<H>;
  constexpr int kChunksPerBlock = BLOCK / 8;
  static_assert(BLOCK % 8 == 0 && H % BLOCK == 0, "whole 8-value chunks, whole channel blocks");
  static_assert(Chunks::kVec == 8, "H % BLOCK == 0 and BLOCK % 8 == 0 give 8-value chunks");
  static_assert(kChunksPerBlock <= 32 && (kChunksPerBlock & (kChunksPerBlock - 1)) == 0,
                "a channel block must be an aligned group of lanes within one warp");
  bool vectorized = aligned8(qRow);
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    bool present = chunk < Chunks::kCount; // the same for a whole channel block
    float rounded[8];
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      rounded[i] = present ? toFloat(fromFloat<bf16>(values[k][i])) : 0.0f;
      amax = fmaxf(amax, fabsf(rounded[i]));
    }
#pragma unroll
    for (int offset = kChunksPerBlock / 2; offset > 0; offset >>= 1)
      amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    if (!present)
      continue;
    float scale = quant_detail::blockScale<UE8M0>(amax);
    unsigned char codes[8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      codes[i] = fp8(rounded[i] / scale).__x; // as act_quant: true division, saturating
    if (vectorized) {
      uint2 word;
      word.x = codes[0] | codes[1] << 8 | codes[2] << 16 | static_cast<unsigned>(codes[3]) << 24;
      word.y = codes[4] | codes[5] << 8 | codes[6] << 16 | static_cast<unsigned>(codes[7]) << 24;
      *reinterpret_cast<uint2 *>(qRow + chunk * 8) = word;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        qRow[chunk * 8 + i].__x = codes[i];
    }
    if (chunk % kChunksPerBlock == 0)
      scaleRow[chunk / kChunksPerBlock] = scale;
  }
}

/// sum = ResT(residual + delta) for one row of H values (fp32 add, one
/// rounding to ResT), stored, and its stored value left in `values` in
/// normalizeHeld's layout. sum may be residual itself.
template <int H, typename ResT, typename DeltaT>
__device__ __forceinline__ void
addHeldRow(const ResT *residualRow, const DeltaT *deltaRow, ResT *sumRow,
           float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec]) {
  using Chunks = RowChunks<H>;
  constexpr int kVec = Chunks::kVec;
  bool vectorized = aligned16(residualRow) && aligned16(deltaRow) && aligned16(sumRow);
  float added[Chunks::kPerThread][kVec];
  // Every load before any store: sum may alias residual, so a store would
  // hold back the loads after it (one memory round trip per chunk).
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount) {
      loadChunk<kVec>(residualRow + chunk * kVec, vectorized, values[k]);
      loadChunk<kVec>(deltaRow + chunk * kVec, vectorized, added[k]);
    }
  }
#pragma unroll
  for (int k = 0; k < Chunks::kPerThread; ++k) {
    int chunk = threadIdx.x + k * kThreads;
    if (chunk < Chunks::kCount) {
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        values[k][i] = toFloat(fromFloat<ResT>(values[k][i] + added[k][i]));
      // Each thread writes back only the chunks it read: no other thread of
      // this block touches them, so no barrier is needed before the store.
      storeChunk<kVec>(sumRow + chunk * kVec, vectorized, values[k]);
    }
  }
}

/// Loads one row of H values into registers in normalizeHeldRow's layout.
template <int H, typename InT>
__device__ __forceinline__ void
loadRow(const InT *x, float (&values)[RowChunks<H>::kPerThread][RowChunks<H>::kVec]) {
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
template <int H, typename InT>
__device__ __forceinline__ void rmsNormRow(const InT *x, const bf16 *w, bf16 *y, float eps) {
  using Chunks = RowChunks<H>;
  float values[Chunks::kPerThread][Chunks::kVec];
  loadRow<H>(x, values);
  normalizeHeldRow<H>(values, w, y, eps);
}

} // namespace norm_detail

/// Embedding lookup: out[t, :] = table[tokens[t], :]; table is [vocab, H]
/// bf16, out is [T, H] of OutT (float for an fp32 residual stream: exact).
/// Token ids must lie in [0, vocab): the kernel does not know vocab and does
/// not check.
/// Launch: grid = (T, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename OutT = bf16>
__global__ void __launch_bounds__(norm_detail::kThreads)
    embed(const int *tokens, const bf16 *table, OutT *out, int T) {
  awaitPrecedingKernels();
  int t = blockIdx.x;
  if (t >= T)
    return;
  long long row = tokens[t];
  norm_detail::copyRow<H>(table + row * H, out + static_cast<long long>(t) * H);
}

/// RMSNorm of the first H columns of each of T rows (x bf16 or float): y[t,
/// 0:H] = bf16(w * (x[t, 0:H] * rsqrt(mean(x[t, 0:H]^2) + eps))), all in fp32
/// and rounded once (y feeds a GEMM, which reads bf16). Row t of x starts
/// at x + t * ldx and of y at y + t * ldy (strides in elements, >= H), which
/// covers the kv_a case (H = 512 of ldx = 576) and writing into one half of a
/// [T, 2H] buffer. y must not overlap x.
/// Launch: grid = (T, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename InT = bf16>
__global__ void __launch_bounds__(norm_detail::kThreads)
    rms_norm(const InT *x, int ldx, const bf16 *w, bf16 *y, int ldy, int T, float eps) {
  awaitPrecedingKernels();
  int t = blockIdx.x;
  if (t >= T)
    return;
  norm_detail::rmsNormRow<H>(x + static_cast<long long>(t) * ldx, w,
                             y + static_cast<long long>(t) * ldy, eps);
}

/// Residual add fused with the next RMSNorm, rows [T, H] contiguous:
/// sum[t] = ResT(residual[t] + delta[t]) (fp32 add; with a float residual
/// stream no rounding), then y[t] = rms_norm(sum[t]) * w computed from the
/// stored sum. sum may be residual itself (each thread reads its chunks
/// before it writes them); y must not overlap residual, delta or sum.
/// Launch: grid = (T, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename ResT = bf16, typename DeltaT = bf16>
__global__ void __launch_bounds__(norm_detail::kThreads)
    add_rms_norm(const ResT *residual, const DeltaT *delta, const bf16 *w, ResT *sum, bf16 *y,
                 int T, float eps) {
  awaitPrecedingKernels();
  using namespace norm_detail;
  using Chunks = RowChunks<H>;
  int t = blockIdx.x;
  if (t >= T)
    return;
  float values[Chunks::kPerThread][Chunks::kVec];
  long long offset = static_cast<long long>(t) * H;
  addHeldRow<H>(residual + offset, delta + offset, sum + offset, values);
  normalizeHeldRow<H>(values, w, y + offset, eps);
}

/// rms_norm fused with the FP8 quantization of its output: for each of T
/// rows, y = bf16(w * (x * rsqrt(mean(x^2) + eps))) exactly as rms_norm<H,
/// InT> computes it (never stored), then q and scales exactly as
/// act_quant<H, BLOCK, false> computes them from y: per BLOCK channels
/// scale = max(amax |y|, 1e-4) / 448, q = e4m3(y / scale), bit for bit.
/// x: row t at x + t * ldx (the first H columns; ldx >= H, e.g. the kv_a
/// latent H = 512 of ldx = 576). q: [T, H] e4m3 row-major contiguous.
/// scales: [T, H / BLOCK] fp32. Requires H % BLOCK == 0 and BLOCK / 8 a
/// power of two <= 32 (BLOCK = 128: 16 lanes per channel block). Any pointer
/// alignment works (x and w in 16-byte loads when their rows allow, q in
/// 8-byte stores when q is 8-byte aligned, otherwise scalar accesses).
/// Launch: grid = (T, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename InT, int BLOCK>
__global__ void __launch_bounds__(norm_detail::kThreads)
    rms_norm_quant(const InT *x, int ldx, const bf16 *w, fp8 *q, float *scales, int T,
                   float eps) {
  awaitPrecedingKernels();
  using namespace norm_detail;
  using Chunks = RowChunks<H>;
  static_assert(H % BLOCK == 0 && BLOCK % 8 == 0, "whole channel blocks of whole chunks");
  int t = blockIdx.x;
  if (t >= T)
    return;
  float values[Chunks::kPerThread][Chunks::kVec];
  loadRow<H>(x + static_cast<long long>(t) * ldx, values);
  normalizeHeld<H>(values, w, eps);
  quantizeHeldRow<H, BLOCK, false>(values, q + static_cast<long long>(t) * H,
                                   scales + static_cast<long long>(t) * (H / BLOCK));
}

/// add_rms_norm fused with the FP8 quantization of its output, rows [T, H]
/// contiguous: sum[t] = ResT(residual[t] + delta[t]) exactly as add_rms_norm
/// stores it (sum may be residual itself), then q and scales of y =
/// bf16(rms_norm(sum[t]) * w) exactly as rms_norm_quant (and so act_quant<H,
/// BLOCK, false>) computes them; y itself is not stored. q: [T, H] e4m3,
/// scales: [T, H / BLOCK] fp32; q and scales must not overlap the others.
/// Requirements and alignment as rms_norm_quant.
/// Launch: grid = (T, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename ResT, typename DeltaT, int BLOCK>
__global__ void __launch_bounds__(norm_detail::kThreads)
    add_rms_norm_quant(const ResT *residual, const DeltaT *delta, const bf16 *w, ResT *sum,
                       fp8 *q, float *scales, int T, float eps) {
  awaitPrecedingKernels();
  using namespace norm_detail;
  using Chunks = RowChunks<H>;
  static_assert(H % BLOCK == 0 && BLOCK % 8 == 0, "whole channel blocks of whole chunks");
  int t = blockIdx.x;
  if (t >= T)
    return;
  float values[Chunks::kPerThread][Chunks::kVec];
  long long offset = static_cast<long long>(t) * H;
  addHeldRow<H>(residual + offset, delta + offset, sum + offset, values);
  normalizeHeld<H>(values, w, eps);
  quantizeHeldRow<H, BLOCK, false>(values, q + offset,
                                   scales + static_cast<long long>(t) * (H / BLOCK));
}

/// Row gather: out[r, :] = x[rows[r], :] for r < R; x and out are [*, H] of T
/// contiguous (picks each sequence's last token before the LM head).
/// Launch: grid = (R, 1, 1), block = (512, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename T = bf16>
__global__ void __launch_bounds__(norm_detail::kThreads)
    gather_rows(const T *x, const int *rows, T *out, int R) {
  awaitPrecedingKernels();
  int r = blockIdx.x;
  if (r >= R)
    return;
  long long row = rows[r];
  norm_detail::copyRow<H>(x + row * H, out + static_cast<long long>(r) * H);
}

} // namespace dsv3k
