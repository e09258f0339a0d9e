// Host-side inputs and values for the GEMM tests (gemm_test, tc_gemm_test,
// fp8_wgmma_test): random e4m3 and bf16 matrices of up to gigabytes (expert
// weights), drawn in parallel from seeds of the harness rng so every run
// draws fresh values, block scales, and the exact value of every e4m3 code.
#pragma once

#include "harness.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace gpu_test {

/// Runs fn(i) for i in [0, count) on all host cores.
inline void parallelFor(size_t count, const std::function<void(size_t)> &fn) {
  size_t workers = std::max(1u, std::thread::hardware_concurrency());
  workers = std::min(workers, std::max<size_t>(1, count));
  size_t chunk = (count + workers - 1) / workers;
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      size_t end = std::min(count, (w + 1) * chunk);
      for (size_t i = w * chunk; i < end; ++i)
        fn(i);
    });
  for (std::thread &t : threads)
    t.join();
}

inline uint64_t splitMix(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Fills `bytes` with random bits, in parallel: gigabytes of expert weights
/// would take minutes through one mt19937.
inline void fillRandomBytes(uint8_t *bytes, size_t n) {
  constexpr size_t kPieces = 256;
  std::vector<uint64_t> seeds(kPieces);
  for (uint64_t &s : seeds)
    s = rng()();
  size_t piece = (n + kPieces - 1) / kPieces;
  parallelFor(kPieces, [&](size_t p) {
    uint64_t state = seeds[p];
    size_t begin = p * piece, end = std::min(n, begin + piece);
    for (size_t i = begin; i < end; i += 8) {
      uint64_t bits = splitMix(state);
      std::memcpy(bytes + i, &bits, std::min<size_t>(8, end - i));
    }
  });
}

/// Random finite e4m3 values: every bit pattern except the two NaNs (which
/// become +-448).
inline std::vector<__nv_fp8_e4m3> randomFp8(size_t n) {
  std::vector<__nv_fp8_e4m3> v(n);
  uint8_t *bytes = reinterpret_cast<uint8_t *>(v.data());
  fillRandomBytes(bytes, n);
  parallelFor(64, [&](size_t p) {
    size_t piece = (n + 63) / 64;
    for (size_t i = p * piece; i < std::min(n, (p + 1) * piece); ++i)
      if ((bytes[i] & 0x7F) == 0x7F)
        bytes[i] ^= 0x01;
  });
  return v;
}

/// U(-1, 1) rounded to bf16.
inline std::vector<__nv_bfloat16> randomBf16(size_t n) {
  std::vector<uint16_t> bits(n);
  fillRandomBytes(reinterpret_cast<uint8_t *>(bits.data()), n * 2);
  std::vector<__nv_bfloat16> v(n);
  parallelFor(64, [&](size_t p) {
    size_t piece = (n + 63) / 64;
    for (size_t i = p * piece; i < std::min(n, (p + 1) * piece); ++i)
      v[i] = __float2bfloat16(static_cast<float>(bits[i]) / 32768.0f - 1.0f);
  });
  return v;
}

/// Block scales 2^U(-4, 4) * 1e-3: positive, different per block.
inline std::vector<float> randomScales(size_t n) {
  std::vector<float> v = randomFloats(n, -4.0f, 4.0f);
  for (float &x : v)
    x = std::exp2(x) * 1e-3f;
  return v;
}

/// The value of every e4m3 code.
inline const std::vector<double> &fp8Values() {
  static const std::vector<double> table = [] {
    std::vector<double> t(256);
    for (int code = 0; code < 256; ++code) {
      __nv_fp8_e4m3 v;
      v.__x = static_cast<__nv_fp8_storage_t>(code);
      t[code] = static_cast<float>(v);
    }
    return t;
  }();
  return table;
}

inline double value(__nv_fp8_e4m3 v) { return fp8Values()[v.__x]; }
inline double value(__nv_bfloat16 v) { return __bfloat162float(v); }

/// DeepSeek-V3's FP8 block: 128 x 128 weight scales, 1 x 128 activation scales.
inline constexpr int kScaleBlock = 128;

/// Reference row of a block-scaled product: out[n] = sum_kb (sum_{k in kb}
/// a[k] b[n, k]) * aScales[kb] * bScales[n / 128, kb], all in float64. A
/// bf16 row (weight-only scaling) has no scales: aScales is null.
template <typename TA>
inline void referenceScaledRow(const TA *a, const float *aScales, const __nv_fp8_e4m3 *b, const float *bScales,
                        int N, int K, double *out) {
  int blocksK = (K + kScaleBlock - 1) / kScaleBlock;
  std::vector<double> aRow(K);
  for (int k = 0; k < K; ++k)
    aRow[k] = value(a[k]);
  const std::vector<double> &table = fp8Values();
  parallelFor(N, [&](size_t n) {
    const __nv_fp8_e4m3 *bRow = b + n * K;
    double total = 0;
    for (int kb = 0; kb < blocksK; ++kb) {
      double partial = 0;
      for (int k = kb * kScaleBlock; k < std::min(K, (kb + 1) * kScaleBlock); ++k)
        partial += aRow[k] * table[bRow[k].__x];
      double aScale = aScales != nullptr ? aScales[kb] : 1.0;
      total += partial * aScale * bScales[(n / kScaleBlock) * blocksK + kb];
    }
    out[n] = total;
  });
}

} // namespace gpu_test
