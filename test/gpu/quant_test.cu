// GPU tests of quant.cuh: act_quant, silu_mul_quant and silu_mul against a
// CPU reference on fresh random inputs, at DeepSeek-V3's widths (hidden 7168,
// kv_a 576 with a partial last block, q_lora 1536, expert and dense
// intermediate 2048 / 18432) and an odd width (200, partial block).
// silu_mul_quant and silu_mul run with float gate/up (what dsv3c instantiates:
// the gate/up GEMM writes fp32; random fp32 inputs, all 24 mantissa bits) and
// with bf16 (the templates' default).
//
// Each quantizer is checked three ways:
//  - scales against max(amax, 1e-4) / 448 computed in float64 from the exact
//    bf16 inputs (fp32 division in the kernel: relative error <= 6e-8; the
//    UE8M0 scales are powers of two and must match exactly);
//  - the e4m3 codes against DeepSeek's quantizer evaluated on the host in
//    fp32, as its Triton kernel does it (s = amax / 448, q = e4m3(x / s)).
//    Not float64: x and amax are bf16 (8 significant bits), so x / s lands
//    exactly on an e4m3 rounding midpoint for a few elements in 10^5, and the
//    fp32 quotient rounds those the other way about half the time (seen on the
//    H100: 1 to 3 codes of 236k). act_quant must match bit for bit; in
//    silu_mul_quant the device expf may differ from the host's by an ulp, so
//    a code may differ by one e4m3 step in rare elements (tolerance: 1e-4 of
//    the codes), never by more;
//  - q * scale against the input itself: the e4m3 quantization error, 3
//    mantissa bits so about 2.5% relative (rounding error uniform within
//    +-1/16 of a binade), tolerance 4e-2.
//
// silu_mul's bf16 output is one rounding of an fp32 product: the norm ratio
// against float64 is about 1.7e-3 (<= 2^-8 per element; tolerance 4e-3), and
// every element must be the float64 value rounded to nearest even except
// where the device expf (within 2 ulp) puts it on the other side of a
// rounding midpoint (~1e-4 of them; tolerance 1e-3, see harness.h).
#include "harness.h"

#include "targets/cuda/kernels/quant.cuh"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace gpu_test;
using dsv3k::bf16;
using dsv3k::fp8;

namespace {

constexpr double kScaleTolerance = 1e-6;
constexpr double kFp8QuantizationTolerance = 4e-2;
// bf16 output of an fp32 value: relative rounding error <= 2^-9 per element,
// about 1.1e-3 as a norm ratio; 4e-3 leaves room without hiding a wrong term.
constexpr double kBf16OutputTolerance = 4e-3;

/// The reference block scale in float64: max(amax, 1e-4) / 448, UE8M0
/// rounds it up to 2^k.
double referenceScale(double amax, bool ue8m0) {
  double scale = std::max(amax, 1e-4) / 448.0;
  if (ue8m0)
    scale = std::exp2(std::ceil(std::log2(scale)));
  return scale;
}

/// Random values whose magnitude changes from one BLOCK-wide channel block to
/// the next (factor 2^-6 .. 2^6), so that every block gets its own scale.
std::vector<float> blockVaryingFloats(int rows, int width, int block, float lo, float hi) {
  std::vector<float> values = randomFloats(static_cast<size_t>(rows) * width, lo, hi);
  std::vector<float> exponents = randomFloats(static_cast<size_t>(rows) * width / block + rows + 1,
                                              -6.0f, 6.0f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < width; ++c)
      values[static_cast<size_t>(r) * width + c] *=
          std::exp2(exponents[(static_cast<size_t>(r) * width + c) / block]);
  return values;
}

/// Position of an e4m3 code on the number line (codes grow with magnitude;
/// +0 and -0 are both 0), so that the distance of two codes counts e4m3 steps.
int fp8Ordinal(fp8 v) {
  int magnitude = v.__x & 0x7F;
  return (v.__x & 0x80) ? -magnitude : magnitude;
}

/// Compares the kernel's codes with DeepSeek's quantizer run on the host in
/// fp32 over `values` (what the kernel quantized, as fp32). Returns the
/// fraction of codes that differ, or +Inf if any differs by more than one
/// e4m3 step.
double codeMismatch(const std::vector<fp8> &q, const std::vector<float> &values, int rows,
                    int width, int block, bool ue8m0) {
  size_t differing = 0;
  for (int r = 0; r < rows; ++r) {
    for (int begin = 0; begin < width; begin += block) {
      int end = std::min(width, begin + block);
      float amax = 0.0f;
      for (int c = begin; c < end; ++c)
        amax = std::max(amax, std::fabs(values[static_cast<size_t>(r) * width + c]));
      float scale = std::max(amax, 1e-4f) / 448.0f;
      if (ue8m0)
        scale = static_cast<float>(std::exp2(std::ceil(std::log2(static_cast<double>(scale)))));
      for (int c = begin; c < end; ++c) {
        size_t i = static_cast<size_t>(r) * width + c;
        int distance = std::abs(fp8Ordinal(q[i]) - fp8Ordinal(fp8(values[i] / scale)));
        if (distance > 1)
          return INFINITY;
        differing += distance;
      }
    }
  }
  return static_cast<double>(differing) / std::max<size_t>(1, q.size());
}

/// Reports the three comparisons of a quantizer's outputs. `exact` holds the
/// quantized values in float64, `asFp32` the same values as the kernel's
/// fp32 arithmetic produces them.
void checkQuantized(const std::string &kernel, const std::string &shape,
                    const std::vector<fp8> &q, const std::vector<float> &scales, int rows,
                    int width, int block, bool ue8m0, const std::vector<double> &exact,
                    const std::vector<float> &asFp32, double codeTolerance) {
  int blocks = (width + block - 1) / block;
  std::vector<double> refScales(static_cast<size_t>(rows) * blocks);
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < blocks; ++b) {
      double amax = 0;
      for (int c = b * block; c < std::min(width, (b + 1) * block); ++c)
        amax = std::max(amax, std::fabs(exact[static_cast<size_t>(r) * width + c]));
      refScales[static_cast<size_t>(r) * blocks + b] = referenceScale(amax, ue8m0);
    }
  std::vector<float> dequantized(q.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < width; ++c) {
      size_t i = static_cast<size_t>(r) * width + c;
      dequantized[i] =
          static_cast<float>(q[i]) * scales[static_cast<size_t>(r) * blocks + c / block];
    }
  report(kernel + " scales", shape, relativeError(scales, refScales),
         ue8m0 ? 0.0 : kScaleTolerance);
  report(kernel + " q codes != fp32", shape,
         codeMismatch(q, asFp32, rows, width, block, ue8m0), codeTolerance);
  report(kernel + " q*s vs input", shape, relativeError(dequantized, exact),
         kFp8QuantizationTolerance);
}

template <int K, bool UE8M0> void testActQuant(int T, int ldx) {
  constexpr int kBlock = 128;
  constexpr int kBlocks = (K + kBlock - 1) / kBlock;
  std::vector<float> values = blockVaryingFloats(T, ldx, kBlock, -1.0f, 1.0f);
  // Columns past K are huge: reading them would wreck the last block's scale.
  for (int t = 0; t < T; ++t)
    for (int c = K; c < ldx; ++c)
      values[static_cast<size_t>(t) * ldx + c] = 1e30f;
  // One all-zero channel block (when there are several tokens) checks the
  // 1e-4 amax floor: scale 1e-4 / 448 and q = 0, not a division by zero.
  if (T > 1)
    for (int c = 0; c < std::min(K, kBlock); ++c)
      values[static_cast<size_t>(1) * ldx + c] = 0.0f;
  std::vector<bf16> x = toBf16(values);
  std::vector<float> rounded = fromBf16(x);
  std::vector<float> asFp32(static_cast<size_t>(T) * K);
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < K; ++c)
      asFp32[static_cast<size_t>(t) * K + c] = rounded[static_cast<size_t>(t) * ldx + c];
  std::vector<double> exact(asFp32.begin(), asFp32.end());

  DeviceBuffer<bf16> dx(x.size());
  DeviceBuffer<fp8> dq(static_cast<size_t>(T) * K);
  DeviceBuffer<float> dscales(static_cast<size_t>(T) * kBlocks);
  dx.upload(x);
  // As dsv3c launches it (a warp per channel block), and with one block
  // walking the whole row: the same codes and scales either way.
  for (int rowBlocks : {dsv3k::act_quant_row_blocks<K, kBlock>(), 1}) {
    dq.poison();
    dscales.poison();
    dsv3k::act_quant<K, kBlock, UE8M0><<<dim3(T, rowBlocks), dim3(256)>>>(dx.ptr, ldx, dq.ptr,
                                                                        dscales.ptr, T);
    CHECK_LAUNCH();
    std::string shape = "K=" + std::to_string(K) + " T=" + std::to_string(T) +
                        " ldx=" + std::to_string(ldx) + (UE8M0 ? " ue8m0" : "") +
                        " row blocks " + std::to_string(rowBlocks);
    checkQuantized("act_quant", shape, dq.download(), dscales.download(), T, K, kBlock,
                   UE8M0, exact, asFp32, 0.0);
  }
}

template <int I, bool UE8M0, typename InT> void testSiluMulQuant(int R) {
  constexpr int kBlock = 128;
  constexpr int kBlocks = (I + kBlock - 1) / kBlock;
  size_t n = static_cast<size_t>(R) * I;
  std::vector<InT> gate = storeAs<InT>(blockVaryingFloats(R, I, kBlock, -4.0f, 4.0f));
  std::vector<InT> up = storeAs<InT>(randomFloats(n, -2.0f, 2.0f));
  std::vector<float> g = valuesOf(gate), u = valuesOf(up);
  std::vector<double> exact(n);
  std::vector<float> asFp32(n);
  for (size_t i = 0; i < n; ++i) {
    double gi = g[i];
    exact[i] = gi / (1.0 + std::exp(-gi)) * u[i];
    asFp32[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }

  DeviceBuffer<InT> dgate(n), dup(n);
  DeviceBuffer<fp8> dq(n);
  DeviceBuffer<float> dscales(static_cast<size_t>(R) * kBlocks);
  dgate.upload(gate);
  dup.upload(up);
  dq.poison();
  dscales.poison();
  dsv3k::silu_mul_quant<I, kBlock, UE8M0, InT>
      <<<dim3(R, dsv3k::silu_mul_quant_row_blocks<I, kBlock>()), dim3(256)>>>(
          dgate.ptr, dup.ptr, dq.ptr, dscales.ptr, R);
  CHECK_LAUNCH();

  std::string shape = "I=" + std::to_string(I) + " R=" + std::to_string(R) + " " +
                      typeName<InT>() + (UE8M0 ? " ue8m0" : "");
  // The kernel's h is fp32 (expf within 2 ulp): its amax is within ~3e-7 of
  // the float64 one, so the scale tolerance stays 1e-6.
  checkQuantized("silu_mul_quant", shape, dq.download(), dscales.download(), R, I, kBlock,
                 UE8M0, exact, asFp32, 1e-4);
}

template <int I, typename InT> void testSiluMul(int R) {
  size_t n = static_cast<size_t>(R) * I;
  RandomData<InT> gate(n, -6.0f, 6.0f), up(n, -2.0f, 2.0f);
  std::vector<double> ref(n);
  for (size_t i = 0; i < n; ++i) {
    double gi = gate.values[i];
    ref[i] = gi / (1.0 + std::exp(-gi)) * up.values[i];
  }
  DeviceBuffer<InT> dgate(n), dup(n);
  DeviceBuffer<bf16> dout(n);
  dgate.upload(gate.stored);
  dup.upload(up.stored);
  dout.poison();
  dsv3k::silu_mul<I, InT><<<dim3(R, dsv3k::ceilDiv(I, dsv3k::kSiluMulBlockColumns)), dim3(256)>>>(
      dgate.ptr, dup.ptr, dout.ptr, R);
  CHECK_LAUNCH();
  std::vector<bf16> out = dout.download();
  std::string shape = "I=" + std::to_string(I) + " R=" + std::to_string(R) + " " + typeName<InT>();
  report("silu_mul", shape, relativeError(fromBf16(out), ref), kBf16OutputTolerance);
  report("silu_mul rounding misses", shape, bf16RoundingMisses(out, ref),
         bf16RoundingMissTolerance(n));
}

} // namespace

int main() {
  // Hidden states (7168), q_a output (1536), kv_a output (576: the last of
  // five blocks has 64 channels), an odd width with a 72-channel last block.
  testActQuant<7168, false>(1, 7168);
  testActQuant<7168, false>(33, 7168 + 40);
  testActQuant<7168, true>(33, 7168);
  testActQuant<576, false>(1, 576);
  testActQuant<576, false>(33, 576 + 8);
  testActQuant<1536, false>(1, 1536);
  testActQuant<1536, false>(33, 1536);
  testActQuant<16384, false>(1, 16384); // o_proj's input: 16 blocks a row
  testActQuant<16384, false>(5, 16384);
  testActQuant<200, false>(1, 200);
  testActQuant<200, false>(33, 203);
  testActQuant<200, true>(33, 200);

  // float gate/up, as dsv3c instantiates them.
  testSiluMulQuant<2048, false, float>(1);
  testSiluMulQuant<2048, false, float>(37);
  testSiluMulQuant<2048, true, float>(37);
  testSiluMulQuant<18432, false, float>(1);
  testSiluMulQuant<18432, false, float>(37);
  testSiluMulQuant<200, false, float>(5);
  // bf16 gate/up, the template's default.
  testSiluMulQuant<2048, false, bf16>(1);
  testSiluMulQuant<2048, false, bf16>(37);
  testSiluMulQuant<2048, true, bf16>(37);
  testSiluMulQuant<18432, false, bf16>(1);
  testSiluMulQuant<18432, false, bf16>(37);
  testSiluMulQuant<200, false, bf16>(5);

  testSiluMul<2048, float>(1);
  testSiluMul<2048, float>(37);
  testSiluMul<18432, float>(37);
  testSiluMul<18432, float>(1);
  testSiluMul<200, float>(5);
  testSiluMul<203, float>(3); // not whole 16-byte chunks: the scalar path
  testSiluMul<2100, bf16>(2); // a partial second block per row
  testSiluMul<2048, bf16>(1);
  testSiluMul<2048, bf16>(37);
  testSiluMul<18432, bf16>(37);
  return finish("quant_test");
}
