//===- Dsv3Ops.h - dsv3 operations --------------------------------*- C++ -*-===//

#ifndef DSV3_DIALECTS_DSV3OPS_H
#define DSV3_DIALECTS_DSV3OPS_H

#include "dialects/Dsv3Dialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "dialects/Dsv3Ops.h.inc"

#endif // DSV3_DIALECTS_DSV3OPS_H
