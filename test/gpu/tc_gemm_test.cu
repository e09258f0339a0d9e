// GPU test and benchmark of tc_gemm.cuh (tensor-core GEMMs for bf16
// activations: tc_w8a16_gemm, tc_bf16_gemm and their grouped variants)
// against a float64 CPU reference on fresh random inputs, with the CUDA-core
// kernels they replace (gemm.cuh, grouped_gemm.cuh) timed beside them.
//
// 1. The e4m3 -> bf16 conversion the FP8 path multiplies with: every finite
//    code, bit-exact.
// 2. Odd shapes on every tile the code generator may pick: partial 128-blocks
//    (N = 576, 80; K = 208: a partial scale block and a partial 32-deep
//    sub-tile; K = 200 for bf16), M not a multiple of any tile, strided A
//    (padding holds 1e30, so reading past K fails loudly), more K-split
//    groups than stages, bf16 and f32 outputs, gathered rows, experts with
//    several row tiles and empty experts.
// 3. DeepSeek-V3's shapes at M = 32, 128, 1024, 4096 (grouped: 32, 128, 1024
//    and 4096 tokens routed top-8 over 256 experts), each checked on sampled
//    rows and timed per candidate tile with a cold L2, beside its floor:
//    max(bytes / copy bandwidth, FLOPs / BF16 tensor peak), both measured
//    here first (cudaMemcpy device to device; cuBLASLt bf16 at 8192^3,
//    loaded with dlopen), and beside the old kernel's time.
//
// Inputs: bf16 values U(-1, 1); e4m3 weights are uniformly random bit
// patterns (every finite code, subnormals and both zeros); block scales
// 2^U(-4, 4) * 1e-3, different per block so a wrong scale index shows.
//
// Tolerances (relative Frobenius error against float64): f32 output 5e-5:
// products of bf16 and e4m3 (or bf16) values are exact in f32, but the tensor
// cores' internal additions need not round to nearest, so the bound is looser
// than gemm_test's 2e-5 for fp32 FMA; a wrong index or scale gives O(1).
// bf16 output 4e-3 (its own rounding alone is about 1.1e-3). Every element
// of C is checked for NaN (outputs are poisoned before each run); large
// products are compared on sampled rows.
#include "harness.h"
#include "gemm_data.h"
#include "routing.h"

#include "targets/cuda/kernels/gemm.cuh"
#include "targets/cuda/kernels/grouped_gemm.cuh"
#include "targets/cuda/kernels/tc_gemm.cuh"

#include <cublasLt.h>
#include <dlfcn.h>

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

constexpr double kFloatTolerance = 5e-5;
constexpr double kBf16Tolerance = 4e-3;

template <typename OutT> double tolerance() {
  return std::is_same<OutT, float>::value ? kFloatTolerance : kBf16Tolerance;
}
template <typename T> const char *elementName() {
  if (std::is_same<T, float>::value)
    return "f32";
  return std::is_same<T, bf16>::value ? "bf16" : "e4m3";
}

// ------------------------------------------------------------ host helpers

template <typename T> std::vector<T> randomValues(size_t n);
template <> std::vector<fp8> randomValues<fp8>(size_t n) { return randomFp8(n); }
template <> std::vector<bf16> randomValues<bf16>(size_t n) { return randomBf16(n); }
inline float hostFloat(float v) { return v; }
inline float hostFloat(bf16 v) { return __bfloat162float(v); }

/// One output row in float64: sum over scale blocks of (sum a * w) * scale
/// (FP8 weights), or sum a * w (bf16 weights, scales null).
template <typename TB>
void referenceRow(const bf16 *a, const TB *b, const float *scales, int N, int K, double *out) {
  std::vector<double> aRow(K);
  for (int k = 0; k < K; ++k)
    aRow[k] = value(a[k]);
  const int blocksK = (K + kScaleBlock - 1) / kScaleBlock;
  parallelFor(N, [&](size_t n) {
    const TB *bRow = b + n * K;
    double total = 0;
    for (int kb = 0; kb < blocksK; ++kb) {
      double partial = 0;
      for (int k = kb * kScaleBlock; k < std::min(K, (kb + 1) * kScaleBlock); ++k)
        partial += aRow[k] * value(bRow[k]);
      total += scales ? partial * scales[(n / kScaleBlock) * blocksK + kb] : partial;
    }
    out[n] = total;
  });
}

/// Rows compared with the reference: all when few, else the first and last,
/// both sides of the 16/32/64/128-row tile edges, and random others.
std::vector<int> sampleRows(int rows, int count) {
  std::vector<int> picked;
  if (rows <= count) {
    for (int r = 0; r < rows; ++r)
      picked.push_back(r);
    return picked;
  }
  for (int r : {0, rows - 1, 15, 16, 63, 64, 127, 128})
    if (r < rows)
      picked.push_back(r);
  std::uniform_int_distribution<int> pick(0, rows - 1);
  while (picked.size() < static_cast<size_t>(count))
    picked.push_back(pick(rng()));
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  return picked;
}

/// Relative error of the sampled rows of c against ref; +Inf if any element
/// of c (sampled or not) is not finite.
template <typename OutT>
double sampledError(const std::vector<OutT> &c, int N, const std::vector<int> &rows,
                    const std::vector<double> &ref) {
  for (const OutT &v : c)
    if (!std::isfinite(hostFloat(v)))
      return INFINITY;
  std::vector<float> sampled;
  sampled.reserve(rows.size() * N);
  for (int r : rows)
    for (int n = 0; n < N; ++n)
      sampled.push_back(hostFloat(c[static_cast<size_t>(r) * N + n]));
  return relativeError(sampled, ref);
}

// ------------------------------------------------- ceilings and timing

struct Ceilings {
  double copyBytesPerSecond = 0; // bytes read + written
  double bf16FlopsPerSecond = 0;
  std::string gemmNote;
} ceilings;

/// Median microseconds of `launch` (already run once, untimed, by its check),
/// each run after an L2 flush (flushL2: the model's weights are never in L2
/// when a step reads them); as many runs as fit in about 0.2 s, 3 to 15.
double timeLaunch(const std::function<void()> &launch) {
  const double first = medianMicros(launch, {/*warmups=*/0, /*runs=*/1, flushL2});
  const int runs = std::max(3, std::min(15, static_cast<int>(200e3 / std::max(first, 1.0))));
  return medianMicros(launch, {/*warmups=*/0, runs, flushL2});
}

/// cuBLASLt's bf16 GEMM at 8192^3 (D = A^T B, bf16 out, f32 accumulation),
/// median of 10 after 3 warm-ups; the library is opened with dlopen so the
/// test builds with a plain nvcc command line.
void measureBf16Peak() {
  void *library = nullptr;
  for (const char *name : {"libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.13"})
    if ((library = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr)
      break;
  if (!library) {
    ceilings.gemmNote = "cuBLASLt not found";
    return;
  }
#define RESOLVE(symbol)                                                                            \
  auto symbol##Fn = reinterpret_cast<decltype(&symbol)>(dlsym(library, #symbol))
  RESOLVE(cublasLtCreate);
  RESOLVE(cublasLtDestroy);
  RESOLVE(cublasLtMatmulDescCreate);
  RESOLVE(cublasLtMatmulDescDestroy);
  RESOLVE(cublasLtMatmulDescSetAttribute);
  RESOLVE(cublasLtMatrixLayoutCreate);
  RESOLVE(cublasLtMatrixLayoutDestroy);
  RESOLVE(cublasLtMatmulPreferenceCreate);
  RESOLVE(cublasLtMatmulPreferenceDestroy);
  RESOLVE(cublasLtMatmulPreferenceSetAttribute);
  RESOLVE(cublasLtMatmulAlgoGetHeuristic);
  RESOLVE(cublasLtMatmul);
#undef RESOLVE
  if (!cublasLtCreateFn || !cublasLtMatmulFn || !cublasLtMatmulAlgoGetHeuristicFn) {
    ceilings.gemmNote = "cuBLASLt symbols missing";
    return;
  }
  const int n = 8192;
  const size_t elements = static_cast<size_t>(n) * n, workspaceBytes = 64u << 20;
  DeviceBuffer<bf16> a(elements), b(elements), d(elements);
  DeviceBuffer<uint8_t> workspace(workspaceBytes);
  a.upload(randomValues<bf16>(elements));
  b.upload(randomValues<bf16>(elements));
  cublasLtHandle_t handle;
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t layoutA, layoutB, layoutD;
  cublasLtMatmulPreference_t preference;
  bool ok =
      cublasLtCreateFn(&handle) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescCreateFn(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS;
  const cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
  ok = ok &&
       cublasLtMatmulDescSetAttributeFn(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transposed,
                                        sizeof transposed) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatmulDescSetAttributeFn(desc, CUBLASLT_MATMUL_DESC_TRANSB, &plain, sizeof plain) ==
           CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreateFn(&layoutA, CUDA_R_16BF, n, n, n) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreateFn(&layoutB, CUDA_R_16BF, n, n, n) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreateFn(&layoutD, CUDA_R_16BF, n, n, n) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatmulPreferenceCreateFn(&preference) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatmulPreferenceSetAttributeFn(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                              &workspaceBytes,
                                              sizeof workspaceBytes) == CUBLAS_STATUS_SUCCESS;
  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  ok =
      ok &&
      cublasLtMatmulAlgoGetHeuristicFn(handle, desc, layoutA, layoutB, layoutD, layoutD, preference,
                                       1, &heuristic, &found) == CUBLAS_STATUS_SUCCESS &&
      found > 0;
  if (!ok) {
    ceilings.gemmNote = "cuBLASLt bf16 GEMM unavailable";
    return;
  }
  const float alpha = 1.0f, beta = 0.0f;
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < 13; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    cublasStatus_t status = cublasLtMatmulFn(handle, desc, &alpha, a.ptr, layoutA, b.ptr, layoutB,
                                             &beta, d.ptr, layoutD, d.ptr, layoutD, &heuristic.algo,
                                             workspace.ptr, workspaceBytes, 0);
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    if (status != CUBLAS_STATUS_SUCCESS) {
      ceilings.gemmNote = "cublasLtMatmul failed";
      return;
    }
    float elapsed = 0;
    CHECK_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
    if (i >= 3)
      ms.push_back(elapsed);
  }
  std::sort(ms.begin(), ms.end());
  ceilings.bf16FlopsPerSecond = 2.0 * n * n * static_cast<double>(n) / (ms[ms.size() / 2] * 1e-3);
  ceilings.gemmNote = "cuBLASLt bf16 8192^3";
  cublasLtMatmulPreferenceDestroyFn(preference);
  cublasLtMatrixLayoutDestroyFn(layoutA);
  cublasLtMatrixLayoutDestroyFn(layoutB);
  cublasLtMatrixLayoutDestroyFn(layoutD);
  cublasLtMatmulDescDestroyFn(desc);
  cublasLtDestroyFn(handle);
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
}

double floorMicros(double bytes, double flops) {
  double memory = bytes / ceilings.copyBytesPerSecond;
  double compute = ceilings.bf16FlopsPerSecond > 0 ? flops / ceilings.bf16FlopsPerSecond : 0;
  return 1e6 * std::max(memory, compute);
}

// ---------------------------------------------------------- tile candidates

template <int BM_, int BN_, int STAGES_, int KSPLIT_ = 1> struct Tile {
  static constexpr int BM = BM_, BN = BN_, STAGES = STAGES_, KSPLIT = KSPLIT_;
  static std::string name() {
    return std::to_string(BM) + "x" + std::to_string(BN) + "/" + std::to_string(STAGES) +
           (KSPLIT > 1 ? "/k" + std::to_string(KSPLIT) : "");
  }
};
template <typename... Tiles> struct TileList {};

// Dense tiles (BM x BN / stages / K groups) from few rows to prefill, and
// grouped tiles from one expert's handful of decode rows to prefill.
using DenseTiles =
    TileList<Tile<16, 128, 4>, Tile<32, 32, 3, 4>, Tile<32, 64, 3>, Tile<32, 64, 2, 4>,
             Tile<64, 64, 3>, Tile<64, 64, 3, 2>, Tile<64, 128, 3>, Tile<128, 64, 3>,
             Tile<128, 128, 3>, Tile<128, 128, 4>>;
using GroupedTiles = TileList<Tile<16, 128, 3>, Tile<16, 128, 4>, Tile<32, 128, 3>,
                              Tile<64, 128, 3>, Tile<128, 128, 3>>;

/// Launches `kernel` with its dynamic shared memory, raising the kernel's
/// limit first when it is above the default 48 KB.
template <typename... Params, typename... Args>
void launchWithShared(void (*kernel)(Params...), dim3 grid, int threads, int sharedBytes,
                      Args... args) {
  if (sharedBytes > 48 * 1024)
    CHECK_CUDA(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, sharedBytes));
  kernel<<<grid, threads, sharedBytes>>>(args...);
}

/// Whether a tile is worth timing at `rowsPerTile` rows (M, or routed rows
/// per expert): all of them are checked on the odd shapes regardless. K
/// groups only pay where few blocks stream long rows.
bool plausible(int BM, int ksplit, int rowsPerTile) {
  if (ksplit > 1 && rowsPerTile > 256)
    return false;
  if (rowsPerTile <= 48)
    return BM <= 64;
  if (rowsPerTile <= 256)
    return BM >= 32;
  return BM >= 64;
}

// ------------------------------------------------------------- summary

struct Measured {
  std::string kernel, shape, bestTile;
  double floorUs, oldUs, bestUs;
};
std::vector<Measured> &measurements() {
  static std::vector<Measured> all;
  return all;
}

// ---------------------------------------------------------------- dense

/// A dense problem: weights [N, K] of TB (with block scales when FP8) and
/// activations [M, lda] bf16, output [M, N] of OutT, and the float64
/// reference of sampled rows.
template <typename TB, int N, int K, typename OutT> struct DenseProblem {
  using Out = OutT;
  static constexpr bool kFp8 = sizeof(TB) == 1;
  static constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  static constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  int M, lda;
  std::vector<TB> b;
  std::vector<float> scales;
  std::vector<bf16> a;
  DeviceBuffer<TB> db;
  DeviceBuffer<float> ds;
  DeviceBuffer<bf16> da;
  DeviceBuffer<OutT> dc;
  std::vector<int> rows;
  std::vector<double> ref;

  DenseProblem(int M, int lda, int sampled)
      : M(M), lda(lda), b(randomValues<TB>(static_cast<size_t>(N) * K)),
        scales(kFp8 ? randomScales(static_cast<size_t>(kBlocksN) * kBlocksK)
                    : std::vector<float>{}),
        a(randomValues<bf16>(static_cast<size_t>(M) * lda)), db(b.size()), ds(scales.size()),
        da(a.size()), dc(static_cast<size_t>(M) * N), rows(sampleRows(M, sampled)),
        ref(rows.size() * N) {
    for (int m = 0; m < M; ++m)
      for (int k = K; k < lda; ++k)
        a[static_cast<size_t>(m) * lda + k] = __float2bfloat16(1e30f);
    db.upload(b);
    if (kFp8)
      ds.upload(scales);
    da.upload(a);
    for (size_t i = 0; i < rows.size(); ++i)
      referenceRow(&a[static_cast<size_t>(rows[i]) * lda], b.data(), kFp8 ? scales.data() : nullptr,
                   N, K, &ref[i * N]);
  }

  std::string shape() const {
    return std::to_string(N) + "x" + std::to_string(K) + " M=" + std::to_string(M) +
           (lda != K ? " lda=" + std::to_string(lda) : "") + " " + elementName<OutT>() + " out";
  }
  std::string kernel(bool tensorCores) const {
    return std::string(tensorCores ? "tc_" : "") + (kFp8 ? "w8a16_gemm" : "bf16_gemm");
  }
  double bytes() const {
    return static_cast<double>(N) * K * sizeof(TB) + scales.size() * 4.0 + 2.0 * M * K +
           static_cast<double>(M) * N * sizeof(OutT);
  }
  double flops() const { return 2.0 * M * N * K; }
  int rowsPerTile() const { return M; }

  template <int BM, int BN, int STAGES, int KSPLIT> void launchTc() {
    dim3 grid(dsv3k::ceilDiv(N, BN), dsv3k::ceilDiv(M, BM));
    constexpr int threads = KSPLIT * dsv3k::tc_detail::tileThreads(BM, BN);
    constexpr int shared = KSPLIT * dsv3k::tc_detail::tileSharedBytes(BM, BN, STAGES, sizeof(TB));
    if constexpr (kFp8)
      launchWithShared(
          dsv3k::tc_w8a16_gemm<N, K, kScaleBlock, kScaleBlock, OutT, BM, BN, STAGES, KSPLIT>, grid,
          threads, shared, da.ptr, lda, db.ptr, ds.ptr, dc.ptr, M);
    else
      launchWithShared(dsv3k::tc_bf16_gemm<N, K, OutT, BM, BN, STAGES, KSPLIT>, grid, threads,
                       shared, da.ptr, lda, db.ptr, dc.ptr, M);
  }
  void launchOld() {
    dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(M, 64));
    if constexpr (kFp8)
      dsv3k::w8a16_gemm<N, K, kScaleBlock, kScaleBlock, OutT>
          <<<grid, 256>>>(da.ptr, lda, db.ptr, ds.ptr, dc.ptr, M);
    else
      dsv3k::bf16_gemm<N, K, OutT><<<grid, 256>>>(da.ptr, lda, db.ptr, dc.ptr, M);
  }
  /// Poisons C, runs `launch` and compares; returns the relative error.
  double check(const std::function<void()> &launch) {
    dc.poison();
    launch();
    CHECK_LAUNCH();
    return sampledError(dc.download(), N, rows, ref);
  }
};

/// Every tile of the list on one problem (dense or grouped), checked; timed
/// where plausible when `timed`, with the old kernel beside them.
template <typename Problem, typename... Tiles>
void runTiles(Problem &problem, TileList<Tiles...>, bool timed) {
  double bestUs = INFINITY;
  std::string bestTile;
  auto one = [&](auto tile) {
    using T = decltype(tile);
    if (timed && !plausible(T::BM, T::KSPLIT, problem.rowsPerTile()))
      return;
    auto launch = [&] { problem.template launchTc<T::BM, T::BN, T::STAGES, T::KSPLIT>(); };
    report(problem.kernel(true) + " " + T::name(), problem.shape(), problem.check(launch),
           tolerance<typename Problem::Out>());
    if (timed) {
      double us = timeLaunch(launch);
      std::printf("    %-10s %10.1f us\n", T::name().c_str(), us);
      if (us < bestUs)
        bestUs = us, bestTile = T::name();
    }
  };
  (one(Tiles{}), ...);
  if (!timed)
    return;
  problem.launchOld();
  CHECK_LAUNCH();
  double oldUs = timeLaunch([&] { problem.launchOld(); });
  double floorUs = floorMicros(problem.bytes(), problem.flops());
  std::printf("    old        %10.1f us   floor %.1f us\n", oldUs, floorUs);
  measurements().push_back(
      {problem.kernel(true), problem.shape(), bestTile, floorUs, oldUs, bestUs});
}

/// One DeepSeek-V3 projection at the benchmark's M values (fresh weights and
/// activations per M, so each M is its own random check).
template <typename TB, int N, int K> void sweepDense(const char *what) {
  std::printf("\n== %s %dx%d (%s weights)\n", what, N, K, elementName<TB>());
  for (int M : {32, 128, 1024, 4096}) {
    DenseProblem<TB, N, K, float> problem(M, K, 8);
    runTiles(problem, DenseTiles{}, true);
  }
}

// -------------------------------------------------------------- grouped

/// Expert weights [E, N, K] of TB with scales; shared by the problems of one
/// shape (and by gate/up and down, which hold the same number of bytes).
template <typename TB> struct ExpertWeights {
  std::vector<TB> b;
  std::vector<float> scales;
  DeviceBuffer<TB> db;
  DeviceBuffer<float> ds;
  ExpertWeights(size_t elements, size_t scaleCount)
      : b(randomValues<TB>(elements)),
        scales(sizeof(TB) == 1 ? randomScales(scaleCount) : std::vector<float>{}), db(elements),
        ds(scales.size()) {
    db.upload(b);
    if (!scales.empty())
      ds.upload(scales);
  }
};

template <typename TB, int N, int K, int E, typename OutT> struct GroupedProblem {
  using Out = OutT;
  static constexpr bool kFp8 = sizeof(TB) == 1;
  static constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  static constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  static constexpr size_t kScalesPerExpert = static_cast<size_t>(kBlocksN) * kBlocksK;
  const ExpertWeights<TB> &w;
  Routing routing;
  bool gather;
  int tokens;
  std::vector<bf16> a;
  DeviceBuffer<bf16> da;
  DeviceBuffer<int> drows, doffsets;
  DeviceBuffer<OutT> dc;
  std::vector<int> rows;
  std::vector<double> ref;

  GroupedProblem(const ExpertWeights<TB> &w, Routing r, int tokens, bool gather, int sampled)
      : w(w), routing(std::move(r)), gather(gather), tokens(tokens),
        a(randomValues<bf16>(static_cast<size_t>(gather ? tokens : routing.rows()) * K)),
        da(a.size()), drows(routing.rows()), doffsets(E + 1),
        dc(static_cast<size_t>(routing.rows()) * N) {
    da.upload(a);
    drows.upload(routing.rowToken);
    doffsets.upload(routing.expertOffsets);
    // Sampled rows plus the first and last row of a few experts (tile edges).
    rows = sampleRows(routing.rows(), sampled);
    for (int e = 0, added = 0; e < E && added < 4; ++e) {
      int begin = routing.expertOffsets[e], end = routing.expertOffsets[e + 1];
      if (end - begin >= 2) {
        rows.push_back(begin), rows.push_back(end - 1), ++added;
      }
    }
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    ref.resize(rows.size() * N);
    for (size_t i = 0; i < rows.size(); ++i) {
      int r = rows[i], e = routing.expertOf(r), source = gather ? routing.rowToken[r] : r;
      referenceRow(&a[static_cast<size_t>(source) * K], &w.b[static_cast<size_t>(e) * N * K],
                   kFp8 ? &w.scales[e * kScalesPerExpert] : nullptr, N, K, &ref[i * N]);
    }
  }

  int R() const { return routing.rows(); }
  const int *aRows() const { return gather ? drows.ptr : nullptr; }
  std::string shape() const {
    return "E=" + std::to_string(E) + " " + std::to_string(N) + "x" + std::to_string(K) +
           " T=" + std::to_string(tokens) + " R=" + std::to_string(R()) +
           " used=" + std::to_string(routing.used()) + (gather ? " gather" : "") + " " +
           elementName<OutT>() + " out";
  }
  std::string kernel(bool tensorCores) const {
    return std::string(tensorCores ? "tc_" : "") +
           (kFp8 ? "w8a16_grouped_gemm" : "bf16_grouped_gemm");
  }
  double bytes() const {
    return routing.used() *
               (static_cast<double>(N) * K * sizeof(TB) + kScalesPerExpert * 4.0 * kFp8) +
           2.0 * (gather ? tokens : R()) * K + static_cast<double>(R()) * N * sizeof(OutT);
  }
  double flops() const { return 2.0 * R() * N * K; }
  /// Routed rows per used expert: what a row tile sees.
  int rowsPerTile() const { return std::max(1, R() / std::max(1, routing.used())); }

  template <int BM, int BN, int STAGES, int KSPLIT> void launchTc() {
    static_assert(KSPLIT == 1, "grouped tiles have one K group");
    dim3 grid(dsv3k::ceilDiv(N, BN), dsv3k::ceilDiv(R(), BM) + E);
    constexpr int threads = dsv3k::tc_detail::tileThreads(BM, BN);
    constexpr int shared = dsv3k::tc_detail::tileSharedBytes(BM, BN, STAGES, sizeof(TB));
    if constexpr (kFp8)
      launchWithShared(
          dsv3k::tc_w8a16_grouped_gemm<N, K, E, kScaleBlock, kScaleBlock, OutT, BM, BN, STAGES>,
          grid, threads, shared, da.ptr, aRows(), w.db.ptr, w.ds.ptr, doffsets.ptr, dc.ptr, R());
    else
      launchWithShared(dsv3k::tc_bf16_grouped_gemm<N, K, E, OutT, BM, BN, STAGES>, grid, threads,
                       shared, da.ptr, aRows(), w.db.ptr, doffsets.ptr, dc.ptr, R());
  }
  void launchOld() {
    dim3 grid(dsv3k::ceilDiv(N, 64), dsv3k::ceilDiv(R(), 64) + E);
    if constexpr (kFp8)
      dsv3k::w8a16_grouped_gemm<N, K, E, kScaleBlock, kScaleBlock, OutT>
          <<<grid, 256>>>(da.ptr, aRows(), w.db.ptr, w.ds.ptr, doffsets.ptr, dc.ptr, R());
    else
      dsv3k::bf16_grouped_gemm<N, K, E, OutT>
          <<<grid, 256>>>(da.ptr, aRows(), w.db.ptr, doffsets.ptr, dc.ptr, R());
  }
  double check(const std::function<void()> &launch) {
    dc.poison();
    launch();
    CHECK_LAUNCH();
    return sampledError(dc.download(), N, rows, ref);
  }
};

/// DeepSeek-V3's routed experts (256, top-8) for 32, 128, 1024 and 4096
/// tokens: gate/up gathers token rows, down reads routed rows.
template <typename TB> void sweepExperts() {
  constexpr int E = 256, kWidth = 2048, kHidden = 7168;
  std::printf("\n== routed experts, %s weights\n", elementName<TB>());
  ExpertWeights<TB> weights(static_cast<size_t>(E) * kWidth * kHidden, static_cast<size_t>(E) *
                                                                           (kWidth / kScaleBlock) *
                                                                           (kHidden / kScaleBlock));
  for (int T : {32, 128, 1024, 4096}) {
    {
      GroupedProblem<TB, kWidth, kHidden, E, float> gateUp(weights, routeTokens(T, 8, E, allExperts(E)),
                                                           T, true, 8);
      runTiles(gateUp, GroupedTiles{}, true);
    }
    GroupedProblem<TB, kHidden, kWidth, E, float> down(weights, routeTokens(T, 8, E, allExperts(E)), T,
                                                       false, 8);
    runTiles(down, GroupedTiles{}, true);
  }
}

// ------------------------------------------------------- conversion check

__global__ void convertCodes(unsigned *out) {
  const unsigned i = threadIdx.x; // codes 4i .. 4i + 3
  const unsigned word = (4 * i) | (4 * i + 1) << 8 | (4 * i + 2) << 16 | (4 * i + 3) << 24;
  dsv3k::tc_detail::e4m3x4ToBf16x2(word, out[2 * i], out[2 * i + 1]);
}

/// Every finite e4m3 code must become the bf16 of exactly its value.
void checkConversion() {
  DeviceBuffer<unsigned> out(128);
  out.poison();
  convertCodes<<<1, 64>>>(out.ptr);
  CHECK_LAUNCH();
  std::vector<unsigned> pairs = out.download();
  int wrong = 0;
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F)
      continue; // NaN
    uint16_t got = static_cast<uint16_t>(pairs[code / 2] >> (16 * (code % 2)));
    bf16 expected = __float2bfloat16(static_cast<float>(fp8Values()[code]));
    uint16_t want;
    std::memcpy(&want, &expected, 2);
    if (static_cast<double>(__bfloat162float(expected)) != fp8Values()[code] || got != want)
      ++wrong;
  }
  report("e4m3x4ToBf16x2", "all 254 finite codes, wrong count", wrong, 0);
}

// ------------------------------------------------------ odd shapes, all tiles

void oddShapes() {
  for (int M : {5, 33, 130}) {
    DenseProblem<fp8, 576, 7168, float> kvA(M, 7168, 24);
    runTiles(kvA, DenseTiles{}, false);
  }
  {
    DenseProblem<fp8, 80, 208, float> strided(71, 216, 71);
    runTiles(strided, DenseTiles{}, false);
    DenseProblem<fp8, 80, 208, bf16> stridedBf16Out(37, 224, 37);
    runTiles(stridedBf16Out, DenseTiles{}, false);
    DenseProblem<fp8, 192, 1024, bf16> bf16Out(200, 1024, 200);
    runTiles(bf16Out, DenseTiles{}, false);
  }
  {
    DenseProblem<bf16, 256, 7168, float> router(33, 7168, 33);
    runTiles(router, DenseTiles{}, false);
    DenseProblem<bf16, 80, 200, float> strided(130, 208, 130);
    runTiles(strided, DenseTiles{}, false);
    DenseProblem<bf16, 96, 512, bf16> bf16Out(67, 576, 67); // c_kv inside kv_a rows
    runTiles(bf16Out, DenseTiles{}, false);
  }
  // Grouped, 16 experts: 200 tokens top-2 of 3 experts (about 133 rows each,
  // several row tiles per expert, 13 empty experts), gathered; 5 tokens top-2
  // of 6 experts in routed order with odd N and K.
  {
    ExpertWeights<fp8> w(16 * 192 * 128, 16 * 2 * 1);
    GroupedProblem<fp8, 192, 128, 16, float> many(w, routeTokens(200, 2, 16, {2, 3, 11}), 200, true,
                                                  400);
    runTiles(many, GroupedTiles{}, false);
    ExpertWeights<fp8> odd(16 * 80 * 208, 16 * 1 * 2);
    GroupedProblem<fp8, 80, 208, 16, bf16> few(odd, routeTokens(5, 2, 16, {0, 4, 5, 9, 14, 15}), 5,
                                               false, 10);
    runTiles(few, GroupedTiles{}, false);
  }
  {
    ExpertWeights<bf16> w(16 * 192 * 128, 0);
    GroupedProblem<bf16, 192, 128, 16, float> many(w, routeTokens(200, 2, 16, {2, 3, 11}), 200,
                                                   true, 400);
    runTiles(many, GroupedTiles{}, false);
    ExpertWeights<bf16> odd(16 * 80 * 208, 0);
    GroupedProblem<bf16, 80, 208, 16, bf16> few(odd, routeTokens(5, 2, 16, {0, 4, 5, 9, 14, 15}), 5,
                                                true, 10);
    runTiles(few, GroupedTiles{}, false);
  }
}

} // namespace

int main() {
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  ceilings.copyBytesPerSecond = copyBandwidthBytesPerSecond();
  measureBf16Peak();
  std::printf("device %s, %d SMs, L2 %d MB; copy %.2f TB/s (read + write), BF16 peak %.0f "
              "TFLOP/s (%s)\n",
              prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20,
              ceilings.copyBytesPerSecond / 1e12, ceilings.bf16FlopsPerSecond / 1e12,
              ceilings.gemmNote.c_str());

  checkConversion();
  oddShapes();

  // DeepSeek-V3's projections with bf16 activations (FP8 checkpoints), the
  // BF16 head and router, and BF16 checkpoints' projections (W2).
  sweepDense<fp8, 1536, 7168>("q_a_proj");
  sweepDense<fp8, 576, 7168>("kv_a_proj_with_mqa");
  sweepDense<fp8, 24576, 1536>("q_b_proj");
  sweepDense<fp8, 7168, 16384>("o_proj");
  sweepDense<fp8, 18432, 7168>("dense gate_proj / up_proj");
  sweepDense<fp8, 7168, 18432>("dense down_proj");
  sweepDense<fp8, 2048, 7168>("shared expert gate_proj / up_proj");
  sweepDense<fp8, 7168, 2048>("shared expert down_proj");
  sweepDense<bf16, 129280, 7168>("lm_head");
  sweepDense<bf16, 256, 7168>("router");
  sweepDense<bf16, 1536, 7168>("q_a_proj");
  sweepDense<bf16, 7168, 16384>("o_proj");
  sweepDense<bf16, 18432, 7168>("dense gate_proj / up_proj");
  sweepExperts<fp8>();
  sweepExperts<bf16>();

  int status = finish("tc_gemm_test");
  std::printf("\n== tc_gemm_test timings: median, cold L2; floor = max(bytes / %.2f TB/s, FLOPs / "
              "%.0f TFLOP/s); best of the timed tiles\n",
              ceilings.copyBytesPerSecond / 1e12, ceilings.bf16FlopsPerSecond / 1e12);
  std::printf("%-24s %-52s %10s %10s %10s %-8s %7s %8s\n", "kernel", "shape", "floor us", "old us",
              "tc us", "tile", "xfloor", "speedup");
  for (const Measured &m : measurements())
    std::printf("%-24s %-52s %10.1f %10.1f %10.1f %-8s %7.2f %8.1f\n", m.kernel.c_str(),
                m.shape.c_str(), m.floorUs, m.oldUs, m.bestUs, m.bestTile.c_str(),
                m.bestUs / m.floorUs, m.oldUs / m.bestUs);
  return status;
}
