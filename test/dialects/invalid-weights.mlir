// RUN: dsv3-opt %s -split-input-file -verify-diagnostics

// The scale of a 576-row weight in 128-row blocks has 5 rows (the last block
// is partial), not 4.
// expected-error @+1 {{scale shape 4x56 does not cover 576x7168 in 128x128 blocks (expected 5x56)}}
dsv3.weight @kv_a : tensor<576x7168xf8E4M3FN> scale <128x128, "kv_a_scale_inv" : 4x56>

// -----

// Non-square blocks: 1536 columns in 256-column blocks make 6 scale columns.
// expected-error @+1 {{scale shape 12x12 does not cover 1536x1536 in 128x256 blocks (expected 12x6)}}
dsv3.weight @w : tensor<1536x1536xf8E4M3FN> scale <128x256, "w_scale_inv" : 12x12>

// -----

// An FP8 weight without scales cannot be dequantized.
// expected-error @+1 {{FP8 weight needs a block scale}}
dsv3.weight @w : tensor<256x256xf8E4M3FN>

// -----

// Only FP8 weights carry block scales.
// expected-error @+1 {{only FP8 weights carry block scales, this one is 'bf16'}}
dsv3.weight @w : tensor<256x256xbf16> scale <128x128, "w_scale_inv" : 2x2>

// -----

// Checkpoint tensors here are vectors or matrices.
// expected-error @+1 {{weight must be a vector or a matrix, got rank 3}}
dsv3.weight @w : tensor<2x2x2xbf16>

// -----

// Integer weights do not exist in these checkpoints.
// expected-error @+1 {{unsupported weight element type 'i8' (expected bf16, f16, f32 or f8E4M3FN)}}
dsv3.weight @w : tensor<4xi8>

// -----

// A weight has a static shape.
// expected-error @+1 {{attribute 'type' failed to satisfy constraint: type attribute of statically shaped tensor}}
dsv3.weight @w : tensor<?x4xbf16>

// -----

// The scale tensor is a separate checkpoint tensor.
// expected-error @+1 {{scale tensor must differ from the weight itself}}
dsv3.weight @w : tensor<128x128xf8E4M3FN> scale <128x128, "w" : 1x1>

// -----

// Weights live at module level, beside the entry points.
func.func @f() {
  // expected-error @+1 {{expects parent op 'builtin.module'}}
  "dsv3.weight"() {sym_name = "w", type = tensor<4xbf16>} : () -> ()
  return
}

// -----

// Weight names are unique.
// expected-note @+1 {{see existing symbol definition here}}
dsv3.weight @w : tensor<4xbf16>
// expected-error @+1 {{redefinition of symbol named 'w'}}
dsv3.weight @w : tensor<4xbf16>

// -----

// weight_ref yields the weight and, for FP8, its scales.
dsv3.weight @w : tensor<576x256xf8E4M3FN> scale <128x128, "w_scale_inv" : 5x2>
func.func @f() {
  // expected-error @+1 {{results must be 'tensor<576x256xf8E4M3FN>', 'tensor<5x2xf32>' to match @w}}
  %0 = dsv3.weight_ref @w : tensor<576x256xf8E4M3FN>
  return
}

// -----

// weight_ref names a declared weight.
func.func @f() {
  // expected-error @+1 {{'weight' refers to @missing, which is not declared}}
  %0 = dsv3.weight_ref @missing : tensor<4xbf16>
  return
}
