// RUN: dsv3-opt %s --split-input-file --dsv3-fuse-residual-norm | FileCheck %s

// A residual addition read by a normalize becomes add_normalize; later uses
// of the sum read the fused op's sum.
func.func @f(%h: tensor<?x256xbf16>, %d: tensor<?x256xbf16>, %w: tensor<256xbf16>) -> (tensor<?x256xbf16>, tensor<?x256xbf16>) {
  %sum = arith.addf %h, %d : tensor<?x256xbf16>
  %n = dsv3.normalize %sum, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  return %sum, %n : tensor<?x256xbf16>, tensor<?x256xbf16>
}
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[H:[a-z0-9]+]]: tensor<?x256xbf16>, %[[D:[a-z0-9]+]]: tensor<?x256xbf16>, %[[W:[a-z0-9]+]]: tensor<256xbf16>)
// CHECK-NOT: arith.addf
// CHECK: %[[SUM:.*]], %[[N:.*]] = dsv3.add_normalize %[[H]], %[[D]], %[[W]] eps 9.9999999999999995E-7
// CHECK: return %[[SUM]], %[[N]]

// -----

// An addition nothing normalizes stays an addition.
func.func @f(%h: tensor<?x256xbf16>, %d: tensor<?x256xbf16>) -> tensor<?x256xbf16> {
  %sum = arith.addf %h, %d : tensor<?x256xbf16>
  return %sum : tensor<?x256xbf16>
}
// CHECK-LABEL: func.func @f
// CHECK: arith.addf
// CHECK-NOT: add_normalize

// -----

// A use of the sum before the normalize keeps the addition for that use.
func.func @f(%h: tensor<?x256xbf16>, %d: tensor<?x256xbf16>, %w: tensor<256xbf16>) -> (tensor<?x256xbf16>, tensor<?x256xbf16>) {
  %sum = arith.addf %h, %d : tensor<?x256xbf16>
  %early = arith.addf %sum, %sum : tensor<?x256xbf16>
  %n = dsv3.normalize %sum, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  return %early, %n : tensor<?x256xbf16>, tensor<?x256xbf16>
}
// CHECK-LABEL: func.func @f
// CHECK: %[[SUM:.*]] = arith.addf
// CHECK: arith.addf %[[SUM]], %[[SUM]]
// CHECK: dsv3.add_normalize
