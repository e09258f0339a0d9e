// GPU tests of norm.cuh: embed, rms_norm, add_rms_norm and gather_rows against
// a float64 CPU reference on fresh random inputs, at DeepSeek-V3's hidden
// width (7168), the tiny model's (256), the kv_a case (the first 512 of 576
// columns), an MTP-style write into one half of a [T, 2H] buffer, rows whose
// pointers are not 16-byte aligned (the scalar path) and a width that is not
// a multiple of 8 (100). T in {1, 37}, eps 1e-6. Each kernel runs with the
// element types dsv3c instantiates: float activations (embed's output, the
// residual stream and rms_norm's input) and bf16 (MTP's hidden input to
// rms_norm and gather_rows), plus add_rms_norm's all-bf16 default. float
// inputs are random fp32 values (all 24 mantissa bits), not bf16 values.
//
// Tolerances:
//  - embed and gather_rows are copies (bf16 to float is exact): tolerance 0.
//  - add_rms_norm's sum is one rounding of the exact sum to the residual's
//    type, which the reference applies too; they agree exactly (the 1e-6
//    covers only the astronomically rare double rounding of float64 -> fp32
//    -> bf16 in the reference).
//  - rms_norm and add_rms_norm's y are bf16(w * (x * rsqrt(mean(x^2) + eps)))
//    computed in fp32 and rounded ONCE. The reference is that formula in
//    float64 from the exact inputs (for add_rms_norm, from the stored sum),
//    and two checks follow from "one rounding":
//      * the norm ratio is what a single bf16 rounding gives: at most 2^-8
//        per element, about 1.66e-3 as a norm ratio for these inputs; rows of
//        100 values spread more (10^6 of them simulated on the host stayed
//        below 2.4e-3), so 2.5e-3, while a wrong or shifted weight, a wrong
//        width in the mean or a row read from the wrong place is off by 1e-2
//        or (much) more;
//      * the rounding misses: elements whose bf16 differs from the float64
//        value rounded to nearest even. The kernel's fp32 rsqrt and sum of
//        squares are within ~3e-7 of exact, so only elements that close to a
//        rounding midpoint may round the other way (~1e-4 of them; tolerance
//        1e-3 of the elements, at least 3). Rounding the normalized value to
//        bf16 before the weight multiplies it (Hugging Face's bf16 module)
//        misses about a quarter of them (0.26 simulated) and fails.
//
// rms_norm_quant and add_rms_norm_quant (norm + FP8 activation quantization
// fused) must give BIT-IDENTICAL q and scales (and sum) to the unfused pair
// they replace: rms_norm / add_rms_norm, then act_quant<H, 128, false> of the
// stored bf16 y. Checked at H = 7168 (float input, float residual + delta;
// bf16 input), 1536 (float), 512 of ldx = 576 (float, kv_a's latent), T in
// {1, 7, 1024}, with a weight whose magnitude changes by 2^-4..2^4 from one
// 128-channel block to the next (so every block's scale differs). Tolerance
// 0 for the number of differing elements; the fused outputs are poisoned
// (0xFF: NaN) and the reference's zeroed, so an unwritten element differs.
// Also q * scale against the float64 RMSNorm (e4m3 error, ~2.5%; 4e-2).
// Then times (warm, median of 20 after 3) of fused against unfused at H =
// 7168, T in {1024, 8192}, beside the floor bytes / 3.0 TB/s.
#include "harness.h"

#include "targets/cuda/kernels/norm.cuh"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace gpu_test;
using dsv3k::bf16;
using dsv3k::fp8;

namespace {

constexpr double kExact = 0.0;
constexpr double kResidualTolerance = 1e-6;
constexpr double kNormTolerance = 2.5e-3;
constexpr float kEps = 1e-6f;

std::string shapeName(int H, int T, const std::string &extra = "") {
  return "H=" + std::to_string(H) + " T=" + std::to_string(T) + extra;
}

/// Reference RMSNorm of one row, w * (x * rsqrt(mean(x^2) + eps)) in float64
/// from the exact inputs, not rounded (the kernel's one bf16 rounding is
/// what the tolerances allow for).
void referenceNormRow(const float *x, const float *w, int H, double eps, double *y) {
  double sumSquares = 0;
  for (int i = 0; i < H; ++i)
    sumSquares += static_cast<double>(x[i]) * x[i];
  double inverseRms = 1.0 / std::sqrt(sumSquares / H + eps);
  for (int i = 0; i < H; ++i)
    y[i] = static_cast<double>(w[i]) * (x[i] * inverseRms);
}

/// Both checks of a bf16 output that must be one rounding of `ref`.
void reportNormOutput(const std::string &kernel, const std::string &shape,
                      const std::vector<bf16> &out, const std::vector<double> &ref) {
  report(kernel, shape, relativeError(fromBf16(out), ref), kNormTolerance);
  report(kernel + " rounding misses", shape, bf16RoundingMisses(out, ref),
         bf16RoundingMissTolerance(out.size()));
}

/// Vocabulary rows of the test table (the kernel is independent of vocab).
constexpr int kVocab = 1000;

template <int H, typename OutT> void testEmbed(int T) {
  RandomData<bf16> table(static_cast<size_t>(kVocab) * H, -1.0f, 1.0f);
  std::vector<int> tokens(T);
  std::uniform_int_distribution<int> pick(0, kVocab - 1);
  for (int &token : tokens)
    token = pick(rng());
  tokens[0] = kVocab - 1; // the last row, to catch an off-by-one at the end
  DeviceBuffer<int> dTokens(T);
  DeviceBuffer<bf16> dTable(table.stored.size());
  DeviceBuffer<OutT> dOut(static_cast<size_t>(T) * H);
  dTokens.upload(tokens);
  dTable.upload(table.stored);
  dOut.poison();
  dsv3k::embed<H, OutT><<<T, dsv3k::norm_detail::kThreads>>>(dTokens.ptr, dTable.ptr, dOut.ptr, T);
  CHECK_LAUNCH();
  std::vector<double> ref(static_cast<size_t>(T) * H);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < H; ++i)
      ref[static_cast<size_t>(t) * H + i] = table.values[static_cast<size_t>(tokens[t]) * H + i];
  report("embed", shapeName(H, T, std::string(" out ") + typeName<OutT>()),
         relativeError(valuesOf(dOut.download()), ref), kExact);
}

/// rms_norm on rows of stride ldx (of InT) into rows of stride ldy, y
/// starting yOffset elements into its buffer; also checks that nothing
/// outside the H written columns of each output row changed (the buffer is
/// poisoned).
template <int H, typename InT>
void testRmsNorm(int T, int ldx, int ldy, int xOffset, int yOffset, const std::string &label) {
  size_t xSize = static_cast<size_t>(T) * ldx + xOffset;
  size_t ySize = static_cast<size_t>(T) * ldy + yOffset;
  RandomData<InT> x(xSize, -3.0f, 3.0f);
  RandomData<bf16> w(H, 0.5f, 1.5f);
  DeviceBuffer<InT> dX(xSize);
  DeviceBuffer<bf16> dW(H), dY(ySize);
  dX.upload(x.stored);
  dW.upload(w.stored);
  dY.poison();
  dsv3k::rms_norm<H, InT>
      <<<T, dsv3k::norm_detail::kThreads>>>(dX.ptr + xOffset, ldx, dW.ptr, dY.ptr + yOffset, ldy, T, kEps);
  CHECK_LAUNCH();
  std::vector<bf16> yBits = dY.download();
  std::vector<bf16> out;
  std::vector<double> ref(static_cast<size_t>(T) * H);
  size_t touchedOutside = 0;
  std::vector<bool> inside(ySize, false);
  for (int t = 0; t < T; ++t) {
    referenceNormRow(&x.values[static_cast<size_t>(t) * ldx + xOffset], w.values.data(), H, kEps,
                     &ref[static_cast<size_t>(t) * H]);
    for (int i = 0; i < H; ++i) {
      size_t at = static_cast<size_t>(t) * ldy + yOffset + i;
      inside[at] = true;
      out.push_back(yBits[at]);
    }
  }
  for (size_t i = 0; i < ySize; ++i) {
    uint16_t raw;
    std::memcpy(&raw, &yBits[i], 2);
    if (!inside[i] && raw != 0xFFFF)
      ++touchedOutside;
  }
  std::string shape = shapeName(H, T, std::string(" x ") + typeName<InT>() + label);
  reportNormOutput("rms_norm", shape, out, ref);
  if (ldy != H || yOffset != 0)
    report("rms_norm stray writes", shape, static_cast<double>(touchedOutside), kExact);
}

/// inPlace: the sum overwrites the residual (sum == residual), as when the
/// memory planner reuses a dying residual's buffer; otherwise a separate,
/// poisoned buffer receives it. ResT is the residual stream's type (float in
/// dsv3c), DeltaT the layer output's.
template <int H, typename ResT, typename DeltaT> void testAddRmsNorm(int T, bool inPlace) {
  size_t n = static_cast<size_t>(T) * H;
  RandomData<ResT> residual(n, -3.0f, 3.0f);
  RandomData<DeltaT> delta(n, -1.0f, 1.0f);
  RandomData<bf16> w(H, 0.5f, 1.5f);
  DeviceBuffer<ResT> dResidual(n), dSum(n);
  DeviceBuffer<DeltaT> dDelta(n);
  DeviceBuffer<bf16> dW(H), dY(n);
  dResidual.upload(residual.stored);
  dDelta.upload(delta.stored);
  dW.upload(w.stored);
  dY.poison();
  dSum.poison();
  DeviceBuffer<ResT> &sumBuffer = inPlace ? dResidual : dSum;
  dsv3k::add_rms_norm<H, ResT, DeltaT><<<T, dsv3k::norm_detail::kThreads>>>(dResidual.ptr, dDelta.ptr, dW.ptr,
                                                   sumBuffer.ptr, dY.ptr, T, kEps);
  CHECK_LAUNCH();
  std::vector<float> sum(n);
  std::vector<double> sumRef(n), yRef(n);
  for (size_t i = 0; i < n; ++i) {
    double exact = static_cast<double>(residual.values[i]) + delta.values[i];
    // What the model stores: one rounding of the exact sum to ResT.
    sum[i] = static_cast<float>(roundTo<ResT>(exact));
    sumRef[i] = sum[i];
  }
  for (int t = 0; t < T; ++t)
    referenceNormRow(&sum[static_cast<size_t>(t) * H], w.values.data(), H, kEps,
                     &yRef[static_cast<size_t>(t) * H]);
  std::string shape = shapeName(H, T, std::string(" ") + typeName<ResT>() + "+" +
                                          typeName<DeltaT>() +
                                          (inPlace ? " sum in place" : " sum apart"));
  report("add_rms_norm sum", shape, relativeError(valuesOf(sumBuffer.download()), sumRef),
         kResidualTolerance);
  reportNormOutput("add_rms_norm y", shape, dY.download(), yRef);
}

template <int H, typename T> void testGatherRows(int R) {
  constexpr int kRows = 100;
  RandomData<T> x(static_cast<size_t>(kRows) * H, -1.0f, 1.0f);
  std::vector<int> rows(R);
  std::uniform_int_distribution<int> pick(0, kRows - 1);
  for (int &row : rows)
    row = pick(rng());
  rows[R - 1] = kRows - 1;
  DeviceBuffer<int> dRows(R);
  DeviceBuffer<T> dX(x.stored.size()), dOut(static_cast<size_t>(R) * H);
  dRows.upload(rows);
  dX.upload(x.stored);
  dOut.poison();
  dsv3k::gather_rows<H, T><<<R, dsv3k::norm_detail::kThreads>>>(dX.ptr, dRows.ptr, dOut.ptr, R);
  CHECK_LAUNCH();
  std::vector<double> ref(static_cast<size_t>(R) * H);
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < H; ++i)
      ref[static_cast<size_t>(r) * H + i] = x.values[static_cast<size_t>(rows[r]) * H + i];
  report("gather_rows",
         "H=" + std::to_string(H) + " R=" + std::to_string(R) + " " + typeName<T>(),
         relativeError(valuesOf(dOut.download()), ref), kExact);
}

/// The rms_norm cases for one input type.
template <typename InT> void testRmsNormCases(int T) {
  testRmsNorm<7168, InT>(T, 7168, 7168, 0, 0, "");
  testRmsNorm<256, InT>(T, 256, 256, 0, 0, "");
  // kv_a: normalize the latent half of [T, 576] rows into [T, 512].
  testRmsNorm<512, InT>(T, 576, 512, 0, 0, " kv_a ldx=576");
  // MTP: enorm / hnorm write the two halves of a [T, 2H] buffer.
  testRmsNorm<7168, InT>(T, 7168, 2 * 7168, 0, 7168, " into half ldy=14336");
  testRmsNorm<256, InT>(T, 256, 512, 0, 0, " into half ldy=512");
  // Rows not 16-byte aligned (odd stride and offsets): the scalar path.
  testRmsNorm<256, InT>(T, 257, 259, 1, 3, " unaligned ldx=257 ldy=259");
  // A width with no 16-byte chunks at all.
  testRmsNorm<100, InT>(T, 100, 100, 0, 0, "");
}


// ---- fused norm + FP8 quantization ------------------------------------------

constexpr int kQuantBlock = 128;
constexpr double kFp8QuantizationTolerance = 4e-2;

/// A weight in [0.5, 1.5) times 2^e per 128-channel block, e random in
/// [-4, 4] (exact in bf16): every block of the normalized row gets its own
/// scale, so a scale written to the wrong slot shows up.
std::vector<bf16> blockVaryingWeight(int H) {
  std::vector<float> w = randomFloats(H, 0.5f, 1.5f);
  std::uniform_int_distribution<int> exponent(-4, 4);
  for (int b = 0; b < H / kQuantBlock; ++b) {
    float factor = std::ldexp(1.0f, exponent(rng()));
    for (int i = 0; i < kQuantBlock; ++i)
      w[b * kQuantBlock + i] *= factor;
  }
  return toBf16(w);
}

/// Elements of `a` whose bits differ from `b`'s.
template <typename T> double bitMismatches(const std::vector<T> &a, const std::vector<T> &b) {
  if (a.size() != b.size())
    return INFINITY;
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i)
    differ += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return static_cast<double>(differ);
}

/// The outputs of one quantizer: q [T, H] e4m3 and scales [T, H / 128].
struct QuantOutputs {
  DeviceBuffer<fp8> q;
  DeviceBuffer<float> scales;
  QuantOutputs(int T, int H)
      : q(static_cast<size_t>(T) * H), scales(static_cast<size_t>(T) * H / kQuantBlock) {}
  void fill(int byte) {
    CHECK_CUDA(cudaMemset(q.ptr, byte, q.n));
    CHECK_CUDA(cudaMemset(scales.ptr, byte, scales.n * sizeof(float)));
  }
};

/// The fused kernel's q and scales against the unfused pair's, bit for bit,
/// and q * scale against the float64 normalized rows `ref`.
void reportQuant(const std::string &kernel, const std::string &shape,
                 const QuantOutputs &fused, const QuantOutputs &unfused,
                 const std::vector<double> &ref) {
  std::vector<fp8> q = fused.q.download();
  std::vector<float> scales = fused.scales.download();
  report(kernel + " q bits", shape, bitMismatches(q, unfused.q.download()), kExact);
  report(kernel + " scale bits", shape, bitMismatches(scales, unfused.scales.download()),
         kExact);
  std::vector<float> dequantized(q.size());
  for (size_t i = 0; i < q.size(); ++i)
    dequantized[i] = static_cast<float>(q[i]) * scales[i / kQuantBlock];
  report(kernel + " q*scale", shape, relativeError(dequantized, ref), kFp8QuantizationTolerance);
}

/// rms_norm_quant<H, InT, 128> against rms_norm<H, InT> then act_quant<H,
/// 128, false>, x rows of stride ldx.
template <int H, typename InT> void testRmsNormQuant(int T, int ldx) {
  size_t xSize = static_cast<size_t>(T) * ldx, n = static_cast<size_t>(T) * H;
  RandomData<InT> x(xSize, -3.0f, 3.0f);
  std::vector<bf16> w = blockVaryingWeight(H);
  DeviceBuffer<InT> dX(xSize);
  DeviceBuffer<bf16> dW(H), dY(n);
  dX.upload(x.stored);
  dW.upload(w);
  dY.poison();
  QuantOutputs fused(T, H), unfused(T, H);
  fused.fill(0xFF);
  unfused.fill(0x00);
  dsv3k::rms_norm<H, InT><<<T, dsv3k::norm_detail::kThreads>>>(dX.ptr, ldx, dW.ptr, dY.ptr, H, T, kEps);
  CHECK_LAUNCH();
  dsv3k::act_quant<H, kQuantBlock, false>
      <<<T, 256>>>(dY.ptr, H, unfused.q.ptr, unfused.scales.ptr, T);
  CHECK_LAUNCH();
  dsv3k::rms_norm_quant<H, InT, kQuantBlock>
      <<<T, dsv3k::norm_detail::kThreads>>>(dX.ptr, ldx, dW.ptr, fused.q.ptr, fused.scales.ptr, T, kEps);
  CHECK_LAUNCH();
  std::vector<float> wValues = fromBf16(w);
  std::vector<double> ref(n);
  for (int t = 0; t < T; ++t)
    referenceNormRow(&x.values[static_cast<size_t>(t) * ldx], wValues.data(), H, kEps,
                     &ref[static_cast<size_t>(t) * H]);
  std::string shape = shapeName(H, T, std::string(" x ") + typeName<InT>() +
                                          (ldx != H ? " ldx=" + std::to_string(ldx) : ""));
  reportQuant("rms_norm_quant", shape, fused, unfused, ref);
}

/// add_rms_norm_quant<H, ResT, DeltaT, 128> against add_rms_norm<H, ResT,
/// DeltaT> then act_quant<H, 128, false>; inPlace: each writes its sum over
/// its own copy of the residual.
template <int H, typename ResT, typename DeltaT> void testAddRmsNormQuant(int T, bool inPlace) {
  size_t n = static_cast<size_t>(T) * H;
  RandomData<ResT> residual(n, -3.0f, 3.0f);
  RandomData<DeltaT> delta(n, -1.0f, 1.0f);
  std::vector<bf16> w = blockVaryingWeight(H);
  DeviceBuffer<ResT> dResidualUnfused(n), dResidualFused(n), dSumUnfused(n), dSumFused(n);
  DeviceBuffer<DeltaT> dDelta(n);
  DeviceBuffer<bf16> dW(H), dY(n);
  dResidualUnfused.upload(residual.stored);
  dResidualFused.upload(residual.stored);
  dDelta.upload(delta.stored);
  dW.upload(w);
  dY.poison();
  dSumFused.poison();
  CHECK_CUDA(cudaMemset(dSumUnfused.ptr, 0, n * sizeof(ResT)));
  QuantOutputs fused(T, H), unfused(T, H);
  fused.fill(0xFF);
  unfused.fill(0x00);
  ResT *sumUnfused = inPlace ? dResidualUnfused.ptr : dSumUnfused.ptr;
  ResT *sumFused = inPlace ? dResidualFused.ptr : dSumFused.ptr;
  dsv3k::add_rms_norm<H, ResT, DeltaT>
      <<<T, dsv3k::norm_detail::kThreads>>>(dResidualUnfused.ptr, dDelta.ptr, dW.ptr, sumUnfused, dY.ptr, T, kEps);
  CHECK_LAUNCH();
  dsv3k::act_quant<H, kQuantBlock, false>
      <<<T, 256>>>(dY.ptr, H, unfused.q.ptr, unfused.scales.ptr, T);
  CHECK_LAUNCH();
  dsv3k::add_rms_norm_quant<H, ResT, DeltaT, kQuantBlock><<<T, dsv3k::norm_detail::kThreads>>>(
      dResidualFused.ptr, dDelta.ptr, dW.ptr, sumFused, fused.q.ptr, fused.scales.ptr, T, kEps);
  CHECK_LAUNCH();
  DeviceBuffer<ResT> &sumFusedBuffer = inPlace ? dResidualFused : dSumFused;
  DeviceBuffer<ResT> &sumUnfusedBuffer = inPlace ? dResidualUnfused : dSumUnfused;
  std::vector<ResT> sumBits = sumFusedBuffer.download();
  std::string shape = shapeName(H, T, std::string(" ") + typeName<ResT>() + "+" +
                                          typeName<DeltaT>() +
                                          (inPlace ? " sum in place" : " sum apart"));
  report("add_rms_norm_quant sum bits", shape, bitMismatches(sumBits, sumUnfusedBuffer.download()),
         kExact);
  std::vector<float> sum = valuesOf(sumBits), wValues = fromBf16(w);
  std::vector<double> ref(n);
  for (int t = 0; t < T; ++t)
    referenceNormRow(&sum[static_cast<size_t>(t) * H], wValues.data(), H, kEps,
                     &ref[static_cast<size_t>(t) * H]);
  reportQuant("add_rms_norm_quant", shape, fused, unfused, ref);
}

// ---- fused vs unfused timings -------------------------------------------------

constexpr double kFloorBandwidth = 3.0e12; // bytes per second

struct Timing {
  std::string kernel, shape;
  double us, floorUs;
};
std::vector<Timing> &timings() {
  static std::vector<Timing> all;
  return all;
}

template <typename Launch>
void timeLaunch(const std::string &kernel, const std::string &shape, double bytes,
                Launch launch) {
  double us = medianMicros(launch, {/*warmups=*/3, /*runs=*/20, nullptr});
  timings().push_back({kernel, shape, us, bytes / kFloorBandwidth * 1e6});
}

/// rms_norm (float x) and add_rms_norm (float residual + delta) at H = 7168
/// with and without the quantization fused, warm (no L2 flush).
void timeFusion(int T) {
  constexpr int H = 7168;
  size_t n = static_cast<size_t>(T) * H;
  std::vector<float> values = randomFloats(n, -3.0f, 3.0f);
  std::vector<bf16> w = blockVaryingWeight(H);
  DeviceBuffer<float> dX(n), dResidual(n), dDelta(n), dSum(n);
  DeviceBuffer<bf16> dW(H), dY(n);
  QuantOutputs out(T, H);
  dX.upload(values);
  dResidual.upload(values);
  dDelta.upload(values);
  dW.upload(w);
  const double rows = static_cast<double>(T) * H;
  const double weightBytes = 2.0 * H, qBytes = rows, scaleBytes = 4.0 * rows / kQuantBlock;
  const double yBytes = 2.0 * rows; // a bf16 y written, then read back
  std::string shape = shapeName(H, T, " f32");
  timeLaunch("rms_norm+act_quant", shape, 4 * rows + weightBytes + 2 * yBytes + qBytes + scaleBytes,
             [&] {
               dsv3k::rms_norm<H, float><<<T, dsv3k::norm_detail::kThreads>>>(dX.ptr, H, dW.ptr, dY.ptr, H, T, kEps);
               dsv3k::act_quant<H, kQuantBlock, false>
                   <<<T, 256>>>(dY.ptr, H, out.q.ptr, out.scales.ptr, T);
             });
  timeLaunch("rms_norm_quant", shape, 4 * rows + weightBytes + qBytes + scaleBytes, [&] {
    dsv3k::rms_norm_quant<H, float, kQuantBlock>
        <<<T, dsv3k::norm_detail::kThreads>>>(dX.ptr, H, dW.ptr, out.q.ptr, out.scales.ptr, T, kEps);
  });
  shape = shapeName(H, T, " f32+f32");
  timeLaunch("add_rms_norm+act_quant", shape,
             12 * rows + weightBytes + 2 * yBytes + qBytes + scaleBytes, [&] {
               dsv3k::add_rms_norm<H, float, float>
                   <<<T, dsv3k::norm_detail::kThreads>>>(dResidual.ptr, dDelta.ptr, dW.ptr, dSum.ptr, dY.ptr, T, kEps);
               dsv3k::act_quant<H, kQuantBlock, false>
                   <<<T, 256>>>(dY.ptr, H, out.q.ptr, out.scales.ptr, T);
             });
  timeLaunch("add_rms_norm_quant", shape, 12 * rows + weightBytes + qBytes + scaleBytes, [&] {
    dsv3k::add_rms_norm_quant<H, float, float, kQuantBlock><<<T, dsv3k::norm_detail::kThreads>>>(
        dResidual.ptr, dDelta.ptr, dW.ptr, dSum.ptr, out.q.ptr, out.scales.ptr, T, kEps);
  });
}

void printTimings() {
  std::printf("\n== norm_test timings: warm, median of 20 after 3 warm-ups; floor = bytes / "
              "%.1f TB/s\n",
              kFloorBandwidth / 1e12);
  std::printf("%-26s %-22s %10s %10s %8s\n", "kernel", "shape", "us", "floor us", "xfloor");
  for (const Timing &t : timings())
    std::printf("%-26s %-22s %10.1f %10.1f %8.2f\n", t.kernel.c_str(), t.shape.c_str(), t.us,
                t.floorUs, t.us / t.floorUs);
}

} // namespace

int main() {
  for (int T : {1, 37}) {
    testEmbed<7168, float>(T);
    testEmbed<256, float>(T);
    testEmbed<100, float>(T); // the scalar path
    testEmbed<7168, bf16>(T);
    testRmsNormCases<float>(T);
    testRmsNormCases<bf16>(T);
    for (bool inPlace : {true, false}) {
      testAddRmsNorm<7168, float, float>(T, inPlace);
      testAddRmsNorm<256, float, float>(T, inPlace);
      testAddRmsNorm<7168, bf16, bf16>(T, inPlace);
      testAddRmsNorm<256, bf16, bf16>(T, inPlace);
    }
    testAddRmsNorm<100, float, float>(T, false); // the scalar path
    testGatherRows<7168, float>(T);
    testGatherRows<256, float>(T);
    testGatherRows<7168, bf16>(T);
    testGatherRows<256, bf16>(T);
  }
  for (int T : {1, 7, 1024}) {
    testRmsNormQuant<7168, float>(T, 7168);
    testRmsNormQuant<1536, float>(T, 1536);
    testRmsNormQuant<512, float>(T, 576); // kv_a's latent
    testRmsNormQuant<7168, bf16>(T, 7168);
    for (bool inPlace : {false, true})
      testAddRmsNormQuant<7168, float, float>(T, inPlace);
    testAddRmsNormQuant<7168, bf16, bf16>(T, false);
  }
  for (int T : {1024, 8192})
    timeFusion(T);
  int status = finish("norm_test");
  printTimings(); // after the table, so that a log's tail shows both
  return status;
}
