//===- Dsv3Attrs.cpp - dsv3 attribute syntax and invariants ---------------===//

#include "dialects/Dsv3Dialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace dsv3;

#define GET_ATTRDEF_CLASSES
#include "dialects/Dsv3Attrs.cpp.inc"

void Dsv3Dialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Dsv3Attrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// BlockScaleAttr: <RxC, "scale tensor" : SRxSC>
//===----------------------------------------------------------------------===//

Attribute BlockScaleAttr::parse(AsmParser &parser, Type) {
  SmallVector<int64_t, 2> block, scaleShape;
  std::string tensor;
  SMLoc blockLoc, scaleLoc;
  if (parser.parseLess())
    return {};
  blockLoc = parser.getCurrentLocation();
  if (parser.parseDimensionList(block, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseString(&tensor) ||
      parser.parseColon())
    return {};
  scaleLoc = parser.getCurrentLocation();
  if (parser.parseDimensionList(scaleShape, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseGreater())
    return {};
  if (block.size() != 2) {
    parser.emitError(blockLoc, "expected a 2-d block size (rows x cols)");
    return {};
  }
  if (scaleShape.size() != 2) {
    parser.emitError(scaleLoc, "expected a 2-d scale shape (rows x cols)");
    return {};
  }
  return parser.getChecked<BlockScaleAttr>(parser.getContext(), block[0],
                                           block[1], tensor, scaleShape[0],
                                           scaleShape[1]);
}

void BlockScaleAttr::print(AsmPrinter &printer) const {
  printer << "<" << getBlockRows() << "x" << getBlockCols() << ", ";
  printer.printString(getTensor());
  printer << " : " << getScaleRows() << "x" << getScaleCols() << ">";
}

LogicalResult
BlockScaleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                       int64_t blockRows, int64_t blockCols, StringRef tensor,
                       int64_t scaleRows, int64_t scaleCols) {
  if (blockRows <= 0 || blockCols <= 0)
    return emitError() << "block size must be positive, got " << blockRows
                       << "x" << blockCols;
  if (scaleRows <= 0 || scaleCols <= 0)
    return emitError() << "scale shape must be positive, got " << scaleRows
                       << "x" << scaleCols;
  if (tensor.empty())
    return emitError() << "the scale tensor needs a name";
  return success();
}

//===----------------------------------------------------------------------===//
// MlaShapeAttr
//===----------------------------------------------------------------------===//

LogicalResult
MlaShapeAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                     int64_t heads, int64_t qLoraRank, int64_t kvLoraRank,
                     int64_t qkNopeHeadDim, int64_t qkRopeHeadDim,
                     int64_t vHeadDim) {
  if (heads < 1)
    return emitError() << "heads must be at least 1, got " << heads;
  if (qLoraRank < 0)
    return emitError() << "q_lora_rank must be 0 (none) or positive, got "
                       << qLoraRank;
  if (kvLoraRank < 1)
    return emitError() << "kv_lora_rank must be at least 1, got " << kvLoraRank;
  if (qkNopeHeadDim < 1 || vHeadDim < 1)
    return emitError() << "qk_nope_head_dim and v_head_dim must be at least 1, "
                          "got "
                       << qkNopeHeadDim << " and " << vHeadDim;
  if (qkRopeHeadDim < 2 || qkRopeHeadDim % 2 != 0)
    return emitError() << "qk_rope_head_dim must be a positive even number "
                          "(rotary pairs), got "
                       << qkRopeHeadDim;
  return success();
}

//===----------------------------------------------------------------------===//
// RopeAttr
//===----------------------------------------------------------------------===//

LogicalResult RopeAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               APFloat thetaValue, APFloat yarnFactorValue,
                               int64_t originalMaxPosition,
                               APFloat betaFastValue, APFloat betaSlowValue,
                               APFloat mscale, APFloat mscaleAllDim) {
  double theta = thetaValue.convertToDouble();
  double yarnFactor = yarnFactorValue.convertToDouble();
  double betaFast = betaFastValue.convertToDouble();
  double betaSlow = betaSlowValue.convertToDouble();
  if (!(theta > 0))
    return emitError() << "theta must be positive, got " << theta;
  if (!(yarnFactor >= 1))
    return emitError() << "yarn_factor must be at least 1 (1 means no YaRN), "
                          "got "
                       << yarnFactor;
  if (originalMaxPosition < 1)
    return emitError() << "original_max_position must be at least 1, got "
                       << originalMaxPosition;
  if (yarnFactor > 1 && !(betaFast > betaSlow))
    return emitError() << "beta_fast (" << betaFast
                       << ") must exceed beta_slow (" << betaSlow << ")";
  return success();
}

/// YaRN's magnitude correction for a context stretched by `scale`.
static double yarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double RopeAttr::getAttentionFactor() const {
  double factor = getYarnFactor().convertToDouble();
  if (factor <= 1)
    return 1.0;
  double mscale = getMscale().convertToDouble();
  double mscaleAllDim = getMscaleAllDim().convertToDouble();
  if (mscale != 0 && mscaleAllDim != 0)
    return yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim);
  return yarnMscale(factor, 1.0);
}

SmallVector<float> RopeAttr::getInverseFrequencies(int64_t dim) const {
  double base = getTheta().convertToDouble();
  double factor = getYarnFactor().convertToDouble();
  SmallVector<float> inverse;
  // Dimension index where a pair completes `rotations` turns over the
  // original context.
  auto correctionDim = [&](double rotations) {
    return dim * std::log(getOriginalMaxPosition() / (rotations * 2 * M_PI)) /
           (2 * std::log(base));
  };
  double low = std::max(0.0, std::floor(correctionDim(getBetaFast().convertToDouble())));
  double high = std::min<double>(dim - 1,
                                 std::ceil(correctionDim(getBetaSlow().convertToDouble())));
  if (low == high)
    high += 0.001;
  for (int64_t i = 0; i < dim / 2; ++i) {
    double extrapolation = 1.0 / std::pow(base, 2.0 * i / dim);
    if (factor <= 1) {
      inverse.push_back(static_cast<float>(extrapolation));
      continue;
    }
    // Pairs that turn fast keep their frequency (extrapolate), slow ones are
    // divided by the factor (interpolate), with a linear ramp between.
    double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    double keep = 1.0 - ramp;
    inverse.push_back(static_cast<float>(extrapolation / factor * (1 - keep) +
                                         extrapolation * keep));
  }
  return inverse;
}

//===----------------------------------------------------------------------===//
// RoutingAttr
//===----------------------------------------------------------------------===//

LogicalResult RoutingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t experts, int64_t topK, int64_t groups,
                                  int64_t topkGroups, RoutingMethod method,
                                  RoutingScore score, bool normalize,
                                  APFloat scaleValue) {
  double scale = scaleValue.convertToDouble();
  if (experts < 1)
    return emitError() << "experts must be at least 1, got " << experts;
  if (topK < 1 || topK > experts)
    return emitError() << "top_k must be in [1, experts = " << experts
                       << "], got " << topK;
  if (groups < 1)
    return emitError() << "groups must be at least 1, got " << groups;
  if (experts % groups != 0)
    return emitError() << "experts (" << experts
                       << ") must divide evenly into groups (" << groups << ")";
  if (topkGroups < 1 || topkGroups > groups)
    return emitError() << "topk_groups must be in [1, groups = " << groups
                       << "], got " << topkGroups;
  int64_t perGroup = experts / groups;
  if (topK > topkGroups * perGroup)
    return emitError() << "top_k (" << topK << ") exceeds the experts in the "
                       << topkGroups << " kept groups of " << perGroup;
  if (method == RoutingMethod::noaux_tc && groups > 1 && perGroup < 2)
    return emitError() << "noaux_tc scores a group by its top-2 experts, but "
                          "groups hold "
                       << perGroup;
  if (!(scale > 0))
    return emitError() << "scale must be positive, got " << scale;
  return success();
}
