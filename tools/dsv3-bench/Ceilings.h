//===- Ceilings.h - the device's measured copy and GEMM ceilings ---*- C++ -*-===//
//
// The floors of dsv3-bench are computed on ceilings measured in the same
// run, on the same device:
//   copy bandwidth  cuMemcpyDtoDAsync of a large buffer, median of several,
//                   counting bytes read plus bytes written;
//   GEMM peaks      cuBLASLt, loaded with dlopen (exec::CublasLt, as the
//                   runtime loads it; nothing links it), M = N = K = 8192 on
//                   random data, bf16 output, fp32 accumulation: BF16 × BF16,
//                   and FP8 e4m3 × e4m3 with per-tensor scaling (the fastest
//                   FP8 GEMM cuBLASLt offers; "TN" layout, as FP8 requires).
// When cuBLASLt cannot be loaded the GEMM peaks are not measured, and the
// caller says so.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_BENCH_CEILINGS_H
#define DSV3_TOOLS_BENCH_CEILINGS_H

#include "runtime/exec/Device.h"
#include "tools/dsv3-bench/RandomFiller.h"

#include <string>
#include <vector>

namespace dsv3::bench {

/// Start and stop events on the device's stream, for timing what is queued
/// between them.
class EventTimer {
public:
  static StatusOr<EventTimer> create(const exec::Device &device);
  Status start();
  Status stop();
  /// Waits for the stop event; milliseconds from start to stop.
  StatusOr<double> elapsedMs();

private:
  explicit EventTimer(const exec::Device &device) : device_(&device) {}
  const exec::Device *device_;
  exec::DeviceEvent start_, stop_;
};

/// Device-to-device copy bandwidth, bytes read plus written per second:
/// the median of `repetitions` copies of `bytes` after two warm-up copies.
StatusOr<double> measureCopyBandwidth(const exec::Device &device,
                                      uint64_t bytes, int repetitions);

struct GemmPeaks {
  bool measured = false;
  double bf16FlopsPerSecond = 0;
  double fp8FlopsPerSecond = 0; ///< 0: cuBLASLt has no FP8 GEMM here
  /// What was measured, or why nothing was ("cuBLASLt 130000, ...").
  std::string description;
};

/// BF16 and FP8 GEMM peaks through cuBLASLt at M = N = K = `size`, median
/// of `repetitions` after warm-up. A missing libcublasLt is not an error:
/// the result says measured = false and why. Errors are failures of a
/// library that did load, or of the device.
StatusOr<GemmPeaks> measureGemmPeaks(const exec::Device &device,
                                     const RandomFiller &filler, int64_t size,
                                     int repetitions);

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_CEILINGS_H
