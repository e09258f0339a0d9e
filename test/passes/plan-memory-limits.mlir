// Limits must make sense: at least one sequence, no more than the tokens.
// RUN: not dsv3-opt %s --dsv3-plan-memory="max-tokens=10 max-sequences=100" 2>&1 | FileCheck %s
// RUN: not dsv3-opt %s --dsv3-plan-memory="max-tokens=0" 2>&1 | FileCheck %s
// CHECK: dsv3-plan-memory needs 1 <= max-sequences <= max-tokens
module {
}
