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

/// Median time of `launch` over 20 runs after a warm-up, in microseconds, by
/// device events: a rough figure for the docs, not a benchmark.
template <typename Launch> double medianMicros(Launch launch) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  launch();
  CHECK_LAUNCH();
  std::vector<float> times;
  for (int i = 0; i < 20; ++i) {
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
  std::printf("%-28s %-44s rel_err %.3e (tol %.0e) %s\n", kernel.c_str(), shape.c_str(),
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
    std::printf("%-28s %-44s %-10.3e %-8.0e %s\n", r.kernel.c_str(), r.shape.c_str(),
                r.error, r.tolerance, ok ? "ok" : "FAIL");
  }
  std::printf("%s: %zu checks, %d failed\n", suite, results().size(), failed);
  return failed ? 1 : 0;
}

} // namespace gpu_test
