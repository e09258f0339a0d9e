//===- CheckpointTensors.h - the checkpoint tensors a module reads -*- C++ -*-===//

#ifndef DSV3_COMPILER_CHECKPOINTTENSORS_H
#define DSV3_COMPILER_CHECKPOINTTENSORS_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3 {

/// One tensor of a Hugging Face checkpoint, as the module names it.
struct CheckpointTensor {
  std::string name;
  std::string dtype;          ///< safetensors dtype: BF16, F16, F32, F8_E4M3
  std::vector<int64_t> shape;
  /// For a block-scale tensor (`..._scale_inv`), the FP8 weight it scales and
  /// its block size; empty / zero otherwise.
  std::string scaleOf;
  int64_t blockRows = 0, blockCols = 0;
};

/// Every checkpoint tensor the module's `dsv3.weight` ops name, in declaration
/// order, each FP8 weight followed by its scale tensor.
std::vector<CheckpointTensor> listCheckpointTensors(mlir::ModuleOp module);

} // namespace dsv3

#endif // DSV3_COMPILER_CHECKPOINTTENSORS_H
