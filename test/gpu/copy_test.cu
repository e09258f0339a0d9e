// GPU tests of copy.cuh: concat_columns and add_rows against a float64
// reference on fresh random inputs, outputs poisoned before each run.
#include "harness.h"

#include "targets/cuda/kernels/copy.cuh"

using namespace gpu_test;

template <int A, int B> void testConcat(int R) {
  auto a = toBf16(randomFloats(static_cast<size_t>(R) * A));
  auto b = toBf16(randomFloats(static_cast<size_t>(R) * B));
  DeviceBuffer<__nv_bfloat16> dA(a.size()), dB(b.size()), dOut(static_cast<size_t>(R) * (A + B));
  dA.upload(a);
  dB.upload(b);
  dOut.poison();
  dsv3k::concat_columns<A, B><<<R, dsv3k::kCopyThreads>>>(dA.ptr, dB.ptr, dOut.ptr, R);
  CHECK_LAUNCH();
  std::vector<double> ref;
  std::vector<float> fa = fromBf16(a), fb = fromBf16(b);
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < A; ++c)
      ref.push_back(fa[static_cast<size_t>(r) * A + c]);
    for (int c = 0; c < B; ++c)
      ref.push_back(fb[static_cast<size_t>(r) * B + c]);
  }
  // A copy: exact.
  report("concat_columns", std::to_string(R) + "x[" + std::to_string(A) + "+" +
                               std::to_string(B) + "]",
         relativeError(fromBf16(dOut.download()), ref), 0);
}

template <int H> void testAdd(int R) {
  size_t n = static_cast<size_t>(R) * H;
  auto a = toBf16(randomFloats(n, -3, 3)), b = toBf16(randomFloats(n));
  DeviceBuffer<__nv_bfloat16> dA(n), dB(n), dOut(n);
  dA.upload(a);
  dB.upload(b);
  dOut.poison();
  dsv3k::add_rows<H><<<R, dsv3k::kCopyThreads>>>(dA.ptr, dB.ptr, dOut.ptr, R);
  CHECK_LAUNCH();
  std::vector<float> fa = fromBf16(a), fb = fromBf16(b);
  std::vector<double> ref(n);
  for (size_t i = 0; i < n; ++i)
    ref[i] = static_cast<double>(fa[i]) + fb[i];
  // One bf16 rounding of the exact sum: relative error about 2^-9 / sqrt(3).
  report("add_rows", std::to_string(R) + "x" + std::to_string(H),
         relativeError(fromBf16(dOut.download()), ref), 3e-3);
}

int main() {
  testConcat<7168, 7168>(1);
  testConcat<7168, 7168>(37);
  testConcat<256, 256>(5);
  testConcat<100, 28>(3);
  testAdd<7168>(1);
  testAdd<7168>(33);
  testAdd<256>(7);
  return finish("copy");
}
