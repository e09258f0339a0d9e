//===- PlanVersion.h - the plan schema version ---------------------*- C++ -*-===//

#ifndef DSV3_RUNTIME_PLAN_PLANVERSION_H
#define DSV3_RUNTIME_PLAN_PLANVERSION_H

#include <cstdint>

namespace dsv3::plan {
/// Written by dsv3c, required by dsv3-run. Bump on any schema change a reader
/// of the previous version could misread.
inline constexpr uint32_t kSchemaVersion = 2;
} // namespace dsv3::plan

#endif // DSV3_RUNTIME_PLAN_PLANVERSION_H
