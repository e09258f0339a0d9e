// GPU test and benchmark of fp8_mma_skinny.cuh (fp8_mma_skinny_gemm,
// fp8_mma_grouped_skinny_gemm): FP8 x FP8 products over a few rows on
// tensor cores; sm_89 and later.
//
// Correctness: against a float64 CPU reference on fresh random inputs (every
// finite e4m3 code; block scales 2^U(-4,4) * 1e-3, different per block), at
// every DeepSeek-V3 FP8 projection shape a decode step runs (576-row kv_a
// included), M = 1, 4, 8 and 13 (two passes), float and bf16 outputs; odd
// shapes with partial tiles, partial blocks and partial scale blocks (N = 90,
// K = 320); grouped products with gathered and routed-order rows, one row
// per expert and experts with more than 8 rows (several grid rows of one
// expert). Every output element is compared (the rows are few); outputs are
// poisoned (NaN) first, and a guard after C must stay poisoned.
//
// Tolerances as fp8_wgmma_test's (relative Frobenius error): Hopper's FP8
// MMA keeps about 14 bits in its accumulator; the kernels promote to fp32
// after every 32 products, so float outputs must be within 5e-4 (a layout or
// scale-index error gives O(1)), bf16 outputs within 4e-3 (rounding alone
// gives ~1.1e-3).
//
// Benchmark: each decode shape at one row from a flushed L2 (median of 21
// after 2 warm-ups, CUDA events), for every KSPLIT, beside skinny_gemm.cuh's
// fp8_skinny_gemm with the SPLIT and COLS dsv3c gave it before; the floor is
// the weight bytes at the device's measured copy bandwidth. The table comes
// last.
#include "harness.h"
#include "gemm_data.h"
#include "grouped_data.h"
#include "routing.h"

#include "targets/cuda/kernels/fp8_mma_skinny.cuh"
#include "targets/cuda/kernels/skinny_gemm.cuh"

#include <algorithm>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

using namespace gpu_test;
using dsv3k::bf16;
using dsv3k::fp8;

namespace {

constexpr int kGuard = 4096; ///< poisoned elements after C that must stay so

template <typename OutT> double tolerance() {
  return std::is_same<OutT, float>::value ? 5e-4 : 4e-3;
}
template <typename OutT> const char *outName() {
  return std::is_same<OutT, float>::value ? "f32" : "bf16";
}
inline float hostFloat(float v) { return v; }
inline float hostFloat(bf16 v) { return __bfloat162float(v); }

/// Compares C (rows x N, followed by kGuard guard elements) with ref.
template <typename OutT>
void compare(const std::string &kernel, const std::string &shape, const std::vector<OutT> &c,
             size_t elements, const std::vector<double> &ref) {
  for (size_t i = elements; i < c.size(); ++i)
    if (!std::isnan(hostFloat(c[i]))) {
      report(kernel, shape + " (wrote past C)", INFINITY, tolerance<OutT>());
      return;
    }
  std::vector<float> out(elements);
  for (size_t i = 0; i < elements; ++i)
    out[i] = hostFloat(c[i]);
  report(kernel, shape, relativeError(out, ref), tolerance<OutT>());
}

struct Timing {
  std::string kernel, shape;
  double microseconds, weightBytes;
};
std::vector<Timing> &timings() {
  static std::vector<Timing> all;
  return all;
}
void time(const std::string &kernel, const std::string &shape, double weightBytes,
          const std::function<void()> &launch) {
  double us = medianMicros(launch, {/*warmups=*/2, /*runs=*/21, flushL2});
  timings().push_back({kernel, shape, us, weightBytes});
}

/// The read rate a kernel that only streams bytes reaches in this harness:
/// 8 independent 16-byte loads per thread in flight, folded by XOR, one word
/// per thread written (so that nothing is optimized away).
__global__ void streamBytes(const uint4 *bytes, long long chunks, unsigned *sink) {
  unsigned folded = 0;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < chunks; i += 8 * stride) {
    uint4 v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u)
      v[u] = i + u * stride < chunks ? dsv3k::skinny_detail::loadStreaming(bytes + i + u * stride)
                                     : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < 8; ++u)
      folded ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  sink[blockIdx.x * blockDim.x + threadIdx.x] = folded;
}

/// Times streamBytes over `bytes` bytes at `device` (a weight of that size).
void timeStream(const std::string &shape, const void *device, size_t bytes) {
  int sms = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int blocks = 4 * sms;
  DeviceBuffer<unsigned> sink(static_cast<size_t>(blocks) * 256);
  auto launch = [&] {
    streamBytes<<<blocks, 256>>>(static_cast<const uint4 *>(device),
                                 static_cast<long long>(bytes / 16), sink.ptr);
  };
  launch();
  CHECK_LAUNCH();
  time("read-only stream", shape, static_cast<double>(bytes), launch);
}

std::string denseShape(int N, int K, int M) {
  return std::to_string(N) + "x" + std::to_string(K) + " M=" + std::to_string(M);
}

/// Dense operands for M rows, their reference, and the launches to compare.
template <int N, int K> struct DenseCase {
  static constexpr int kBlocksN = dsv3k::ceilDiv(N, kScaleBlock);
  static constexpr int kBlocksK = dsv3k::ceilDiv(K, kScaleBlock);
  int M;
  std::vector<fp8> a, b;
  std::vector<float> aScales, bScales;
  DeviceBuffer<fp8> da, db;
  DeviceBuffer<float> das, dbs;
  std::vector<double> ref;

  explicit DenseCase(int rows)
      : M(rows), a(randomFp8(static_cast<size_t>(rows) * K)),
        b(randomFp8(static_cast<size_t>(N) * K)),
        aScales(randomScales(static_cast<size_t>(rows) * kBlocksK)),
        bScales(randomScales(static_cast<size_t>(kBlocksN) * kBlocksK)), da(a.size()),
        db(b.size()), das(aScales.size()), dbs(bScales.size()),
        ref(static_cast<size_t>(rows) * N) {
    da.upload(a);
    db.upload(b);
    das.upload(aScales);
    dbs.upload(bScales);
    for (int m = 0; m < M; ++m)
      referenceScaledRow(&a[static_cast<size_t>(m) * K], &aScales[m * kBlocksK], b.data(),
                         bScales.data(), N, K, &ref[static_cast<size_t>(m) * N]);
  }
};

/// fp8_mma_skinny_gemm<N, K, 128, 128, KSPLIT, OutT> on `data`; timed at M = 1.
template <int N, int K, int KSPLIT, typename OutT> void checkDense(DenseCase<N, K> &data) {
  DeviceBuffer<OutT> dc(static_cast<size_t>(data.M) * N + kGuard);
  dc.poison();
  auto launch = [&] {
    dsv3k::fp8_mma_skinny_gemm<N, K, kScaleBlock, kScaleBlock, KSPLIT, OutT>
        <<<dsv3k::ceilDiv(N, dsv3k::mma_skinny_detail::blockRows<KSPLIT>()), 256>>>(
            data.da.ptr, data.das.ptr, data.db.ptr, data.dbs.ptr, dc.ptr, data.M);
  };
  launch();
  CHECK_LAUNCH();
  std::string name = std::string("fp8_mma_skinny_gemm ") + outName<OutT>();
  std::string shape = denseShape(N, K, data.M) + " ksplit=" + std::to_string(KSPLIT);
  compare(name, shape, dc.download(), data.ref.size(), data.ref);
  if (data.M == 1)
    time(name, shape, 1.0 * N * K, launch);
}

/// fp8_mma_skinny_gemm_pair<N0, N1, K, 128, 128, KSPLIT, OutT> on the inputs
/// of `first` (its A, B0) and `second`'s B as B1 (both built with the same
/// M; second's A is unused), each output checked; timed at M = 1 beside the
/// two single launches.
template <int N0, int N1, int K, int KSPLIT, typename OutT>
void checkDensePair(DenseCase<N0, K> &first, DenseCase<N1, K> &second) {
  const int M = first.M;
  DeviceBuffer<OutT> dc0(static_cast<size_t>(M) * N0 + kGuard), dc1(static_cast<size_t>(M) * N1 + kGuard);
  dc0.poison();
  dc1.poison();
  constexpr int kTiles = dsv3k::ceilDiv(N0, 16) + dsv3k::ceilDiv(N1, 16);
  auto launch = [&] {
    dsv3k::fp8_mma_skinny_gemm_pair<N0, N1, K, kScaleBlock, kScaleBlock, KSPLIT, OutT>
        <<<dsv3k::ceilDiv(kTiles, 8 / KSPLIT), 256>>>(first.da.ptr, first.das.ptr, first.db.ptr,
                                                      first.dbs.ptr, dc0.ptr, second.db.ptr,
                                                      second.dbs.ptr, dc1.ptr, M);
  };
  launch();
  CHECK_LAUNCH();
  // B1's reference with first's activations.
  std::vector<double> ref1(static_cast<size_t>(M) * N1);
  constexpr int kBlocksK = dsv3k::ceilDiv(K, kScaleBlock);
  for (int m = 0; m < M; ++m)
    referenceScaledRow(&first.a[static_cast<size_t>(m) * K], &first.aScales[m * kBlocksK],
                       second.b.data(), second.bScales.data(), N1, K,
                       &ref1[static_cast<size_t>(m) * N1]);
  std::string name = std::string("fp8_mma_skinny_gemm_pair ") + outName<OutT>();
  std::string shape = std::to_string(N0) + "+" + std::to_string(N1) + "x" + std::to_string(K) +
                      " M=" + std::to_string(M) + " ksplit=" + std::to_string(KSPLIT);
  compare(name, shape + " first", dc0.download(), first.ref.size(), first.ref);
  compare(name, shape + " second", dc1.download(), ref1.size(), ref1);
  if (M == 1)
    time(name, shape, 1.0 * (N0 + N1) * K, launch);
}

/// skinny_gemm.cuh's fp8_skinny_gemm with dsv3c's former SPLIT and COLS,
/// timed beside the tensor-core kernel (checked by gemm_test).
template <int N, int K, int SPLIT, int COLS, typename OutT> void timeCudaCores(DenseCase<N, K> &data) {
  DeviceBuffer<OutT> dc(static_cast<size_t>(data.M) * N);
  auto launch = [&] {
    dsv3k::fp8_skinny_gemm<N, K, kScaleBlock, kScaleBlock, SPLIT, COLS, OutT>
        <<<dsv3k::ceilDiv(N, 8 / SPLIT * COLS), 256>>>(data.da.ptr, data.das.ptr, data.db.ptr,
                                                       data.dbs.ptr, dc.ptr, data.M);
  };
  launch();
  CHECK_LAUNCH();
  time(std::string("fp8_skinny_gemm ") + outName<OutT>(),
       denseShape(N, K, data.M) + " split=" + std::to_string(SPLIT) +
           " cols=" + std::to_string(COLS),
       1.0 * N * K, launch);
}

/// One decode shape: every KSPLIT at M = 1, 4, 8 (M = 1 timed), and the CUDA-core
/// kernel at M = 1.
template <int N, int K, int SPLIT, int COLS, typename OutT> void decodeShape() {
  for (int M : {1, 4, 8}) {
    DenseCase<N, K> data(M);
    checkDense<N, K, 1, OutT>(data);
    checkDense<N, K, 2, OutT>(data);
    checkDense<N, K, 4, OutT>(data);
    checkDense<N, K, 8, OutT>(data);
    if (M == 1) {
      timeCudaCores<N, K, SPLIT, COLS, OutT>(data);
      timeStream(denseShape(N, K, M), data.db.ptr, data.b.size());
    }
  }
}

/// fp8_mma_grouped_skinny_gemm over T tokens routed topK of E experts among
/// `candidates`, gathered (gate/up) or in routed order (down), every output
/// row checked; timed when asked. PAIR: fp8_mma_grouped_skinny_gemm_pair with
/// B1 = B0 reversed by expert (expert e's B1 is expert E - 1 - e's B0), each
/// output checked.
template <int N, int K, int E, int KSPLIT, typename OutT, bool PAIR = false>
void checkGrouped(int T, int topK, const std::vector<int> &candidates, bool gather,
                  bool timed = false) {
  using Data = GroupedData<N, K, E>;
  Data data(T, topK, candidates, gather);
  const int R = data.R();
  DeviceBuffer<OutT> dc(static_cast<size_t>(R) * N + kGuard), dc1(PAIR ? dc.n : 0);
  dc.poison();
  std::vector<fp8> b1;
  std::vector<float> b1Scales;
  if (PAIR) {
    const size_t weight = static_cast<size_t>(N) * K;
    const size_t scales = static_cast<size_t>(Data::kBlocksN) * Data::kBlocksK;
    for (int e = E - 1; e >= 0; --e) {
      b1.insert(b1.end(), data.b.begin() + e * weight, data.b.begin() + (e + 1) * weight);
      b1Scales.insert(b1Scales.end(), data.bScales.begin() + e * scales,
                      data.bScales.begin() + (e + 1) * scales);
    }
  }
  DeviceBuffer<fp8> db1(b1.size());
  DeviceBuffer<float> dbs1(b1Scales.size());
  if (PAIR) {
    db1.upload(b1);
    dbs1.upload(b1Scales);
    dc1.poison();
  }
  auto launch = [&] {
    if (PAIR)
      dsv3k::fp8_mma_grouped_skinny_gemm_pair<N, N, K, E, kScaleBlock, kScaleBlock, KSPLIT, OutT>
          <<<dim3(dsv3k::ceilDiv(2 * dsv3k::ceilDiv(N, 16), 8 / KSPLIT), R), 256>>>(
              data.da.ptr, data.das.ptr, data.aRows(), data.db.ptr, data.dbs.ptr, db1.ptr,
              dbs1.ptr, data.doffsets.ptr, dc.ptr, dc1.ptr, R);
    else
      dsv3k::fp8_mma_grouped_skinny_gemm<N, K, E, kScaleBlock, kScaleBlock, KSPLIT, OutT>
          <<<dim3(dsv3k::ceilDiv(N, dsv3k::mma_skinny_detail::blockRows<KSPLIT>()), R), 256>>>(
              data.da.ptr, data.das.ptr, data.aRows(), data.db.ptr, data.dbs.ptr,
              data.doffsets.ptr, dc.ptr, R);
  };
  launch();
  CHECK_LAUNCH();
  std::vector<int> rows(R);
  for (int r = 0; r < R; ++r)
    rows[r] = r;
  int mostRows = 0;
  for (int e = 0; e < E; ++e)
    mostRows = std::max(mostRows, data.routing.expertOffsets[e + 1] - data.routing.expertOffsets[e]);
  std::string name = std::string(PAIR ? "fp8_mma_grouped_skinny_gemm_pair "
                                      : "fp8_mma_grouped_skinny_gemm ") +
                     outName<OutT>();
  std::string shape = data.shape() + " most=" + std::to_string(mostRows) +
                      " ksplit=" + std::to_string(KSPLIT);
  std::vector<double> ref = data.reference(rows);
  compare(name, shape, dc.download(), ref.size(), ref);
  if (PAIR) {
    std::vector<double> ref1 = data.reference(rows, [](int e) { return E - 1 - e; });
    compare(name, shape + " second", dc1.download(), ref1.size(), ref1);
  }
  if (timed) {
    time(name, shape, (PAIR ? 2.0 : 1.0) * data.routing.used() * N * K, launch);
    if (KSPLIT == 1)
      timeStream(shape, data.db.ptr, static_cast<size_t>(data.routing.used()) * N * K);
  }
}

/// The CUDA-core grouped kernel with dsv3c's former choice, timed at one token.
template <int N, int K, int E, int SPLIT, int COLS> void timeGroupedCudaCores(bool gather) {
  constexpr int kBlocksN = dsv3k::ceilDiv(N, kScaleBlock);
  constexpr int kBlocksK = dsv3k::ceilDiv(K, kScaleBlock);
  Routing routing = routeTokens(1, 8, E, allExperts(E));
  const int R = routing.rows();
  std::vector<fp8> b = randomFp8(static_cast<size_t>(E) * N * K);
  DeviceBuffer<fp8> da(static_cast<size_t>(R) * K), db(b.size());
  DeviceBuffer<float> das(static_cast<size_t>(R) * kBlocksK),
      dbs(static_cast<size_t>(E) * kBlocksN * kBlocksK);
  DeviceBuffer<int> drows(R), doffsets(E + 1);
  DeviceBuffer<float> dc(static_cast<size_t>(R) * N);
  da.upload(randomFp8(da.n));
  db.upload(b);
  das.upload(randomScales(das.n));
  dbs.upload(randomScales(dbs.n));
  drows.upload(std::vector<int>(R, 0));
  doffsets.upload(routing.expertOffsets);
  auto launch = [&] {
    dsv3k::fp8_grouped_skinny_gemm<N, K, E, kScaleBlock, kScaleBlock, SPLIT, COLS, float>
        <<<dim3(dsv3k::ceilDiv(N, 8 / SPLIT * COLS), R), 256>>>(
            da.ptr, das.ptr, gather ? drows.ptr : nullptr, db.ptr, dbs.ptr, doffsets.ptr,
            dc.ptr, R);
  };
  launch();
  CHECK_LAUNCH();
  time("fp8_grouped_skinny_gemm f32",
       "E=" + std::to_string(E) + " " + std::to_string(N) + "x" + std::to_string(K) +
           " R=8 split=" + std::to_string(SPLIT) + " cols=" + std::to_string(COLS),
       8.0 * N * K, launch);
}

} // namespace

int main() {
  // DeepSeek-V3's decode projections (the CUDA-core kernel with the SPLIT
  // and COLS dsv3c chose for it).
  decodeShape<1536, 7168, 2, 1, float>();   // q_a
  decodeShape<24576, 1536, 1, 2, float>();  // q_b
  decodeShape<576, 7168, 2, 1, float>();    // kv_a (partial scale row: 576 = 4.5 x 128)
  decodeShape<7168, 16384, 4, 2, float>();  // o_proj
  decodeShape<18432, 7168, 2, 2, float>();  // dense gate / up
  decodeShape<7168, 18432, 4, 2, float>();  // dense down
  decodeShape<2048, 7168, 2, 1, float>();   // shared expert gate / up
  decodeShape<7168, 2048, 1, 2, float>();   // shared expert down
  decodeShape<7168, 2048, 1, 2, bf16>();    // shared expert down, bf16 out
  // Two passes of rows; partial tiles, blocks and scale blocks.
  {
    DenseCase<576, 7168> data(13);
    checkDense<576, 7168, 4, float>(data);
    DenseCase<90, 320> odd(13);
    checkDense<90, 320, 1, float>(odd);
    checkDense<90, 320, 2, bf16>(odd);
    checkDense<90, 320, 8, float>(odd);
    DenseCase<90, 320> one(1);
    checkDense<90, 320, 4, float>(one);
  }
  // Pairs of products of one input: q_a with kv_a, the dense and shared
  // experts' gate with up; odd sizes with partial tiles on both sides.
  for (int M : {1, 4}) {
    DenseCase<1536, 7168> qA(M);
    DenseCase<576, 7168> kvA(M);
    checkDensePair<1536, 576, 7168, 8, float>(qA, kvA);
    checkDensePair<576, 1536, 7168, 4, float>(kvA, qA);
    DenseCase<2048, 7168> gate(M), up(M);
    checkDensePair<2048, 2048, 7168, 8, float>(gate, up);
    DenseCase<18432, 7168> denseGate(M), denseUp(M);
    checkDensePair<18432, 18432, 7168, 8, float>(denseGate, denseUp);
  }
  {
    DenseCase<90, 320> odd0(13);
    DenseCase<40, 320> odd1(13);
    checkDensePair<90, 40, 320, 2, float>(odd0, odd1);
    checkDensePair<90, 40, 320, 1, bf16>(odd0, odd1);
  }
  // Routed experts at decode: 1 and 4 tokens x top-8 of 256, gate/up
  // gathered, down in routed order; then experts with 1 to 20 rows.
  for (int T : {1, 4}) {
    checkGrouped<2048, 7168, 256, 1, float>(T, 8, allExperts(256), true, T == 1);
    checkGrouped<2048, 7168, 256, 2, float>(T, 8, allExperts(256), true, T == 1);
    checkGrouped<2048, 7168, 256, 4, float>(T, 8, allExperts(256), true, T == 1);
    checkGrouped<2048, 7168, 256, 8, float>(T, 8, allExperts(256), true, T == 1);
    checkGrouped<7168, 2048, 256, 1, float>(T, 8, allExperts(256), false, T == 1);
    checkGrouped<7168, 2048, 256, 2, float>(T, 8, allExperts(256), false, T == 1);
    checkGrouped<7168, 2048, 256, 4, float>(T, 8, allExperts(256), false, T == 1);
  }
  for (int T : {1, 4}) {
    checkGrouped<2048, 7168, 256, 8, float, true>(T, 8, allExperts(256), true, T == 1);
    checkGrouped<2048, 7168, 256, 4, float, true>(T, 8, allExperts(256), true, T == 1);
  }
  checkGrouped<90, 320, 16, 2, float, true>(30, 2, {0, 4, 5}, true);
  checkGrouped<96, 192, 16, 1, bf16, true>(5, 3, {0, 1, 2, 7, 8, 15}, false);
  timeGroupedCudaCores<2048, 7168, 256, 2, 1>(true);
  timeGroupedCudaCores<7168, 2048, 256, 1, 2>(false);
  checkGrouped<90, 320, 16, 2, float>(30, 2, {0, 4, 5}, true);
  checkGrouped<90, 320, 16, 1, bf16>(30, 2, {3, 9, 15}, false);
  checkGrouped<96, 192, 16, 8, float>(5, 3, {0, 1, 2, 7, 8, 15}, true);

  int status = finish("fp8_mma_skinny_test");
  const double copy = copyBandwidthBytesPerSecond();
  std::printf("\n== fp8_mma_skinny_test timings at one row (median of 21 from a flushed L2; "
              "floor = weight bytes at the copy ceiling %.0f GB/s, read + write)\n",
              copy / 1e9);
  std::printf("%-30s %-44s %9s %9s %7s\n", "kernel", "shape", "us", "floor us", "of copy");
  for (const Timing &t : timings()) {
    double floorUs = t.weightBytes / copy * 1e6;
    std::printf("%-30s %-44s %9.1f %9.1f %6.0f%%\n", t.kernel.c_str(), t.shape.c_str(),
                t.microseconds, floorUs, 100.0 * floorUs / t.microseconds);
  }
  return status;
}
