//===- WeightLoader.h - checkpoint tensors to device weights -------*- C++ -*-===//
//
// Loading is two passes over the plan's weights. The first (on the CPU, no
// device needed) checks every source tensor of every weight against the
// checkpoint: present, dtype, shape. Only when all match does the second
// allocate one device buffer for all weights and constants (the plan's
// WeightLayout) and upload, by transform:
//   Copy            the tensor's bytes as stored;
//   Stack           N tensors into consecutive slices of the weight;
//   DequantizeBf16  e4m3 tensor x fp32 block scales, converted to bf16 on the
//                   host (multi-threaded; see Dequantize.h), then uploaded.
// Bytes travel through two pinned staging buffers in turn, so that reading
// the (memory-mapped) checkpoint overlaps the DMA of the previous chunk.
// Constants are uploaded from the plan's own bytes (allocateWeights).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_WEIGHTLOADER_H
#define DSV3_RUNTIME_EXEC_WEIGHTLOADER_H

#include "runtime/Checkpoint.h"
#include "runtime/exec/Device.h"
#include "runtime/plan/PlanFile.h"

#include <optional>

namespace dsv3::exec {

/// The safetensors dtype of a plan dtype.
Dtype checkpointDtype(plan::DType dtype);

/// Checks every source of every weight of `plan` against `checkpoint` (name
/// present, dtype, shape) before anything is uploaded. One error for all:
/// the first mismatch in plan order (naming the shard and the tensor), and
/// how many more there are.
Status checkWeightSources(const plan::Plan &plan, const Checkpoint &checkpoint);

struct WeightLoadOptions {
  /// Threads for dequantization and staging copies; 0: one per hardware
  /// thread.
  unsigned threads = 0;
  /// Print `loading weights: 1234/46183 tensors, 12.3/688.6 GB` on stderr.
  bool showProgress = true;
  /// Size of each of the two pinned staging buffers.
  uint64_t stagingBytes = 64ull << 20;
};

/// Every weight and constant of a plan, on the device.
class DeviceWeights {
public:
  CUdeviceptr weightAddress(size_t index) const {
    return buffer_.address() + layout_.weightOffsets[index];
  }
  CUdeviceptr constantAddress(size_t index) const {
    return buffer_.address() + layout_.constantOffsets[index];
  }
  size_t weightCount() const { return layout_.weightOffsets.size(); }
  size_t constantCount() const { return layout_.constantOffsets.size(); }
  uint64_t bytes() const { return layout_.totalBytes; }

private:
  friend StatusOr<DeviceWeights> allocateWeights(const Device &,
                                                 const plan::Plan &);
  DeviceBuffer buffer_;
  plan::WeightLayout layout_;
};

/// Allocates the one buffer of every weight and constant of `plan`
/// (verified) and uploads the constants; the weights' bytes are left as
/// they come. loadWeights fills them from a checkpoint; tools without one
/// (dsv3-bench's random weights) fill them on the device.
StatusOr<DeviceWeights> allocateWeights(const Device &device,
                                        const plan::Plan &plan);

/// Checks (checkWeightSources), allocates and uploads every weight and
/// constant of `plan` (verified) from `checkpoint`. Returns once all bytes
/// are on the device.
StatusOr<DeviceWeights> loadWeights(const Device &device, const plan::Plan &plan,
                                    const Checkpoint &checkpoint,
                                    const WeightLoadOptions &options);

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_WEIGHTLOADER_H
