//===- ModuleBuilder.h - ModelConfig to a dsv3 graph module -------*- C++ -*-===//

#ifndef DSV3_FRONTEND_MODULEBUILDER_H
#define DSV3_FRONTEND_MODULEBUILDER_H

#include "frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace dsv3 {

/// Builds the graph-level module of `config`: one `dsv3.weight` per checkpoint
/// tensor (named as in the Hugging Face checkpoint, FP8 ones with their block
/// scales), and the entry points `@prefill` and `@decode` (token ids and
/// positions in; last hidden state and logits out), plus `@mtp_draft` for the
/// first multi-token-prediction module and `@mtp_draft_<k>` for any further
/// ones. Batch and sequence dimensions are dynamic. The module is not verified
/// here; callers run mlir::verify.
mlir::OwningOpRef<mlir::ModuleOp> buildModelModule(mlir::MLIRContext &context,
                                                   const ModelConfig &config);

/// The entry-point name of multi-token-prediction module `index` (0-based).
std::string mtpDraftFunctionName(int64_t index);

} // namespace dsv3

#endif // DSV3_FRONTEND_MODULEBUILDER_H
