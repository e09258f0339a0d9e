// Every dsv3 op and attribute prints in its custom form and parses back to
// the same IR, and the generic form parses too.
// RUN: dsv3-opt %s | dsv3-opt | FileCheck %s
// RUN: dsv3-opt --mlir-print-op-generic %s | dsv3-opt | FileCheck %s

// Weights: a block-scaled FP8 matrix with partial edge blocks (576 rows =
// 4.5 blocks), BF16 norms, the fp32 router bias.
// CHECK-LABEL: module
// CHECK: dsv3.weight @model.embed_tokens.weight : tensor<512x256xbf16>
// CHECK: dsv3.weight @l0.kv_a.weight : tensor<576x256xf8E4M3FN> scale <128x128, "l0.kv_a.weight_scale_inv" : 5x2>
// CHECK: dsv3.weight @bias : tensor<4xf32>
dsv3.weight @model.embed_tokens.weight : tensor<512x256xbf16>
dsv3.weight @norm : tensor<256xbf16>
dsv3.weight @q_a : tensor<64x256xf8E4M3FN> scale <128x128, "q_a_scale_inv" : 1x2>
dsv3.weight @q_a_norm : tensor<64xbf16>
dsv3.weight @q_b : tensor<96x64xf8E4M3FN> scale <128x128, "q_b_scale_inv" : 1x1>
dsv3.weight @q : tensor<96x256xbf16>
dsv3.weight @l0.kv_a.weight : tensor<576x256xf8E4M3FN> scale <128x128, "l0.kv_a.weight_scale_inv" : 5x2>
dsv3.weight @kv_a_norm : tensor<560xbf16>
dsv3.weight @kv_b : tensor<128x560xbf16>
dsv3.weight @o : tensor<256x64xbf16>
dsv3.weight @gate : tensor<32x256xbf16>
dsv3.weight @up : tensor<32x256xbf16>
dsv3.weight @down : tensor<256x32xbf16>
dsv3.weight @router : tensor<4x256xbf16>
dsv3.weight @bias : tensor<4xf32>
dsv3.weight @sgate : tensor<64x256xbf16>
dsv3.weight @sup : tensor<64x256xbf16>
dsv3.weight @sdown : tensor<256x64xbf16>
dsv3.weight @eh_proj : tensor<256x512xbf16>
dsv3.weight @head : tensor<512x256xbf16>

// CHECK-LABEL: func.func @graph
func.func @graph(%tokens: tensor<?x?xi32>, %positions: tensor<?x?xi32>) -> tensor<?x?x512xf32> {
  // CHECK: dsv3.embed %{{.*}} table @model.embed_tokens.weight : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  %h = dsv3.embed %tokens table @model.embed_tokens.weight : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  // CHECK: dsv3.rms_norm %{{.*}} weight @norm eps 9.9999999999999995E-7 : tensor<?x?x256xbf16>
  %n = dsv3.rms_norm %h weight @norm eps 1.0e-6 : tensor<?x?x256xbf16>
  // CHECK: dsv3.mla %{{.*}}, %{{.*}} layer 0 shape <heads = 2, q_lora_rank = 64, kv_lora_rank = 560, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
  // CHECK-SAME: rope <theta = 1.000000e+04, yarn_factor = 4.000000e+01, original_max_position = 4096, beta_fast = 3.200000e+01, beta_slow = 1.000000e+00, mscale = 1.000000e+00, mscale_all_dim = 1.000000e+00>
  // CHECK-SAME: softmax_scale 1.250000e-01 eps 9.9999999999999995E-7 q_a @q_a q_a_norm @q_a_norm q_b @q_b kv_a @l0.kv_a.weight kv_a_norm @kv_a_norm kv_b @kv_b o @o
  %a = dsv3.mla %n, %positions layer 0
      shape <heads = 2, q_lora_rank = 64, kv_lora_rank = 560, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 40.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>
      softmax_scale 0.125 eps 1.0e-6
      q_a @q_a q_a_norm @q_a_norm q_b @q_b kv_a @l0.kv_a.weight kv_a_norm @kv_a_norm kv_b @kv_b o @o
      : tensor<?x?x256xbf16>, tensor<?x?xi32>
  // A direct query projection when there is no query LoRA.
  // CHECK: dsv3.mla {{.*}} q @q kv_a @l0.kv_a.weight
  %a2 = dsv3.mla %a, %positions layer 1
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 560, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      q @q kv_a @l0.kv_a.weight kv_a_norm @kv_a_norm kv_b @kv_b o @o
      : tensor<?x?x256xbf16>, tensor<?x?xi32>
  // CHECK: dsv3.dense_mlp %{{.*}} gate @gate up @up down @down : tensor<?x?x256xbf16>
  %d = dsv3.dense_mlp %a2 gate @gate up @up down @down : tensor<?x?x256xbf16>
  // CHECK: dsv3.moe %{{.*}} routing <experts = 4, top_k = 2, groups = 2, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.500000e+00>
  // CHECK-SAME: router @router bias @bias experts [@gate, @up, @down, @gate, @up, @down, @gate, @up, @down, @gate, @up, @down] shared [@sgate, @sup, @sdown]
  %m = dsv3.moe %d routing <experts = 4, top_k = 2, groups = 2, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.5>
      router @router bias @bias
      experts [@gate, @up, @down, @gate, @up, @down, @gate, @up, @down, @gate, @up, @down]
      shared [@sgate, @sup, @sdown] : tensor<?x?x256xbf16>
  // Softmax routing without bias or shared experts.
  // CHECK: dsv3.moe %{{.*}} routing <experts = 4, top_k = 2, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.000000e+00> router @router experts
  // CHECK-NOT: shared
  %m2 = dsv3.moe %m routing <experts = 4, top_k = 2, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @router
      experts [@gate, @up, @down, @gate, @up, @down, @gate, @up, @down, @gate, @up, @down] : tensor<?x?x256xbf16>
  // CHECK: dsv3.mtp %{{.*}}, %{{.*}} enorm @norm hnorm @norm eh_proj @eh_proj eps 9.9999999999999995E-7 : tensor<?x?x256xbf16>
  %t = dsv3.mtp %m2, %h enorm @norm hnorm @norm eh_proj @eh_proj eps 1.0e-6 : tensor<?x?x256xbf16>
  // CHECK: dsv3.lm_head %{{.*}} head @head : tensor<?x?x256xbf16> -> tensor<?x?x512xf32>
  %logits = dsv3.lm_head %t head @head : tensor<?x?x256xbf16> -> tensor<?x?x512xf32>
  return %logits : tensor<?x?x512xf32>
}

// CHECK-LABEL: func.func @kernels
func.func @kernels(%x: tensor<?x256xbf16>) -> (tensor<?x576xbf16>, tensor<576x256xbf16>) {
  // CHECK: %[[W:.*]]:2 = dsv3.weight_ref @l0.kv_a.weight : tensor<576x256xf8E4M3FN>, tensor<5x2xf32>
  %w, %ws = dsv3.weight_ref @l0.kv_a.weight : tensor<576x256xf8E4M3FN>, tensor<5x2xf32>
  // CHECK: dsv3.weight_ref @norm : tensor<256xbf16>
  %g = dsv3.weight_ref @norm : tensor<256xbf16>
  // CHECK: dsv3.act_quant %{{.*}} block 128 : tensor<?x256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  %q, %qs = dsv3.act_quant %x block 128 : tensor<?x256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  // CHECK: dsv3.fp8_gemm %{{.*}} scales %{{.*}}, %[[W]]#0 scales %[[W]]#1 block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<576x256xf8E4M3FN>, tensor<5x2xf32>) -> tensor<?x576xbf16>
  %y = dsv3.fp8_gemm %q scales %qs, %w scales %ws block [128, 128] : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<576x256xf8E4M3FN>, tensor<5x2xf32>) -> tensor<?x576xbf16>
  // CHECK: dsv3.fp8_gemm %{{.*}}, %[[W]]#0 scales %[[W]]#1 block [128, 128] : (tensor<?x256xbf16>, tensor<576x256xf8E4M3FN>, tensor<5x2xf32>) -> tensor<?x576xbf16>
  %yw = dsv3.fp8_gemm %x, %w scales %ws block [128, 128] : (tensor<?x256xbf16>, tensor<576x256xf8E4M3FN>, tensor<5x2xf32>) -> tensor<?x576xbf16>
  // CHECK: dsv3.dequant %[[W]]#0, %[[W]]#1 block [128, 128] : tensor<576x256xf8E4M3FN>, tensor<5x2xf32> -> tensor<576x256xbf16>
  %d = dsv3.dequant %w, %ws block [128, 128] : tensor<576x256xf8E4M3FN>, tensor<5x2xf32> -> tensor<576x256xbf16>
  return %y, %d : tensor<?x576xbf16>, tensor<576x256xbf16>
}
