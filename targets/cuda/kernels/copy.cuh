//===- copy.cuh - row concatenation and elementwise addition --------------===//
//
// Small memory-bound kernels the graph needs around the big ones: MTP's
// [enorm(embedding), hnorm(hidden)] concatenation, and a residual addition
// that no normalization follows.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "targets/cuda/kernels/common.cuh"

namespace dsv3k {

inline constexpr int kCopyThreads = 256;

/// out[r] = [a[r], b[r]]: a is [R, A], b is [R, B], out is [R, A + B].
/// Launch: grid = (R, 1, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int A, int B>
__global__ void __launch_bounds__(kCopyThreads)
    concat_columns(const bf16 *a, const bf16 *b, bf16 *out, int R) {
  awaitPrecedingKernels();
  int r = blockIdx.x;
  if (r >= R)
    return;
  const bf16 *aRow = a + static_cast<long long>(r) * A;
  const bf16 *bRow = b + static_cast<long long>(r) * B;
  bf16 *outRow = out + static_cast<long long>(r) * (A + B);
  for (int c = threadIdx.x; c < A; c += kCopyThreads)
    outRow[c] = aRow[c];
  for (int c = threadIdx.x; c < B; c += kCopyThreads)
    outRow[A + c] = bRow[c];
}

/// out = OutT(x) over R rows of H (rounded to nearest even for bf16).
/// Launch: grid = (R, 1, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename InT, typename OutT>
__global__ void __launch_bounds__(kCopyThreads)
    convert_rows(const InT *x, OutT *out, int R) {
  awaitPrecedingKernels();
  int r = blockIdx.x;
  if (r >= R)
    return;
  long long base = static_cast<long long>(r) * H;
  for (int c = threadIdx.x; c < H; c += kCopyThreads)
    out[base + c] = fromFloat<OutT>(toFloat(x[base + c]));
}

/// out = T(a + b) over R rows of H (fp32 add; one rounding for bf16). out
/// may be a or b.
/// Launch: grid = (R, 1, 1), block = (256, 1, 1), dynamic shared memory = 0 bytes
template <int H, typename T = bf16>
__global__ void __launch_bounds__(kCopyThreads)
    add_rows(const T *a, const T *b, T *out, int R) {
  awaitPrecedingKernels();
  int r = blockIdx.x;
  if (r >= R)
    return;
  long long base = static_cast<long long>(r) * H;
  for (int c = threadIdx.x; c < H; c += kCopyThreads)
    out[base + c] = fromFloat<T>(toFloat(a[base + c]) + toFloat(b[base + c]));
}

} // namespace dsv3k
