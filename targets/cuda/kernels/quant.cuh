//===- quant.cuh - online FP8 activation quantization and SwiGLU ----------===//
//
// DeepSeek-V3 quantizes activations on the fly: one fp32 scale per token per
// BLOCK (128) consecutive channels, scale = amax / 448, q = e4m3(x / scale).
// The scale is what the GEMM multiplies back in (a "scale_inv" in DeepSeek's
// naming), so q * scale approximates x.
//
// Geometry shared by the quantizing kernels: one block of 256 threads per
// token (row); warp w handles channel blocks w, w + 8, w + 16, ...; lane l
// holds elements l, l + 32, l + 64, ... of its channel block in registers, so
// each element is read from global memory once and the block's amax is one
// warp reduction. Loads of a warp cover 32 consecutive bf16 (coalesced).
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

namespace quant_detail {

inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;

/// Smallest amax a block may report: an all-zero block still gets a finite,
/// non-zero scale (DeepSeek clamps the same way).
inline constexpr float kMinAmax = 1e-4f;

/// scale = max(amax, 1e-4) / 448; with UE8M0 (DeepSeek's `scale_fmt: ue8m0`)
/// rounded up to the next power of two, so the scale is an exact exponent and
/// x / scale still fits in e4m3 without saturating.
template <bool UE8M0> __device__ __forceinline__ float blockScale(float amax) {
  float scale = fmaxf(amax, kMinAmax) / kFp8Max;
  if (UE8M0) {
    // scale is a positive normal float (>= 2.2e-7): keep its exponent and
    // bump it when any mantissa bit is set, i.e. 2^ceil(log2(scale)).
    unsigned bits = __float_as_uint(scale);
    unsigned exponent = (bits >> 23) & 0xFFu;
    if (bits & 0x7FFFFFu)
      exponent += 1;
    scale = __uint_as_float(exponent << 23);
  }
  return scale;
}

/// Quantizes one channel block held in registers (values[j] is channel
/// blockStart + lane + 32 j; channels >= limit are absent) and writes q and the
/// scale. Called by whole warps.
template <int BLOCK, bool UE8M0>
__device__ __forceinline__ void quantizeWarpBlock(const float (&values)[ceilDiv(BLOCK, 32)],
                                                  int blockStart, int limit, fp8 *qRow,
                                                  float *scaleSlot) {
  constexpr int kPerLane = ceilDiv(BLOCK, 32);
  int lane = threadIdx.x % 32;
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    int channel = blockStart + lane + 32 * j;
    if (lane + 32 * j < BLOCK && channel < limit)
      amax = fmaxf(amax, fabsf(values[j]));
  }
  amax = warpMax(amax);
  float scale = blockScale<UE8M0>(amax);
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    int channel = blockStart + lane + 32 * j;
    // The fp8 constructor saturates to +-448 (__NV_SATFINITE); true division
    // (not a reciprocal multiply) keeps q identical to DeepSeek's x / s.
    if (lane + 32 * j < BLOCK && channel < limit)
      qRow[channel] = fp8(values[j] / scale);
  }
  if (lane == 0)
    *scaleSlot = scale;
}

} // namespace quant_detail

/// Per-token, per-channel-block FP8 quantization of the first K columns of x.
///
/// x: [T, ldx] bf16 (row stride ldx >= K elements; only columns [0, K) read).
/// q: [T, K] e4m3, row-major contiguous.
/// scales: [T, ceilDiv(K, BLOCK)] fp32; scales[t * ceilDiv(K, BLOCK) + b] is the
/// scale of channels [b * BLOCK, min(K, (b + 1) * BLOCK)) of token t. The last
/// block may be partial (K = 576, 200): its amax covers only present channels.
/// Blocks (token, y) take channel blocks 8 y + warp, 8 (y + gridDim.y) +
/// warp, ...: act_quant_row_blocks<K, BLOCK>() blocks per row give each warp
/// one channel block, so that a decode step's single row is quantized by
/// many SMs at once (one block walking the 128 channel blocks of a
/// 16384-wide row took 9.5 us of a decode step's critical path on an H100,
/// dsv3-bench --timeline-steps). Any gridDim.y >= 1 is correct.
///
/// Launch: grid = (T, act_quant_row_blocks<K, BLOCK>(), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int K, int BLOCK, bool UE8M0>
__global__ void __launch_bounds__(256)
    act_quant(const bf16 *x, int ldx, fp8 *q, float *scales, int T) {
  awaitPrecedingKernels();
  constexpr int kBlocks = ceilDiv(K, BLOCK);
  constexpr int kPerLane = ceilDiv(BLOCK, 32);
  int token = blockIdx.x;
  if (token >= T)
    return;
  const bf16 *xRow = x + static_cast<long long>(token) * ldx;
  fp8 *qRow = q + static_cast<long long>(token) * K;
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int b = blockIdx.y * quant_detail::kWarps + warp; b < kBlocks;
       b += gridDim.y * quant_detail::kWarps) {
    int blockStart = b * BLOCK;
    float values[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      int channel = blockStart + lane + 32 * j;
      values[j] = (lane + 32 * j < BLOCK && channel < K) ? toFloat(xRow[channel]) : 0.0f;
    }
    quant_detail::quantizeWarpBlock<BLOCK, UE8M0>(
        values, blockStart, K, qRow, scales + static_cast<long long>(token) * kBlocks + b);
  }
}

/// Blocks per row of act_quant: one channel block per warp.
template <int K, int BLOCK> __host__ __device__ constexpr int act_quant_row_blocks() {
  return ceilDiv(ceilDiv(K, BLOCK), quant_detail::kWarps);
}

/// SwiGLU output quantized for an FP8 down projection: h = silu(gate) * up in
/// fp32 per element (silu(g) = g / (1 + e^-g)), then quantized exactly as
/// act_quant does with K = I.
///
/// gate, up: [R, I] bf16 contiguous. q: [R, I] e4m3. scales: [R, ceilDiv(I, BLOCK)].
/// Blocks (row, y) take channel blocks 8 y + warp, 8 (y + gridDim.y) + warp,
/// ...: silu_mul_quant_row_blocks<I, BLOCK>() blocks per row give each warp
/// one channel block, so a decode step's few rows spread over the GPU
/// instead of one block walking a whole 18432-wide row.
///
/// Launch: grid = (R, silu_mul_quant_row_blocks<I, BLOCK>(), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int I, int BLOCK, bool UE8M0, typename InT = bf16>
__global__ void __launch_bounds__(256)
    silu_mul_quant(const InT *gate, const InT *up, fp8 *q, float *scales, int R) {
  awaitPrecedingKernels();
  constexpr int kBlocks = ceilDiv(I, BLOCK);
  constexpr int kPerLane = ceilDiv(BLOCK, 32);
  int row = blockIdx.x;
  if (row >= R)
    return;
  long long rowOffset = static_cast<long long>(row) * I;
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int b = blockIdx.y * quant_detail::kWarps + warp; b < kBlocks;
       b += gridDim.y * quant_detail::kWarps) {
    int blockStart = b * BLOCK;
    float g[kPerLane], u[kPerLane], values[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) { // every load in flight before any use
      int channel = blockStart + lane + 32 * j;
      bool present = lane + 32 * j < BLOCK && channel < I;
      g[j] = present ? toFloat(gate[rowOffset + channel]) : 0.0f;
      u[j] = present ? toFloat(up[rowOffset + channel]) : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      values[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
    quant_detail::quantizeWarpBlock<BLOCK, UE8M0>(
        values, blockStart, I, q + rowOffset, scales + static_cast<long long>(row) * kBlocks + b);
  }
}

/// Blocks per row of silu_mul_quant: one channel block per warp.
template <int I, int BLOCK> __host__ __device__ constexpr int silu_mul_quant_row_blocks() {
  return ceilDiv(ceilDiv(I, BLOCK), quant_detail::kWarps);
}

/// Columns of one row a silu_mul block covers: 8 per thread.
inline constexpr int kSiluMulBlockColumns = quant_detail::kThreads * 8;

/// SwiGLU for a GEMM that reads bf16: out = bf16(silu(gate) * up), the
/// product computed in fp32 as in silu_mul_quant.
///
/// gate, up: [R, I] of InT (bf16, or float from an fp32-output GEMM)
/// contiguous; out: [R, I] bf16. Block (row, y) covers columns
/// [y kSiluMulBlockColumns, (y + 1) kSiluMulBlockColumns) of its row, 8 per
/// thread in 16-byte accesses (when I % 8 == 0 and the pointers allow): one
/// memory round trip per block, and an 18432-wide decode row spread over 9
/// blocks.
///
/// Launch: grid = (R, ceil(I / 2048), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int I, typename InT = bf16>
__global__ void __launch_bounds__(256)
    silu_mul(const InT *gate, const InT *up, bf16 *out, int R) {
  awaitPrecedingKernels();
  int row = blockIdx.x;
  int first = blockIdx.y * kSiluMulBlockColumns + 8 * threadIdx.x;
  if (row >= R || first >= I)
    return;
  long long offset = static_cast<long long>(row) * I + first;
  float g[8], u[8], h[8];
  if (I % 8 == 0 && aligned16(gate) && aligned16(up) && aligned16(out)) {
    load8(gate + offset, g);
    load8(up + offset, u);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    store8(out + offset, h);
    return;
  }
  const int count = min(8, I - first);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    if (i < count) {
      g[i] = toFloat(gate[offset + i]);
      u[i] = toFloat(up[offset + i]);
    }
#pragma unroll
  for (int i = 0; i < 8; ++i)
    if (i < count)
      out[offset + i] = fromFloat<bf16>(g[i] / (1.0f + expf(-g[i])) * u[i]);
}

/// Activation scales as the quantizing kernels write them, scales[r *
/// BLOCKS + b] (one per row r < rows and channel block b), rewritten
/// block-major for cuBLASLt's VEC128 block scaling: out[b * P + r] with P =
/// rows rounded up to ROW_GROUP, rows fastest. The rows from `rows` to P,
/// which the library computes and nobody reads, get scale 1. A 32 x 32 tile
/// per block goes through shared memory so that reads and writes are both
/// along rows of their layout.
/// Launch: grid = (ceil(rows / 32), ceil(BLOCKS / 32), 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int BLOCKS, int ROW_GROUP>
__global__ void __launch_bounds__(256)
    scales_by_block(const float *scales, float *out, int rows) {
  awaitPrecedingKernels();
  static_assert(32 % ROW_GROUP == 0, "a grid of 32-row tiles covers the padded rows");
  __shared__ float tile[32][33]; // [row][block], padded against bank conflicts
  const int padded = (rows + ROW_GROUP - 1) / ROW_GROUP * ROW_GROUP;
  const int firstRow = blockIdx.x * 32, firstBlock = blockIdx.y * 32;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int i = warp; i < 32; i += 8) {
    const int row = firstRow + i, block = firstBlock + lane;
    if (block < BLOCKS)
      tile[i][lane] = row < rows ? scales[static_cast<long long>(row) * BLOCKS + block] : 1.0f;
  }
  __syncthreads();
  for (int i = warp; i < 32; i += 8) {
    const int block = firstBlock + i, row = firstRow + lane;
    if (block < BLOCKS && row < padded)
      out[static_cast<long long>(block) * padded + row] = tile[lane][i];
  }
}

} // namespace dsv3k
