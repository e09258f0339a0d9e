//===- Dsv3Ops.h - dsv3 operations --------------------------------*- C++ -*-===//

#ifndef DSV3_DIALECTS_DSV3OPS_H
#define DSV3_DIALECTS_DSV3OPS_H

#include "dialects/Dsv3Dialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace dsv3 {
/// The latent KV cache that kv_write-like kernel ops write and attention
/// reads; ordering between them follows this resource.
struct KvCacheResource
    : public mlir::SideEffects::Resource::Base<KvCacheResource> {
  llvm::StringRef getName() final { return "dsv3.kv_cache"; }
};
} // namespace dsv3

#define GET_OP_CLASSES
#include "dialects/Dsv3Ops.h.inc"

namespace dsv3 {
/// The checks of fp8_gemm, for it and each product of fp8_gemm_pair:
/// `member` ("", "0", "1") follows "rhs" and "result" in the messages.
mlir::LogicalResult verifyFp8Gemm(mlir::Operation *op, mlir::Value lhs, mlir::Value lhsScales,
                                  mlir::Value rhs, mlir::Value rhsScales,
                                  llvm::ArrayRef<int64_t> block, mlir::Value result,
                                  llvm::StringRef member);
} // namespace dsv3

#endif // DSV3_DIALECTS_DSV3OPS_H
