// RUN: dsv3-opt %s -split-input-file -verify-diagnostics

// Activation scales: one per token per block; 7168 channels make 56 blocks.
func.func @f(%x: tensor<?x7168xbf16>) {
  // expected-error @+1 {{scales must have one entry per token per 128 channels (last dimension 56)}}
  %q, %s = dsv3.act_quant %x block 128 : tensor<?x7168xbf16> -> tensor<?x7168xf8E4M3FN>, tensor<?x28xf32>
  return
}

// -----

// Partial last block: 576 channels make 5 blocks of 128.
func.func @f(%x: tensor<4x576xbf16>) {
  // expected-error @+1 {{scales must have one entry per token per 128 channels (last dimension 5)}}
  %q, %s = dsv3.act_quant %x block 128 : tensor<4x576xbf16> -> tensor<4x576xf8E4M3FN>, tensor<4x4xf32>
  return
}

// -----

// The quantization block is positive.
func.func @f(%x: tensor<4x576xbf16>) {
  // expected-error @+1 {{block must be positive, got 0}}
  %q, %s = dsv3.act_quant %x block 0 : tensor<4x576xbf16> -> tensor<4x576xf8E4M3FN>, tensor<4x5xf32>
  return
}

// -----

// Quantization keeps the shape.
func.func @f(%x: tensor<4x576xbf16>) {
  // expected-error @+1 {{output must have the input's shape}}
  %q, %s = dsv3.act_quant %x block 128 : tensor<4x576xbf16> -> tensor<4x512xf8E4M3FN>, tensor<4x5xf32>
  return
}

// -----

// Quantized activations are e4m3.
func.func @f(%x: tensor<4x576xbf16>) {
  // expected-error @+1 {{result #0 must be ranked tensor of f8E4M3FN type values}}
  %q, %s = dsv3.act_quant %x block 128 : tensor<4x576xbf16> -> tensor<4x576xbf16>, tensor<4x5xf32>
  return
}

// -----

// Dequantization needs a scale per 128x128 block: 576x7168 takes 5x56.
func.func @f(%w: tensor<576x7168xf8E4M3FN>, %s: tensor<4x56xf32>) {
  // expected-error @+1 {{weight scales must be 5x56 (one per 128x128 block)}}
  %0 = dsv3.dequant %w, %s block [128, 128] : tensor<576x7168xf8E4M3FN>, tensor<4x56xf32> -> tensor<576x7168xbf16>
  return
}

// -----

// Blocks have two positive sizes.
func.func @f(%w: tensor<576x7168xf8E4M3FN>, %s: tensor<5x56xf32>) {
  // expected-error @+1 {{block must be two positive sizes [rows, cols]}}
  %0 = dsv3.dequant %w, %s block [128] : tensor<576x7168xf8E4M3FN>, tensor<5x56xf32> -> tensor<576x7168xbf16>
  return
}

// -----

// Dequantization keeps the shape.
func.func @f(%w: tensor<576x7168xf8E4M3FN>, %s: tensor<5x56xf32>) {
  // expected-error @+1 {{output must have the input's shape}}
  %0 = dsv3.dequant %w, %s block [128, 128] : tensor<576x7168xf8E4M3FN>, tensor<5x56xf32> -> tensor<7168x576xbf16>
  return
}

// -----

// The GEMM contracts the same K on both sides.
func.func @f(%a: tensor<?x7168xf8E4M3FN>, %as: tensor<?x56xf32>, %b: tensor<1536x2048xf8E4M3FN>, %bs: tensor<12x16xf32>) {
  // expected-error @+1 {{contraction sizes differ: lhs has 7168 columns, rhs 2048}}
  %0 = dsv3.fp8_gemm %a scales %as, %b scales %bs block [128, 128] : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<1536x2048xf8E4M3FN>, tensor<12x16xf32>) -> tensor<?x1536xbf16>
  return
}

// -----

// Activation scales are per row and per K block.
func.func @f(%a: tensor<8x7168xf8E4M3FN>, %as: tensor<1x56xf32>, %b: tensor<1536x7168xf8E4M3FN>, %bs: tensor<12x56xf32>) {
  // expected-error @+1 {{lhs scales must be 8x56 (one per 1x128 block)}}
  %0 = dsv3.fp8_gemm %a scales %as, %b scales %bs block [128, 128] : (tensor<8x7168xf8E4M3FN>, tensor<1x56xf32>, tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32>) -> tensor<8x1536xbf16>
  return
}

// -----

// Weight scales cover partial edge blocks: 576 rows take 5 row blocks.
func.func @f(%a: tensor<?x7168xf8E4M3FN>, %as: tensor<?x56xf32>, %b: tensor<576x7168xf8E4M3FN>, %bs: tensor<4x56xf32>) {
  // expected-error @+1 {{rhs scales must be 5x56 (one per 128x128 block)}}
  %0 = dsv3.fp8_gemm %a scales %as, %b scales %bs block [128, 128] : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<576x7168xf8E4M3FN>, tensor<4x56xf32>) -> tensor<?x576xbf16>
  return
}

// -----

// The result is lhs rows by rhs rows.
func.func @f(%a: tensor<?x7168xf8E4M3FN>, %as: tensor<?x56xf32>, %b: tensor<576x7168xf8E4M3FN>, %bs: tensor<5x56xf32>) {
  // expected-error @+1 {{result must be lhs rows x rhs rows}}
  %0 = dsv3.fp8_gemm %a scales %as, %b scales %bs block [128, 128] : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<576x7168xf8E4M3FN>, tensor<5x56xf32>) -> tensor<?x512xbf16>
  return
}

// -----

// Quantized activations come with their scales.
func.func @f(%a: tensor<?x7168xf8E4M3FN>, %b: tensor<576x7168xf8E4M3FN>, %bs: tensor<5x56xf32>) {
  // expected-error @+1 {{FP8 lhs needs scales}}
  %0 = dsv3.fp8_gemm %a, %b scales %bs block [128, 128] : (tensor<?x7168xf8E4M3FN>, tensor<576x7168xf8E4M3FN>, tensor<5x56xf32>) -> tensor<?x576xbf16>
  return
}

// -----

// bf16 activations are not quantized, so they have no scales.
func.func @f(%a: tensor<?x7168xbf16>, %as: tensor<?x56xf32>, %b: tensor<576x7168xf8E4M3FN>, %bs: tensor<5x56xf32>) {
  // expected-error @+1 {{bf16 lhs takes no scales}}
  %0 = dsv3.fp8_gemm %a scales %as, %b scales %bs block [128, 128] : (tensor<?x7168xbf16>, tensor<?x56xf32>, tensor<576x7168xf8E4M3FN>, tensor<5x56xf32>) -> tensor<?x576xbf16>
  return
}
