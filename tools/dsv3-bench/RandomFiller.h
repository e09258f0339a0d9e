//===- RandomFiller.h - random weights and KV cache on the GPU -----*- C++ -*-===//
//
// Loads RandomFill.cu's kernels (a fatbin embedded at build time) through
// the runtime's driver table and fills device buffers as WeightFill.h
// specifies: every weight of a plan, and the KV cache with random latents.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_TOOLS_BENCH_RANDOMFILLER_H
#define DSV3_TOOLS_BENCH_RANDOMFILLER_H

#include "runtime/exec/Device.h"
#include "runtime/exec/KvCache.h"
#include "runtime/exec/WeightLoader.h"
#include "tools/dsv3-bench/WeightFill.h"

#include <memory>
#include <string_view>

namespace dsv3::bench {

class RandomFiller {
public:
  /// Loads the fill kernels for `device` (`smCount` SMs sizes the grids).
  static StatusOr<std::unique_ptr<RandomFiller>>
  create(const exec::Device &device, int smCount);
  ~RandomFiller();
  RandomFiller(const RandomFiller &) = delete;
  RandomFiller &operator=(const RandomFiller &) = delete;

  /// Queues the fill of `spec.count` elements at `target`; `what` names the
  /// buffer in errors.
  Status fill(CUdeviceptr target, const FillSpec &spec,
              std::string_view what) const;

  /// Every weight of `plan` (weightFill), then waits for the GPU.
  Status fillWeights(const plan::Plan &plan, const exec::DeviceWeights &weights,
                     uint64_t seed) const;

  /// Every row of every page of every layer of `cache`: N(0, 1) bf16, the
  /// size of a normalized latent and a roped key. Waits for the GPU.
  Status fillKvCache(const plan::Plan &plan, const exec::KvCache &cache,
                     int64_t numPages, uint64_t seed) const;

private:
  RandomFiller(const exec::Device &device, int smCount)
      : device_(device), smCount_(smCount) {}

  const exec::Device &device_;
  int smCount_;
  CUmodule module_ = nullptr;
  CUfunction fillBf16_ = nullptr, fillF32_ = nullptr, fillE4m3_ = nullptr;
};

} // namespace dsv3::bench

#endif // DSV3_TOOLS_BENCH_RANDOMFILLER_H
