// RUN: dsv3-opt %s --split-input-file --dsv3-fuse-norm-quant | FileCheck %s

// A normalize that only an act_quant reads becomes normalize_quant, in the
// normalization's place; the quantization's users read the fused results.
func.func @f(%x: tensor<?x1536xf32>, %w: tensor<1536xbf16>) -> (tensor<?x1536xf8E4M3FN>, tensor<?x12xf32>) {
  %n = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x1536xf32>, tensor<1536xbf16> -> tensor<?x1536xbf16>
  %q, %s = dsv3.act_quant %n block 128 : tensor<?x1536xbf16> -> tensor<?x1536xf8E4M3FN>, tensor<?x12xf32>
  return %q, %s : tensor<?x1536xf8E4M3FN>, tensor<?x12xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<?x1536xf32>, %[[W:[a-z0-9]+]]: tensor<1536xbf16>)
// CHECK-NEXT: %[[Q:.*]], %[[S:.*]] = dsv3.normalize_quant %[[X]], %[[W]] eps 9.9999999999999995E-7 block 128 : tensor<?x1536xf32>, tensor<1536xbf16> -> tensor<?x1536xf8E4M3FN>, tensor<?x12xf32>
// CHECK-NEXT: return %[[Q]], %[[S]]

// -----

// add_normalize likewise; the sum's readers read the fused op's sum.
func.func @f(%h: tensor<?x256xf32>, %d: tensor<?x256xf32>, %w: tensor<256xbf16>) -> (tensor<?x256xf32>, tensor<?x256xf8E4M3FN>, tensor<?x2xf32>) {
  %sum, %n = dsv3.add_normalize %h, %d, %w eps 1.0e-6 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
  %q, %s = dsv3.act_quant %n block 128 : tensor<?x256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  return %sum, %q, %s : tensor<?x256xf32>, tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[H:[a-z0-9]+]]: tensor<?x256xf32>, %[[D:[a-z0-9]+]]: tensor<?x256xf32>, %[[W:[a-z0-9]+]]: tensor<256xbf16>)
// CHECK-NEXT: %[[SUM:.*]], %[[Q:.*]], %[[S:.*]] = dsv3.add_normalize_quant %[[H]], %[[D]], %[[W]] eps 9.9999999999999995E-7 block 128 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
// CHECK-NEXT: return %[[SUM]], %[[Q]], %[[S]]

// -----

// A normalized row another op reads too (the router's bf16 GEMM) stays in
// memory: nothing fuses.
func.func @f(%h: tensor<?x256xf32>, %d: tensor<?x256xf32>, %w: tensor<256xbf16>, %r: tensor<16x256xbf16>) -> (tensor<?x256xf8E4M3FN>, tensor<?x16xf32>) {
  %sum, %n = dsv3.add_normalize %h, %d, %w eps 1.0e-6 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
  %logits = dsv3.bf16_gemm %n, %r : tensor<?x256xbf16>, tensor<16x256xbf16> -> tensor<?x16xf32>
  %q, %s = dsv3.act_quant %n block 128 : tensor<?x256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  return %q, %logits : tensor<?x256xf8E4M3FN>, tensor<?x16xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK: dsv3.add_normalize %
// CHECK: dsv3.act_quant
// CHECK-NOT: normalize_quant

// -----

// Blocks that do not divide the row (a partial last block) are left to
// act_quant.
func.func @f(%x: tensor<?x576xf32>, %w: tensor<576xbf16>) -> (tensor<?x576xf8E4M3FN>, tensor<?x5xf32>) {
  %n = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x576xf32>, tensor<576xbf16> -> tensor<?x576xbf16>
  %q, %s = dsv3.act_quant %n block 128 : tensor<?x576xbf16> -> tensor<?x576xf8E4M3FN>, tensor<?x5xf32>
  return %q, %s : tensor<?x576xf8E4M3FN>, tensor<?x5xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK: dsv3.normalize %
// CHECK: dsv3.act_quant
// CHECK-NOT: normalize_quant

// -----

// The prefill's fresh-path latent (the leading 512 of a kv_a row) keeps its
// step guard; a pair with different guards does not fuse.
func.func @f(%kv: tensor<?x576xf32>, %w: tensor<512xbf16>) -> (tensor<?x512xf8E4M3FN>, tensor<?x4xf32>, tensor<?x512xf8E4M3FN>, tensor<?x4xf32>) {
  %n = dsv3.normalize %kv, %w eps 1.0e-6 {dsv3.when = "fresh"} : tensor<?x576xf32>, tensor<512xbf16> -> tensor<?x512xbf16>
  %q, %s = dsv3.act_quant %n block 128 {dsv3.when = "fresh"} : tensor<?x512xbf16> -> tensor<?x512xf8E4M3FN>, tensor<?x4xf32>
  %m = dsv3.normalize %kv, %w eps 1.0e-6 {dsv3.when = "resumed"} : tensor<?x576xf32>, tensor<512xbf16> -> tensor<?x512xbf16>
  %r, %t = dsv3.act_quant %m block 128 : tensor<?x512xbf16> -> tensor<?x512xf8E4M3FN>, tensor<?x4xf32>
  return %q, %s, %r, %t : tensor<?x512xf8E4M3FN>, tensor<?x4xf32>, tensor<?x512xf8E4M3FN>, tensor<?x4xf32>
}
// CHECK-LABEL: func.func @f(
// CHECK-NEXT: dsv3.normalize_quant %{{.*}} block 128 {dsv3.when = "fresh"} : tensor<?x576xf32>, tensor<512xbf16> -> tensor<?x512xf8E4M3FN>, tensor<?x4xf32>
// CHECK-NEXT: dsv3.normalize %{{.*}} {dsv3.when = "resumed"}
// CHECK-NEXT: dsv3.act_quant
