//===- Dsv3Dialect.cpp - the dsv3 dialect ---------------------------------===//

#include "dialects/Dsv3Dialect.h"
#include "dialects/Dsv3Ops.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"

using namespace mlir;
using namespace dsv3;

#include "dialects/Dsv3Dialect.cpp.inc"
#include "dialects/Dsv3Enums.cpp.inc"

void Dsv3Dialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Dsv3Ops.cpp.inc"
      >();
  registerAttributes();
}

LogicalResult Dsv3Dialect::verifyOperationAttribute(Operation *op,
                                                    NamedAttribute attribute) {
  if (attribute.getName() != kStepGuardAttrName)
    return success();
  auto guard = llvm::dyn_cast<StringAttr>(attribute.getValue());
  if (!guard || (guard.getValue() != kFreshStepGuard &&
                 guard.getValue() != kResumedStepGuard))
    return op->emitOpError() << "'" << kStepGuardAttrName << "' must be \""
                             << kFreshStepGuard << "\" or \""
                             << kResumedStepGuard << "\"";
  if (op->getDialect() != op->getContext()->getLoadedDialect<Dsv3Dialect>())
    return op->emitOpError() << "'" << kStepGuardAttrName
                             << "' guards dsv3 kernel ops only";
  return success();
}

FailureOr<APFloat> dsv3::parseF64Parameter(AsmParser &parser) {
  double value = 0;
  if (parser.parseFloat(value))
    return failure();
  return APFloat(value);
}

FailureOr<bool> dsv3::parseBoolParameter(AsmParser &parser) {
  if (succeeded(parser.parseOptionalKeyword("true")))
    return true;
  if (succeeded(parser.parseOptionalKeyword("false")))
    return false;
  return parser.emitError(parser.getCurrentLocation(),
                          "expected 'true' or 'false'");
}
