// RUN: dsv3-opt %s --split-input-file --dsv3-plan-memory="max-tokens=64 max-sequences=4" -verify-diagnostics | FileCheck %s

// Rows are bounded by the step limits: token rows by max-tokens (64), last
// rows by max-sequences (4). Offsets are 256-byte aligned; a value whose last
// use is past reuses space, inputs of an op never share with its results.
// Weights and constants take no arena space; results live to the end.
dsv3.weight @table : tensor<512x256xbf16>
dsv3.weight @w : tensor<256xbf16>
func.func @prefill(%tokens: tensor<?xi32> {dsv3.input = "tokens"}, %positions: tensor<?xi32> {dsv3.input = "positions"}, %seq: tensor<?xi32> {dsv3.input = "token_seq"}, %pages: tensor<?x?xi32> {dsv3.input = "block_table"}, %last: tensor<?xi32> {dsv3.input = "last_rows"}) -> (tensor<?x256xbf16>, tensor<?x256xbf16>) {
  %t = dsv3.weight_ref @table : tensor<512x256xbf16>
  %w = dsv3.weight_ref @w : tensor<256xbf16>
  %x = dsv3.gather %t[%tokens] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xbf16>
  %a = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  %b = dsv3.normalize %a, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  %c = dsv3.normalize %b, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  %l = dsv3.gather %c[%last] : tensor<?x256xbf16>, tensor<?xi32> -> tensor<?x256xbf16>
  return %l, %x : tensor<?x256xbf16>, tensor<?x256xbf16>
}
// 64 rows x 256 x 2 bytes = 32768 bytes per token tensor; 4 x 512 = 2048 for the last rows.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: attributes {dsv3.arena_bytes = 98304 : i64}
// CHECK: dsv3.weight_ref @table :
// CHECK-NOT: dsv3.offsets
// CHECK: dsv3.gather {{.*}} {dsv3.offsets = array<i64: 0>, dsv3.rows = ["T"]}
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: 32768>, dsv3.rows = ["T"]}
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: 65536>, dsv3.rows = ["T"]}
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: 32768>, dsv3.rows = ["T"]}
// CHECK: dsv3.gather {{.*}} {dsv3.offsets = array<i64: 65536>, dsv3.rows = ["B"]}

// -----

// Routed rows are top_k times the tokens; expert offsets are a constant size.
func.func @decode(%logits: tensor<?x8xf32> {dsv3.input = "tokens"}) -> tensor<?xi32> {
  %ids, %weights = dsv3.moe_route %logits routing <experts = 8, top_k = 2, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0> : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
  %offsets, %tok, %rows = dsv3.moe_align %ids experts 8 : tensor<?x2xi32> -> tensor<9xi32>, tensor<?xi32>, tensor<?xi32>
  return %rows : tensor<?xi32>
}
// CHECK-LABEL: func.func @decode
// CHECK: dsv3.moe_route {{.*}} dsv3.rows = ["T", "T"]
// CHECK: dsv3.moe_align {{.*}} dsv3.rows = ["9", "2*T", "2*T"]

// -----

// Arguments need a step-input role.
// expected-error @+1 {{argument 0 has no dsv3.input role (run dsv3-decompose first)}}
func.func @prefill(%x: tensor<?x4xbf16>) -> tensor<?x4xbf16> {
  %y = arith.addf %x, %x : tensor<?x4xbf16>
  return %y : tensor<?x4xbf16>
}


// -----

// rope_q rotates in place: its result shares its input's offset.
func.func @prefill(%q: tensor<?x96xbf16> {dsv3.input = "tokens"}, %pos: tensor<?xi32> {dsv3.input = "positions"}, %w: tensor<96xbf16> {dsv3.input = "tokens"}) -> tensor<?x96xbf16> {
  %freq = arith.constant dense<[1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125]> : tensor<8xf32>
  %n = dsv3.normalize %q, %w eps 1.0e-6 : tensor<?x96xbf16>, tensor<96xbf16> -> tensor<?x96xbf16>
  %r = dsv3.rope_q %n, %pos, %freq shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> rope_scale 1.0 : tensor<?x96xbf16>, tensor<?xi32>, tensor<8xf32>
  %m = dsv3.normalize %r, %w eps 1.0e-6 : tensor<?x96xbf16>, tensor<96xbf16> -> tensor<?x96xbf16>
  return %m : tensor<?x96xbf16>
}
// CHECK-LABEL: func.func @prefill
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: [[N:[0-9]+]]>
// CHECK: dsv3.rope_q {{.*}} {dsv3.offsets = array<i64: [[N]]>, dsv3.rows = ["T"]}
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: {{[0-9]+}}>

// -----

// In place is impossible when the input is read after the rotation.
func.func @prefill(%q: tensor<?x96xbf16> {dsv3.input = "tokens"}, %pos: tensor<?xi32> {dsv3.input = "positions"}, %w: tensor<96xbf16> {dsv3.input = "tokens"}) -> (tensor<?x96xbf16>, tensor<?x96xbf16>) {
  %freq = arith.constant dense<[1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125]> : tensor<8xf32>
  %n = dsv3.normalize %q, %w eps 1.0e-6 : tensor<?x96xbf16>, tensor<96xbf16> -> tensor<?x96xbf16>
  // expected-error @+1 {{writes in place, but its operand is read again after it}}
  %r = dsv3.rope_q %n, %pos, %freq shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> rope_scale 1.0 : tensor<?x96xbf16>, tensor<?xi32>, tensor<8xf32>
  return %r, %n : tensor<?x96xbf16>, tensor<?x96xbf16>
}

// -----

// mla_prefill_attention writes the buffer of the absorbed result it is an
// alternative to; values between them keep their own space.
func.func @prefill(%q: tensor<?x96xf32> {dsv3.input = "hidden"}, %kv: tensor<?x128xbf16> {dsv3.input = "hidden"}, %pos: tensor<?xi32> {dsv3.input = "positions"}, %seq: tensor<?xi32> {dsv3.input = "token_seq"}, %pages: tensor<?x?xi32> {dsv3.input = "block_table"}, %w: tensor<64xbf16> {dsv3.input = "hidden"}) -> tensor<?x64xbf16> {
  %a = dsv3.normalize %kv, %w eps 1.0e-6 : tensor<?x128xbf16>, tensor<64xbf16> -> tensor<?x64xbf16>
  %c = dsv3.normalize %kv, %w eps 1.0e-6 : tensor<?x128xbf16>, tensor<64xbf16> -> tensor<?x64xbf16>
  %o = dsv3.mla_prefill_attention %q, %kv, %pos, %seq, %pages into %a layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> softmax_scale 0.125 : tensor<?x96xf32>, tensor<?x128xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  %m = dsv3.normalize %o, %w eps 1.0e-6 : tensor<?x64xbf16>, tensor<64xbf16> -> tensor<?x64xbf16>
  return %m : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @prefill
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: [[A:[0-9]+]]>
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: [[C:[0-9]+]]>
// CHECK: dsv3.mla_prefill_attention {{.*}} into {{.*}} {dsv3.offsets = array<i64: [[A]]>, dsv3.rows = ["T"]}
// CHECK: dsv3.normalize {{.*}} {dsv3.offsets = array<i64: {{[0-9]+}}>

// -----

// The absorbed result must not be read after the direct attention replaces it.
func.func @prefill(%q: tensor<?x96xf32> {dsv3.input = "hidden"}, %kv: tensor<?x128xbf16> {dsv3.input = "hidden"}, %pos: tensor<?xi32> {dsv3.input = "positions"}, %seq: tensor<?xi32> {dsv3.input = "token_seq"}, %pages: tensor<?x?xi32> {dsv3.input = "block_table"}, %w: tensor<64xbf16> {dsv3.input = "hidden"}) -> (tensor<?x64xbf16>, tensor<?x64xbf16>) {
  %a = dsv3.normalize %kv, %w eps 1.0e-6 : tensor<?x128xbf16>, tensor<64xbf16> -> tensor<?x64xbf16>
  // expected-error @+1 {{writes in place, but its operand is read again after it}}
  %o = dsv3.mla_prefill_attention %q, %kv, %pos, %seq, %pages into %a layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> softmax_scale 0.125 : tensor<?x96xf32>, tensor<?x128xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o, %a : tensor<?x64xbf16>, tensor<?x64xbf16>
}
