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

#endif // DSV3_DIALECTS_DSV3OPS_H
