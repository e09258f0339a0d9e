// GPU tests of gemm.cuh (fp8_gemm, w8a16_gemm, bf16_gemm) and grouped_gemm.cuh
// (fp8_grouped_gemm, w8a16_grouped_gemm, bf16_grouped_gemm) against a float64 CPU reference on
// fresh random inputs, at every DeepSeek-V3 FP8 projection shape plus small
// odd ones (N = 576 and 80: partial N blocks; K = 64 < 128; K = 200: partial
// K block and element loads), M in {1, 7, 300, 1024}.
//
// Inputs: FP8 operands are uniformly random e4m3 bit patterns (every finite
// code, subnormals and both zeros included); scales are 2^U(-4,4) * 1e-3, a
// different random value per block so a wrong scale index shows. BF16
// operands are U(-1, 1). Padding columns of strided A rows hold 1e30, so a
// kernel reading past K fails loudly.
//
// Tolerances (relative Frobenius error against float64):
//  - float output: 2e-5. The kernels accumulate in fp32; a sum of K random-
//    sign terms carries about 6e-8 * sqrt(K / 2) relative error (4e-6 at
//    K = 7168), the FP8 path less since it restarts the sum every 128.
//  - bf16 output: 4e-3. Rounding the result to bf16 (8 significant bits)
//    alone gives about 1.1e-3 (uniform error within +-2^-9 relative).
// Large products are compared on a sample of up to 16 rows (always the
// first and the last, plus rows around the 64-row tile edges), but every
// element of C is checked for NaN: outputs are poisoned before each run.
#include "harness.h"
#include "gemm_data.h"
#include "grouped_data.h"
#include "routing.h"

#include "targets/cuda/kernels/gemm.cuh"
#include "targets/cuda/kernels/grouped_gemm.cuh"
#include "targets/cuda/kernels/skinny_gemm.cuh"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using namespace gpu_test;
using dsv3k::bf16;
using dsv3k::fp8;

namespace {

constexpr double kFloatOutputTolerance = 2e-5;
constexpr double kBf16OutputTolerance = 4e-3;
constexpr int kSampledRows = 16;

template <typename OutT> double outputTolerance() {
  return std::is_same<OutT, float>::value ? kFloatOutputTolerance : kBf16OutputTolerance;
}
template <typename OutT> const char *outName() {
  return std::is_same<OutT, float>::value ? "f32" : "bf16";
}


/// Rows compared against the reference: all of them when few, else the
/// first and last, the rows on both sides of the first tile edge, and random
/// others (sorted, distinct).
std::vector<int> sampleRows(int rows) {
  std::vector<int> picked;
  if (rows <= kSampledRows) {
    for (int r = 0; r < rows; ++r)
      picked.push_back(r);
    return picked;
  }
  picked = {0, rows - 1, std::min(63, rows - 1), std::min(64, rows - 1)};
  std::uniform_int_distribution<int> pick(0, rows - 1);
  while (picked.size() < static_cast<size_t>(kSampledRows))
    picked.push_back(pick(rng()));
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  return picked;
}

/// True when every element is finite: an unwritten (poisoned) output is NaN.
template <typename OutT> bool allFinite(const std::vector<OutT> &c) {
  for (const OutT &v : c)
    if (!std::isfinite(static_cast<float>(v)))
      return false;
  return true;
}

inline float toFloatHost(float v) { return v; }
inline float toFloatHost(bf16 v) { return __bfloat162float(v); }

/// Compares the sampled rows of c (row r of the sample is c row rows[r])
/// with ref (sampled rows x N) and reports.
template <typename OutT>
void compareRows(const std::string &kernel, const std::string &shape, const std::vector<OutT> &c,
                 int N, const std::vector<int> &rows, const std::vector<double> &ref) {
  if (!allFinite(c)) {
    report(kernel, shape + " (unwritten/NaN output)", INFINITY, outputTolerance<OutT>());
    return;
  }
  std::vector<float> sampled;
  sampled.reserve(rows.size() * N);
  for (int r : rows)
    for (int n = 0; n < N; ++n)
      sampled.push_back(toFloatHost(c[static_cast<size_t>(r) * N + n]));
  report(kernel, shape, relativeError(sampled, ref), outputTolerance<OutT>());
}


/// Reference row of an unscaled bf16 product (a: K values).
void referenceBf16Row(const bf16 *a, const bf16 *b, int N, int K, double *out) {
  std::vector<double> aRow(K);
  for (int k = 0; k < K; ++k)
    aRow[k] = value(a[k]);
  parallelFor(N, [&](size_t n) {
    const bf16 *bRow = b + n * K;
    double total = 0;
    for (int k = 0; k < K; ++k)
      total += aRow[k] * __bfloat162float(bRow[k]);
    out[n] = total;
  });
}

struct Timing {
  std::string kernel, shape;
  double microseconds, tflops;
  double weightGBs; ///< weight bytes read per second / 1e9
};
std::vector<Timing> &timings() {
  static std::vector<Timing> all;
  return all;
}

/// Blocks of the GPU whose tiles stream through the grouped skinny kernels'
/// shared-memory ring (RING, sm_90): three per SM of an H100; main() lowers
/// it to make blocks wrap around their ring several times.
constexpr int kSkinnyRingBlocks = 3 * 132;
int skinnyRingBlocks = kSkinnyRingBlocks;

/// Grid width of a dense skinny kernel: one block per tile of 8 / SPLIT *
/// COLS columns.
int skinnyBlocks(int N, int split, int cols) { return dsv3k::ceilDiv(N, 8 / split * cols); }
/// The grouped kernels' grid width (their grid has a row per routed row):
/// with RING, where the tiles fit the ring, the ring blocks of the GPU
/// shared by the 8 routed rows of one token (dsv3c's
/// KernelTuning::skinnyRingBlocksPerRow), else one block per tile.
template <typename TB, int K, int SPLIT, int COLS, bool RING> int skinnyGroupedBlocks(int N) {
  int tiles = dsv3k::ceilDiv(N, 8 / SPLIT * COLS);
  return RING && dsv3k::skinny_detail::ringFits<TB, K, SPLIT, COLS>()
             ? std::min(tiles, dsv3k::ceilDiv(skinnyRingBlocks, 8))
             : tiles;
}

/// Median of 11 timed launches (after the checked one), each after L2 was
/// flushed.
void timeLaunches(const std::string &kernel, const std::string &shape, double flops,
                  double weightBytes, const std::function<void()> &launch) {
  const double us = medianMicros(launch, {/*warmups=*/0, /*runs=*/11, flushL2});
  timings().push_back(
      {kernel, shape, us, flops / (us * 1e-6) / 1e12, weightBytes / (us * 1e-6) / 1e9});
}

/// Which kernel family a test runs: gemm.cuh / grouped_gemm.cuh's 64 x 64
/// tiles, or skinny_gemm.cuh's few-row kernels (same arguments, same results).
enum class Family { kTiles, kSkinny };
const char *familyPrefix(Family family) { return family == Family::kSkinny ? "skinny " : ""; }

/// A skinny kernel's SPLIT and COLS, for the timing table.
std::string variant(Family family, int split, int cols) {
  if (family != Family::kSkinny)
    return "";
  std::string text = " split=" + std::to_string(split) + " cols=" + std::to_string(cols);
  if (skinnyRingBlocks != kSkinnyRingBlocks)
    text += " grid<=" + std::to_string(skinnyRingBlocks);
  return text;
}

std::string gemmShape(int N, int K, int M) {
  return std::to_string(N) + "x" + std::to_string(K) + " M=" + std::to_string(M);
}

// ---------------------------------------------------------------- fp8_gemm

template <int N, int K, typename OutT, int SPLIT = 8, int COLS = 4>
void testFp8Gemm(int M, bool timed = false, Family family = Family::kTiles) {
  constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  std::vector<fp8> a = randomFp8(static_cast<size_t>(M) * K);
  std::vector<fp8> b = randomFp8(static_cast<size_t>(N) * K);
  std::vector<float> aScales = randomScales(static_cast<size_t>(M) * kBlocksK);
  std::vector<float> bScales = randomScales(static_cast<size_t>(kBlocksN) * kBlocksK);

  DeviceBuffer<fp8> da(a.size()), db(b.size());
  DeviceBuffer<float> das(aScales.size()), dbs(bScales.size());
  DeviceBuffer<OutT> dc(static_cast<size_t>(M) * N);
  da.upload(a);
  db.upload(b);
  das.upload(aScales);
  dbs.upload(bScales);
  dc.poison();
  dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(M, 64), 1);
  auto launch = [&] {
    if (family == Family::kSkinny)
      dsv3k::fp8_skinny_gemm<N, K, kScaleBlock, kScaleBlock, SPLIT, COLS, OutT>
          <<<skinnyBlocks(N, SPLIT, COLS), 256>>>(da.ptr, das.ptr, db.ptr, dbs.ptr, dc.ptr, M);
    else
      dsv3k::fp8_gemm<N, K, kScaleBlock, kScaleBlock, OutT>
          <<<grid, dim3(256)>>>(da.ptr, das.ptr, db.ptr, dbs.ptr, dc.ptr, M);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<OutT> c = dc.download();

  std::vector<int> rows = sampleRows(M);
  std::vector<double> ref(rows.size() * N);
  for (size_t i = 0; i < rows.size(); ++i)
    referenceScaledRow(&a[static_cast<size_t>(rows[i]) * K], &aScales[rows[i] * kBlocksK], b.data(),
                    bScales.data(), N, K, &ref[i * N]);
  std::string name = std::string(familyPrefix(family)) + "fp8_gemm " + outName<OutT>();
  compareRows(name, gemmShape(N, K, M) + variant(family, SPLIT, COLS), c, N, rows, ref);
  if (timed)
    timeLaunches(name, gemmShape(N, K, M) + variant(family, SPLIT, COLS), 2.0 * M * N * K,
                 1.0 * N * K, launch);
}

/// One DeepSeek-V3 projection at every M of the task.
template <int N, int K> void testFp8GemmAllM() {
  testFp8Gemm<N, K, bf16>(1, true);
  testFp8Gemm<N, K, bf16>(7);
  testFp8Gemm<N, K, bf16>(300);
  testFp8Gemm<N, K, bf16>(1024, true);
}

// -------------------------------------------------------------- w8a16_gemm

/// bf16 activations (row stride lda, padding columns poisoned with 1e30)
/// times a block-scaled FP8 weight.
template <int N, int K, typename OutT, int SPLIT = 8, int COLS = 4>
void testW8A16Gemm(int M, int lda, bool timed = false, Family family = Family::kTiles) {
  constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  std::vector<bf16> a = randomBf16(static_cast<size_t>(M) * lda);
  for (int m = 0; m < M; ++m)
    for (int k = K; k < lda; ++k)
      a[static_cast<size_t>(m) * lda + k] = __float2bfloat16(1e30f);
  std::vector<fp8> b = randomFp8(static_cast<size_t>(N) * K);
  std::vector<float> bScales = randomScales(static_cast<size_t>(kBlocksN) * kBlocksK);

  DeviceBuffer<bf16> da(a.size());
  DeviceBuffer<fp8> db(b.size());
  DeviceBuffer<float> dbs(bScales.size());
  DeviceBuffer<OutT> dc(static_cast<size_t>(M) * N);
  da.upload(a);
  db.upload(b);
  dbs.upload(bScales);
  dc.poison();
  dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(M, 64), 1);
  auto launch = [&] {
    if (family == Family::kSkinny)
      dsv3k::w8a16_skinny_gemm<N, K, kScaleBlock, kScaleBlock, SPLIT, COLS, OutT>
          <<<skinnyBlocks(N, SPLIT, COLS), 256>>>(da.ptr, lda, db.ptr, dbs.ptr, dc.ptr, M);
    else
      dsv3k::w8a16_gemm<N, K, kScaleBlock, kScaleBlock, OutT>
          <<<grid, dim3(256)>>>(da.ptr, lda, db.ptr, dbs.ptr, dc.ptr, M);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<OutT> c = dc.download();

  std::vector<int> rows = sampleRows(M);
  std::vector<double> ref(rows.size() * N);
  for (size_t i = 0; i < rows.size(); ++i)
    referenceScaledRow(&a[static_cast<size_t>(rows[i]) * lda], static_cast<const float *>(nullptr),
                       b.data(), bScales.data(), N, K, &ref[i * N]);
  std::string name = std::string(familyPrefix(family)) + "w8a16_gemm " + outName<OutT>();
  std::string shape =
      gemmShape(N, K, M) + variant(family, SPLIT, COLS) + " lda=" + std::to_string(lda);
  compareRows(name, shape, c, N, rows, ref);
  if (timed)
    timeLaunches(name, shape, 2.0 * M * N * K, 1.0 * N * K * sizeof(b[0]), launch);
}

// ---------------------------------------------------------------- bf16_gemm

template <int N, int K, typename OutT, int SPLIT = 8, int COLS = 4>
void testBf16Gemm(int M, int lda, bool timed = false, Family family = Family::kTiles) {
  std::vector<bf16> a = randomBf16(static_cast<size_t>(M) * lda);
  for (int m = 0; m < M; ++m)
    for (int k = K; k < lda; ++k)
      a[static_cast<size_t>(m) * lda + k] = __float2bfloat16(1e30f);
  std::vector<bf16> b = randomBf16(static_cast<size_t>(N) * K);

  DeviceBuffer<bf16> da(a.size()), db(b.size());
  DeviceBuffer<OutT> dc(static_cast<size_t>(M) * N);
  da.upload(a);
  db.upload(b);
  dc.poison();
  dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(M, 64), 1);
  auto launch = [&] {
    if (family == Family::kSkinny)
      dsv3k::bf16_skinny_gemm<N, K, SPLIT, COLS, OutT>
          <<<skinnyBlocks(N, SPLIT, COLS), 256>>>(da.ptr, lda, db.ptr, dc.ptr, M);
    else
      dsv3k::bf16_gemm<N, K, OutT><<<grid, dim3(256)>>>(da.ptr, lda, db.ptr, dc.ptr, M);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<OutT> c = dc.download();

  std::vector<int> rows = sampleRows(M);
  std::vector<double> ref(rows.size() * N);
  for (size_t i = 0; i < rows.size(); ++i)
    referenceBf16Row(&a[static_cast<size_t>(rows[i]) * lda], b.data(), N, K, &ref[i * N]);
  std::string name = std::string(familyPrefix(family)) + "bf16_gemm " + outName<OutT>();
  std::string shape =
      gemmShape(N, K, M) + variant(family, SPLIT, COLS) + " lda=" + std::to_string(lda);
  compareRows(name, shape, c, N, rows, ref);
  if (timed)
    timeLaunches(name, shape, 2.0 * M * N * K, 1.0 * N * K * sizeof(b[0]), launch);
}

// ------------------------------------------------------------ grouped GEMMs

/// Sampled rows plus the first and last row of several experts, where a tile
/// starts or ends.
std::vector<int> sampleRoutedRows(const Routing &routing) {
  std::vector<int> picked = sampleRows(routing.rows());
  int numExperts = static_cast<int>(routing.expertOffsets.size()) - 1;
  int added = 0;
  for (int e = 0; e < numExperts && added < 8; ++e) {
    int begin = routing.expertOffsets[e], end = routing.expertOffsets[e + 1];
    if (end - begin >= 2 && begin % 64 != 0) {
      picked.push_back(begin);
      picked.push_back(end - 1);
      added += 1;
    }
  }
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  return picked;
}

std::string groupedShape(int E, int N, int K, const Routing &routing, bool gather) {
  return "E=" + std::to_string(E) + " " + std::to_string(N) + "x" + std::to_string(K) +
         " R=" + std::to_string(routing.rows()) + " used=" + std::to_string(routing.used()) +
         (gather ? " gather" : "");
}

/// gather: A holds one row per token and a_rows picks it (gate/up of the
/// routed experts); otherwise A is already in routed order (down).
template <int N, int K, int E, typename OutT, int SPLIT = 8, int COLS = 4, bool RING = false>
void testFp8Grouped(int T, int topK, const std::vector<int> &candidates, bool gather,
                    bool timed = false, Family family = Family::kTiles) {
  GroupedData<N, K, E> data(T, topK, candidates, gather);
  const int R = data.R();
  DeviceBuffer<OutT> dc(static_cast<size_t>(R) * N);
  dc.poison();
  dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(R, 64) + E, 1);
  auto launch = [&] {
    if (family == Family::kSkinny)
      dsv3k::fp8_grouped_skinny_gemm<N, K, E, kScaleBlock, kScaleBlock, SPLIT, COLS, OutT, RING>
          <<<dim3(skinnyGroupedBlocks<fp8, K, SPLIT, COLS, RING>(N), R), 256>>>(
              data.da.ptr, data.das.ptr, data.aRows(), data.db.ptr, data.dbs.ptr,
              data.doffsets.ptr, dc.ptr, R);
    else
      dsv3k::fp8_grouped_gemm<N, K, E, kScaleBlock, kScaleBlock, OutT><<<grid, dim3(256)>>>(
          data.da.ptr, data.das.ptr, data.aRows(), data.db.ptr, data.dbs.ptr, data.doffsets.ptr,
          dc.ptr, R);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<OutT> c = dc.download();

  std::vector<int> rows = sampleRoutedRows(data.routing);
  std::string name = std::string(familyPrefix(family)) + "fp8_grouped_gemm " + outName<OutT>();
  std::string shape =
      data.shape() + variant(family, SPLIT, COLS) + (RING ? " ring" : "");
  compareRows(name, shape, c, N, rows, data.reference(rows));
  if (timed)
    timeLaunches(name, shape, 2.0 * R * N * K, 1.0 * data.routing.used() * N * K, launch);
}

template <int N, int K, int E, typename OutT, int SPLIT = 8, int COLS = 4, bool RING = false>
void testW8A16Grouped(int T, int topK, const std::vector<int> &candidates, bool gather,
                      bool timed = false, Family family = Family::kTiles) {
  constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  Routing routing = routeTokens(T, topK, E, candidates);
  const int R = routing.rows();
  const int aRowsCount = gather ? T : R;
  std::vector<bf16> a = randomBf16(static_cast<size_t>(aRowsCount) * K);
  std::vector<fp8> b = randomFp8(static_cast<size_t>(E) * N * K);
  std::vector<float> bScales = randomScales(static_cast<size_t>(E) * kBlocksN * kBlocksK);

  DeviceBuffer<bf16> da(a.size());
  DeviceBuffer<fp8> db(b.size());
  DeviceBuffer<float> dbs(bScales.size());
  DeviceBuffer<int> drows(R), doffsets(E + 1);
  DeviceBuffer<OutT> dc(static_cast<size_t>(R) * N);
  da.upload(a);
  db.upload(b);
  dbs.upload(bScales);
  drows.upload(routing.rowToken);
  doffsets.upload(routing.expertOffsets);
  dc.poison();
  dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(R, 64) + E, 1);
  const int *aRows = gather ? drows.ptr : nullptr;
  auto launch = [&] {
    if (family == Family::kSkinny)
      dsv3k::w8a16_grouped_skinny_gemm<N, K, E, kScaleBlock, kScaleBlock, SPLIT, COLS, OutT, RING>
          <<<dim3(skinnyGroupedBlocks<fp8, K, SPLIT, COLS, RING>(N), R), 256>>>(
              da.ptr, aRows, db.ptr, dbs.ptr, doffsets.ptr, dc.ptr, R);
    else
      dsv3k::w8a16_grouped_gemm<N, K, E, kScaleBlock, kScaleBlock, OutT><<<grid, dim3(256)>>>(
          da.ptr, aRows, db.ptr, dbs.ptr, doffsets.ptr, dc.ptr, R);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<OutT> c = dc.download();

  std::vector<int> rows = sampleRoutedRows(routing);
  std::vector<double> ref(rows.size() * N);
  for (size_t i = 0; i < rows.size(); ++i) {
    int r = rows[i], e = routing.expertOf(r);
    int source = gather ? routing.rowToken[r] : r;
    referenceScaledRow(&a[static_cast<size_t>(source) * K], static_cast<const float *>(nullptr),
                       &b[static_cast<size_t>(e) * N * K],
                       &bScales[static_cast<size_t>(e) * kBlocksN * kBlocksK], N, K, &ref[i * N]);
  }
  std::string name =
      std::string(familyPrefix(family)) + "w8a16_grouped_gemm " + outName<OutT>();
  std::string shape =
      groupedShape(E, N, K, routing, gather) + variant(family, SPLIT, COLS) + (RING ? " ring" : "");
  compareRows(name, shape, c, N, rows, ref);
  if (timed)
    timeLaunches(name, shape, 2.0 * R * N * K,
                 1.0 * routing.used() * N * K * sizeof(b[0]), launch);
}

template <int N, int K, int E, typename OutT, int SPLIT = 8, int COLS = 4, bool RING = false>
void testBf16Grouped(int T, int topK, const std::vector<int> &candidates, bool gather,
                     bool timed = false, Family family = Family::kTiles) {
  Routing routing = routeTokens(T, topK, E, candidates);
  const int R = routing.rows();
  const int aRowsCount = gather ? T : R;
  std::vector<bf16> a = randomBf16(static_cast<size_t>(aRowsCount) * K);
  std::vector<bf16> b = randomBf16(static_cast<size_t>(E) * N * K);

  DeviceBuffer<bf16> da(a.size()), db(b.size());
  DeviceBuffer<int> drows(R), doffsets(E + 1);
  DeviceBuffer<OutT> dc(static_cast<size_t>(R) * N);
  da.upload(a);
  db.upload(b);
  drows.upload(routing.rowToken);
  doffsets.upload(routing.expertOffsets);
  dc.poison();
  dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(R, 64) + E, 1);
  const int *aRows = gather ? drows.ptr : nullptr;
  auto launch = [&] {
    if (family == Family::kSkinny)
      dsv3k::bf16_grouped_skinny_gemm<N, K, E, SPLIT, COLS, OutT, RING>
          <<<dim3(skinnyGroupedBlocks<bf16, K, SPLIT, COLS, RING>(N), R), 256>>>(
              da.ptr, aRows, db.ptr, doffsets.ptr, dc.ptr, R);
    else
      dsv3k::bf16_grouped_gemm<N, K, E, OutT>
          <<<grid, dim3(256)>>>(da.ptr, aRows, db.ptr, doffsets.ptr, dc.ptr, R);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<OutT> c = dc.download();

  std::vector<int> rows = sampleRoutedRows(routing);
  std::vector<double> ref(rows.size() * N);
  for (size_t i = 0; i < rows.size(); ++i) {
    int r = rows[i], e = routing.expertOf(r);
    int source = gather ? routing.rowToken[r] : r;
    referenceBf16Row(&a[static_cast<size_t>(source) * K], &b[static_cast<size_t>(e) * N * K], N,
                     K, &ref[i * N]);
  }
  std::string name =
      std::string(familyPrefix(family)) + "bf16_grouped_gemm " + outName<OutT>();
  std::string shape =
      groupedShape(E, N, K, routing, gather) + variant(family, SPLIT, COLS) + (RING ? " ring" : "");
  compareRows(name, shape, c, N, rows, ref);
  if (timed)
    timeLaunches(name, shape, 2.0 * R * N * K,
                 1.0 * routing.used() * N * K * sizeof(b[0]), launch);
}

/// The tile kernels' checks and timings (gemm.cuh, grouped_gemm.cuh).
void testTileKernels() {
  // fp8_gemm: every DeepSeek-V3 FP8 projection [N, K] at M = 1, 7, 300, 1024.
  testFp8GemmAllM<1536, 7168>();  // q_a_proj
  testFp8GemmAllM<24576, 1536>(); // q_b_proj
  testFp8GemmAllM<576, 7168>();   // kv_a_proj_with_mqa: last N block has 64 rows
  testFp8GemmAllM<32768, 512>();  // kv_b_proj
  testFp8GemmAllM<7168, 16384>(); // o_proj
  testFp8GemmAllM<18432, 7168>(); // dense gate_proj / up_proj
  testFp8GemmAllM<7168, 18432>(); // dense down_proj
  testFp8GemmAllM<2048, 7168>();  // expert gate_proj / up_proj
  testFp8GemmAllM<7168, 2048>();  // expert down_proj
  // Tiny models and odd shapes, with float output too.
  for (int M : {1, 7, 300}) {
    testFp8Gemm<80, 256, bf16>(M);
    testFp8Gemm<80, 256, float>(M);
    testFp8Gemm<256, 64, bf16>(M); // K < 128: one partial K block
    testFp8Gemm<256, 64, float>(M);
    testFp8Gemm<192, 128, bf16>(M);
    testFp8Gemm<96, 200, float>(M); // K % 16 != 0: element loads, partial K block
  }
  testFp8Gemm<576, 7168, float>(300);

  // w8a16_gemm: bf16 activations x FP8 weights, the V3 projections at decode
  // and prefill sizes, partial N and K blocks, a strided A, element loads.
  for (int M : {1, 300}) {
    testW8A16Gemm<1536, 7168, bf16>(M, 7168, true);
    testW8A16Gemm<576, 7168, bf16>(M, 7168);
    testW8A16Gemm<7168, 16384, bf16>(M, 16384, true);
    testW8A16Gemm<7168, 2048, float>(M, 2048);
  }
  testW8A16Gemm<24576, 1536, bf16>(1024, 1536, true);
  testW8A16Gemm<80, 256, float>(7, 264);
  testW8A16Gemm<96, 200, float>(7, 203);
  testW8A16Gemm<256, 64, bf16>(1, 64);

  // bf16_gemm: router (256 experts, fp32 logits), lm_head (fp32 logits),
  // a BF16 projection, a strided A (the 512-wide c_kv inside 576-wide kv_a
  // rows) and odd strides that force element loads.
  for (int M : {1, 7, 300})
    testBf16Gemm<256, 7168, float>(M, 7168, M == 300);
  testBf16Gemm<129280, 7168, float>(4, 7168, true);
  testBf16Gemm<1536, 7168, bf16>(1, 7168);
  testBf16Gemm<1536, 7168, bf16>(1024, 7168, true);
  testBf16Gemm<32768, 512, bf16>(7, 576);
  testBf16Gemm<80, 256, float>(300, 259);
  testBf16Gemm<80, 200, float>(7, 203);
  testBf16Gemm<80, 200, bf16>(1, 200);

  // Grouped: DeepSeek-V3's 256 experts, 64 tokens x top-8 = 512 routed rows.
  // Expert gate/up gathers token rows (a_rows); expert down reads routed rows.
  testFp8Grouped<2048, 7168, 256, bf16>(64, 8, allExperts(256), true, true);
  testFp8Grouped<7168, 2048, 256, bf16>(64, 8, allExperts(256), false, true);
  // 16 experts, most empty: 3 used experts with ~133 rows each (three tiles
  // per expert), and 5 tokens on 6 experts with odd N and K.
  testFp8Grouped<192, 128, 16, float>(200, 2, {2, 3, 11}, true);
  testFp8Grouped<80, 200, 16, float>(5, 2, {0, 4, 5, 9, 14, 15}, false);
  testFp8Grouped<80, 256, 16, bf16>(1, 2, {6, 7}, true);

  testW8A16Grouped<2048, 7168, 256, bf16>(64, 8, allExperts(256), true, true);
  testW8A16Grouped<7168, 2048, 256, bf16>(64, 8, allExperts(256), false, true);
  testW8A16Grouped<192, 128, 16, float>(200, 2, {2, 3, 11}, true);
  testW8A16Grouped<80, 200, 16, float>(5, 2, {0, 4, 5, 9, 14, 15}, false);

  testBf16Grouped<2048, 7168, 256, bf16>(64, 8, allExperts(256), true, true);
  testBf16Grouped<7168, 2048, 256, bf16>(64, 8, allExperts(256), false, true);
  testBf16Grouped<192, 128, 16, float>(200, 2, {2, 3, 11}, true);
  testBf16Grouped<80, 200, 16, float>(5, 2, {0, 4, 5, 9, 14, 15}, false);
}

} // namespace

/// `gemm_test --skinny-only` runs only the skinny kernels' checks and timings
/// (seconds instead of minutes of tile-kernel references).
int main(int argc, char **argv) {
  const bool skinnyOnly = argc > 1 && std::strcmp(argv[1], "--skinny-only") == 0;
  if (argc > 1 && !skinnyOnly) {
    std::fprintf(stderr, "usage: gemm_test [--skinny-only]\n");
    return 2;
  }
  if (!skinnyOnly)
    testTileKernels();

  // Skinny kernels (decode, at most 4 rows, or a few dozen routed rows):
  // every DeepSeek-V3 projection they serve at M = 1 and 4, with the SPLIT
  // and COLS dsv3c picks for it on sm_90a (test/targets/skinny-shapes.test
  // checks the same choices for the real configs), each timed at M = 1
  // against its weight bytes, from a flushed L2.
  constexpr Family kSkinny = Family::kSkinny;
  for (int M : {1, 4}) {
    testW8A16Gemm<1536, 7168, float, 2, 1>(M, 7168, M == 1, kSkinny);    // q_a
    testW8A16Gemm<24576, 1536, float, 1, 2>(M, 1536, M == 1, kSkinny);   // q_b
    testW8A16Gemm<576, 7168, float, 2, 1>(M, 7168, M == 1, kSkinny);     // kv_a
    testW8A16Gemm<7168, 16384, float, 4, 2>(M, 16384, M == 1, kSkinny);  // o_proj
    testW8A16Gemm<18432, 7168, float, 2, 2>(M, 7168, M == 1, kSkinny);   // dense gate/up
    testW8A16Gemm<7168, 18432, float, 4, 2>(M, 18432, M == 1, kSkinny);  // dense down
    testW8A16Gemm<2048, 7168, bf16, 2, 1>(M, 7168, M == 1, kSkinny);     // shared gate/up
    testW8A16Gemm<7168, 2048, bf16, 1, 2>(M, 2048, M == 1, kSkinny);     // shared down
    testBf16Gemm<129280, 7168, float, 4, 2>(M, 7168, M == 1, kSkinny);   // lm_head
    testBf16Gemm<256, 7168, float, 4, 1>(M, 7168, M == 1, kSkinny);      // router
    testBf16Gemm<1536, 7168, bf16, 4, 2>(M, 7168, M == 1, kSkinny);      // BF16 q_a
    testBf16Gemm<24576, 1536, bf16, 1, 2>(M, 1536, M == 1, kSkinny);     // BF16 q_b
  }
  // Other SPLIT x COLS choices for some of those shapes, timed at M = 1:
  // the evidence for dsv3c's rule (targets/cuda/CodeGen.cpp, skinnyShape).
  testW8A16Gemm<7168, 16384, float, 8, 2>(1, 16384, true, kSkinny);
  testW8A16Gemm<7168, 18432, float, 8, 2>(1, 18432, true, kSkinny);
  testW8A16Gemm<18432, 7168, float, 4, 2>(1, 7168, true, kSkinny);
  testW8A16Gemm<1536, 7168, float, 8, 1>(1, 7168, true, kSkinny);
  testBf16Gemm<129280, 7168, float, 8, 2>(1, 7168, true, kSkinny);
  testBf16Gemm<1536, 7168, bf16, 8, 4>(1, 7168, true, kSkinny);
  // Partial tiles and scale blocks, passes over more than 4 rows, strided A
  // and element loads.
  testW8A16Gemm<80, 256, float, 1, 8>(7, 264, false, kSkinny);
  testW8A16Gemm<96, 200, float, 2, 3>(3, 203, false, kSkinny);
  testW8A16Gemm<300, 2048, float, 8, 1>(5, 2048, false, kSkinny);
  testW8A16Gemm<300, 2048, float, 2, 2>(7, 2048, false, kSkinny); // 300 = 37.5 tiles of 8
  testW8A16Gemm<96, 208, float, 2, 3>(3, 216, false, kSkinny);    // K = 128 + 80, strided A
  testBf16Gemm<32768, 512, bf16, 1, 4>(7, 576, false, kSkinny);
  testBf16Gemm<80, 200, float, 4, 2>(2, 203, false, kSkinny);
  testBf16Gemm<78, 200, float, 4, 2>(5, 200, false, kSkinny);
  testFp8Gemm<96, 200, float, 2, 1>(3, false, kSkinny); // element loads, partial blocks
  testFp8Gemm<90, 208, float, 2, 3>(6, false, kSkinny);
  // Decode MoE: 1 and 4 tokens x top-8 of 256 experts, gathered gate/up and
  // routed-order down, the FP8 experts through the shared-memory ring (BF16
  // experts' down too, as evidence: dsv3c keeps their register loads).
  for (int T : {1, 4}) {
    testW8A16Grouped<2048, 7168, 256, float, 8, 2, true>(T, 8, allExperts(256), true, T == 1,
                                                         kSkinny);
    testW8A16Grouped<7168, 2048, 256, float, 2, 2, true>(T, 8, allExperts(256), false, true,
                                                         kSkinny);
    testBf16Grouped<2048, 7168, 256, float, 4, 2>(T, 8, allExperts(256), true, T == 1, kSkinny);
    testBf16Grouped<7168, 2048, 256, float, 2, 2>(T, 8, allExperts(256), false, T == 1, kSkinny);
  }
  testBf16Grouped<7168, 2048, 256, float, 4, 2, true>(1, 8, allExperts(256), false, true, kSkinny);
  // The same through registers (dsv3c's choices before the ring).
  testW8A16Grouped<2048, 7168, 256, float, 2, 1>(1, 8, allExperts(256), true, true, kSkinny);
  testW8A16Grouped<7168, 2048, 256, float, 1, 2>(1, 8, allExperts(256), false, true, kSkinny);
  // Tiny experts with odd shapes; with 2 ring blocks per routed row, each
  // block's tiles wrap around its ring several times.
  testW8A16Grouped<80, 200, 16, float, 1, 2>(5, 2, {0, 4, 5, 9, 14, 15}, false, false, kSkinny);
  testFp8Grouped<80, 200, 16, float, 1, 2>(5, 2, {0, 4, 5, 9, 14, 15}, true, false, kSkinny);
  testBf16Grouped<80, 200, 16, float, 2, 1>(5, 2, {0, 4, 5, 9, 14, 15}, true, false, kSkinny);
  for (int ringBlocks : {kSkinnyRingBlocks, 16}) {
    skinnyRingBlocks = ringBlocks;
    testW8A16Grouped<90, 208, 16, float, 2, 3, true>(5, 2, {0, 4, 5, 9, 14, 15}, true, false,
                                                     kSkinny);
    testFp8Grouped<90, 208, 16, float, 2, 3, true>(5, 2, {0, 4, 5, 9, 14, 15}, false, false,
                                                   kSkinny);
    testBf16Grouped<80, 208, 16, float, 4, 2, true>(3, 2, {0, 4, 5, 9, 14, 15}, false, false,
                                                    kSkinny);
  }
  skinnyRingBlocks = kSkinnyRingBlocks;
  // FP8 activations (--activation-dtype=fp8) at decode: the same shapes and
  // choices, per-row activation scales, gathered rows with their scales.
  for (int M : {1, 4}) {
    testFp8Gemm<1536, 7168, float, 2, 1>(M, M == 1, kSkinny);   // q_a
    testFp8Gemm<24576, 1536, float, 1, 2>(M, M == 1, kSkinny);  // q_b
    testFp8Gemm<7168, 16384, float, 4, 2>(M, M == 1, kSkinny);  // o_proj
    testFp8Gemm<18432, 7168, float, 2, 2>(M, M == 1, kSkinny);  // dense gate/up
    testFp8Gemm<7168, 2048, bf16, 1, 2>(M, false, kSkinny);     // shared down
  }
  for (int T : {1, 4}) {
    testFp8Grouped<2048, 7168, 256, float, 2, 1>(T, 8, allExperts(256), true, T == 1, kSkinny);
    testFp8Grouped<7168, 2048, 256, float, 1, 2>(T, 8, allExperts(256), false, T == 1, kSkinny);
  }

  int status = finish("gemm_test");
  const double copyGBs = copyBandwidthBytesPerSecond() / 1e9;
  std::printf("\n== gemm_test timings (median of 11 from a flushed L2; GB/s counts each weight "
              "byte once; copy ceiling %.0f GB/s, read + write)\n",
              copyGBs);
  for (const Timing &t : timings())
    std::printf("%-34s %-50s %8.1f us (floor %6.1f) %7.2f TFLOP/s %6.0f GB/s weights %4.0f%% "
                "of copy\n",
                t.kernel.c_str(), t.shape.c_str(), t.microseconds,
                t.microseconds * t.weightGBs / copyGBs, t.tflops, t.weightGBs,
                100.0 * t.weightGBs / copyGBs);
  return status;
}
