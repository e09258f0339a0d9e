// RUN: dsv3-opt %s -split-input-file -verify-diagnostics

// gather returns one table row per index.
func.func @f(%t: tensor<512x256xbf16>, %i: tensor<?xi32>) {
  // expected-error @+1 {{result has shape ?x128, expected ?x256}}
  %0 = dsv3.gather %t[%i] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x128xbf16>
  return
}

// -----

// normalize has one gain per channel it normalizes: the leading channels
// of each row, so the result is as wide as the weight.
func.func @f(%x: tensor<?x256xbf16>, %w: tensor<128xbf16>) {
  // expected-error @+1 {{result has shape ?x256, expected ?x128}}
  %0 = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<128xbf16> -> tensor<?x256xbf16>
  return
}

// -----

// normalize cannot have more gains than the input has channels.
func.func @f(%x: tensor<?x128xbf16>, %w: tensor<256xbf16>) {
  // expected-error @+1 {{weight must be a vector of at most the input's 128 channels}}
  %0 = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x128xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  return
}

// -----

// add_normalize needs a positive epsilon.
func.func @f(%x: tensor<?x256xbf16>, %w: tensor<256xbf16>) {
  // expected-error @+1 {{eps must be positive, got 0}}
  %0, %1 = dsv3.add_normalize %x, %x, %w eps 0.0 : tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  return
}

// -----

// bf16_gemm contracts the same K.
func.func @f(%x: tensor<?x256xbf16>, %w: tensor<96x128xbf16>) {
  // expected-error @+1 {{rhs has shape 96x128, expected ?x256}}
  %0 = dsv3.bf16_gemm %x, %w : tensor<?x256xbf16>, tensor<96x128xbf16> -> tensor<?x96xbf16>
  return
}

// -----

// swiglu_quant scales: one per row per block (2048 = 16 blocks).
func.func @f(%g: tensor<?x2048xbf16>) {
  // expected-error @+1 {{scales has shape ?x8, expected ?x16}}
  %0, %1 = dsv3.swiglu_quant %g, %g block 128 : tensor<?x2048xbf16> -> tensor<?x2048xf8E4M3FN>, tensor<?x8xf32>
  return
}

// -----

// mla_core's query is heads x (nope + rope) wide.
func.func @f(%q: tensor<?x64xbf16>, %kv_a: tensor<?x80xbf16>, %n: tensor<64xbf16>, %kv_b: tensor<128x64xbf16>, %i: tensor<?xi32>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{q has shape ?x64, expected ?x96}}
  %0 = dsv3.mla_core %q, %kv_a, %n, %kv_b, %i, %i, %p layer 0
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x64xbf16>, tensor<?x80xbf16>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return
}

// -----

// Stacked weights must all match.
dsv3.weight @a : tensor<128x256xbf16>
dsv3.weight @b : tensor<64x256xbf16>
func.func @f() {
  // expected-error @+1 {{@b differs in type or scales from @a; stacked weights must match}}
  %0 = dsv3.stacked_weight_ref [@a, @b] : tensor<2x128x256xbf16>
  return
}

// -----

// The stacked tensor has the expert count in front.
dsv3.weight @a : tensor<128x256xbf16>
dsv3.weight @b : tensor<128x256xbf16>
func.func @f() {
  // expected-error @+1 {{results must be 'tensor<2x128x256xbf16>'}}
  %0 = dsv3.stacked_weight_ref [@a, @b] : tensor<3x128x256xbf16>
  return
}

// -----

// moe_route needs the correction bias for noaux_tc.
func.func @f(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{noaux_tc routing needs a bias}}
  %0, %1 = dsv3.moe_route %l routing <experts = 8, top_k = 2, groups = 1, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 1.0> : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

// moe_route returns top_k ids per token.
func.func @f(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{ids has shape ?x3, expected ?x2}}
  %0, %1 = dsv3.moe_route %l routing <experts = 8, top_k = 2, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0> : tensor<?x8xf32> -> tensor<?x3xi32>, tensor<?x2xf32>
  return
}

// -----

// moe_align has one offset per expert plus the end.
func.func @f(%ids: tensor<?x8xi32>) {
  // expected-error @+1 {{offsets has shape 256, expected 257}}
  %0, %1, %2 = dsv3.moe_align %ids experts 256 : tensor<?x8xi32> -> tensor<256xi32>, tensor<?xi32>, tensor<?xi32>
  return
}

// -----

// grouped_gemm with FP8 operands needs their scales.
func.func @f(%a: tensor<?x256xf8E4M3FN>, %w: tensor<2x128x256xf8E4M3FN>, %o: tensor<3xi32>) {
  // expected-error @+1 {{FP8 operands need scales and bf16 operands take none}}
  %0 = dsv3.grouped_gemm %a, %w offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<2x128x256xf8E4M3FN>, tensor<3xi32>) -> tensor<?x128xbf16>
  return
}

// -----

// grouped_gemm does not multiply quantized activations by a bf16 weight.
func.func @f(%a: tensor<?x256xf8E4M3FN>, %as: tensor<?x2xf32>, %w: tensor<2x128x256xbf16>, %o: tensor<3xi32>) {
  // expected-error @+1 {{operands must be FP8 x FP8, bf16 x FP8 or bf16 x bf16}}
  %0 = dsv3.grouped_gemm %a scales %as, %w offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<2x128x256xbf16>, tensor<3xi32>) -> tensor<?x128xbf16>
  return
}

// -----

// grouped_gemm's weight scales are per expert and block.
func.func @f(%a: tensor<?x256xf8E4M3FN>, %as: tensor<?x2xf32>, %w: tensor<2x128x256xf8E4M3FN>, %ws: tensor<2x1x1xf32>, %o: tensor<3xi32>) {
  // expected-error @+1 {{rhs scales has shape 2x1x1, expected 2x1x2}}
  %0 = dsv3.grouped_gemm %a scales %as, %w scales %ws offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<2x128x256xf8E4M3FN>, tensor<2x1x1xf32>, tensor<3xi32>) -> tensor<?x128xbf16>
  return
}

// -----

// grouped_gemm's offsets cover every expert.
func.func @f(%a: tensor<?x256xbf16>, %w: tensor<2x128x256xbf16>, %o: tensor<2xi32>) {
  // expected-error @+1 {{offsets has shape 2, expected 3}}
  %0 = dsv3.grouped_gemm %a, %w offsets %o block [1, 1] : (tensor<?x256xbf16>, tensor<2x128x256xbf16>, tensor<2xi32>) -> tensor<?x128xbf16>
  return
}

// -----

// moe_combine's shared expert output has the token rows.
func.func @f(%e: tensor<?x256xbf16>, %r: tensor<?xi32>, %w: tensor<4x2xf32>, %s: tensor<5x256xbf16>) {
  // expected-error @+1 {{shared has shape 5x256, expected 4x256}}
  %0 = dsv3.moe_combine %e, %r, %w, %s : tensor<?x256xbf16>, tensor<?xi32>, tensor<4x2xf32>, tensor<5x256xbf16> -> tensor<4x256xbf16>
  return
}

// -----

// concat adds the column counts.
func.func @f(%a: tensor<?x256xbf16>) {
  // expected-error @+1 {{result has shape ?x256, expected ?x512}}
  %0 = dsv3.concat %a, %a : tensor<?x256xbf16>, tensor<?x256xbf16> -> tensor<?x256xbf16>
  return
}

// -----

// rope_q takes one inverse frequency per rotary pair.
func.func @f(%q: tensor<?x96xbf16>, %p: tensor<?xi32>, %freq: tensor<16xf32>) {
  // expected-error @+1 {{inv_freq has shape 16, expected 8}}
  %0 = dsv3.rope_q %q, %p, %freq shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> rope_scale 1.0 : tensor<?x96xbf16>, tensor<?xi32>, tensor<16xf32>
  return
}

// -----

// The absorbed query has kv_lora values per head.
func.func @f(%q: tensor<?x96xbf16>, %kv_b: tensor<128x64xbf16>) {
  // expected-error @+1 {{result has shape ?x64, expected ?x128}}
  %0 = dsv3.mla_absorb_q %q, %kv_b shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> : tensor<?x96xbf16>, tensor<128x64xbf16> -> tensor<?x64xbf16>
  return
}

// -----

// kv_write reads the latent plus the rope key of each token.
func.func @f(%kv_a: tensor<?x64xbf16>, %n: tensor<64xbf16>, %p: tensor<?xi32>, %t: tensor<?x?xi32>, %freq: tensor<8xf32>) {
  // expected-error @+1 {{kv_a has shape ?x64, expected ?x80}}
  dsv3.kv_write %kv_a, %n, %p, %p, %t, %freq layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> rope_scale 1.0 eps 1.0e-6 : tensor<?x64xbf16>, tensor<64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<8xf32>
  return
}

// -----

// W_UV maps kv_lora back to v per head.
func.func @f(%lat: tensor<?x128xbf16>, %kv_b: tensor<96x64xbf16>) {
  // expected-error @+1 {{kv_b has shape 96x64, expected 128x64}}
  %0 = dsv3.mla_absorb_out %lat, %kv_b shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> : tensor<?x128xbf16>, tensor<96x64xbf16> -> tensor<?x64xbf16>
  return
}

// -----

// gather copies rows or widens them to f32, nothing else.
func.func @f(%table: tensor<512x256xbf16>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{result element type must be the table's or f32}}
  %0 = dsv3.gather %table[%ids] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xf16>
  return
}

// -----

// moe_combine reads the routed and the shared expert outputs alike.
func.func @f(%e: tensor<?x256xf32>, %rows: tensor<?xi32>, %w: tensor<?x2xf32>, %s: tensor<?x256xbf16>) {
  // expected-error @+1 {{shared and expert_out must have one element type}}
  %0 = dsv3.moe_combine %e, %rows, %w, %s : tensor<?x256xf32>, tensor<?xi32>, tensor<?x2xf32>, tensor<?x256xbf16> -> tensor<?x256xf32>
  return
}

// -----

// normalize keeps the row shape.
func.func @f(%x: tensor<?x256xf32>, %w: tensor<256xbf16>) {
  // expected-error @+1 {{result has shape ?x128, expected ?x256}}
  %0 = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x128xbf16>
  return
}

// -----

// mla_prefill_attention's kv holds each head's keys and values: heads * (nope + v) columns.
func.func @f(%q: tensor<?x96xf32>, %kv: tensor<?x96xbf16>, %p: tensor<?xi32>, %s: tensor<?xi32>, %bt: tensor<?x?xi32>, %o: tensor<?x64xbf16>) {
  // expected-error @+1 {{kv has shape ?x96, expected ?x128}}
  %0 = dsv3.mla_prefill_attention %q, %kv, %p, %s, %bt into %o layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> softmax_scale 0.2 : tensor<?x96xf32>, tensor<?x96xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return
}

// -----

// mla_prefill_attention's result is the output projection's bf16 input.
func.func @f(%q: tensor<?x96xf32>, %kv: tensor<?x128xbf16>, %p: tensor<?xi32>, %s: tensor<?xi32>, %bt: tensor<?x?xi32>, %o: tensor<?x64xf32>) {
  // expected-error @+1 {{result must be bf16 (the output projection's input)}}
  %0 = dsv3.mla_prefill_attention %q, %kv, %p, %s, %bt into %o layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> softmax_scale 0.2 : tensor<?x96xf32>, tensor<?x128xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xf32>
  return
}

// -----

// mla_prefill_attention writes heads * v columns.
func.func @f(%q: tensor<?x96xf32>, %kv: tensor<?x128xbf16>, %p: tensor<?xi32>, %s: tensor<?xi32>, %bt: tensor<?x?xi32>, %o: tensor<?x96xbf16>) {
  // expected-error @+1 {{into has shape ?x96, expected ?x64}}
  %0 = dsv3.mla_prefill_attention %q, %kv, %p, %s, %bt into %o layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> softmax_scale 0.2 : tensor<?x96xf32>, tensor<?x128xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x96xbf16>
  return
}

// -----

// A step guard is "fresh" or "resumed".
func.func @f(%x: tensor<?x128xbf16>, %w: tensor<128xbf16>) {
  // expected-error @+1 {{'dsv3.when' must be "fresh" or "resumed"}}
  %0 = dsv3.normalize %x, %w eps 1.0e-6 {dsv3.when = "always"} : tensor<?x128xbf16>, tensor<128xbf16> -> tensor<?x128xbf16>
  return
}

// -----

// A step guard applies to dsv3 kernel ops only.
func.func @f(%x: tensor<4xf32>) {
  // expected-error @+1 {{'dsv3.when' guards dsv3 kernel ops only}}
  %0 = arith.addf %x, %x {dsv3.when = "fresh"} : tensor<4xf32>
  return
}

// -----

// normalize_quant's blocks must divide the normalized channels.
func.func @f(%x: tensor<?x576xf32>, %w: tensor<576xbf16>) {
  // expected-error @+1 {{block 128 must divide the 576 normalized channels}}
  %q, %s = dsv3.normalize_quant %x, %w eps 1.0e-6 block 128 : tensor<?x576xf32>, tensor<576xbf16> -> tensor<?x576xf8E4M3FN>, tensor<?x5xf32>
  return
}

// -----

// normalize_quant has one scale per block of each row.
func.func @f(%x: tensor<?x576xf32>, %w: tensor<512xbf16>) {
  // expected-error @+1 {{scales has shape ?x5, expected ?x4}}
  %q, %s = dsv3.normalize_quant %x, %w eps 1.0e-6 block 128 : tensor<?x576xf32>, tensor<512xbf16> -> tensor<?x512xf8E4M3FN>, tensor<?x5xf32>
  return
}

// -----

// add_normalize_quant quantizes the whole normalized row.
func.func @f(%h: tensor<?x256xf32>, %w: tensor<256xbf16>) {
  // expected-error @+1 {{output has shape ?x128, expected ?x256}}
  %s, %q, %sc = dsv3.add_normalize_quant %h, %h, %w eps 1.0e-6 block 128 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x128xf8E4M3FN>, tensor<?x2xf32>
  return
}

// -----

// fp8_gemm_pair checks each product as fp8_gemm does, naming which.
func.func @f(%a: tensor<?x256xf8E4M3FN>, %as: tensor<?x2xf32>, %w0: tensor<128x256xf8E4M3FN>, %s0: tensor<1x2xf32>, %w1: tensor<80x256xf8E4M3FN>, %s1: tensor<1x1xf32>) {
  // expected-error @+1 {{rhs1 scales must be 1x2 (one per 128x128 block)}}
  %0, %1 = dsv3.fp8_gemm_pair %a scales %as, %w0 scales %s0, %w1 scales %s1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<128x256xf8E4M3FN>, tensor<1x2xf32>, tensor<80x256xf8E4M3FN>, tensor<1x1xf32>) -> (tensor<?x128xf32>, tensor<?x80xf32>)
  return
}

// -----

// fp8_gemm_pair's results share one element type (one kernel writes both).
func.func @f(%a: tensor<?x256xf8E4M3FN>, %as: tensor<?x2xf32>, %w0: tensor<128x256xf8E4M3FN>, %s0: tensor<1x2xf32>) {
  // expected-error @+1 {{result0 and result1 must have one element type}}
  %0, %1 = dsv3.fp8_gemm_pair %a scales %as, %w0 scales %s0, %w0 scales %s0 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<128x256xf8E4M3FN>, tensor<1x2xf32>, tensor<128x256xf8E4M3FN>, tensor<1x2xf32>) -> (tensor<?x128xf32>, tensor<?x128xbf16>)
  return
}

// -----

// grouped_gemm_pair checks each product as grouped_gemm does.
func.func @f(%a: tensor<?x256xf8E4M3FN>, %as: tensor<?x2xf32>, %w0: tensor<2x128x256xf8E4M3FN>, %s0: tensor<2x1x2xf32>, %w1: tensor<3x128x256xf8E4M3FN>, %s1: tensor<3x1x2xf32>, %o: tensor<3xi32>) {
  // expected-error @+1 {{offsets has shape 3, expected 4}}
  %0, %1 = dsv3.grouped_gemm_pair %a scales %as, %w0 scales %s0, %w1 scales %s1 offsets %o block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<2x128x256xf8E4M3FN>, tensor<2x1x2xf32>, tensor<3x128x256xf8E4M3FN>, tensor<3x1x2xf32>, tensor<3xi32>) -> (tensor<?x128xf32>, tensor<?x128xf32>)
  return
}
