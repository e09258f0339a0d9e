//===- PlanVersion.h - the plan schema version ---------------------*- C++ -*-===//

#ifndef DSV3_RUNTIME_PLAN_PLANVERSION_H
#define DSV3_RUNTIME_PLAN_PLANVERSION_H

#include <cstdint>

namespace dsv3::plan {
/// Written by dsv3c, required by dsv3-run. Bump on any schema change a reader
/// of the previous version could misread. Version 3 added TensorMap arguments:
/// a version-2 runtime would call one "not an ArgKind" rather than say that
/// the plan is newer than it. Version 4 added the ResumedRuns size unit and
/// Launch.also_when: a version-3 runtime would ignore also_when and run both
/// of MLA's alternative paths.
inline constexpr uint32_t kSchemaVersion = 5;
} // namespace dsv3::plan

#endif // DSV3_RUNTIME_PLAN_PLANVERSION_H
