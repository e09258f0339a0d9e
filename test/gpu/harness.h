// Host-side helpers for the GPU kernel tests (test/gpu/*_test.cu): checked CUDA
// calls, seeded random inputs, poisoned outputs, relative error against a
// float64 CPU reference, and one result table printed at the end.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#define CHECK_CUDA(expr)                                                        \
  do {                                                                          \
    cudaError_t status_ = (expr);                                               \
    if (status_ != cudaSuccess) {                                               \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,  \
                   cudaGetErrorString(status_));                                \
      std::exit(2);                                                             \
    }                                                                           \
  } while (0)

/// Checks the launch just made and waits for it, so that an error is reported
/// at the kernel that caused it.
#define CHECK_LAUNCH()                                                          \
  do {                                                                          \
    CHECK_CUDA(cudaGetLastError());                                             \
    CHECK_CUDA(cudaDeviceSynchronize());                                        \
  } while (0)

namespace gpu_test {

/// A device buffer of n elements of T, freed on destruction.
template <typename T> struct DeviceBuffer {
  T *ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    CHECK_CUDA(cudaMalloc(&ptr, std::max<size_t>(1, n) * sizeof(T)));
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  ~DeviceBuffer() { cudaFree(ptr); }
  void upload(const std::vector<T> &host) {
    CHECK_CUDA(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n);
    CHECK_CUDA(cudaMemcpy(host.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  /// Fills every byte with 0xFF: NaN for bf16, f32 and e4m3, -1 for ints, so an
  /// element the kernel never wrote shows up in the comparison.
  void poison() { CHECK_CUDA(cudaMemset(ptr, 0xFF, std::max<size_t>(1, n) * sizeof(T))); }
};

/// The device-to-device copy bandwidth, bytes read plus written per second:
/// median of 10 copies of 1 GiB after 2 warm-ups. The memory floor of a
/// kernel is its bytes over this.
inline double copyBandwidthBytesPerSecond() {
  const size_t bytes = size_t{1} << 30;
  DeviceBuffer<unsigned char> from(bytes), to(bytes);
  CHECK_CUDA(cudaMemset(from.ptr, 0x5A, bytes));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < 12; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    CHECK_CUDA(cudaMemcpyAsync(to.ptr, from.ptr, bytes, cudaMemcpyDeviceToDevice));
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float elapsed = 0;
    CHECK_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
    if (i >= 2)
      ms.push_back(elapsed);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  std::sort(ms.begin(), ms.end());
  return 2.0 * bytes / (ms[ms.size() / 2] * 1e-3);
}

inline std::mt19937_64 &rng() {
  static std::mt19937_64 engine(std::random_device{}());
  return engine;
}

inline std::vector<float> randomFloats(size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng());
  return v;
}

inline std::vector<__nv_bfloat16> toBf16(const std::vector<float> &v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = __float2bfloat16(v[i]);
  return out;
}
inline std::vector<float> fromBf16(const std::vector<__nv_bfloat16> &v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = __bfloat162float(v[i]);
  return out;
}
inline std::vector<__nv_fp8_e4m3> toFp8(const std::vector<float> &v) {
  std::vector<__nv_fp8_e4m3> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = __nv_fp8_e4m3(v[i]);
  return out;
}
inline std::vector<float> fromFp8(const std::vector<__nv_fp8_e4m3> &v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = static_cast<float>(v[i]);
  return out;
}

/// Element types the kernels are instantiated with: bf16 (the GEMM inputs and
/// the KV cache) and float (the fp32 activations). Their name in a check's
/// shape.
template <typename T> const char *typeName();
template <> inline const char *typeName<__nv_bfloat16>() { return "bf16"; }
template <> inline const char *typeName<float>() { return "f32"; }

/// v stored as T: one round-to-nearest-even to bf16, or v itself for float.
template <typename T> std::vector<T> storeAs(const std::vector<float> &v);
template <> inline std::vector<__nv_bfloat16> storeAs(const std::vector<float> &v) {
  return toBf16(v);
}
template <> inline std::vector<float> storeAs(const std::vector<float> &v) { return v; }

/// The exact float value of each stored T.
inline std::vector<float> valuesOf(const std::vector<__nv_bfloat16> &v) { return fromBf16(v); }
inline std::vector<float> valuesOf(const std::vector<float> &v) { return v; }

/// One rounding of an exact (float64) value to T, as the kernels round an
/// fp32 result they store: to bf16, or to fp32 for float.
template <typename T> double roundTo(double v);
template <> inline double roundTo<__nv_bfloat16>(double v) {
  return __bfloat162float(__float2bfloat16(static_cast<float>(v)));
}
template <> inline double roundTo<float>(double v) { return static_cast<float>(v); }

/// n random values in [lo, hi) as the kernel reads them (stored, as T) and
/// their exact values (values). float inputs use all 24 bits of mantissa, so
/// a kernel that rounds them to bf16 somewhere shows up as bf16-sized error.
template <typename T> struct RandomData {
  std::vector<T> stored;
  std::vector<float> values;
  RandomData(size_t n, float lo, float hi)
      : stored(storeAs<T>(randomFloats(n, lo, hi))), values(valuesOf(stored)) {}
};

/// Position of a bf16 on the number line (sign-magnitude to two's complement),
/// so that the distance of two values counts bf16 steps.
inline int bf16Ordinal(__nv_bfloat16 v) {
  uint16_t raw;
  std::memcpy(&raw, &v, 2);
  int magnitude = raw & 0x7FFF;
  return (raw & 0x8000) ? -magnitude : magnitude;
}

/// For a bf16 output that must be ONE rounding of an fp32 computation: the
/// number of elements that differ from the float64 reference rounded to
/// nearest even. fp32 arithmetic lands within a few 1e-7 of the exact value,
/// so it rounds the other way only for an element that close to a rounding
/// midpoint (up to ~1e-4 of them); a second rounding on the way (bf16 of an
/// intermediate) moves a large fraction. Any element off by more than one step,
/// or not finite, gives +Inf.
inline double bf16RoundingMisses(const std::vector<__nv_bfloat16> &out,
                                 const std::vector<double> &ref) {
  if (out.size() != ref.size())
    return INFINITY;
  size_t misses = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(__bfloat162float(out[i])))
      return INFINITY;
    int distance =
        std::abs(bf16Ordinal(out[i]) - bf16Ordinal(__float2bfloat16(static_cast<float>(ref[i]))));
    if (distance > 1)
      return INFINITY;
    misses += distance;
  }
  return static_cast<double>(misses);
}

/// Tolerance for bf16RoundingMisses over n elements: 1e-3 of them, and at
/// least 3 so that a small check (a 100-wide row) is not decided by one
/// midpoint tie.
inline double bf16RoundingMissTolerance(size_t n) { return std::max(3.0, 1e-3 * n); }

/// ||out - ref|| / ||ref||; NaN or Inf anywhere in `out` gives +Inf, so an
/// unwritten (poisoned) element always fails.
inline double relativeError(const std::vector<float> &out, const std::vector<double> &ref) {
  if (out.size() != ref.size())
    return INFINITY;
  double diff = 0, norm = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]))
      return INFINITY;
    double d = out[i] - ref[i];
    diff += d * d;
    norm += ref[i] * ref[i];
  }
  return norm == 0 ? (diff == 0 ? 0 : INFINITY) : std::sqrt(diff / norm);
}

/// Overwrites 256 MB so that no operand is left in L2 (50 MB on an H100,
/// 60 MB on an H200): a model's weights are never there when a step reads
/// them.
inline void flushL2() {
  static DeviceBuffer<unsigned char> buffer(size_t{256} << 20);
  static int round = 0;
  CHECK_CUDA(cudaMemsetAsync(buffer.ptr, round++ & 0xFF, buffer.n));
}

/// How medianMicros times: `warmups` untimed launches, then `runs` timed ones,
/// each after `beforeEach` (outside the events: an L2 flush, say).
struct TimingOptions {
  int warmups = 1;
  int runs = 20;
  void (*beforeEach)() = nullptr;
};

/// Median time of `launch` in microseconds, by device events around each
/// timed launch.
template <typename Launch> double medianMicros(Launch launch, TimingOptions options = {}) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < options.warmups; ++i)
    launch();
  CHECK_LAUNCH();
  std::vector<float> times;
  for (int i = 0; i < options.runs; ++i) {
    if (options.beforeEach)
      options.beforeEach();
    CHECK_CUDA(cudaEventRecord(start));
    launch();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaGetLastError());
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return 1000.0 * times[times.size() / 2];
}

struct Result {
  std::string kernel, shape;
  double error, tolerance;
};

inline std::vector<Result> &results() {
  static std::vector<Result> all;
  return all;
}

/// Records one comparison; the table and the exit status come from finish().
inline void report(const std::string &kernel, const std::string &shape, double error,
                   double tolerance) {
  results().push_back({kernel, shape, error, tolerance});
  std::printf("%-28s %-44s rel_err %.3e (tol %.1e) %s\n", kernel.c_str(), shape.c_str(),
              error, tolerance, error <= tolerance ? "ok" : "FAIL");
  std::fflush(stdout);
}

/// Prints the table and returns the process exit status (1 if any failed).
inline int finish(const char *suite) {
  int failed = 0;
  std::printf("\n== %s: kernel vs float64 reference, fresh random inputs\n", suite);
  std::printf("%-28s %-44s %-10s %-8s %s\n", "kernel", "shape", "rel_err", "tol", "");
  for (const Result &r : results()) {
    bool ok = r.error <= r.tolerance;
    failed += !ok;
    std::printf("%-28s %-44s %-10.3e %-8.1e %s\n", r.kernel.c_str(), r.shape.c_str(),
                r.error, r.tolerance, ok ? "ok" : "FAIL");
  }
  std::printf("%s: %zu checks, %d failed\n", suite, results().size(), failed);
  return failed ? 1 : 0;
}

} // namespace gpu_test
