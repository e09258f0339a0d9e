//===- RandomFill.cu - random buffers for dsv3-bench, made on the GPU -----===//
//
// Compiled by nvcc at build time into a fatbin (sm_80, sm_90a, sm_100a where
// the toolkit has it, and compute_80 PTX for anything else) that dsv3-bench
// embeds and loads with cuModuleLoadData: the bench links no CUDA runtime.
//
// Element i of a buffer is a function of (stream, i) only: draw j =
// SplitMix64(stream + (j + 1)·γ) gives elements 2j and 2j+1 (a Box–Muller
// pair for normals, two 24-bit uniforms otherwise). So a fill gives the same
// values on any grid. Each thread writes 8 consecutive elements per
// iteration with one vector store (the buffers are 256-byte aligned and the
// tail is written element by element).
//
//===----------------------------------------------------------------------===//

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <stdint.h>

namespace {

constexpr uint64_t kWeylIncrement = 0x9E3779B97F4A7C15ULL;

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

__device__ __forceinline__ uint64_t draw(uint64_t stream, uint64_t n) {
  return mix64(stream + (n + 1) * kWeylIncrement);
}

// Distributions (FillSpec::Kind in WeightFill.h).
constexpr int kNormal = 0, kUniform = 1;

/// Elements 2j and 2j+1: N(a, b²) by Box–Muller, or U(a, b).
__device__ __forceinline__ float2 pairOf(uint64_t bits, int distribution,
                                         float a, float b) {
  const float u1 = (static_cast<uint32_t>(bits >> 40) + 1u) * 0x1p-24f; // (0, 1]
  const float u2 = static_cast<uint32_t>(bits & 0xFFFFFFu) * 0x1p-24f;  // [0, 1)
  if (distribution == kUniform)
    return make_float2(a + (b - a) * (u1 - 0x1p-24f), a + (b - a) * u2);
  const float radius = sqrtf(-2.0f * logf(u1)) * b;
  float s, c;
  sincospif(2.0f * u2, &s, &c);
  return make_float2(a + radius * c, a + radius * s);
}

/// Calls store(i, value) for elements [0, count) of the stream, eight
/// consecutive elements per thread and iteration (storeEight), the last
/// partial group one by one (storeOne).
template <typename StoreEight, typename StoreOne>
__device__ __forceinline__ void forEachEight(uint64_t count, uint64_t stream,
                                             int distribution, float a, float b,
                                             StoreEight storeEight,
                                             StoreOne storeOne) {
  const uint64_t groups = count / 8;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  const uint64_t first = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (uint64_t group = first; group < groups; group += stride) {
    float values[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 pair = pairOf(draw(stream, group * 4 + k), distribution, a, b);
      values[2 * k] = pair.x;
      values[2 * k + 1] = pair.y;
    }
    storeEight(group * 8, values);
  }
  if (first == 0)
    for (uint64_t i = groups * 8; i < count; ++i) {
      const float2 pair = pairOf(draw(stream, i / 2), distribution, a, b);
      storeOne(i, (i & 1) ? pair.y : pair.x);
    }
}

} // namespace

extern "C" __global__ void dsv3bench_fill_bf16(__nv_bfloat16 *out, uint64_t count,
                                               uint64_t stream, int distribution,
                                               float a, float b) {
  forEachEight(
      count, stream, distribution, a, b,
      [&](uint64_t i, const float *values) {
        uint32_t words[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const __nv_bfloat162 pair =
              __floats2bfloat162_rn(values[2 * k], values[2 * k + 1]);
          words[k] = *reinterpret_cast<const uint32_t *>(&pair);
        }
        *reinterpret_cast<uint4 *>(out + i) =
            make_uint4(words[0], words[1], words[2], words[3]);
      },
      [&](uint64_t i, float value) { out[i] = __float2bfloat16_rn(value); });
}

extern "C" __global__ void dsv3bench_fill_f32(float *out, uint64_t count,
                                              uint64_t stream, int distribution,
                                              float a, float b) {
  forEachEight(
      count, stream, distribution, a, b,
      [&](uint64_t i, const float *values) {
        reinterpret_cast<float4 *>(out + i)[0] =
            make_float4(values[0], values[1], values[2], values[3]);
        reinterpret_cast<float4 *>(out + i)[1] =
            make_float4(values[4], values[5], values[6], values[7]);
      },
      [&](uint64_t i, float value) { out[i] = value; });
}

/// e4m3 codes of N(0, b²), rounded to nearest and saturating at ±448 (never
/// a NaN code).
extern "C" __global__ void dsv3bench_fill_e4m3(uint8_t *out, uint64_t count,
                                               uint64_t stream, float b) {
  forEachEight(
      count, stream, kNormal, 0.0f, b,
      [&](uint64_t i, const float *values) {
        uint32_t pairs[4];
#pragma unroll
        for (int k = 0; k < 4; ++k)
          pairs[k] = __nv_cvt_float2_to_fp8x2(
              make_float2(values[2 * k], values[2 * k + 1]), __NV_SATFINITE,
              __NV_E4M3);
        *reinterpret_cast<uint2 *>(out + i) =
            make_uint2(pairs[0] | (pairs[1] << 16), pairs[2] | (pairs[3] << 16));
      },
      [&](uint64_t i, float value) {
        out[i] = __nv_cvt_float_to_fp8(value, __NV_SATFINITE, __NV_E4M3);
      });
}
