//===- PlanFile.h - open, verify and size a plan -------------------*- C++ -*-===//
//
// A plan is read in three layers, each before the next reads anything:
//   1. the flatbuffer itself: file identifier "DSV3", then flatbuffers'
//      Verifier (every offset, vector and string inside the buffer);
//   2. the schema version (kSchemaVersion);
//   3. the semantics: every index in range (kernels, modules, weights,
//      constants, KV-cache layers, step inputs), every arena offset and
//      output inside its arena, every grid, block and argument well formed
//      (tensor maps within TMA's limits and inside their buffers), every
//      Gemm step's shape as cuBLASLt takes it and its operands inside their
//      buffers, every weight's sources consistent with its transform.
// After verifyPlan succeeds, the runtime reads fields without checking them
// again. checkDevice then compares the plan with a GPU (architecture, free
// memory) before anything is allocated on it.
//
// No CUDA here: dsv3-plan and the unit tests use this without a GPU.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_PLAN_PLANFILE_H
#define DSV3_RUNTIME_PLAN_PLANFILE_H

#include "runtime/Status.h"
#include "runtime/plan/PlanVersion.h"
#include "runtime/plan/Plan_generated.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3::plan {

/// Device buffers carved out of one allocation start at multiples of this
/// (cudaMalloc's own guarantee), so every kernel may use vector loads.
inline constexpr uint64_t kDeviceAlignment = 256;

/// `bytes` rounded up to kDeviceAlignment.
inline uint64_t alignToDevice(uint64_t bytes) {
  return (bytes + kDeviceAlignment - 1) / kDeviceAlignment * kDeviceAlignment;
}

/// TMA's largest tensor rank (cuTensorMapEncodeTiled): the most dims a
/// TensorMap argument may have.
inline constexpr size_t kMaxTensorMapRank = 5;

/// Bytes per element of `dtype`; 0 for a value outside the enum.
uint64_t dtypeBytes(DType dtype);

/// The product of `shape`'s dimensions (1 for an empty shape). Only for
/// shapes verifyPlan accepted (non-negative, no overflow).
int64_t numElements(const flatbuffers::Vector<int64_t> *shape);

/// The device bytes of weights[index] (numel x dtype size), unaligned.
uint64_t weightBytes(const Plan &plan, size_t index);

/// Where every weight and constant lives inside the one device buffer that
/// holds them all: weights first, then constants, each at a multiple of
/// kDeviceAlignment.
struct WeightLayout {
  std::vector<uint64_t> weightOffsets;
  std::vector<uint64_t> constantOffsets;
  uint64_t totalBytes = 0;
};
WeightLayout layoutWeights(const Plan &plan);

/// The largest arena_bytes of any entry point: entry points run one at a
/// time on one stream, so they share one arena of this size.
uint64_t largestArenaBytes(const Plan &plan);

/// Device bytes of the step inputs the runtime uploads (tokens, positions,
/// token_seq, last_rows, block_table of `pagesPerSequence` columns, and
/// hidden rows when an entry point reads them), at the plan's limits.
uint64_t stepInputBytes(const Plan &plan, int64_t pagesPerSequence);

/// Checks `size` bytes at `data` as a plan: identifier, flatbuffer
/// verification, schema version, then semantics. Messages start with `name`
/// (the file) and name the entry point, step, argument or field at fault.
Status verifyPlan(const uint8_t *data, size_t size, const std::string &name);

/// A plan file read into memory and verified.
class PlanFile {
public:
  /// Reads and verifies `path`.
  static StatusOr<PlanFile> open(const std::string &path);
  /// Verifies `bytes`, reported as `name` in messages.
  static StatusOr<PlanFile> fromBytes(std::vector<uint8_t> bytes,
                                      std::string name);

  const Plan &plan() const { return *GetPlan(bytes_.data()); }
  const std::string &name() const { return name_; }
  const std::vector<uint8_t> &bytes() const { return bytes_; }

private:
  PlanFile(std::vector<uint8_t> bytes, std::string name)
      : bytes_(std::move(bytes)), name_(std::move(name)) {}

  // The vector's heap block does not move when the PlanFile does, so
  // pointers into the plan stay valid.
  std::vector<uint8_t> bytes_;
  std::string name_;
};

/// What checkDevice needs to know about a GPU.
struct DeviceInfo {
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int sm_count = 0;
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

/// Whether a cubin for `plan`'s target runs on compute capability
/// major.minor. Cubins hold SASS, which runs on the compute capability it was
/// built for and, for targets without an "a" suffix, on later minor versions
/// of the same major (sm_80 on 8.0, 8.6, 8.9; never on 9.0). Targets with the
/// "a" suffix (sm_90a, sm_100a) use architecture-specific instructions and
/// run only on exactly their compute capability.
bool targetRunsOn(const Target &target, int computeMajor, int computeMinor);

/// The workspace an executor gives cuBLASLt when the plan has Gemm steps.
inline constexpr uint64_t kGemmWorkspaceBytes = uint64_t{32} << 20;

/// Whether some entry point of `plan` has a Gemm step (cuBLASLt runs it).
bool hasGemmSteps(const Plan &plan);

/// Device memory the runtime needs for `plan`, by part.
struct MemoryNeeds {
  uint64_t weights = 0;       ///< weights and constants, as laid out
  uint64_t arena = 0;         ///< the shared arena (largest entry point)
  uint64_t stepInputs = 0;    ///< step input buffers at the limits
  uint64_t kvCache = 0;       ///< the caller's KV cache
  uint64_t gemmWorkspace = 0; ///< cuBLASLt's, with Gemm steps
  uint64_t total() const {
    return weights + arena + stepInputs + kvCache + gemmWorkspace;
  }
};
MemoryNeeds memoryNeeds(const Plan &plan, uint64_t kvCacheBytes,
                        int64_t pagesPerSequence);

/// Success when `plan` (verified) can run on `device`: the architecture
/// matches (targetRunsOn) and `needs` fits in the free memory. A pure
/// function: call it before allocating anything on the device.
Status checkDevice(const Plan &plan, const DeviceInfo &device,
                   const MemoryNeeds &needs);

} // namespace dsv3::plan

#endif // DSV3_RUNTIME_PLAN_PLANFILE_H
