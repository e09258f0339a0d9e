// GPU tests of copy.cuh: concat_columns, convert_rows and add_rows against a
// float64 reference on fresh random inputs, outputs poisoned before each run,
// at DeepSeek-V3's hidden width (7168), the tiny model's (256) and an odd
// width (100). convert_rows and add_rows run with the element types dsv3c
// instantiates (float in, bf16 out; float) and add_rows also in bf16, its
// default. float inputs are random fp32 values (all 24 mantissa bits).
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

/// convert_rows<H, float, bf16>: one round-to-nearest-even of each value.
template <int H, typename InT, typename OutT> void testConvert(int R) {
  size_t n = static_cast<size_t>(R) * H;
  RandomData<InT> x(n, -3.0f, 3.0f);
  DeviceBuffer<InT> dX(n);
  DeviceBuffer<OutT> dOut(n);
  dX.upload(x.stored);
  dOut.poison();
  dsv3k::convert_rows<H, InT, OutT><<<R, dsv3k::kCopyThreads>>>(dX.ptr, dOut.ptr, R);
  CHECK_LAUNCH();
  std::vector<double> ref(x.values.begin(), x.values.end());
  std::vector<OutT> out = dOut.download();
  std::string shape = std::to_string(R) + "x" + std::to_string(H) + " " + typeName<InT>() +
                      "->" + typeName<OutT>();
  // One bf16 rounding: <= 2^-8 per element, about 1.7e-3 as a norm ratio.
  report("convert_rows", shape, relativeError(valuesOf(out), ref), 3e-3);
  // And it must be exactly the nearest-even rounding of every input (a
  // truncation, or a detour through another type, differs in many elements).
  report("convert_rows != rne(x)", shape, bf16RoundingMisses(out, ref), 0);
}

/// add_rows<H, T>: out = T(a + b), fp32 add. outAliasesA: out is a, as the
/// kernel allows.
template <int H, typename T> void testAdd(int R, bool outAliasesA) {
  size_t n = static_cast<size_t>(R) * H;
  RandomData<T> a(n, -3.0f, 3.0f), b(n, -1.0f, 1.0f);
  DeviceBuffer<T> dA(n), dB(n), dOut(n);
  dA.upload(a.stored);
  dB.upload(b.stored);
  dOut.poison();
  T *out = outAliasesA ? dA.ptr : dOut.ptr;
  dsv3k::add_rows<H, T><<<R, dsv3k::kCopyThreads>>>(dA.ptr, dB.ptr, out, R);
  CHECK_LAUNCH();
  std::vector<double> ref(n);
  for (size_t i = 0; i < n; ++i)
    ref[i] = static_cast<double>(a.values[i]) + b.values[i];
  // One rounding of the exact sum to T: for bf16 about 2^-9 / sqrt(3) as a
  // norm ratio (<= 2^-8 per element), tolerance 3e-3; for float one fp32
  // rounding, <= 2^-24 (6e-8) per element, tolerance 1e-7 (a bf16 detour
  // would be 1e-3).
  double tolerance = sizeof(T) == 4 ? 1e-7 : 3e-3;
  report("add_rows",
         std::to_string(R) + "x" + std::to_string(H) + " " + typeName<T>() +
             (outAliasesA ? " out=a" : ""),
         relativeError(valuesOf(outAliasesA ? dA.download() : dOut.download()), ref),
         tolerance);
}

int main() {
  testConcat<7168, 7168>(1);
  testConcat<7168, 7168>(37);
  testConcat<256, 256>(5);
  testConcat<100, 28>(3);
  testConvert<7168, float, __nv_bfloat16>(1);
  testConvert<7168, float, __nv_bfloat16>(33);
  testConvert<256, float, __nv_bfloat16>(7);
  testConvert<100, float, __nv_bfloat16>(3);
  testAdd<7168, float>(1, false);
  testAdd<7168, float>(33, false);
  testAdd<7168, float>(33, true);
  testAdd<256, float>(7, false);
  testAdd<100, float>(3, false);
  testAdd<7168, __nv_bfloat16>(1, false);
  testAdd<7168, __nv_bfloat16>(33, false);
  testAdd<256, __nv_bfloat16>(7, false);
  return finish("copy");
}
