// RUN: dsv3-opt %s --split-input-file --dsv3-absorb-mla | FileCheck %s
// RUN: dsv3-opt %s --split-input-file --dsv3-absorb-mla=prefill-direct=false | FileCheck %s --check-prefix=ABSORBED
// RUN: dsv3-opt %s --split-input-file --dsv3-absorb-mla=quantize-activations=true | FileCheck %s --check-prefix=FP8

// mla_core becomes rope on the queries, W_UK absorbed into them, the cache
// write, attention over the latent cache and W_UV absorbed into the output.
// Plain RoPE: inverse frequencies theta^(-2i/d), attention factor 1.
func.func @decode(%q: tensor<?x96xbf16>, %kv_a: tensor<?x80xbf16>, %n: tensor<64xbf16>, %kv_b: tensor<128x64xbf16>,
                   %pos: tensor<?xi32>, %seq: tensor<?xi32>, %pages: tensor<?x?xi32>) -> tensor<?x64xbf16> {
  %o = dsv3.mla_core %q, %kv_a, %n, %kv_b, %pos, %seq, %pages layer 5
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xbf16>, tensor<?x80xbf16>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @decode(
// CHECK-SAME: %[[Q:[a-z0-9]+]]: tensor<?x96xbf16>, %[[KVA:[a-z0-9]+]]: tensor<?x80xbf16>, %[[N:[a-z0-9]+]]: tensor<64xbf16>, %[[KVB:[a-z0-9]+]]: tensor<128x64xbf16>, %[[POS:[a-z0-9]+]]: tensor<?xi32>, %[[SEQ:[a-z0-9]+]]: tensor<?xi32>, %[[PAGES:[a-z0-9]+]]: tensor<?x?xi32>)
// CHECK: %[[FREQ:.*]] = arith.constant dense<[1.000000e+00, 0.316227764, 1.000000e-01, 0.0316227749, 0.00999999977, 0.00316227763, 1.000000e-03, 3.16227757E-4]> : tensor<8xf32>
// CHECK: %[[QR:.*]] = dsv3.rope_q %[[Q]], %[[POS]], %[[FREQ]] shape <{{.*}}> rope_scale 1.000000e+00
// CHECK: %[[QLAT:.*]] = dsv3.mla_absorb_q %[[QR]], %[[KVB]] shape <{{.*}}> : tensor<?x96xbf16>, tensor<128x64xbf16> -> tensor<?x128xbf16>
// CHECK: dsv3.kv_write %[[KVA]], %[[N]], %[[POS]], %[[SEQ]], %[[PAGES]], %[[FREQ]] layer 5 shape <{{.*}}> rope_scale 1.000000e+00 eps
// CHECK: %[[LAT:.*]] = dsv3.mla_attention %[[QLAT]], %[[QR]], %[[POS]], %[[SEQ]], %[[PAGES]] layer 5 shape <{{.*}}> softmax_scale 1.250000e-01 {{.*}} -> tensor<?x128xbf16>
// CHECK: %[[OUT:.*]] = dsv3.mla_absorb_out %[[LAT]], %[[KVB]] shape <{{.*}}> : tensor<?x128xbf16>, tensor<128x64xbf16> -> tensor<?x64xbf16>
// CHECK: return %[[OUT]]
// CHECK-NOT: dsv3.when

// -----

// In the prefill entry, the absorbed ops run on steps that resume a
// sequence; on fresh steps the latent is normalized, expanded by kv_b into
// per-head keys and values, and attended directly, into the absorbed
// result's buffer. The output projection reads the direct op's result.
func.func @prefill(%q: tensor<?x96xf32>, %kv_a: tensor<?x80xf32>, %n: tensor<64xbf16>, %kv_b: tensor<128x64xbf16>,
                   %pos: tensor<?xi32>, %seq: tensor<?xi32>, %pages: tensor<?x?xi32>) -> tensor<?x64xbf16> {
  %o = dsv3.mla_core %q, %kv_a, %n, %kv_b, %pos, %seq, %pages layer 3
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xf32>, tensor<?x80xf32>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @prefill(
// CHECK-SAME: %[[Q:[a-z0-9]+]]: tensor<?x96xf32>, %[[KVA:[a-z0-9]+]]: tensor<?x80xf32>, %[[N:[a-z0-9]+]]: tensor<64xbf16>, %[[KVB:[a-z0-9]+]]: tensor<128x64xbf16>, %[[POS:[a-z0-9]+]]: tensor<?xi32>, %[[SEQ:[a-z0-9]+]]: tensor<?xi32>, %[[PAGES:[a-z0-9]+]]: tensor<?x?xi32>)
// CHECK: %[[QR:.*]] = dsv3.rope_q %[[Q]]
// CHECK-NOT: dsv3.when
// CHECK: %[[QLAT:.*]] = dsv3.mla_absorb_q %[[QR]], %[[KVB]] shape <{{.*}}> {dsv3.when = "resumed"}
// CHECK: dsv3.kv_write %[[KVA]]
// CHECK-NOT: dsv3.when
// CHECK: %[[LAT:.*]] = dsv3.mla_attention %[[QLAT]], {{.*}} {dsv3.when = "resumed"}
// CHECK: %[[ABS:.*]] = dsv3.mla_absorb_out %[[LAT]], %[[KVB]] shape <{{.*}}> {dsv3.when = "resumed"}
// CHECK: %[[C:.*]] = dsv3.normalize %[[KVA]], %[[N]] eps 9.9999999999999995E-7 {dsv3.when = "fresh"} : tensor<?x80xf32>, tensor<64xbf16> -> tensor<?x64xbf16>
// CHECK: %[[KV:.*]] = dsv3.bf16_gemm %[[C]], %[[KVB]] {dsv3.when = "fresh"} : tensor<?x64xbf16>, tensor<128x64xbf16> -> tensor<?x128xbf16>
// CHECK: %[[DIRECT:.*]] = dsv3.mla_prefill_attention %[[QR]], %[[KV]], %[[POS]], %[[SEQ]], %[[PAGES]] into %[[ABS]] layer 3 shape <{{.*}}> softmax_scale 1.250000e-01 {dsv3.when = "fresh"} : tensor<?x96xf32>, tensor<?x128xbf16>, {{.*}} -> tensor<?x64xbf16>
// CHECK: return %[[DIRECT]]
// ABSORBED-LABEL: func.func @prefill(
// ABSORBED-NOT: dsv3.when
// ABSORBED: %[[OUT:.*]] = dsv3.mla_absorb_out
// ABSORBED-NOT: dsv3.when
// ABSORBED-NOT: dsv3.mla_prefill_attention
// ABSORBED: return %[[OUT]]

// -----

// YaRN as DeepSeek-V3 configures it (factor 40 over 4096 positions, beta
// 32/1, mscale = mscale_all_dim): the fast pairs keep their frequency, the
// slow ones are divided by 40, a linear ramp between pairs 2 and 6 (the
// correction range); the attention factor is 1.
func.func @decode(%q: tensor<?x96xbf16>, %kv_a: tensor<?x80xbf16>, %n: tensor<64xbf16>, %kv_b: tensor<128x64xbf16>,
                  %pos: tensor<?xi32>, %seq: tensor<?xi32>, %pages: tensor<?x?xi32>) -> tensor<?x64xbf16> {
  %o = dsv3.mla_core %q, %kv_a, %n, %kv_b, %pos, %seq, %pages layer 0
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 40.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xbf16>, tensor<?x80xbf16>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK: arith.constant dense<[1.000000e+00, 0.316227764, 1.000000e-01, 0.0239147246, 5.125000e-03, 8.49862117E-4, 2.500000e-05, 7.90569447E-6]> : tensor<8xf32>
// CHECK: dsv3.rope_q {{.*}} rope_scale 1.000000e+00

// -----

// YaRN with mscale but no mscale_all_dim scales cos and sin by
// 0.1 ln(factor) + 1 (factor 4: 1.1386294361).
func.func @decode(%q: tensor<?x96xbf16>, %kv_a: tensor<?x80xbf16>, %n: tensor<64xbf16>, %kv_b: tensor<128x64xbf16>,
                  %pos: tensor<?xi32>, %seq: tensor<?xi32>, %pages: tensor<?x?xi32>) -> tensor<?x64xbf16> {
  %o = dsv3.mla_core %q, %kv_a, %n, %kv_b, %pos, %seq, %pages layer 0
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 4.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xbf16>, tensor<?x80xbf16>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK: dsv3.rope_q {{.*}} rope_scale 1.138629436111989

// -----

// f32 projections (dsv3-decompose's GEMM outputs): the roped queries, the
// latent queries and the attention output keep f32; only the output
// absorption rounds to bf16, for the o_proj GEMM.
func.func @decode(%q: tensor<?x96xf32>, %kv_a: tensor<?x80xf32>, %n: tensor<64xbf16>, %kv_b: tensor<128x64xbf16>,
                  %pos: tensor<?xi32>, %seq: tensor<?xi32>, %pages: tensor<?x?xi32>) -> tensor<?x64xbf16> {
  %o = dsv3.mla_core %q, %kv_a, %n, %kv_b, %pos, %seq, %pages layer 2
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xf32>, tensor<?x80xf32>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @decode
// CHECK: %[[QR:.*]] = dsv3.rope_q {{.*}} : tensor<?x96xf32>, tensor<?xi32>, tensor<8xf32>
// CHECK: %[[QLAT:.*]] = dsv3.mla_absorb_q %[[QR]], {{.*}} : tensor<?x96xf32>, tensor<128x64xbf16> -> tensor<?x128xf32>
// CHECK: dsv3.kv_write {{.*}} : tensor<?x80xf32>, tensor<64xbf16>,
// CHECK: %[[LAT:.*]] = dsv3.mla_attention %[[QLAT]], %[[QR]], {{.*}} : tensor<?x128xf32>, tensor<?x96xf32>, {{.*}} -> tensor<?x128xf32>
// CHECK: dsv3.mla_absorb_out %[[LAT]], {{.*}} : tensor<?x128xf32>, tensor<128x64xbf16> -> tensor<?x64xbf16>

// -----

// An FP8 kv_b expands FP8 latents when activations are quantized (FP8
// prefix); with bf16 activations (CHECK) the dequantized kv_b expands bf16
// latents. The absorbed products always read the dequantized kv_b.
func.func @prefill(%q: tensor<?x96xf32>, %kv_a: tensor<?x80xf32>, %n: tensor<64xbf16>, %w: tensor<128x64xf8E4M3FN>, %ws: tensor<1x1xf32>,
                   %pos: tensor<?xi32>, %seq: tensor<?xi32>, %pages: tensor<?x?xi32>) -> tensor<?x64xbf16> {
  %kv_b = dsv3.dequant %w, %ws block [128, 128] : tensor<128x64xf8E4M3FN>, tensor<1x1xf32> -> tensor<128x64xbf16>
  %o = dsv3.mla_core %q, %kv_a, %n, %kv_b, %pos, %seq, %pages layer 1
      shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6
      : tensor<?x96xf32>, tensor<?x80xf32>, tensor<64xbf16>, tensor<128x64xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}
// CHECK-LABEL: func.func @prefill(
// CHECK: %[[KVB:.*]] = dsv3.dequant
// CHECK: %[[C:.*]] = dsv3.normalize {{.*}} {dsv3.when = "fresh"}
// CHECK-NEXT: dsv3.bf16_gemm %[[C]], %[[KVB]] {dsv3.when = "fresh"}
// FP8-LABEL: func.func @prefill({{.*}}tensor<128x64xf8E4M3FN>
// FP8: %[[KVB:.*]] = dsv3.dequant %[[W:[a-z0-9]+]], %[[WS:[a-z0-9]+]] block
// FP8: dsv3.mla_absorb_q %{{.*}}, %[[KVB]]
// FP8: %[[C:.*]] = dsv3.normalize {{.*}} {dsv3.when = "fresh"}
// FP8-NEXT: %[[QC:.*]], %[[QS:.*]] = dsv3.act_quant %[[C]] block 128 {dsv3.when = "fresh"} : tensor<?x64xbf16> -> tensor<?x64xf8E4M3FN>, tensor<?x1xf32>
// FP8-NEXT: %[[KV:.*]] = dsv3.fp8_gemm %[[QC]] scales %[[QS]], %[[W]] scales %[[WS]] block [128, 128] {dsv3.when = "fresh"} : (tensor<?x64xf8E4M3FN>, tensor<?x1xf32>, tensor<128x64xf8E4M3FN>, tensor<1x1xf32>) -> tensor<?x128xbf16>
// FP8-NEXT: dsv3.mla_prefill_attention %{{.*}}, %[[KV]], {{.*}} {dsv3.when = "fresh"}
