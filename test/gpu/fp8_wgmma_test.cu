// GPU test and benchmark of fp8_wgmma_gemm.cuh (fp8_wgmma_gemm,
// fp8_wgmma_grouped_gemm); sm_90a only. A and B reach the kernels as TMA
// tensor maps, encoded here as the runtime encodes a plan's TensorMap.
//
// Correctness: against a float64 CPU reference on fresh random inputs
// (every finite e4m3 code; block scales 2^U(-4,4) * 1e-3, different per
// block), for each tile shape, float and bf16 outputs: partial N blocks
// (N = 80, 576), partial K blocks (K = 64, 208), M from 1 to 4096 including
// one row either side of the 128- and 256-row tiles, and the grouped product
// with gathered and routed-order rows, empty experts and multi-tile experts.
// Outputs are poisoned (NaN) before each run, every element is checked to be
// finite, and a guard region after C must stay poisoned (no stray writes).
// Large products compare a sample of rows (first, last, tile edges, random).
//
// Tolerances (relative Frobenius error): Hopper's FP8 MMA keeps about 14
// bits in its internal accumulator (DeepSeek-V3 report, 3.3.2), which is why
// the kernel promotes into fp32 every 128-deep K block; a 128-term partial
// sum of random-sign products then carries ~1e-4 relative error at worst,
// so float outputs must be within 5e-4 (a layout or scale-index error gives
// O(1)); bf16 outputs within 4e-3 (rounding to bf16 alone gives ~1.1e-3).
//
// Benchmark: at M = 4096 every FP8 x FP8 GEMM shape of DeepSeek-V3 that a
// plan compiled with --activation-dtype=fp8 launches (kv_b is absorbed in
// bf16, so not among them): each tile shape of this kernel, cuBLASLt's
// block-scaled FP8 GEMM on the same data (A: 1 x 128 VEC128_32F scales,
// B: 128 x 128 BLK128x128_32F; checked to agree with ours), and cuBLASLt's
// per-tensor-scaled FP8 GEMM at 8192^3 as the device's FP8 ceiling, and the
// path a plan's Gemm step takes: quant.cuh's scales_by_block laying the
// activation scales out for cuBLASLt (checked equal to the host's layout),
// then cuBLASLt. Median of 20 timed runs after 3 warm-ups, CUDA events. The
// table comes last. FP8_WGMMA_SWEEP=1 runs only the dense products, at 256
// to 8192 rows (the tuning table of targets/cuda/CudaArch.cpp).
//
// Routed products by rows per expert (1 to 256 at 256 experts, top-8):
// fp8_wgmma_grouped_gemm, each output checked, with the floor (every byte
// once at the measured device copy bandwidth) and the weights' share of copy
// bandwidth. FP8_WGMMA_ONLY=routed runs only the grouped checks and this
// table.
#include "harness.h"
#include "gemm_data.h"
#include "grouped_data.h"
#include "routing.h"

#include "targets/cuda/kernels/fp8_wgmma_gemm.cuh"
#include "targets/cuda/kernels/quant.cuh"

#include <cublasLt.h>
#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

using namespace gpu_test;
using dsv3k::bf16;
using dsv3k::fp8;

namespace {

constexpr double kFloatTolerance = 5e-4;
constexpr double kBf16Tolerance = 4e-3;
constexpr int kSampledRows = 16;
constexpr size_t kGuardElements = 4096; // poisoned tail after every C

int multiprocessors() {
  static int count = [] {
    int device = 0, value = 0;
    CHECK_CUDA(cudaGetDevice(&device));
    CHECK_CUDA(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device));
    return value;
  }();
  return count;
}

template <typename OutT> double tolerance() {
  return std::is_same<OutT, float>::value ? kFloatTolerance : kBf16Tolerance;
}
template <typename OutT> const char *outName() {
  return std::is_same<OutT, float>::value ? "f32" : "bf16";
}



std::vector<int> sampleRows(int rows, const std::vector<int> &mustInclude) {
  std::vector<int> picked;
  if (rows <= kSampledRows) {
    for (int r = 0; r < rows; ++r)
      picked.push_back(r);
    return picked;
  }
  picked = {0, rows - 1};
  for (int edge : {127, 128, 255, 256})
    if (edge < rows)
      picked.push_back(edge);
  for (int r : mustInclude)
    if (r >= 0 && r < rows)
      picked.push_back(r);
  std::uniform_int_distribution<int> pick(0, rows - 1);
  while (picked.size() < static_cast<size_t>(kSampledRows) + mustInclude.size())
    picked.push_back(pick(rng()));
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  return picked;
}

inline float hostFloat(float v) { return v; }
inline float hostFloat(bf16 v) { return __bfloat162float(v); }

/// Output buffer of rows x N plus a poisoned guard tail.
template <typename OutT> struct Output {
  DeviceBuffer<OutT> buffer;
  size_t elements;
  Output(size_t rows, int N) : buffer(rows * N + kGuardElements), elements(rows * N) {}
  void poison() { buffer.poison(); }
};

/// Checks the whole output (finite, guard still poisoned), then the sampled
/// rows against the reference; prints the first wrong elements so that a
/// layout error shows its pattern.
template <typename OutT>
void check(const std::string &kernel, const std::string &shape, const Output<OutT> &out, int N,
           const std::vector<int> &rows, const std::vector<double> &ref) {
  std::vector<OutT> c = out.buffer.download();
  size_t nonFinite = 0, firstNonFinite = 0;
  for (size_t i = 0; i < out.elements; ++i)
    if (!std::isfinite(hostFloat(c[i])) && nonFinite++ == 0)
      firstNonFinite = i;
  size_t guardWritten = 0;
  for (size_t i = out.elements; i < c.size(); ++i) {
    uint8_t bytes[sizeof(OutT)];
    std::memcpy(bytes, &c[i], sizeof(OutT));
    for (uint8_t byte : bytes)
      guardWritten += byte != 0xFF;
  }
  if (nonFinite || guardWritten) {
    std::printf("  %zu non-finite outputs (first at row %zu col %zu), %zu guard bytes written\n",
                nonFinite, firstNonFinite / N, firstNonFinite % N, guardWritten);
    report(kernel, shape + " (unwritten or stray writes)", INFINITY, tolerance<OutT>());
    return;
  }
  std::vector<float> sampled;
  int shown = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    for (int n = 0; n < N; ++n) {
      float got = hostFloat(c[static_cast<size_t>(rows[i]) * N + n]);
      double want = ref[i * N + n];
      sampled.push_back(got);
      if (std::fabs(got - want) > 0.05 * std::fabs(want) + 1e-3 && shown < 4) {
        std::printf("  row %d col %d: got %.6g want %.6g\n", rows[i], n, got, want);
        ++shown;
      }
    }
  report(kernel, shape, relativeError(sampled, ref), tolerance<OutT>());
}

template <int TILE_M, int TILE_N> int sharedBytes() {
  return dsv3k::wgmma_detail::TileShape<TILE_M, TILE_N>::kSharedBytes;
}

/// A TMA tensor map over a dense row-major e4m3 tensor (dims innermost
/// first) in the 128-byte swizzle, as the runtime encodes a plan's
/// TensorMap argument; cached per (address, dims, box) so that timed
/// launches do not include the encoding.
dsv3k::TensorMap fp8Map(const void *base, std::vector<uint64_t> dims, std::vector<uint32_t> box) {
  static decltype(&cuTensorMapEncodeTiled) encode = [] {
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    CHECK_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr) {
      std::fprintf(stderr, "cuTensorMapEncodeTiled: not in this driver\n");
      std::exit(1);
    }
    return reinterpret_cast<decltype(&cuTensorMapEncodeTiled)>(fn);
  }();
  using Key = std::tuple<const void *, std::vector<uint64_t>, std::vector<uint32_t>>;
  static std::map<Key, dsv3k::TensorMap> cache;
  Key key{base, dims, box};
  auto found = cache.find(key);
  if (found != cache.end())
    return found->second;
  const int rank = static_cast<int>(dims.size());
  std::vector<uint64_t> strides(rank > 1 ? rank - 1 : 0);
  uint64_t stride = 1;
  for (int i = 0; i + 1 < rank; ++i)
    strides[i] = stride *= dims[i];
  std::vector<uint32_t> elementStrides(rank, 1);
  CUtensorMap map;
  CUresult result = encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, rank, const_cast<void *>(base),
                           dims.data(), strides.data(), box.data(), elementStrides.data(),
                           CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                           CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled failed (%d) for a rank-%d map\n",
                 static_cast<int>(result), rank);
    std::exit(1);
  }
  dsv3k::TensorMap out;
  static_assert(sizeof(out) == sizeof(map), "the kernel's TensorMap is a CUtensorMap");
  std::memcpy(&out, &map, sizeof(out));
  return cache[key] = out;
}

int gridFor(long long tiles) {
  return static_cast<int>(std::max<long long>(1, std::min<long long>(tiles, multiprocessors())));
}

template <int N, int K, int TILE_M, int TILE_N, typename OutT>
void launchDense(const fp8 *a, const float *aScales, const fp8 *b, const float *bScales, OutT *c,
                 int M) {
  auto kernel = dsv3k::fp8_wgmma_gemm<N, K, TILE_M, TILE_N, OutT>;
  static bool configured = false;
  if (!configured) {
    CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    sharedBytes<TILE_M, TILE_N>()));
    configured = true;
  }
  long long tiles = 1ll * dsv3k::ceilDiv(M, TILE_M) * dsv3k::ceilDiv(N, TILE_N);
  kernel<<<gridFor(tiles), dsv3k::wgmma_detail::kThreads, sharedBytes<TILE_M, TILE_N>()>>>(
      fp8Map(a, {K, static_cast<uint64_t>(M)}, {128, TILE_M}), aScales,
      fp8Map(b, {K, N}, {128, TILE_N}), bScales, c, M);
}

std::string tileName(int tileM, int tileN) {
  return std::to_string(tileM) + "x" + std::to_string(tileN);
}

// ------------------------------------------------------------------ dense

template <int N, int K> struct DenseData {
  static constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  static constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  int M;
  std::vector<fp8> a, b;
  std::vector<float> aScales, bScales;
  DeviceBuffer<fp8> da, db;
  DeviceBuffer<float> das, dbs;
  explicit DenseData(int rows)
      : M(rows), a(randomFp8(static_cast<size_t>(rows) * K)),
        b(randomFp8(static_cast<size_t>(N) * K)),
        aScales(randomScales(static_cast<size_t>(rows) * kBlocksK)),
        bScales(randomScales(static_cast<size_t>(kBlocksN) * kBlocksK)), da(a.size()),
        db(b.size()), das(aScales.size()), dbs(bScales.size()) {
    da.upload(a);
    db.upload(b);
    das.upload(aScales);
    dbs.upload(bScales);
  }
  std::vector<double> reference(const std::vector<int> &rows) const {
    std::vector<double> ref(rows.size() * N);
    for (size_t i = 0; i < rows.size(); ++i)
      referenceScaledRow(&a[static_cast<size_t>(rows[i]) * K], &aScales[rows[i] * kBlocksK], b.data(),
                   bScales.data(), N, K, &ref[i * N]);
    return ref;
  }
};

template <int N, int K, int TILE_M, int TILE_N, typename OutT>
void testDense(const DenseData<N, K> &data) {
  Output<OutT> out(data.M, N);
  out.poison();
  launchDense<N, K, TILE_M, TILE_N, OutT>(data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr,
                                          out.buffer.ptr, data.M);
  CHECK_LAUNCH();
  std::vector<int> rows = sampleRows(data.M, {});
  std::string name = "fp8_wgmma_gemm " + tileName(TILE_M, TILE_N) + " " + outName<OutT>();
  std::string shape =
      std::to_string(N) + "x" + std::to_string(K) + " M=" + std::to_string(data.M);
  check(name, shape, out, N, rows, data.reference(rows));
}

/// Every tile shape and both outputs on one set of inputs.
template <int N, int K> void testDenseAllTiles(int M) {
  DenseData<N, K> data(M);
  testDense<N, K, 128, 128, float>(data);
  testDense<N, K, 256, 128, float>(data);
  testDense<N, K, 128, 64, float>(data);
  testDense<N, K, 128, 128, bf16>(data);
  testDense<N, K, 256, 128, bf16>(data);
  testDense<N, K, 128, 64, bf16>(data);
}

// ---------------------------------------------------------------- grouped

/// Sampled rows plus each non-empty expert's first and last row (up to 12 experts).
template <int N, int K, int E> std::vector<int> rowsToCheck(const GroupedData<N, K, E> &data) {
  std::vector<int> edges;
  const std::vector<int> &offsets = data.routing.expertOffsets;
  for (int e = 0; e < E && edges.size() < 24; ++e)
    if (offsets[e + 1] > offsets[e]) {
      edges.push_back(offsets[e]);
      edges.push_back(offsets[e + 1] - 1);
    }
  return sampleRows(data.R(), edges);
}

template <int N, int K, int E, int TILE_M, int TILE_N, bool GATHERED, typename OutT>
void launchGroupedAs(const GroupedData<N, K, E> &data, OutT *c) {
  auto kernel = dsv3k::fp8_wgmma_grouped_gemm<N, K, E, TILE_M, TILE_N, GATHERED, OutT>;
  static bool configured = false;
  if (!configured) {
    CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    sharedBytes<TILE_M, TILE_N>()));
    configured = true;
  }
  long long tiles = (1ll * dsv3k::ceilDiv(data.R(), TILE_M) + E) * dsv3k::ceilDiv(N, TILE_N);
  kernel<<<gridFor(tiles), dsv3k::wgmma_detail::kThreads, sharedBytes<TILE_M, TILE_N>()>>>(
      data.da.ptr, fp8Map(data.da.ptr, {K, static_cast<uint64_t>(data.aRowCount)}, {128, TILE_M}),
      data.das.ptr, data.aRows(), fp8Map(data.db.ptr, {K, N, E}, {128, TILE_N, 1}), data.dbs.ptr,
      data.doffsets.ptr, c, data.R());
}

/// Gathered rows (a_rows) by cp.async, routed-order rows by TMA.
template <int N, int K, int E, int TILE_M, int TILE_N, typename OutT>
void launchGrouped(const GroupedData<N, K, E> &data, OutT *c) {
  if (data.gather)
    launchGroupedAs<N, K, E, TILE_M, TILE_N, true, OutT>(data, c);
  else
    launchGroupedAs<N, K, E, TILE_M, TILE_N, false, OutT>(data, c);
}

template <int N, int K, int E, int TILE_M, int TILE_N, typename OutT>
void testGrouped(const GroupedData<N, K, E> &data) {
  Output<OutT> out(data.R(), N);
  out.poison();
  launchGrouped<N, K, E, TILE_M, TILE_N, OutT>(data, out.buffer.ptr);
  CHECK_LAUNCH();
  std::vector<int> rows = rowsToCheck(data);
  std::string name =
      "fp8_wgmma_grouped_gemm " + tileName(TILE_M, TILE_N) + " " + outName<OutT>();
  check(name, data.shape(), out, N, rows, data.reference(rows));
}

/// FP8_WGMMA_ONLY=routed: only the grouped checks and the benchmark by rows
/// per expert (one device call need not run the rest).
bool onlyRouted() {
  const char *only = std::getenv("FP8_WGMMA_ONLY");
  return only != nullptr && std::string(only) == "routed";
}

template <int N, int K, int E>
void testGroupedAllTiles(int T, int topK, const std::vector<int> &candidates, bool gather) {
  GroupedData<N, K, E> data(T, topK, candidates, gather);
  testGrouped<N, K, E, 128, 128, float>(data);
  testGrouped<N, K, E, 128, 128, bf16>(data);
  testGrouped<N, K, E, 256, 128, bf16>(data);
  testGrouped<N, K, E, 128, 64, float>(data);
}

// --------------------------------------------------------------- cuBLASLt

#define FP8_TEST_CUBLASLT_FUNCTIONS(X)                                                             \
  X(create, cublasLtCreate)                                                                        \
  X(destroy, cublasLtDestroy)                                                                      \
  X(getVersion, cublasLtGetVersion)                                                                \
  X(descCreate, cublasLtMatmulDescCreate)                                                          \
  X(descDestroy, cublasLtMatmulDescDestroy)                                                        \
  X(descSetAttribute, cublasLtMatmulDescSetAttribute)                                              \
  X(layoutCreate, cublasLtMatrixLayoutCreate)                                                      \
  X(layoutDestroy, cublasLtMatrixLayoutDestroy)                                                    \
  X(preferenceCreate, cublasLtMatmulPreferenceCreate)                                              \
  X(preferenceDestroy, cublasLtMatmulPreferenceDestroy)                                            \
  X(preferenceSetAttribute, cublasLtMatmulPreferenceSetAttribute)                                  \
  X(algoGetHeuristic, cublasLtMatmulAlgoGetHeuristic)                                              \
  X(matmul, cublasLtMatmul)

/// libcublasLt through dlopen (the test links no CUDA library but the runtime).
struct CublasLt {
#define FP8_TEST_MEMBER(member, symbol) decltype(&symbol) member = nullptr;
  FP8_TEST_CUBLASLT_FUNCTIONS(FP8_TEST_MEMBER)
#undef FP8_TEST_MEMBER
  cublasLtHandle_t handle = nullptr;
  bool loaded = false;
  CublasLt() {
    void *library = nullptr;
    for (const char *name : {"libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.13",
                             "libcublasLt.so.12", "libcublasLt.so"})
      if ((library = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr)
        break;
    if (library == nullptr) {
      std::printf("cuBLASLt: not found (%s)\n", dlerror());
      return;
    }
#define FP8_TEST_RESOLVE(member, symbol)                                                           \
  member = reinterpret_cast<decltype(member)>(dlsym(library, #symbol));                            \
  if (member == nullptr)                                                                           \
    return;
    FP8_TEST_CUBLASLT_FUNCTIONS(FP8_TEST_RESOLVE)
#undef FP8_TEST_RESOLVE
    loaded = create(&handle) == CUBLAS_STATUS_SUCCESS;
    if (loaded)
      std::printf("cuBLASLt %zu loaded\n", getVersion());
  }
};

CublasLt &cublasLt() {
  static CublasLt lt;
  return lt;
}

#define CHECK_BLAS(expr)                                                                           \
  do {                                                                                             \
    cublasStatus_t status_ = (expr);                                                               \
    if (status_ != CUBLAS_STATUS_SUCCESS) {                                                        \
      std::printf("%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #expr,                      \
                  static_cast<int>(status_));                                                      \
      return false;                                                                                \
    }                                                                                              \
  } while (0)

/// One cuBLASLt FP8 product D[rows, cols] (row-major) = X[rows, K] * W[cols, K]^T, e4m3 in,
/// fp32 accumulation. blockScaled: W with 128 x 128 scales (wScales [cols/128][KBpad]),
/// X with 1 x 128 scales (xScales [KB][rows], rows fastest); otherwise per-tensor scales.
/// Prepares the algorithm; run() launches it.
struct CublasGemm {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t layoutW = nullptr, layoutX = nullptr, layoutD = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic = {};
  DeviceBuffer<uint8_t> workspace{64u << 20};
  DeviceBuffer<float> unitScale{1};
  const void *w = nullptr, *x = nullptr;
  void *d = nullptr;
  bool ready = false;

  bool prepare(const void *wData, const float *wScales, const void *xData, const float *xScales,
               void *dData, cudaDataType_t dType, int rows, int cols, int K, bool blockScaled) {
    CublasLt &lt = cublasLt();
    if (!lt.loaded)
      return false;
    release(); // a second try with another output type starts afresh
    w = wData, x = xData, d = dData;
    unitScale.upload({1.0f});
    CHECK_BLAS(lt.descCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
    CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transposed, sizeof transposed));
    CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &plain, sizeof plain));
    const float *aScale = blockScaled ? wScales : unitScale.ptr;
    const float *bScale = blockScaled ? xScales : unitScale.ptr;
    CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &aScale, sizeof aScale));
    CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &bScale, sizeof bScale));
    if (blockScaled) {
      const int32_t aMode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
      const int32_t bMode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
      CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &aMode, sizeof aMode));
      CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &bMode, sizeof bMode));
    } else {
      const int8_t fast = 1;
      CHECK_BLAS(lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
    }
    // Column-major views: W stored K x cols (used transposed), X stored K x rows,
    // D stored cols x rows, which is D[rows, cols] row-major.
    CHECK_BLAS(lt.layoutCreate(&layoutW, CUDA_R_8F_E4M3, K, cols, K));
    CHECK_BLAS(lt.layoutCreate(&layoutX, CUDA_R_8F_E4M3, K, rows, K));
    CHECK_BLAS(lt.layoutCreate(&layoutD, dType, cols, rows, cols));
    cublasLtMatmulPreference_t preference = nullptr;
    CHECK_BLAS(lt.preferenceCreate(&preference));
    uint64_t bytes = workspace.n;
    CHECK_BLAS(lt.preferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &bytes, sizeof bytes));
    int found = 0;
    cublasStatus_t status = lt.algoGetHeuristic(lt.handle, desc, layoutW, layoutX, layoutD,
                                                layoutD, preference, 1, &heuristic, &found);
    lt.preferenceDestroy(preference);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
      std::printf("cuBLASLt: no %s algorithm for %dx%dx%d (status %d)\n",
                  blockScaled ? "block-scaled" : "per-tensor", rows, cols, K,
                  static_cast<int>(status));
      return false;
    }
    ready = true;
    return true;
  }
  bool run() {
    CublasLt &lt = cublasLt();
    const float alpha = 1.0f, beta = 0.0f;
    CHECK_BLAS(lt.matmul(lt.handle, desc, &alpha, w, layoutW, x, layoutX, &beta, d, layoutD, d,
                         layoutD, &heuristic.algo, workspace.ptr, workspace.n, nullptr));
    return true;
  }
  void release() {
    CublasLt &lt = cublasLt();
    for (cublasLtMatrixLayout_t *layout : {&layoutW, &layoutX, &layoutD})
      if (*layout)
        lt.layoutDestroy(*layout), *layout = nullptr;
    if (desc)
      lt.descDestroy(desc), desc = nullptr;
    ready = false;
  }
  ~CublasGemm() {
    if (cublasLt().loaded)
      release();
  }
};

// -------------------------------------------------------------- benchmark

/// Median milliseconds of `launch` over 20 runs after 3 warm-ups.
double medianMs(const std::function<void()> &launch) {
  return 1e-3 * medianMicros(launch, {/*warmups=*/3, /*runs=*/20});
}

struct BenchRow {
  std::string name, shape;
  double flops;
  double oursMs[3] = {0, 0, 0}; // 128x128, 256x128, 128x64
  double cublasMs = 0;          // 0: not measured
  double libraryPathMs = 0;     // scales_by_block + cuBLASLt (a plan's Gemm step)
  double cublasAgreement = -1;  // relative difference of cuBLASLt's output from ours
};
std::vector<BenchRow> &benchRows() {
  static std::vector<BenchRow> rows;
  return rows;
}

double relativeDifference(const std::vector<float> &x, const std::vector<float> &y) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    norm += double(y[i]) * y[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : INFINITY;
}

/// One DeepSeek-V3 projection at M rows, f32 output (what the plans use).
template <int N, int K> void benchDense(const char *name, int M) {
  DenseData<N, K> data(M);
  Output<float> ours(M, N), theirs(M, N);
  BenchRow row{name, std::to_string(N) + "x" + std::to_string(K), 2.0 * M * N * K};
  auto p = [&](auto launch, int slot) {
    ours.poison();
    row.oursMs[slot] = medianMs(launch);
  };
  p([&] {
    launchDense<N, K, 128, 128, float>(data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr,
                                       ours.buffer.ptr, M);
  }, 0);
  p([&] {
    launchDense<N, K, 256, 128, float>(data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr,
                                       ours.buffer.ptr, M);
  }, 1);
  p([&] {
    launchDense<N, K, 128, 64, float>(data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr,
                                      ours.buffer.ptr, M);
  }, 2);
  // The last run (128x64) is checked against the reference as well.
  std::vector<int> rows = sampleRows(M, {});
  check("bench fp8_wgmma_gemm 128x64 f32", row.shape + " M=" + std::to_string(M), ours, N, rows,
        data.reference(rows));

  // cuBLASLt wants X's scales with rows fastest and W's K blocks padded to 4.
  constexpr int kBlocksK = DenseData<N, K>::kBlocksK, kBlocksN = DenseData<N, K>::kBlocksN;
  constexpr int kPaddedK = (kBlocksK + 3) / 4 * 4;
  std::vector<float> xScales(static_cast<size_t>(kBlocksK) * M), wScales(kBlocksN * kPaddedK, 0);
  for (int m = 0; m < M; ++m)
    for (int kb = 0; kb < kBlocksK; ++kb)
      xScales[static_cast<size_t>(kb) * M + m] = data.aScales[static_cast<size_t>(m) * kBlocksK + kb];
  for (int nb = 0; nb < kBlocksN; ++nb)
    for (int kb = 0; kb < kBlocksK; ++kb)
      wScales[nb * kPaddedK + kb] = data.bScales[nb * kBlocksK + kb];
  DeviceBuffer<float> dx(xScales.size()), dw(wScales.size());
  dw.upload(wScales);
  // X's scales as a plan lays them out for cuBLASLt (rows are whole groups
  // of 16 here, so no padded rows): they must equal the host's transpose.
  auto scalesByBlock = [&] {
    dsv3k::scales_by_block<kBlocksK, 16><<<dim3((M + 31) / 32, (kBlocksK + 31) / 32), 256>>>(
        data.das.ptr, dx.ptr, M);
  };
  if (M % 16 == 0) {
    CHECK_CUDA(cudaMemset(dx.ptr, 0xFF, dx.n * sizeof(float)));
    scalesByBlock();
    CHECK_LAUNCH();
    std::vector<float> laidOut = dx.download();
    size_t mismatches = 0;
    for (size_t i = 0; i < xScales.size(); ++i)
      mismatches += laidOut[i] != xScales[i];
    report("scales_by_block (mismatches)", row.shape + " M=" + std::to_string(M),
           static_cast<double>(mismatches), 0.0);
  } else {
    dx.upload(xScales);
  }
  // f32 output as ours; cuBLASLt may offer block scaling with bf16 output only.
  DeviceBuffer<bf16> theirsBf16(static_cast<size_t>(M) * N);
  CublasGemm gemm;
  bool bf16Out = false;
  if (!gemm.prepare(data.db.ptr, dw.ptr, data.da.ptr, dx.ptr, theirs.buffer.ptr, CUDA_R_32F, M, N,
                    K, true)) {
    bf16Out = gemm.prepare(data.db.ptr, dw.ptr, data.da.ptr, dx.ptr, theirsBf16.ptr, CUDA_R_16BF,
                           M, N, K, true);
    if (!bf16Out) {
      benchRows().push_back(row);
      return;
    }
    row.name += " (cuBLASLt bf16 out)";
  }
  theirs.poison();
  row.cublasMs = medianMs([&] {
    if (!gemm.run())
      std::exit(2);
  });
  if (M % 16 == 0)
    row.libraryPathMs = medianMs([&] {
      scalesByBlock();
      if (!gemm.run())
        std::exit(2);
    });
  std::vector<float> a = ours.buffer.download();
  a.resize(ours.elements);
  std::vector<float> b = bf16Out ? fromBf16(theirsBf16.download()) : theirs.buffer.download();
  b.resize(ours.elements);
  row.cublasAgreement = relativeDifference(b, a);
  benchRows().push_back(row);
}

template <int N, int K, int E> void benchGrouped(const char *name, int T, bool gather) {
  GroupedData<N, K, E> data(T, 8, allExperts(E), gather);
  Output<float> out(data.R(), N);
  BenchRow row{name, std::to_string(N) + "x" + std::to_string(K) + " R=" +
                         std::to_string(data.R()),
               2.0 * data.R() * N * K};
  out.poison();
  row.oursMs[0] = medianMs([&] { launchGrouped<N, K, E, 128, 128, float>(data, out.buffer.ptr); });
  out.poison();
  row.oursMs[1] = medianMs([&] { launchGrouped<N, K, E, 256, 128, float>(data, out.buffer.ptr); });
  out.poison();
  row.oursMs[2] = medianMs([&] { launchGrouped<N, K, E, 128, 64, float>(data, out.buffer.ptr); });
  std::vector<int> rows = rowsToCheck(data);
  check("bench fp8_wgmma_grouped_gemm 128x64 f32", data.shape(), out, N, rows,
        data.reference(rows));
  benchRows().push_back(row);
}

/// Device-to-device copy bandwidth (bytes read + written per second) of a
/// 2 GiB cudaMemcpy: the ceiling a weight-streaming product is held to.
double copyBandwidth() {
  constexpr size_t kBytes = size_t{2} << 30;
  DeviceBuffer<unsigned char> from(kBytes), to(kBytes);
  CHECK_CUDA(cudaMemset(from.ptr, 0x5A, kBytes));
  double us = medianMicros(
      [&] { CHECK_CUDA(cudaMemcpyAsync(to.ptr, from.ptr, kBytes, cudaMemcpyDeviceToDevice)); },
      {/*warmups=*/2, /*runs=*/10});
  return 2.0 * kBytes / (us * 1e-6);
}

/// One routed product at some rows per expert: fp8_wgmma_grouped_gemm (128
/// x 128 tiles, as plans launch it), microseconds (median of 20 after 3
/// warm-ups), its output checked.
struct SweepRow {
  std::string name;
  int rowsPerExpert, R, minRows, maxRows;
  double bytes, weightBytes;
  double flopsPerRow; // 2 N K
  double us;
};
std::vector<SweepRow> &sweepRows() {
  static std::vector<SweepRow> rows;
  return rows;
}

template <int N, int K, int E> void benchRowsPerExpert(const char *name, bool gather) {
  for (int perExpert : {1, 2, 4, 8, 32, 64, 128, 256}) {
    const int T = perExpert * E / 8;
    GroupedData<N, K, E> data(T, 8, allExperts(E), gather);
    int minRows = data.R(), maxRows = 0;
    for (int e = 0; e < E; ++e) {
      int rows = data.routing.expertOffsets[e + 1] - data.routing.expertOffsets[e];
      minRows = std::min(minRows, rows);
      maxRows = std::max(maxRows, rows);
    }
    constexpr int kBlocksK = GroupedData<N, K, E>::kBlocksK;
    constexpr int kBlocksN = GroupedData<N, K, E>::kBlocksN;
    const double weightBytes = double(E) * N * K;
    SweepRow row{name, perExpert, data.R(), minRows, maxRows,
                 weightBytes + 4.0 * E * kBlocksN * kBlocksK +
                     double(data.aRowCount) * (K + 4 * kBlocksK) + 4.0 * data.R() * N,
                 weightBytes, 2.0 * N * K, 0};
    Output<float> out(data.R(), N);
    std::vector<int> rows = rowsToCheck(data);
    std::vector<double> ref = data.reference(rows);
    std::string shape = data.shape() + " " + std::to_string(perExpert) + "/expert";
    out.poison();
    row.us = medianMicros([&] { launchGrouped<N, K, E, 128, 128, float>(data, out.buffer.ptr); },
                          {/*warmups=*/3, /*runs=*/20});
    check("bench fp8_wgmma_grouped 128x128", shape, out, N, rows, ref);
    sweepRows().push_back(row);
  }
}

/// The table of benchRowsPerExpert: floor = every byte once at copy bandwidth.
void printSweep(double copyBytesPerSecond) {
  std::printf("\n== routed FP8 GEMMs by rows per expert (E = 256, top-8), f32 out; device "
              "copy bandwidth %.0f GB/s; us = median; %%copy = weight bytes of all experts / "
              "time / copy bandwidth (over 100%% when not every expert is hit); TFLOP/s of "
              "the routed rows\n",
              copyBytesPerSecond / 1e9);
  std::printf("%-13s %6s %6s %9s %7s %8s %6s %8s\n", "GEMM", "rows/e", "R", "min-max",
              "floor", "grouped", "%copy", "TFLOP/s");
  for (const SweepRow &r : sweepRows())
    std::printf("%-13s %6d %6d %4d-%-4d %7.0f %8.0f %5.0f%% %8.0f\n", r.name.c_str(),
                r.rowsPerExpert, r.R, r.minRows, r.maxRows, 1e6 * r.bytes / copyBytesPerSecond,
                r.us, 100.0 * r.weightBytes / (r.us * 1e-6) / copyBytesPerSecond,
                r.R * r.flopsPerRow / (r.us * 1e6));
}

/// cuBLASLt's per-tensor-scaled FP8 GEMM at 8192^3, bf16 out, fast accumulation: the
/// device's FP8 ceiling as dsv3-bench measures it. FLOP/s, or 0.
double fp8Ceiling() {
  constexpr int kSize = 8192;
  DenseData<kSize, kSize> data(kSize);
  DeviceBuffer<bf16> d(static_cast<size_t>(kSize) * kSize);
  CublasGemm gemm;
  if (!gemm.prepare(data.db.ptr, nullptr, data.da.ptr, nullptr, d.ptr, CUDA_R_16BF, kSize, kSize,
                    kSize, false))
    return 0;
  double ms = medianMs([&] {
    if (!gemm.run())
      std::exit(2);
  });
  return 2.0 * kSize * kSize * kSize / (ms * 1e-3);
}

} // namespace

/// quant.cuh's scales_by_block at a row count that is no multiple of 16:
/// every scale moved to its block-major place, the padded rows' scales 1.
template <int BLOCKS> void testScalesByBlock(int rows) {
  const int padded = (rows + 15) / 16 * 16;
  std::vector<float> scales = randomScales(static_cast<size_t>(rows) * BLOCKS);
  DeviceBuffer<float> in(scales.size()), out(static_cast<size_t>(BLOCKS) * padded);
  in.upload(scales);
  CHECK_CUDA(cudaMemset(out.ptr, 0xFF, out.n * sizeof(float)));
  dsv3k::scales_by_block<BLOCKS, 16><<<dim3((rows + 31) / 32, (BLOCKS + 31) / 32), 256>>>(
      in.ptr, out.ptr, rows);
  CHECK_LAUNCH();
  std::vector<float> laidOut = out.download();
  size_t mismatches = 0;
  for (int b = 0; b < BLOCKS; ++b)
    for (int r = 0; r < padded; ++r)
      mismatches += laidOut[static_cast<size_t>(b) * padded + r] !=
                    (r < rows ? scales[static_cast<size_t>(r) * BLOCKS + b] : 1.0f);
  report("scales_by_block (mismatches)",
         std::to_string(rows) + " rows x " + std::to_string(BLOCKS) + " blocks",
         static_cast<double>(mismatches), 0.0);
}

/// FP8_WGMMA_PROFILE=1: only o_proj at M = 4096, each tile shape launched
/// twice, for a profiler (ncu) to pick up; no checks.
int profileOnly() {
  constexpr int N = 7168, K = 16384, M = 4096;
  DenseData<N, K> data(M);
  Output<float> out(M, N);
  for (int i = 0; i < 2; ++i) {
    launchDense<N, K, 128, 128, float>(data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr,
                                       out.buffer.ptr, M);
    launchDense<N, K, 256, 128, float>(data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr,
                                       out.buffer.ptr, M);
  }
  CHECK_LAUNCH();
  return 0;
}

/// The dense table's rows against cuBLASLt, best / cuBLASLt being < 1 where
/// cuBLASLt is faster.
void printDenseTable(const char *title, double ceiling) {
  std::printf("\n== %s, f32 out; TFLOP/s; FP8 per-tensor ceiling (cuBLASLt 8192^3) %.0f "
              "TFLOP/s\n",
              title, ceiling / 1e12);
  std::printf("%-24s %-20s %9s %9s %9s %9s %9s %8s %8s %8s %10s\n", "GEMM", "NxK", "128x128",
              "256x128", "128x64", "cuBLASLt", "lib path", "best/cu", "lib/cu", "best/pk",
              "cu agrees");
  for (const BenchRow &r : benchRows()) {
    double best = *std::min_element(r.oursMs, r.oursMs + 3);
    auto tf = [&](double ms) { return ms > 0 ? r.flops / (ms * 1e-3) / 1e12 : 0.0; };
    std::printf("%-24s %-20s %9.0f %9.0f %9.0f %9.0f %9.0f %7.2fx %7.2fx %7.0f%% %10.1e\n",
                r.name.c_str(), r.shape.c_str(), tf(r.oursMs[0]), tf(r.oursMs[1]),
                tf(r.oursMs[2]), tf(r.cublasMs), tf(r.libraryPathMs),
                r.cublasMs > 0 ? r.cublasMs / best : 0.0,
                r.libraryPathMs > 0 ? r.cublasMs / r.libraryPathMs : 0.0,
                ceiling > 0 ? 100.0 * tf(best) * 1e12 / ceiling : 0.0, r.cublasAgreement);
  }
}

/// FP8_WGMMA_SWEEP=1: the model's dense projections at prefill sizes, ours
/// against cuBLASLt's block-scaled GEMM (where kernel selection should switch),
/// including row counts that are no multiple of 16.
int sweepDense() {
  double ceiling = fp8Ceiling();
  for (int M : {256, 512, 1000, 1024, 2048, 4095, 4096, 8192}) {
    std::string tag = " M=" + std::to_string(M);
    benchDense<1536, 7168>(("q_a_proj" + tag).c_str(), M);
    benchDense<24576, 1536>(("q_b_proj" + tag).c_str(), M);
    benchDense<576, 7168>(("kv_a" + tag).c_str(), M);
    benchDense<32768, 512>(("kv_b" + tag).c_str(), M);
    benchDense<7168, 16384>(("o_proj" + tag).c_str(), M);
    benchDense<18432, 7168>(("dense gate/up" + tag).c_str(), M);
    benchDense<7168, 18432>(("dense down" + tag).c_str(), M);
    benchDense<2048, 7168>(("shared gate/up" + tag).c_str(), M);
    benchDense<7168, 2048>(("shared down" + tag).c_str(), M);
  }
  int status = finish("fp8_wgmma_test (dense sweep, benchmark checks)");
  printDenseTable("FP8 block-scaled dense GEMMs by rows", ceiling);
  return status;
}

int main() {
  if (const char *profile = std::getenv("FP8_WGMMA_PROFILE"); profile && *profile == '1')
    return profileOnly();
  if (const char *sweep = std::getenv("FP8_WGMMA_SWEEP"); sweep && *sweep == '1')
    return sweepDense();
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d multiprocessors, sm_%d%d\n", prop.name, prop.multiProcessorCount,
              prop.major, prop.minor);

  if (onlyRouted()) {
    testGroupedAllTiles<192, 128, 16>(200, 2, {2, 3, 11}, true);
    testGroupedAllTiles<80, 208, 16>(5, 2, {0, 4, 5, 9, 14, 15}, false);
    testGroupedAllTiles<80, 256, 16>(1, 2, {6, 7}, true);
    testGroupedAllTiles<2048, 7168, 256>(64, 8, allExperts(256), true);
    testGroupedAllTiles<7168, 2048, 256>(64, 8, allExperts(256), false);
    testGroupedAllTiles<2048, 7168, 256>(1024, 8, allExperts(256), true);
    int status = finish("fp8_wgmma_test (routed)");
    double copy = copyBandwidth();
    benchRowsPerExpert<2048, 7168, 256>("gate|up", true);
    benchRowsPerExpert<7168, 2048, 256>("down", false);
    benchRowsPerExpert<4096, 7168, 256>("gate+up fused", true);
    status |= finish("fp8_wgmma_test (routed, with benchmark checks)");
    printSweep(copy);
    return status;
  }

  testScalesByBlock<56>(4095);
  testScalesByBlock<144>(17);
  testScalesByBlock<4>(1);
  // Correctness. Odd shapes at every tile shape and output type.
  for (int M : {1, 7, 64, 127, 128, 129, 255, 256, 257, 300})
    testDenseAllTiles<80, 256>(M); // N < one tile: partial N block
  for (int M : {1, 129, 300})
    testDenseAllTiles<192, 208>(M); // partial K block (208 = 128 + 80)
  for (int M : {5, 257})
    testDenseAllTiles<256, 64>(M); // K < 128: one partial K block
  for (int M : {1, 200, 1000})
    testDenseAllTiles<576, 7168>(M); // kv_a: last N block has 64 rows
  testDenseAllTiles<1536, 7168>(4096);
  testDenseAllTiles<7168, 2048>(333);
  // Grouped: 16 experts with most empty and multi-tile experts (3 used, ~133
  // rows each); 6 of 16 with odd N and K; DeepSeek-V3's 256 experts at 64
  // tokens x top-8, gathered gate/up and routed-order down.
  testGroupedAllTiles<192, 128, 16>(200, 2, {2, 3, 11}, true);
  testGroupedAllTiles<80, 208, 16>(5, 2, {0, 4, 5, 9, 14, 15}, false);
  testGroupedAllTiles<80, 256, 16>(1, 2, {6, 7}, true);
  testGroupedAllTiles<2048, 7168, 256>(64, 8, allExperts(256), true);
  testGroupedAllTiles<7168, 2048, 256>(64, 8, allExperts(256), false);
  testGroupedAllTiles<2048, 7168, 256>(1024, 8, allExperts(256), true);
  int status = finish("fp8_wgmma_test");

  // Benchmark at M = 4096 (prefill of 4096 tokens).
  constexpr int kM = 4096;
  double ceiling = fp8Ceiling();
  benchDense<1536, 7168>("q_a_proj", kM);
  benchDense<24576, 1536>("q_b_proj", kM);
  benchDense<576, 7168>("kv_a_proj_with_mqa", kM);
  benchDense<7168, 16384>("o_proj", kM);
  benchDense<18432, 7168>("dense gate/up_proj", kM);
  benchDense<7168, 18432>("dense down_proj", kM);
  benchDense<2048, 7168>("shared expert gate/up", kM);
  benchDense<7168, 2048>("shared expert down", kM);
  benchGrouped<2048, 7168, 256>("routed experts gate/up", kM, true);
  benchGrouped<7168, 2048, 256>("routed experts down", kM, false);
  // W1's prefill of 8 x 1024 tokens: twice the routed rows per expert.
  benchGrouped<2048, 7168, 256>("routed gate/up, 8192 tok", 2 * kM, true);
  benchGrouped<7168, 2048, 256>("routed down, 8192 tok", 2 * kM, false);
  const double copy = copyBandwidth();
  benchRowsPerExpert<2048, 7168, 256>("gate|up", true);
  benchRowsPerExpert<7168, 2048, 256>("down", false);
  benchRowsPerExpert<4096, 7168, 256>("gate+up fused", true);
  status |= finish("fp8_wgmma_test (with benchmark checks)");

  printDenseTable(("FP8 block-scaled GEMM, M = " + std::to_string(kM) +
                   " (routed: " + std::to_string(kM) + " tokens x top-8 of 256 unless said)")
                      .c_str(),
                  ceiling);
  printSweep(copy);
  return status;
}
