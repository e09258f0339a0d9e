// RUN: dsv3-opt %s --split-input-file --dsv3-decompose -verify-diagnostics

// Functions that are not dsv3 entry points are rejected.
// expected-error @+1 {{is not a dsv3 entry point: expected [batch, seq, ...] tensors in and out}}
func.func @helper(%a: tensor<?xi32>) {
  return
}

// -----

// Rank-1 inputs are not the graph form.
// expected-error @+1 {{is not a dsv3 entry point}}
func.func @prefill(%a: tensor<?xi32>, %b: tensor<?xi32>) {
  return
}

// -----

// Graph ops without a lowering stop the pass.
dsv3.weight @embed : tensor<512x256xbf16>
func.func @prefill(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  // expected-error @+1 {{'arith.mulf' op has no lowering to kernel ops}}
  %y = arith.mulf %x, %x : tensor<?x?x256xbf16>
  return %y : tensor<?x?x256xbf16>
}
