// The kernel-level ops print in their custom form and parse back.
// RUN: dsv3-opt %s | dsv3-opt | FileCheck %s
// RUN: dsv3-opt --mlir-print-op-generic %s | dsv3-opt | FileCheck %s

dsv3.weight @g0 : tensor<128x256xf8E4M3FN> scale <128x128, "g0_s" : 1x2>
dsv3.weight @g1 : tensor<128x256xf8E4M3FN> scale <128x128, "g1_s" : 1x2>

// CHECK-LABEL: func.func @kernels
func.func @kernels(%table: tensor<512x256xbf16>, %ids: tensor<?xi32>, %w: tensor<256xbf16>,
                   %wq: tensor<96x256xbf16>, %kv_b: tensor<128x64xbf16>, %kv_norm: tensor<64xbf16>,
                   %pages: tensor<?x?xi32>, %bias: tensor<2xf32>, %kv_a: tensor<?x80xbf16>,
                   %router: tensor<?x2xf32>) {
  // CHECK: %[[X:.*]] = dsv3.gather %{{.*}}[%{{.*}}] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xbf16>
  %x = dsv3.gather %table[%ids] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xbf16>
  // CHECK: dsv3.normalize %[[X]], %{{.*}} eps 9.9999999999999995E-7 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  %n = dsv3.normalize %x, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  // The residual stream in f32: embedding rows widened, the sum kept in f32,
  // the normalized rows rounded to bf16 for the GEMM.
  // CHECK: %[[X32:.*]] = dsv3.gather %{{.*}}[%{{.*}}] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xf32>
  %x32 = dsv3.gather %table[%ids] : tensor<512x256xbf16>, tensor<?xi32> -> tensor<?x256xf32>
  // CHECK: dsv3.normalize %[[X32]], %{{.*}} eps 9.9999999999999995E-7 : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
  %n32 = dsv3.normalize %x32, %w eps 1.0e-6 : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
  // CHECK: %{{.*}}, %{{.*}} = dsv3.add_normalize %[[X32]], %[[X32]], %{{.*}} eps 9.9999999999999995E-7 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
  %sum32, %normed32 = dsv3.add_normalize %x32, %x32, %w eps 1.0e-6 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xbf16>
  // CHECK: %{{.*}}, %{{.*}} = dsv3.add_normalize %[[X]], %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 : tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  %sum, %normed = dsv3.add_normalize %x, %n, %w eps 1.0e-6 : tensor<?x256xbf16>, tensor<?x256xbf16>, tensor<256xbf16> -> tensor<?x256xbf16>
  // CHECK: dsv3.normalize_quant %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 block 128 : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  %nq, %ns = dsv3.normalize_quant %x32, %w eps 1.0e-6 block 128 : tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  // CHECK: dsv3.add_normalize_quant %{{.*}}, %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 block 128 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  %aqs, %aq, %aqsc = dsv3.add_normalize_quant %x32, %x32, %w eps 1.0e-6 block 128 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  // CHECK: dsv3.bf16_gemm %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<96x256xbf16> -> tensor<?x96xbf16>
  %q = dsv3.bf16_gemm %normed, %wq : tensor<?x256xbf16>, tensor<96x256xbf16> -> tensor<?x96xbf16>
  // CHECK: dsv3.swiglu %{{.*}}, %{{.*}} : tensor<?x96xbf16> -> tensor<?x96xbf16>
  %h = dsv3.swiglu %q, %q : tensor<?x96xbf16> -> tensor<?x96xbf16>
  // CHECK: dsv3.swiglu_quant %{{.*}}, %{{.*}} block 128 : tensor<?x96xbf16> -> tensor<?x96xf8E4M3FN>, tensor<?x1xf32>
  %hq, %hs = dsv3.swiglu_quant %q, %q block 128 : tensor<?x96xbf16> -> tensor<?x96xf8E4M3FN>, tensor<?x1xf32>
  // CHECK: dsv3.concat %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<?x256xbf16> -> tensor<?x512xbf16>
  %c = dsv3.concat %x, %n : tensor<?x256xbf16>, tensor<?x256xbf16> -> tensor<?x512xbf16>
  // CHECK: dsv3.mla_core {{.*}} layer 3 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
  // CHECK-SAME: -> tensor<?x64xbf16>
  %att = dsv3.mla_core %q, %kv_a, %kv_norm, %kv_b, %ids, %ids, %pages layer 3
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xbf16>, tensor<?x80xbf16>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  %freq = arith.constant dense<[1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125]> : tensor<8xf32>
  // CHECK: %[[QR:.*]] = dsv3.rope_q %{{.*}}, %{{.*}}, %{{.*}} shape <{{.*}}> rope_scale 1.000000e+00 : tensor<?x96xbf16>, tensor<?xi32>, tensor<8xf32>
  %qr = dsv3.rope_q %q, %ids, %freq shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> rope_scale 1.0 : tensor<?x96xbf16>, tensor<?xi32>, tensor<8xf32>
  // CHECK: %[[QL:.*]] = dsv3.mla_absorb_q %[[QR]], %{{.*}} shape <{{.*}}> : tensor<?x96xbf16>, tensor<128x64xbf16> -> tensor<?x128xbf16>
  %ql = dsv3.mla_absorb_q %qr, %kv_b shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> : tensor<?x96xbf16>, tensor<128x64xbf16> -> tensor<?x128xbf16>
  // CHECK: dsv3.kv_write {{.*}} layer 3 shape <{{.*}}> rope_scale 1.000000e+00 eps 9.9999999999999995E-7 : tensor<?x80xbf16>, tensor<64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<8xf32>
  dsv3.kv_write %kv_a, %kv_norm, %ids, %ids, %pages, %freq layer 3 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> rope_scale 1.0 eps 1.0e-6 : tensor<?x80xbf16>, tensor<64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<8xf32>
  // CHECK: %[[LAT:.*]] = dsv3.mla_attention %[[QL]], %[[QR]], {{.*}} layer 3 shape <{{.*}}> softmax_scale 1.250000e-01 {{.*}} -> tensor<?x128xbf16>
  %lat = dsv3.mla_attention %ql, %qr, %ids, %ids, %pages layer 3 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> softmax_scale 0.125 : tensor<?x128xbf16>, tensor<?x96xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x128xbf16>
  // CHECK: dsv3.mla_absorb_out %[[LAT]], %{{.*}} shape <{{.*}}> : tensor<?x128xbf16>, tensor<128x64xbf16> -> tensor<?x64xbf16>
  %ao = dsv3.mla_absorb_out %lat, %kv_b shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32> : tensor<?x128xbf16>, tensor<128x64xbf16> -> tensor<?x64xbf16>
  // CHECK: dsv3.bf16_gemm %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<96x256xbf16> -> tensor<?x96xf32>
  %logits = dsv3.bf16_gemm %x, %wq : tensor<?x256xbf16>, tensor<96x256xbf16> -> tensor<?x96xf32>
  // CHECK: dsv3.moe_route %{{.*}}, %{{.*}} routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.500000e+00> : tensor<?x2xf32>, tensor<2xf32> -> tensor<?x1xi32>, tensor<?x1xf32>
  %sel, %wts = dsv3.moe_route %router, %bias routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.5> : tensor<?x2xf32>, tensor<2xf32> -> tensor<?x1xi32>, tensor<?x1xf32>
  // CHECK: dsv3.moe_align %{{.*}} experts 2 : tensor<?x1xi32> -> tensor<3xi32>, tensor<?xi32>, tensor<?xi32>
  %offsets, %tok, %rows = dsv3.moe_align %sel experts 2 : tensor<?x1xi32> -> tensor<3xi32>, tensor<?xi32>, tensor<?xi32>
  // CHECK: dsv3.stacked_weight_ref [@g0, @g1] : tensor<2x128x256xf8E4M3FN>, tensor<2x1x2xf32>
  %sw, %ss = dsv3.stacked_weight_ref [@g0, @g1] : tensor<2x128x256xf8E4M3FN>, tensor<2x1x2xf32>
  %xq, %xs = dsv3.act_quant %x block 128 : tensor<?x256xbf16> -> tensor<?x256xf8E4M3FN>, tensor<?x2xf32>
  // CHECK: dsv3.grouped_gemm %{{.*}} scales %{{.*}} gather %{{.*}}, %{{.*}} scales %{{.*}} offsets %{{.*}} block [128, 128]
  %y = dsv3.grouped_gemm %xq scales %xs gather %tok, %sw scales %ss offsets %offsets block [128, 128]
      : (tensor<?x256xf8E4M3FN>, tensor<?x2xf32>, tensor<?xi32>, tensor<2x128x256xf8E4M3FN>, tensor<2x1x2xf32>, tensor<3xi32>) -> tensor<?x128xbf16>
  // CHECK: dsv3.grouped_gemm %{{.*}} gather %{{.*}}, %{{.*}} scales %{{.*}} offsets %{{.*}} block [128, 128]
  %yw = dsv3.grouped_gemm %x gather %tok, %sw scales %ss offsets %offsets block [128, 128]
      : (tensor<?x256xbf16>, tensor<?xi32>, tensor<2x128x256xf8E4M3FN>, tensor<2x1x2xf32>, tensor<3xi32>) -> tensor<?x128xbf16>
  // CHECK: dsv3.moe_combine %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<?xi32>, tensor<?x1xf32>, tensor<?x256xbf16> -> tensor<?x256xbf16>
  %out = dsv3.moe_combine %x, %rows, %wts, %n : tensor<?x256xbf16>, tensor<?xi32>, tensor<?x1xf32>, tensor<?x256xbf16> -> tensor<?x256xbf16>
  return
}
