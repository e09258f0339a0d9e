// GPU tests of norm.cuh: embed, rms_norm, add_rms_norm and gather_rows against
// a float64 CPU reference on fresh random inputs, at DeepSeek-V3's hidden
// width (7168), the tiny model's (256), the kv_a case (the first 512 of 576
// columns), an MTP-style write into one half of a [T, 2H] buffer, rows whose
// pointers are not 16-byte aligned (the scalar path) and a width that is not
// a multiple of 8 (100). T in {1, 37}, eps 1e-6.
//
// Tolerances:
//  - embed, gather_rows and the residual sum are copies / one bf16 rounding
//    of an exact fp32 sum: they must match exactly (tolerance 0; the residual
//    1e-6 only for the astronomically rare double rounding when the fp32 sum
//    itself rounds).
//  - rms_norm's reference models Hugging Face's rounding of the normalized
//    value to bf16 before the weight multiplies it, in float64 from the exact
//    bf16 inputs; what remains is the final bf16 rounding of the output,
//    about 1.5e-3 as a norm ratio (half an ulp of 8 significant bits, uniform),
//    plus the rare intermediate value that the kernel's fp32 rsqrt rounds the
//    other way. 3e-3 passes that; a wrong or shifted weight, a wrong width in
//    the mean or a row read from the wrong place is off by 1e-2 or (much) more.
#include "harness.h"

#include "targets/cuda/kernels/norm.cuh"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace gpu_test;
using dsv3k::bf16;

namespace {

constexpr double kExact = 0.0;
constexpr double kResidualTolerance = 1e-6;
constexpr double kNormTolerance = 3e-3;
constexpr float kEps = 1e-6f;

float roundBf16(double v) { return __bfloat162float(__float2bfloat16(static_cast<float>(v))); }

std::string shapeName(int H, int T, const std::string &extra = "") {
  return "H=" + std::to_string(H) + " T=" + std::to_string(T) + extra;
}

/// Random bf16 values and their exact float values.
struct Bf16Data {
  std::vector<bf16> bits;
  std::vector<float> values;
  explicit Bf16Data(size_t n, float lo, float hi) {
    bits = toBf16(randomFloats(n, lo, hi));
    values = fromBf16(bits);
  }
};

/// Reference RMSNorm of one row (HF: bf16(w * bf16(x * rsqrt(mean(x^2) + eps)))),
/// all in float64 except the intermediate bf16 rounding the model defines.
void referenceNormRow(const float *x, const float *w, int H, double eps, double *y) {
  double sumSquares = 0;
  for (int i = 0; i < H; ++i)
    sumSquares += static_cast<double>(x[i]) * x[i];
  double inverseRms = 1.0 / std::sqrt(sumSquares / H + eps);
  for (int i = 0; i < H; ++i)
    y[i] = static_cast<double>(w[i]) * roundBf16(x[i] * inverseRms);
}

/// Vocabulary rows of the test table (the kernel is independent of vocab).
constexpr int kVocab = 1000;

template <int H> void testEmbed(int T) {
  Bf16Data table(static_cast<size_t>(kVocab) * H, -1.0f, 1.0f);
  std::vector<int> tokens(T);
  std::uniform_int_distribution<int> pick(0, kVocab - 1);
  for (int &token : tokens)
    token = pick(rng());
  tokens[0] = kVocab - 1; // the last row, to catch an off-by-one at the end
  DeviceBuffer<int> dTokens(T);
  DeviceBuffer<bf16> dTable(table.bits.size()), dOut(static_cast<size_t>(T) * H);
  dTokens.upload(tokens);
  dTable.upload(table.bits);
  dOut.poison();
  dsv3k::embed<H><<<T, 128>>>(dTokens.ptr, dTable.ptr, dOut.ptr, T);
  CHECK_LAUNCH();
  std::vector<double> ref(static_cast<size_t>(T) * H);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < H; ++i)
      ref[static_cast<size_t>(t) * H + i] = table.values[static_cast<size_t>(tokens[t]) * H + i];
  report("embed", shapeName(H, T), relativeError(fromBf16(dOut.download()), ref), kExact);
}

/// rms_norm on rows of stride ldx into rows of stride ldy, y starting yOffset
/// elements into its buffer; also checks that nothing outside the H written
/// columns of each output row changed (the buffer is poisoned).
template <int H>
void testRmsNorm(int T, int ldx, int ldy, int xOffset, int yOffset, const std::string &label) {
  size_t xSize = static_cast<size_t>(T) * ldx + xOffset;
  size_t ySize = static_cast<size_t>(T) * ldy + yOffset;
  Bf16Data x(xSize, -3.0f, 3.0f), w(H, 0.5f, 1.5f);
  DeviceBuffer<bf16> dX(xSize), dW(H), dY(ySize);
  dX.upload(x.bits);
  dW.upload(w.bits);
  dY.poison();
  dsv3k::rms_norm<H><<<T, 128>>>(dX.ptr + xOffset, ldx, dW.ptr, dY.ptr + yOffset, ldy, T, kEps);
  CHECK_LAUNCH();
  std::vector<bf16> yBits = dY.download();
  std::vector<float> out;
  std::vector<double> ref(static_cast<size_t>(T) * H);
  size_t touchedOutside = 0;
  std::vector<bool> inside(ySize, false);
  for (int t = 0; t < T; ++t) {
    referenceNormRow(&x.values[static_cast<size_t>(t) * ldx + xOffset], w.values.data(), H, kEps,
                     &ref[static_cast<size_t>(t) * H]);
    for (int i = 0; i < H; ++i) {
      size_t at = static_cast<size_t>(t) * ldy + yOffset + i;
      inside[at] = true;
      out.push_back(__bfloat162float(yBits[at]));
    }
  }
  for (size_t i = 0; i < ySize; ++i) {
    uint16_t raw;
    std::memcpy(&raw, &yBits[i], 2);
    if (!inside[i] && raw != 0xFFFF)
      ++touchedOutside;
  }
  std::string shape = shapeName(H, T, label);
  report("rms_norm", shape, relativeError(out, ref), kNormTolerance);
  if (ldy != H || yOffset != 0)
    report("rms_norm stray writes", shape, static_cast<double>(touchedOutside), kExact);
}

/// inPlace: the sum overwrites the residual (sum == residual), as when the
/// memory planner reuses a dying residual's buffer; otherwise a separate,
/// poisoned buffer receives it.
template <int H> void testAddRmsNorm(int T, bool inPlace) {
  size_t n = static_cast<size_t>(T) * H;
  Bf16Data residual(n, -3.0f, 3.0f), delta(n, -1.0f, 1.0f), w(H, 0.5f, 1.5f);
  DeviceBuffer<bf16> dResidual(n), dDelta(n), dW(H), dY(n), dSum(n);
  dResidual.upload(residual.bits);
  dDelta.upload(delta.bits);
  dW.upload(w.bits);
  dY.poison();
  dSum.poison();
  DeviceBuffer<bf16> &sumBuffer = inPlace ? dResidual : dSum;
  dsv3k::add_rms_norm<H><<<T, 128>>>(dResidual.ptr, dDelta.ptr, dW.ptr, sumBuffer.ptr,
                                     dY.ptr, T, kEps);
  CHECK_LAUNCH();
  std::vector<float> sum(n);
  std::vector<double> sumRef(n), yRef(n);
  for (size_t i = 0; i < n; ++i) {
    double exact = static_cast<double>(residual.values[i]) + delta.values[i];
    sum[i] = roundBf16(exact); // what the model stores: one rounding of the exact sum
    sumRef[i] = sum[i];
  }
  for (int t = 0; t < T; ++t)
    referenceNormRow(&sum[static_cast<size_t>(t) * H], w.values.data(), H, kEps,
                     &yRef[static_cast<size_t>(t) * H]);
  std::string shape = shapeName(H, T, inPlace ? "sum in place" : "sum apart");
  report("add_rms_norm sum", shape, relativeError(fromBf16(sumBuffer.download()), sumRef),
         kResidualTolerance);
  report("add_rms_norm y", shape, relativeError(fromBf16(dY.download()), yRef),
         kNormTolerance);
}

template <int H> void testGatherRows(int R) {
  constexpr int kRows = 100;
  Bf16Data x(static_cast<size_t>(kRows) * H, -1.0f, 1.0f);
  std::vector<int> rows(R);
  std::uniform_int_distribution<int> pick(0, kRows - 1);
  for (int &row : rows)
    row = pick(rng());
  rows[R - 1] = kRows - 1;
  DeviceBuffer<int> dRows(R);
  DeviceBuffer<bf16> dX(x.bits.size()), dOut(static_cast<size_t>(R) * H);
  dRows.upload(rows);
  dX.upload(x.bits);
  dOut.poison();
  dsv3k::gather_rows<H><<<R, 128>>>(dX.ptr, dRows.ptr, dOut.ptr, R);
  CHECK_LAUNCH();
  std::vector<double> ref(static_cast<size_t>(R) * H);
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < H; ++i)
      ref[static_cast<size_t>(r) * H + i] = x.values[static_cast<size_t>(rows[r]) * H + i];
  report("gather_rows", "H=" + std::to_string(H) + " R=" + std::to_string(R),
         relativeError(fromBf16(dOut.download()), ref), kExact);
}

} // namespace

int main() {
  for (int T : {1, 37}) {
    testEmbed<7168>(T);
    testEmbed<256>(T);
    testRmsNorm<7168>(T, 7168, 7168, 0, 0, "");
    testRmsNorm<256>(T, 256, 256, 0, 0, "");
    // kv_a: normalize the latent half of [T, 576] rows into [T, 512].
    testRmsNorm<512>(T, 576, 512, 0, 0, " kv_a ldx=576");
    // MTP: enorm / hnorm write the two halves of a [T, 2H] buffer.
    testRmsNorm<7168>(T, 7168, 2 * 7168, 0, 7168, " into half ldy=14336");
    testRmsNorm<256>(T, 256, 512, 0, 0, " into half ldy=512");
    // Rows not 16-byte aligned (odd stride and offsets): the scalar path.
    testRmsNorm<256>(T, 257, 259, 1, 3, " unaligned ldx=257 ldy=259");
    // A width with no 16-byte chunks at all.
    testRmsNorm<100>(T, 100, 100, 0, 0, "");
    for (bool inPlace : {true, false}) {
      testAddRmsNorm<7168>(T, inPlace);
      testAddRmsNorm<256>(T, inPlace);
    }
    testGatherRows<7168>(T);
    testGatherRows<256>(T);
  }
  return finish("norm_test");
}
