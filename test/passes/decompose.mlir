// RUN: dsv3-opt %s --split-input-file --dsv3-decompose | FileCheck %s --check-prefixes=CHECK,BF16ACT
// RUN: dsv3-opt %s --split-input-file --dsv3-decompose="quantize-activations=true" | FileCheck %s --check-prefixes=CHECK,FP8ACT

// The entry point takes flattened tokens plus the step inputs, and returns the
// last tokens' logits and the hidden rows; embed becomes a gather into f32
// rows (the residual stream), rms_norm a normalize to bf16 (a GEMM input),
// lm_head picks the last rows before its f32 GEMM.
dsv3.weight @embed : tensor<512x256xbf16>
dsv3.weight @norm : tensor<256xbf16>
dsv3.weight @head : tensor<512x256xbf16>
func.func @prefill(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x512xf32>, tensor<?x?x256xbf16>) {
  %h = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %n = dsv3.rms_norm %h weight @norm eps 1.0e-6 : tensor<?x?x256xbf16>
  %l = dsv3.lm_head %n head @head : tensor<?x?x256xbf16> -> tensor<?x?x512xf32>
  return %l, %h : tensor<?x?x512xf32>, tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @prefill(
// CHECK-SAME: %[[TOKENS:[a-z0-9]+]]: tensor<?xi32> {dsv3.input = "tokens"}, %{{.*}}: tensor<?xi32> {dsv3.input = "positions"}, %{{.*}}: tensor<?xi32> {dsv3.input = "token_seq"}, %{{.*}}: tensor<?x?xi32> {dsv3.input = "block_table"}, %[[LAST:[a-z0-9]+]]: tensor<?xi32> {dsv3.input = "last_rows"})
// CHECK-SAME: -> (tensor<?x512xf32>, tensor<?x256xf32>)
// CHECK: %[[TABLE:.*]] = dsv3.weight_ref @embed : tensor<512x256xbf16>
// CHECK: %[[H:.*]] = dsv3.gather %[[TABLE]][%[[TOKENS]]] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xf32>
// CHECK: %[[N:.*]] = dsv3.normalize %[[H]], %{{.*}} eps {{.*}} : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
// CHECK: %[[PICK:.*]] = dsv3.gather %[[N]][%[[LAST]]] : tensor<?x256xbf16>, tensor<?xi32> -> tensor<?x256xbf16>
// CHECK: %[[L:.*]] = dsv3.bf16_gemm %[[PICK]], %{{.*}} : tensor<?x256xbf16>, tensor<512x256xbf16> -> tensor<?x512xf32>
// CHECK: return %[[L]], %[[H]]

// -----

// A dense MLP with FP8 weights, fed the f32 embedding directly: it is
// converted to bf16 for the GEMMs, which write f32. By default each
// projection reads the bf16 activations; with quantize-activations each quantizes its input in the
// weight's column blocks, and the SwiGLU product is quantized as it is formed.
dsv3.weight @gate : tensor<512x256xf8E4M3FN> scale <128x128, "gate_s" : 4x2>
dsv3.weight @up : tensor<512x256xf8E4M3FN> scale <128x128, "up_s" : 4x2>
dsv3.weight @down : tensor<256x512xf8E4M3FN> scale <128x128, "down_s" : 2x4>
dsv3.weight @embed : tensor<512x256xbf16>
func.func @decode(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %y = dsv3.dense_mlp %x gate @gate up @up down @down : tensor<?x?x256xbf16>
  return %y : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK: %[[X32:.*]] = dsv3.gather
// CHECK: %[[X:.*]] = dsv3.convert %[[X32]] : tensor<?x256xf32> -> tensor<?x256xbf16>
// CHECK: %[[G:.*]]:2 = dsv3.weight_ref @gate : tensor<512x256xf8E4M3FN>, tensor<4x2xf32>
// BF16ACT-NOT: act_quant
// BF16ACT: %[[GATE:.*]] = dsv3.fp8_gemm %[[X]], %[[G]]#0 scales %[[G]]#1 block [128, 128] : (tensor<?x256xbf16>, tensor<512x256xf8E4M3FN>, tensor<4x2xf32>) -> tensor<?x512xf32>
// BF16ACT: %[[UP:.*]] = dsv3.fp8_gemm %[[X]],
// BF16ACT: %[[H:.*]] = dsv3.swiglu %[[GATE]], %[[UP]] : tensor<?x512xf32> -> tensor<?x512xbf16>
// BF16ACT: %[[D:.*]]:2 = dsv3.weight_ref @down
// BF16ACT: dsv3.fp8_gemm %[[H]], %[[D]]#0 scales %[[D]]#1 block [128, 128] {{.*}} -> tensor<?x256xf32>
// FP8ACT: %[[XQ:.*]], %[[XS:.*]] = dsv3.act_quant %[[X]] block 128 : tensor<?x256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
// FP8ACT: %[[GATE:.*]] = dsv3.fp8_gemm %[[XQ]] scales %[[XS]], %[[G]]#0 scales %[[G]]#1 block [128, 128] {{.*}} -> tensor<?x512xbf16>
// FP8ACT: %[[UP:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x512xbf16>
// FP8ACT: %[[HQ:.*]], %[[HS:.*]] = dsv3.swiglu_quant %[[GATE]], %[[UP]] block 128 : tensor<?x512xbf16> -> tensor<?x512xf8E4M3FN>, tensor<?x4xf32>
// FP8ACT: %[[D:.*]]:2 = dsv3.weight_ref @down
// FP8ACT: dsv3.fp8_gemm %[[HQ]] scales %[[HS]], %[[D]]#0 scales %[[D]]#1 block [128, 128] {{.*}} -> tensor<?x256xf32>

// -----

// BF16 weights: bf16_gemm for every projection and a plain swiglu.
dsv3.weight @gate : tensor<512x256xbf16>
dsv3.weight @up : tensor<512x256xbf16>
dsv3.weight @down : tensor<256x512xbf16>
dsv3.weight @embed : tensor<512x256xbf16>
func.func @decode(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %y = dsv3.dense_mlp %x gate @gate up @up down @down : tensor<?x?x256xbf16>
  return %y : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK-NOT: act_quant
// CHECK: %[[GATE:.*]] = dsv3.bf16_gemm %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<512x256xbf16> -> tensor<?x512xf32>
// CHECK: %[[UP:.*]] = dsv3.bf16_gemm
// CHECK: %[[H:.*]] = dsv3.swiglu %[[GATE]], %[[UP]] : tensor<?x512xf32> -> tensor<?x512xbf16>
// CHECK: dsv3.bf16_gemm %[[H]], %{{.*}} : tensor<?x512xbf16>, tensor<256x512xbf16> -> tensor<?x256xf32>

// -----

// MLA with a query LoRA and FP8 projections: q_a, its norm and q_b; kv_a;
// kv_b dequantized to bf16 for mla_core, which gets the step's positions,
// sequences and cache pages; the output projection last.
dsv3.weight @embed : tensor<512x256xbf16>
dsv3.weight @q_a : tensor<64x256xf8E4M3FN> scale <128x128, "q_a_s" : 1x2>
dsv3.weight @q_a_norm : tensor<64xbf16>
dsv3.weight @q_b : tensor<96x64xf8E4M3FN> scale <128x128, "q_b_s" : 1x1>
dsv3.weight @kv_a : tensor<80x256xf8E4M3FN> scale <128x128, "kv_a_s" : 1x2>
dsv3.weight @kv_norm : tensor<64xbf16>
dsv3.weight @kv_b : tensor<128x64xf8E4M3FN> scale <128x128, "kv_b_s" : 1x1>
dsv3.weight @o : tensor<256x64xf8E4M3FN> scale <128x128, "o_s" : 2x1>
func.func @prefill(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %a = dsv3.mla %x, %positions layer 7
      shape <heads = 2, q_lora_rank = 64, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      q_a @q_a q_a_norm @q_a_norm q_b @q_b kv_a @kv_a kv_a_norm @kv_norm kv_b @kv_b o @o
      : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return %a : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @prefill(
// CHECK-SAME: %{{[a-z0-9]+}}: tensor<?xi32> {{{.*}}}, %[[POS:[a-z0-9]+]]: tensor<?xi32> {{{.*}}}, %[[SEQ:[a-z0-9]+]]: tensor<?xi32> {{{.*}}}, %[[PAGES:[a-z0-9]+]]: tensor<?x?xi32> {{{.*}}}, %{{[a-z0-9]+}}: tensor<?xi32> {{{.*}}})
// CHECK: %[[QA:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x64xf32>
// CHECK: %[[QAN:.*]] = dsv3.normalize %[[QA]], {{.*}} -> tensor<?x64xbf16>
// CHECK: %[[Q:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x96xf32>
// CHECK: %[[KVA:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x80xf32>
// CHECK: %[[KVB:.*]]:2 = dsv3.weight_ref @kv_b
// CHECK: %[[KVB16:.*]] = dsv3.dequant %[[KVB]]#0, %[[KVB]]#1 block [128, 128] : tensor<128x64xf8E4M3FN>, tensor<1x1xf32> -> tensor<128x64xbf16>
// CHECK: %[[NORM:.*]] = dsv3.weight_ref @kv_norm
// CHECK: %[[ATT:.*]] = dsv3.mla_core %[[Q]], %[[KVA]], %[[NORM]], %[[KVB16]], %[[POS]], %[[SEQ]], %[[PAGES]] layer 7
// CHECK-SAME: -> tensor<?x64xbf16>
// BF16ACT: dsv3.fp8_gemm %[[ATT]], {{.*}} -> tensor<?x256xf32>
// FP8ACT: dsv3.act_quant %[[ATT]]
// FP8ACT: dsv3.fp8_gemm {{.*}} -> tensor<?x256xf32>

// -----

// MLA without a query LoRA projects the query directly.
dsv3.weight @embed : tensor<512x256xbf16>
dsv3.weight @q : tensor<96x256xbf16>
dsv3.weight @kv_a : tensor<80x256xbf16>
dsv3.weight @kv_norm : tensor<64xbf16>
dsv3.weight @kv_b : tensor<128x64xbf16>
dsv3.weight @o : tensor<256x64xbf16>
func.func @prefill(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %a = dsv3.mla %x, %positions layer 0
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      q @q kv_a @kv_a kv_a_norm @kv_norm kv_b @kv_b o @o
      : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return %a : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @prefill
// CHECK: %[[Q:.*]] = dsv3.bf16_gemm %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<96x256xbf16> -> tensor<?x96xf32>
// CHECK-NOT: dequant
// CHECK: %[[KVB:.*]] = dsv3.weight_ref @kv_b : tensor<128x64xbf16>
// CHECK: dsv3.mla_core %[[Q]], %{{.*}}, %{{.*}}, %[[KVB]],

// -----

// FP8 MoE with noaux_tc routing and a shared expert: router GEMM in f32,
// route, align, the token rows gathered into the stacked experts' grouped
// GEMMs, the SwiGLU (quantized for the down projection when quantizing
// activations), the shared expert as
// a dense SwiGLU, and the weighted combine.
dsv3.weight @embed : tensor<512x256xbf16>
dsv3.weight @router : tensor<2x256xbf16>
dsv3.weight @bias : tensor<2xf32>
dsv3.weight @g0 : tensor<128x256xf8E4M3FN> scale <128x128, "g0_s" : 1x2>
dsv3.weight @u0 : tensor<128x256xf8E4M3FN> scale <128x128, "u0_s" : 1x2>
dsv3.weight @d0 : tensor<256x128xf8E4M3FN> scale <128x128, "d0_s" : 2x1>
dsv3.weight @g1 : tensor<128x256xf8E4M3FN> scale <128x128, "g1_s" : 1x2>
dsv3.weight @u1 : tensor<128x256xf8E4M3FN> scale <128x128, "u1_s" : 1x2>
dsv3.weight @d1 : tensor<256x128xf8E4M3FN> scale <128x128, "d1_s" : 2x1>
dsv3.weight @sg : tensor<128x256xf8E4M3FN> scale <128x128, "sg_s" : 1x2>
dsv3.weight @su : tensor<128x256xf8E4M3FN> scale <128x128, "su_s" : 1x2>
dsv3.weight @sd : tensor<256x128xf8E4M3FN> scale <128x128, "sd_s" : 2x1>
func.func @decode(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %y = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.5>
      router @router bias @bias experts [@g0, @u0, @d0, @g1, @u1, @d1] shared [@sg, @su, @sd] : tensor<?x?x256xbf16>
  return %y : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK: %[[X:.*]] = dsv3.convert
// CHECK: %[[LOGITS:.*]] = dsv3.bf16_gemm %[[X]], %{{.*}} : tensor<?x256xbf16>, tensor<2x256xbf16> -> tensor<?x2xf32>
// CHECK: %[[BIAS:.*]] = dsv3.weight_ref @bias : tensor<2xf32>
// CHECK: %[[IDS:.*]], %[[WEIGHTS:.*]] = dsv3.moe_route %[[LOGITS]], %[[BIAS]] routing <experts = 2, top_k = 1,
// CHECK: %[[OFFSETS:.*]], %[[TOKENS:.*]], %[[ROWS:.*]] = dsv3.moe_align %[[IDS]] experts 2 : tensor<?x1xi32> -> tensor<3xi32>, tensor<?xi32>, tensor<?xi32>
// CHECK: %[[G:.*]]:2 = dsv3.stacked_weight_ref [@g0, @g1] : tensor<2x128x256xf8E4M3FN>, tensor<2x1x2xf32>
// CHECK: %[[U:.*]]:2 = dsv3.stacked_weight_ref [@u0, @u1]
// CHECK: %[[D:.*]]:2 = dsv3.stacked_weight_ref [@d0, @d1] : tensor<2x256x128xf8E4M3FN>, tensor<2x2x1xf32>
// BF16ACT: %[[GATE:.*]] = dsv3.grouped_gemm %[[X]] gather %[[TOKENS]], %[[G]]#0 scales %[[G]]#1 offsets %[[OFFSETS]] block [128, 128]
// BF16ACT: %[[UP:.*]] = dsv3.grouped_gemm %[[X]] gather %[[TOKENS]], %[[U]]#0 scales %[[U]]#1
// BF16ACT: %[[H:.*]] = dsv3.swiglu %[[GATE]], %[[UP]]
// BF16ACT: %[[DOWN:.*]] = dsv3.grouped_gemm %[[H]], %[[D]]#0 scales %[[D]]#1 offsets %[[OFFSETS]]
// FP8ACT: %[[XQ:.*]], %[[XS:.*]] = dsv3.act_quant %[[X]] block 128
// FP8ACT: %[[GATE:.*]] = dsv3.grouped_gemm %[[XQ]] scales %[[XS]] gather %[[TOKENS]], %[[G]]#0 scales %[[G]]#1 offsets %[[OFFSETS]] block [128, 128] {{.*}} -> tensor<?x128xbf16>
// FP8ACT: %[[UP:.*]] = dsv3.grouped_gemm %[[XQ]] scales %[[XS]] gather %[[TOKENS]], %[[U]]#0 {{.*}} -> tensor<?x128xbf16>
// FP8ACT: %[[HQ:.*]], %[[HS:.*]] = dsv3.swiglu_quant %[[GATE]], %[[UP]] block 128 : tensor<?x128xbf16>
// FP8ACT: %[[DOWN:.*]] = dsv3.grouped_gemm %[[HQ]] scales %[[HS]], %[[D]]#0 scales %[[D]]#1 offsets %[[OFFSETS]] {{.*}} -> tensor<?x256xbf16>
// BF16ACT: %[[SHARED:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x256xf32>
// BF16ACT: dsv3.moe_combine %[[DOWN]], %[[ROWS]], %[[WEIGHTS]], %[[SHARED]] : tensor<?x256xf32>, tensor<?xi32>, tensor<?x1xf32>, tensor<?x256xf32> -> tensor<?x256xf32>
// FP8ACT: %[[SG:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x128xbf16>
// FP8ACT: %[[SU:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x128xbf16>
// FP8ACT: dsv3.swiglu_quant %[[SG]], %[[SU]] block 128 : tensor<?x128xbf16>
// FP8ACT: %[[SHARED:.*]] = dsv3.fp8_gemm {{.*}} -> tensor<?x256xbf16>
// FP8ACT: dsv3.moe_combine %[[DOWN]], %[[ROWS]], %[[WEIGHTS]], %[[SHARED]] : tensor<?x256xbf16>, tensor<?xi32>, tensor<?x1xf32>, tensor<?x256xbf16> -> tensor<?x256xf32>

// -----

// BF16 MoE with softmax routing, no bias and no shared experts.
dsv3.weight @embed : tensor<512x256xbf16>
dsv3.weight @router : tensor<2x256xbf16>
dsv3.weight @g0 : tensor<128x256xbf16>
dsv3.weight @u0 : tensor<128x256xbf16>
dsv3.weight @d0 : tensor<256x128xbf16>
dsv3.weight @g1 : tensor<128x256xbf16>
dsv3.weight @u1 : tensor<128x256xbf16>
dsv3.weight @d1 : tensor<256x128xbf16>
func.func @decode(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %x = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %y = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @router experts [@g0, @u0, @d0, @g1, @u1, @d1] : tensor<?x?x256xbf16>
  return %y : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK: %[[X:.*]] = dsv3.convert
// CHECK: dsv3.moe_route %{{[0-9]+}} routing
// CHECK-NOT: act_quant
// CHECK: %[[GATE:.*]] = dsv3.grouped_gemm %[[X]] gather %{{.*}}, %{{.*}} offsets %{{.*}} block [1, 1] : (tensor<?x256xbf16>, tensor<?xi32>, tensor<2x128x256xbf16>, tensor<3xi32>) -> tensor<?x128xf32>
// CHECK: %[[H:.*]] = dsv3.swiglu %[[GATE]], %{{.*}} : tensor<?x128xf32> -> tensor<?x128xbf16>
// CHECK: %[[DOWN:.*]] = dsv3.grouped_gemm %[[H]], %{{.*}} offsets
// CHECK: dsv3.moe_combine %[[DOWN]], %{{.*}}, %{{.*}} : tensor<?x256xf32>, tensor<?xi32>, tensor<?x1xf32> -> tensor<?x256xf32>

// -----

// An MTP entry takes the previous depth's hidden rows first; its input op
// normalizes both halves, concatenates them and projects with eh_proj.
dsv3.weight @embed : tensor<512x256xbf16>
dsv3.weight @enorm : tensor<256xbf16>
dsv3.weight @hnorm : tensor<256xbf16>
dsv3.weight @eh : tensor<256x512xbf16>
func.func @mtp_draft(%hidden: tensor<?x?x256xbf16>, %tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> (tensor<?x?x256xbf16>) {
  %e = dsv3.embed %tokens table @embed : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %h = dsv3.mtp %hidden, %e enorm @enorm hnorm @hnorm eh_proj @eh eps 1.0e-6 : tensor<?x?x256xbf16>
  return %h : tensor<?x?x256xbf16>
}
// CHECK-LABEL: func.func @mtp_draft(
// CHECK-SAME: %[[HIDDEN:[a-z0-9]+]]: tensor<?x256xbf16> {dsv3.input = "hidden"}, %[[TOKENS:[a-z0-9]+]]: tensor<?xi32> {dsv3.input = "tokens"},
// CHECK: %[[E:.*]] = dsv3.gather %{{.*}}[%[[TOKENS]]]
// CHECK: %[[EN:.*]] = dsv3.normalize %[[E]]
// CHECK: %[[HN:.*]] = dsv3.normalize %[[HIDDEN]]
// CHECK: %[[BOTH:.*]] = dsv3.concat %[[EN]], %[[HN]] : tensor<?x256xbf16>, tensor<?x256xbf16> -> tensor<?x512xbf16>
// CHECK: dsv3.bf16_gemm %[[BOTH]], %{{.*}} : tensor<?x512xbf16>, tensor<256x512xbf16> -> tensor<?x256xf32>

