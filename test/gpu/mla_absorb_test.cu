// GPU tests of mla_absorb.cuh: mla_q_absorb_mma, mla_out_absorb_mma and
// mla_out_absorb_stream against a float64 CPU reference, at the DeepSeek-V3
// shape (128 heads, nope 128, rope 64, v 128, kv_lora 512) for T in {1, 2,
// 7, 16, 17, 300, 1024, 8192} tokens and at a tiny shape (4 heads, 32, 16,
// 32, 64), both activation types (float, what dsv3c instantiates, and bf16).
// Every candidate tile (BM tokens x column blocks, pipeline stages) runs at
// every T, so the timing table shows where each wins: KernelTuning's
// absorb* bounds come from it (docs/kernels-mla.md).
//
// Inputs are fresh random values in [-1, 1) drawn on the device from a seed
// the host's random device picks (float inputs use all 24 mantissa bits);
// outputs are poisoned (NaN) before each launch and every output value must
// come back finite. The float64 reference covers every token up to 300 and
// 256 sampled tokens (the first and last among them) above, all heads.
//
// Tolerances (||out - ref|| / ||ref|| over the checked tokens):
//  - kOneRounding = 3e-3: one bf16 rounding of the result (a bf16 output):
//    uniform relative error of half an ulp of 8 significant bits, about
//    1.7e-3 in norm; fp32 accumulation adds < 1e-5.
//  - kFloatPair = 1e-4: float in, float out: a float activation enters the
//    tensor cores as a pair of bf16 (its rounding and the remainder), about
//    16 significant bits, so the product is fp32-like (< 1e-5) and matches
//    the fp32 stream kernel's; one bf16 rounding of the activation would be
//    1.5e-3. A dropped term (one of 128 or 512) or a wrong head or column is
//    off by 4% or more.
//
// Timings: median of 20 launches with a cold L2 (flushed before each: a
// model's weights are never there), beside the floor max(bytes / 3.0 TB/s,
// FLOPs / 660 TFLOP/s) (the H100's copy bandwidth and mma.sync bf16 peak),
// and the time a kernel that only reads one product's weights (16.8 MB)
// takes, measured the same way: what a decode step's product can approach.
#include "mla_common.h"

#include "targets/cuda/kernels/mla_absorb.cuh"

#include <cstdio>
#include <string>
#include <vector>

using namespace mla_testing;
namespace absorb = dsv3k::mla_absorb_detail;

namespace {

constexpr double kOneRounding = 3e-3;
constexpr double kFloatPair = 1e-4;
constexpr double kFloorBandwidth = 3.0e12;
constexpr double kFloorFlops = 660e12;
constexpr int kCheckedTokens = 256;

// ---- inputs and checks on the device -----------------------------------------

__device__ float uniformAt(unsigned long long seed, size_t i) {
  unsigned long long z = seed + (i + 1) * 0x9E3779B97F4A7C15ull; // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * 0x1p-23f - 1.0f; // 24 random bits in [-1, 1)
}

template <typename T> __global__ void fillUniform(T *p, size_t n, unsigned long long seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = static_cast<T>(uniformAt(seed, i));
}

template <typename T> __global__ void countNonFinite(const T *p, size_t n, unsigned long long *count) {
  unsigned long long mine = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    mine += !isfinite(static_cast<float>(p[i]));
  if (mine)
    atomicAdd(count, mine);
}

/// Reads n 16-byte words, 8 per thread all in flight (as the stream kernels
/// do), and stores nothing unless a word is all ones: the time of reading a
/// weight slice and nothing else.
__global__ void readOnly(const uint4 *p, size_t n, unsigned *sink) {
  size_t first = (blockIdx.x * static_cast<size_t>(blockDim.x)) * 8 + threadIdx.x;
  uint4 words[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    size_t index = first + i * static_cast<size_t>(blockDim.x);
    words[i] = index < n ? __ldg(p + index) : make_uint4(0, 0, 0, 0);
  }
  unsigned all = 0xFFFFFFFFu;
#pragma unroll
  for (int i = 0; i < 8; ++i)
    all &= words[i].x & words[i].y & words[i].z & words[i].w;
  if (all == 0xFFFFFFFFu)
    *sink = all;
}

template <typename T> void fillRandom(DeviceBuffer<T> &buffer) {
  fillUniform<<<1024, 256>>>(buffer.ptr, buffer.n, static_cast<unsigned long long>(rng()()));
  CHECK_LAUNCH();
}

template <typename T> double nonFinite(const DeviceBuffer<T> &buffer) {
  DeviceBuffer<unsigned long long> count(1);
  CHECK_CUDA(cudaMemset(count.ptr, 0, sizeof(unsigned long long)));
  countNonFinite<<<1024, 256>>>(buffer.ptr, buffer.n, count.ptr);
  CHECK_LAUNCH();
  return static_cast<double>(count.download()[0]);
}

/// Every token up to kCheckedTokens + 44 (300); above, the first, the last and
/// random others, ascending.
std::vector<int> checkedTokens(int T) {
  std::vector<int> tokens;
  if (T <= kCheckedTokens + 44) {
    for (int t = 0; t < T; ++t)
      tokens.push_back(t);
    return tokens;
  }
  std::vector<int> all(T);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin() + 1, all.end() - 1, rng());
  tokens.assign(all.begin(), all.begin() + kCheckedTokens - 1);
  tokens.push_back(T - 1);
  std::sort(tokens.begin(), tokens.end());
  return tokens;
}

/// The rows of `tokens` (rowElems each) of a device matrix, as floats.
template <typename T>
std::vector<float> downloadRows(const DeviceBuffer<T> &buffer, size_t rowElems,
                                const std::vector<int> &tokens) {
  std::vector<T> host(tokens.size() * rowElems);
  for (size_t i = 0; i < tokens.size(); ++i)
    CHECK_CUDA(cudaMemcpy(&host[i * rowElems], buffer.ptr + tokens[i] * rowElems,
                          rowElems * sizeof(T), cudaMemcpyDeviceToHost));
  return valuesOf(host);
}

// ---- timing table -------------------------------------------------------------

struct Timing {
  std::string product, shape, kernel;
  int T;
  double us, floorUs, flops;
};
std::vector<Timing> &timings() {
  static std::vector<Timing> all;
  return all;
}

template <typename Launch>
void timeKernel(const std::string &product, const std::string &shape, const std::string &kernel,
                int T, double bytes, double flops, Launch launch) {
  double us = medianMicros(launch, {/*warmups=*/2, /*runs=*/20, flushL2});
  double floorUs = std::max(bytes / kFloorBandwidth, flops / kFloorFlops) * 1e6;
  timings().push_back({product, shape, kernel, T, us, floorUs, flops});
}

// ---- launchers (the geometry each kernel's comment states) ----------------

template <int BM, int CB, int STAGES> std::string mmaName() {
  return "mma " + std::to_string(BM) + "x" + std::to_string(CB) + " s" + std::to_string(STAGES);
}

template <class S, typename QT, typename OutT, int BM, int CB, int STAGES> struct QMma {
  static constexpr bool kFits = absorb::mmaTileFits(BM, CB, S::KV_LORA);
  static constexpr int sharedBytes() {
    return absorb::mmaSharedBytes(BM, S::KV_LORA / CB, S::NOPE, STAGES,
                                  sizeof(QT), /*kContiguous=*/false);
  }
  static auto kernel() {
    return dsv3k::mla_q_absorb_mma<S::HEADS, S::NOPE, S::ROPE, S::V, S::KV_LORA, QT, OutT, BM, CB,
                                   STAGES>;
  }
  static std::string name() { return mmaName<BM, CB, STAGES>(); }
  static void prepare() {
    CHECK_CUDA(cudaFuncSetAttribute(kernel(), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    sharedBytes()));
  }
  static void launch(const QT *q, const bf16 *kvB, OutT *qLat, int T) {
    kernel()<<<dim3(CB, dsv3k::ceilDiv(T, BM), S::HEADS), 256, sharedBytes()>>>(q, kvB, qLat, T);
  }
};

template <class S, typename InT, int BM, int CB, int STAGES> struct OutMma {
  static constexpr bool kFits = absorb::mmaTileFits(BM, CB, S::V);
  static constexpr int sharedBytes() {
    return absorb::mmaSharedBytes(BM, S::V / CB, S::KV_LORA, STAGES,
                                  sizeof(InT), /*kContiguous=*/true);
  }
  static auto kernel() {
    return dsv3k::mla_out_absorb_mma<S::HEADS, S::NOPE, S::V, S::KV_LORA, InT, BM, CB, STAGES>;
  }
  static std::string name() { return mmaName<BM, CB, STAGES>(); }
  static void prepare() {
    CHECK_CUDA(cudaFuncSetAttribute(kernel(), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    sharedBytes()));
  }
  static void launch(const InT *outLat, const bf16 *kvB, bf16 *out, int T) {
    kernel()<<<dim3(CB, dsv3k::ceilDiv(T, BM), S::HEADS), 256, sharedBytes()>>>(outLat, kvB, out, T);
  }
};

template <class S, typename InT> struct OutStream {
  static constexpr bool kFits = true;
  static std::string name() { return "stream"; }
  static void prepare() {}
  static void launch(const InT *outLat, const bf16 *kvB, bf16 *out, int T) {
    dsv3k::mla_out_absorb_stream<S::HEADS, S::NOPE, S::V, S::KV_LORA, InT>
        <<<dim3(S::V / absorb::kStreamRows, S::HEADS, dsv3k::ceilDiv(T, 16)), 128>>>(outLat, kvB,
                                                                                  out, T);
  }
};

// ---- the two products ----------------------------------------------------------

/// Runs kernel K on the prepared operands: poison, launch, every value
/// written, error on the checked tokens, timing.
template <class K, typename In, typename Out>
void checkAndTime(const char *product, const std::string &shape, const DeviceBuffer<In> &in,
                  const DeviceBuffer<bf16> &kvB, DeviceBuffer<Out> &out, size_t outRow, int T,
                  const std::vector<int> &tokens, const std::vector<double> &ref,
                  double tolerance, double bytes, double flops) {
  if constexpr (K::kFits) {
    K::prepare();
    out.poison();
    K::launch(in.ptr, kvB.ptr, out.ptr, T);
    CHECK_LAUNCH();
    std::string label = shape + " " + K::name();
    report(std::string(product) + " written", label, nonFinite(out), 0);
    report(product, label, relativeError(downloadRows(out, outRow, tokens), ref), tolerance);
    timeKernel(product, shape, K::name(), T, bytes, flops,
               [&] { K::launch(in.ptr, kvB.ptr, out.ptr, T); });
  }
}

template <class S, typename Act> void testQAbsorb(int T) {
  constexpr int kHeadWidth = S::NOPE + S::ROPE;
  constexpr size_t kQRow = static_cast<size_t>(S::HEADS) * kHeadWidth, kLatRow = static_cast<size_t>(S::HEADS) * S::KV_LORA;
  DeviceBuffer<Act> q(T * kQRow);
  DeviceBuffer<bf16> kvB(static_cast<size_t>(S::HEADS) * (S::NOPE + S::V) * S::KV_LORA);
  DeviceBuffer<Act> qLat(T * kLatRow);
  fillRandom(q);
  fillRandom(kvB);
  std::vector<int> tokens = checkedTokens(T);
  std::vector<float> qRows = downloadRows(q, kQRow, tokens);
  std::vector<float> w = valuesOf(kvB.download());
  std::vector<double> ref(tokens.size() * kLatRow, 0.0);
  parallelFor(tokens.size() * S::HEADS, [&](size_t index) {
    size_t i = index / S::HEADS;
    int h = static_cast<int>(index % S::HEADS);
    double *row = &ref[i * kLatRow + static_cast<size_t>(h) * S::KV_LORA];
    for (int n = 0; n < S::NOPE; ++n) {
      double qn = qRows[i * kQRow + static_cast<size_t>(h) * kHeadWidth + n];
      const float *wn = &w[(static_cast<size_t>(h) * (S::NOPE + S::V) + n) * S::KV_LORA];
      for (int c = 0; c < S::KV_LORA; ++c)
        row[c] += qn * wn[c];
    }
  });
  std::string shape = shapeName<S, Act>("T=" + std::to_string(T));
  double bytes = double(T) * S::HEADS * (S::NOPE * sizeof(Act) + S::KV_LORA * sizeof(Act)) +
                 double(S::HEADS) * S::NOPE * S::KV_LORA * 2;
  double flops = 2.0 * T * S::HEADS * S::NOPE * S::KV_LORA;
  // A float q and q_lat: fp32-like (kFloatPair); a bf16 q_lat rounds the result.
  const double tolerance = sizeof(Act) == 4 ? kFloatPair : kOneRounding;
  auto check = [&](auto kernel) {
    checkAndTime<decltype(kernel)>("mla_q_absorb", shape, q, kvB, qLat, kLatRow, T, tokens, ref,
                                   tolerance, bytes, flops);
  };
  check(QMma<S, Act, Act, 16, 4, 4>{});
  check(QMma<S, Act, Act, 64, 4, 3>{});
  check(QMma<S, Act, Act, 64, 1, 3>{});
  check(QMma<S, Act, Act, 128, 1, 3>{});
}

template <class S, typename Act> void testOutAbsorb(int T) {
  constexpr size_t kLatRow = static_cast<size_t>(S::HEADS) * S::KV_LORA, kOutRow = static_cast<size_t>(S::HEADS) * S::V;
  DeviceBuffer<Act> outLat(T * kLatRow);
  DeviceBuffer<bf16> kvB(static_cast<size_t>(S::HEADS) * (S::NOPE + S::V) * S::KV_LORA);
  DeviceBuffer<bf16> out(T * kOutRow);
  fillRandom(outLat);
  fillRandom(kvB);
  std::vector<int> tokens = checkedTokens(T);
  std::vector<float> latRows = downloadRows(outLat, kLatRow, tokens);
  std::vector<float> w = valuesOf(kvB.download());
  std::vector<double> ref(tokens.size() * kOutRow);
  parallelFor(tokens.size() * S::HEADS, [&](size_t index) {
    size_t i = index / S::HEADS;
    int h = static_cast<int>(index % S::HEADS);
    const float *latent = &latRows[i * kLatRow + static_cast<size_t>(h) * S::KV_LORA];
    for (int v = 0; v < S::V; ++v) {
      const float *wv = &w[(static_cast<size_t>(h) * (S::NOPE + S::V) + S::NOPE + v) * S::KV_LORA];
      double sum = 0;
      for (int c = 0; c < S::KV_LORA; ++c)
        sum += static_cast<double>(latent[c]) * wv[c];
      ref[i * kOutRow + static_cast<size_t>(h) * S::V + v] = sum;
    }
  });
  std::string shape = shapeName<S, Act>("T=" + std::to_string(T));
  double bytes = double(T) * S::HEADS * (S::KV_LORA * sizeof(Act) + S::V * 2) +
                 double(S::HEADS) * S::V * S::KV_LORA * 2;
  double flops = 2.0 * T * S::HEADS * S::V * S::KV_LORA;
  // bf16 out: one rounding, whether the kernel is the fp32 stream or a tile
  // (a float out_lat enters the tensor cores as a bf16 pair).
  auto check = [&](auto kernel) {
    checkAndTime<decltype(kernel)>("mla_out_absorb", shape, outLat, kvB, out, kOutRow, T, tokens,
                                   ref, kOneRounding, bytes, flops);
  };
  check(OutStream<S, Act>{});
  check(OutMma<S, Act, 16, 1, 8>{});
  check(OutMma<S, Act, 16, 1, 16>{});
  check(OutMma<S, Act, 64, 4, 3>{});
  check(OutMma<S, Act, 64, 1, 3>{});
  check(OutMma<S, Act, 128, 1, 3>{});
}

template <class S, typename Act> void testShape(const std::vector<int> &tokenCounts) {
  for (int T : tokenCounts) {
    testQAbsorb<S, Act>(T);
    testOutAbsorb<S, Act>(T);
  }
}

void printTimings() {
  std::printf("\n== mla_absorb_test timings: median of 20, cold L2; floor = max(bytes / %.1f TB/s, "
              "FLOPs / %.0f TFLOP/s)\n",
              kFloorBandwidth / 1e12, kFloorFlops / 1e12);
  std::printf("%-16s %-20s %6s %-14s %10s %10s %7s %9s\n", "product", "shape", "T", "kernel", "us",
              "floor us", "xfloor", "TFLOP/s");
  for (const Timing &t : timings())
    std::printf("%-16s %-20s %6d %-14s %10.2f %10.2f %7.2f %9.1f\n", t.product.c_str(),
                t.shape.c_str(), t.T, t.kernel.c_str(), t.us, t.floorUs, t.us / t.floorUs,
                t.flops / (t.us * 1e-6) / 1e12);
}

} // namespace

int main() {
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs; copy %.2f TB/s (read + write, measured)\n", prop.name,
              prop.multiProcessorCount, copyBandwidthBytesPerSecond() / 1e12);
  {
    // What reading one product's weights (W_UK or W_UV: 16.8 MB) costs alone.
    const size_t words = static_cast<size_t>(DeepSeekV3Shape::HEADS) * DeepSeekV3Shape::V *
                         DeepSeekV3Shape::KV_LORA * 2 / 16;
    DeviceBuffer<uint4> weights(words);
    DeviceBuffer<unsigned> sink(1);
    CHECK_CUDA(cudaMemset(weights.ptr, 0, words * 16));
    unsigned blocks = static_cast<unsigned>(dsv3k::ceilDiv(static_cast<int>(words), 128 * 8));
    timeKernel("read-only", "16.8 MB", "readOnly", 0, words * 16.0, 0,
               [&] { readOnly<<<blocks, 128>>>(weights.ptr, words, sink.ptr); });
  }
  const std::vector<int> real = {1, 2, 7, 16, 17, 300, 1024, 8192};
  const std::vector<int> tiny = {1, 17, 300};
  testShape<DeepSeekV3Shape, float>(real);
  testShape<DeepSeekV3Shape, bf16>(real);
  testShape<TinyShape, float>(tiny);
  testShape<TinyShape, bf16>(tiny);
  printTimings();
  return finish("mla_absorb_test");
}
