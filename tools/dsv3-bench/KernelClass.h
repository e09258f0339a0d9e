//===- KernelClass.h - kernel classes and per-launch time totals ---*- C++ -*-===//
//
// The bench's profiling pass times every launch of a step and reports where
// the time goes, by class of kernel (issue 5's breakdown) and by kernel
// template. The class comes from the template's name in the plan
// (`dsv3k::fp8_grouped_gemm<2048, 7168, ...>` → fp8_grouped_gemm → GEMM):
//   GEMM         *gemm*: dense and grouped (MoE expert) GEMMs, FP8 and BF16
//   attention    mla_*: query rope and absorption, cache writes, attention,
//                output absorption (the absorbed kv_b products are counted
//                here, not under GEMM)
//   MoE routing  moe_*: routing, token permutation (align), combine
//   norms        *norm*: RMS norms, with or without the residual add
//   rest         everything else: embedding, row gathers, activation
//                quantization, SwiGLU, sampling
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_BENCH_KERNELCLASS_H
#define DSV3_TOOLS_BENCH_KERNELCLASS_H

#include <array>
#include <map>
#include <string>
#include <string_view>

namespace dsv3::bench {

enum class KernelClass { Gemm = 0, Attention, MoeRouting, Norm, Rest };
inline constexpr size_t kKernelClassCount = 5;

/// "GEMM", "attention", "MoE routing", "norms", "rest".
const char *kernelClassName(KernelClass kernelClass);

/// The template's name without namespace and arguments:
/// "dsv3k::rms_norm<7168>" → "rms_norm".
std::string_view kernelTemplateName(std::string_view instance);

KernelClass classifyKernel(std::string_view instance);

/// Launch times summed over one or more profiled steps.
struct KernelTimes {
  std::array<double, kKernelClassCount> classMs{};
  /// By template name (rms_norm, fp8_gemm, ...): milliseconds and launches.
  std::map<std::string, std::pair<double, int>, std::less<>> templates;
  /// The same by instance ("dsv3k::fp8_wgmma_gemm<7168, 16384, 128, 128,
  /// float>"): which shapes and tiles take the time.
  std::map<std::string, std::pair<double, int>, std::less<>> instances;
  int steps = 0;

  void add(std::string_view instance, double milliseconds);
  double totalMs() const;
  /// The share of class `kernelClass` in totalMs() (0 when nothing ran).
  double share(KernelClass kernelClass) const;
};

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_KERNELCLASS_H
