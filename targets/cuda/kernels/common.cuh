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

/// A TMA tensor map (the driver's CUtensorMap: 128 opaque bytes, 64-byte
/// aligned) as a kernel receives it, by value in a `const __grid_constant__`
/// parameter; NVRTC compiles without cuda.h, hence this twin. The runtime
/// encodes it per launch from the plan's TensorMap argument.
struct alignas(64) TensorMap {
  unsigned long long opaque[16];
};

/// Largest finite e4m3 value: activation scales are amax / kFp8Max.
inline constexpr float kFp8Max = 448.0f;

/// The first statement of every kernel, or awaitPrecedingKernelsPrefetching
/// below (NvrtcCompilerTest enforces it). On
/// sm_90 and later the runtime launches kernels with programmatic stream
/// serialization, so a kernel's blocks may start while the kernel before it
/// on the stream is still running: this waits until that kernel has finished
/// and its writes are visible, then lets the next kernel start launching, so
/// that its blocks are resident and waiting when this one's last blocks end.
/// It is placed before any return because a kernel whose blocks all exit
/// without waiting could complete before its predecessor, and the kernel
/// after it would then wait for the wrong one. Without the launch attribute
/// (other targets, --no-dependent-launches) both instructions do nothing.
#ifdef DSV3_TIMELINE
} // namespace dsv3k
/// Plans compiled with `dsv3c --timeline`: each kernel's first block writes
/// the moment it passed its wait (its predecessor done and visible) to the
/// next slot, in launch order, so that consecutive entries bound each
/// kernel's share of a step inside a CUDA graph (dsv3-bench --timeline).
/// Unmangled, for cuModuleGetGlobal.
extern "C" {
__device__ unsigned long long dsv3_timeline[1 << 16];
__device__ unsigned int dsv3_timeline_next;
}
namespace dsv3k {
__device__ __forceinline__ void recordTimeline() {
  if ((blockIdx.x | blockIdx.y | blockIdx.z | threadIdx.x | threadIdx.y | threadIdx.z) != 0)
    return;
  unsigned long long now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  const unsigned slot = atomicAdd(&dsv3_timeline_next, 1u);
  if (slot < (1u << 16))
    dsv3_timeline[slot] = now;
}
#endif

__device__ __forceinline__ void awaitPrecedingKernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#ifdef DSV3_TIMELINE
  recordTimeline();
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// awaitPrecedingKernels(), after asking L2 for the bytes [begin, end) (the
/// whole 16-byte units inside it): data that no kernel writes, such as a
/// weight, which a kernel may fetch while its predecessor is still running.
/// One bulk prefetch by thread 0; nothing on targets before sm_90 (whose
/// launches do not overlap anyway).
__device__ __forceinline__ void awaitPrecedingKernelsPrefetching(const void *begin,
                                                                 const void *end) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const unsigned long long first = (reinterpret_cast<unsigned long long>(begin) + 15) & ~15ull;
  const unsigned long long last = reinterpret_cast<unsigned long long>(end) & ~15ull;
  if (threadIdx.x == 0 && threadIdx.y == 0 && last > first)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(first),
                 "r"(static_cast<unsigned>(last - first))
                 : "memory");
#endif
  awaitPrecedingKernels();
}

/// Up to two runs of rows, each from its first row: what
/// awaitPrecedingKernelsPrefetchingRows asks L2 for.
struct PrefetchRows {
  const void *first[2];
  int count[2];
};

/// awaitPrecedingKernels(), after asking L2 for the first `bytes` bytes of
/// each row of `rows` (rows `rowStride` bytes apart; data no kernel writes):
/// a kernel that reads many rows from their starts at once. One bulk
/// prefetch per row, by threads 0 .. (rows of both runs) - 1, at most the
/// block's; addresses and sizes 16-byte multiples.
__device__ __forceinline__ void awaitPrecedingKernelsPrefetchingRows(PrefetchRows rows,
                                                                     long long rowStride,
                                                                     unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int thread = threadIdx.x + threadIdx.y * blockDim.x;
  const bool second = thread >= rows.count[0];
  const int row = second ? thread - rows.count[0] : thread;
  const void *first = second ? rows.first[1] : rows.first[0];
  if (row < (second ? rows.count[1] : rows.count[0]) && bytes > 0)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(
                     static_cast<const char *>(first) + row * rowStride),
                 "r"(bytes)
                 : "memory");
#endif
  awaitPrecedingKernels();
}

__host__ __device__ constexpr int ceilDiv(int a, int b) { return (a + b - 1) / b; }

/// Whether p may be read or written with 16-byte vector accesses.
__device__ __forceinline__ bool aligned16(const void *p) {
  return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

__device__ __forceinline__ float toFloat(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(fp8 v) { return static_cast<float>(v); }

template <typename T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 fromFloat<bf16>(float v) {
  return __float2bfloat16(v);
}
template <> __device__ __forceinline__ fp8 fromFloat<fp8>(float v) { return fp8(v); }

/// The eight bf16 of a 16-byte word as floats (a bf16 is the top half of
/// the fp32 with the same value).
__device__ __forceinline__ void unpackBf16x8(uint4 word, float (&out)[8]) {
  const unsigned parts[4] = {word.x, word.y, word.z, word.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(parts[i] << 16);
    out[2 * i + 1] = __uint_as_float(parts[i] & 0xFFFF0000u);
  }
}

/// Eight consecutive values at p as floats, in 16-byte loads (one for bf16,
/// two for float). p must be 16-byte aligned.
__device__ __forceinline__ void load8(const bf16 *p, float (&out)[8]) {
  unpackBf16x8(*reinterpret_cast<const uint4 *>(p), out);
}
__device__ __forceinline__ void load8(const float *p, float (&out)[8]) {
  float4 lo = reinterpret_cast<const float4 *>(p)[0], hi = reinterpret_cast<const float4 *>(p)[1];
  out[0] = lo.x, out[1] = lo.y, out[2] = lo.z, out[3] = lo.w;
  out[4] = hi.x, out[5] = hi.y, out[6] = hi.z, out[7] = hi.w;
}

/// Stores eight floats at p (rounded to nearest even for bf16). p must be
/// 16-byte aligned.
__device__ __forceinline__ void store8(bf16 *p, const float (&in)[8]) {
  uint4 raw;
  __nv_bfloat162 *pairs = reinterpret_cast<__nv_bfloat162 *>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i)
    pairs[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
  *reinterpret_cast<uint4 *>(p) = raw;
}
__device__ __forceinline__ void store8(float *p, const float (&in)[8]) {
  reinterpret_cast<float4 *>(p)[0] = make_float4(in[0], in[1], in[2], in[3]);
  reinterpret_cast<float4 *>(p)[1] = make_float4(in[4], in[5], in[6], in[7]);
}

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
