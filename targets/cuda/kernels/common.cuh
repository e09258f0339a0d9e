//===- common.cuh - types and reductions shared by the dsv3 kernels ------===//
//
// Kernel templates are compiled twice: by NVRTC inside dsv3c (instantiated
// per op with the model's shapes as template arguments) and by nvcc in the
// GPU tests. So: no standard library headers, no host code, only CUDA's own
// <cuda_bf16.h> and <cuda_fp8.h>.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

namespace dsv3k {

using bf16 = __nv_bfloat16;
using fp8 = __nv_fp8_e4m3;

/// Largest finite e4m3 value: activation scales are amax / kFp8Max.
constexpr float kFp8Max = 448.0f;

__host__ __device__ constexpr int ceilDiv(int a, int b) { return (a + b - 1) / b; }

__device__ __forceinline__ float toFloat(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(fp8 v) { return static_cast<float>(v); }

template <typename T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 fromFloat<bf16>(float v) {
  return __float2bfloat16(v);
}
template <> __device__ __forceinline__ fp8 fromFloat<fp8>(float v) { return fp8(v); }

__device__ __forceinline__ float warpSum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

/// Sum over a block of kThreads (a multiple of 32, at most 1024). Every thread
/// gets the total. Uses 32 floats of shared memory; safe to call repeatedly.
template <int kThreads> __device__ float blockSum(float v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps");
  __shared__ float partial[32];
  v = warpSum(v);
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads(); // partial may still be read by a previous call
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? partial[lane] : 0.0f;
  return warpSum(v);
}

/// Maximum over a block of kThreads; as blockSum.
template <int kThreads> __device__ float blockMax(float v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps");
  __shared__ float partial[32];
  v = warpMax(v);
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? partial[lane] : -3.402823466e38f;
  return warpMax(v);
}

} // namespace dsv3k
