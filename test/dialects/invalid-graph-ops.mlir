// RUN: dsv3-opt %s -split-input-file -verify-diagnostics

// embed's result is the token shape plus a hidden dimension.
dsv3.weight @table : tensor<512x256xbf16>
func.func @f(%t: tensor<?x?xi32>) {
  // expected-error @+1 {{result must be the token shape plus a hidden dimension}}
  %0 = dsv3.embed %t table @table : tensor<?x?xi32> -> tensor<?x256xbf16>
  return
}

// -----

// The embedding table's width is the hidden size.
dsv3.weight @table : tensor<512x128xbf16>
func.func @f(%t: tensor<?x?xi32>) {
  // expected-error @+1 {{'table' weight @table has shape 512x128 but this op needs ?x256 (vocab x hidden)}}
  %0 = dsv3.embed %t table @table : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  return
}

// -----

// The embedding table is never FP8.
dsv3.weight @table : tensor<512x256xf8E4M3FN> scale <128x128, "s" : 4x2>
func.func @f(%t: tensor<?x?xi32>) {
  // expected-error @+1 {{'table' weight @table is FP8, but it is read as a plain float tensor (bf16, f16 or f32)}}
  %0 = dsv3.embed %t table @table : tensor<?x?xi32> -> tensor<?x?x256xbf16>
  return
}

// -----

// RMS norm needs a positive epsilon.
dsv3.weight @g : tensor<256xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{eps must be positive, got 0}}
  %0 = dsv3.rms_norm %x weight @g eps 0.0 : tensor<?x256xbf16>
  return
}

// -----

// RMS norm has one gain per channel.
dsv3.weight @g : tensor<128xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'weight' weight @g has shape 128 but this op needs 256 (one gain per channel)}}
  %0 = dsv3.rms_norm %x weight @g eps 1.0e-6 : tensor<?x256xbf16>
  return
}

// -----

// Weight symbols must name dsv3.weight ops.
func.func @g() { return }
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'weight' refers to @g, which is a 'func.func', not a dsv3.weight}}
  %0 = dsv3.rms_norm %x weight @g eps 1.0e-6 : tensor<?x256xbf16>
  return
}

// -----

// With a query LoRA, MLA has no direct query projection.
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{has q_lora_rank 64 but also a direct 'q' projection}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 64, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 q @q kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return
}

// -----

// Without a query LoRA, MLA needs the direct query projection.
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{has no query LoRA (q_lora_rank 0) and needs a direct 'q' projection}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return
}

// -----

// Positions come one per token.
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?xi32>) {
  // expected-error @+1 {{positions must have the input's shape without its hidden dimension}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 q @q kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?xi32>
  return
}

// -----

// kv_a yields the latent plus the shared rope key: kv_lora_rank + qk_rope_head_dim rows.
dsv3.weight @q : tensor<96x256xbf16>
dsv3.weight @kv_a : tensor<64x256xbf16>
dsv3.weight @n : tensor<64xbf16>
dsv3.weight @kv_b : tensor<128x64xbf16>
dsv3.weight @o : tensor<256x64xbf16>
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{'kv_a' weight @kv_a has shape 64x256 but this op needs 80x256 (kv_lora_rank + qk_rope_head_dim x hidden)}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 q @q kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return
}

// -----

// kv_b yields per-head k_nope and v from the latent.
dsv3.weight @q : tensor<96x256xbf16>
dsv3.weight @kv_a : tensor<80x256xbf16>
dsv3.weight @n : tensor<64xbf16>
dsv3.weight @kv_b : tensor<96x64xbf16>
dsv3.weight @o : tensor<256x64xbf16>
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{'kv_b' weight @kv_b has shape 96x64 but this op needs 128x64 (heads * (qk_nope_head_dim + v_head_dim) x kv_lora_rank)}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 q @q kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return
}

// -----

// The query heads are qk_nope_head_dim + qk_rope_head_dim wide.
dsv3.weight @q_a : tensor<64x256xbf16>
dsv3.weight @q_a_norm : tensor<64xbf16>
dsv3.weight @q_b : tensor<64x64xbf16>
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{'q_b' weight @q_b has shape 64x64 but this op needs 96x64 (heads * (qk_nope_head_dim + qk_rope_head_dim) x q_lora_rank)}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 64, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 q_a @q_a q_a_norm @q_a_norm q_b @q_b kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return
}

// -----

// The output projection maps heads * v_head_dim back to the hidden size.
dsv3.weight @q : tensor<96x256xbf16>
dsv3.weight @kv_a : tensor<80x256xbf16>
dsv3.weight @n : tensor<64xbf16>
dsv3.weight @kv_b : tensor<128x64xbf16>
dsv3.weight @o : tensor<256x96xbf16>
func.func @f(%x: tensor<?x?x256xbf16>, %p: tensor<?x?xi32>) {
  // expected-error @+1 {{'o' weight @o has shape 256x96 but this op needs 256x64 (hidden x heads * v_head_dim)}}
  %0 = dsv3.mla %x, %p layer 0 shape <heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>
      rope <theta = 1.0e4, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>
      softmax_scale 0.125 eps 1.0e-6 q @q kv_a @kv_a kv_a_norm @n kv_b @kv_b o @o : tensor<?x?x256xbf16>, tensor<?x?xi32>
  return
}

// -----

// A SwiGLU's down projection maps the intermediate width back.
dsv3.weight @gate : tensor<512x256xbf16>
dsv3.weight @up : tensor<512x256xbf16>
dsv3.weight @down : tensor<256x256xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'mlp down' weight @down has shape 256x256 but this op needs 256x512 (hidden x intermediate)}}
  %0 = dsv3.dense_mlp %x gate @gate up @up down @down : tensor<?x256xbf16>
  return
}

// -----

// Every routed expert is listed with its three projections.
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'experts' must list gate, up and down for each of 2 experts (6 symbols), got 5}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @r experts [@g, @u, @d, @g, @u] : tensor<?x256xbf16>
  return
}

// -----

// noaux_tc routing chooses with the correction bias.
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{noaux_tc routing needs a 'bias'}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 1.0>
      router @r experts [@g, @u, @d, @g, @u, @d] : tensor<?x256xbf16>
  return
}

// -----

// Other routing methods have no correction bias.
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{only noaux_tc routing takes a 'bias'}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @r bias @b experts [@g, @u, @d, @g, @u, @d] : tensor<?x256xbf16>
  return
}

// -----

// The shared experts are one SwiGLU.
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'shared' must list gate, up and down (3 symbols), got 2}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @r experts [@g, @u, @d, @g, @u, @d] shared [@g, @u] : tensor<?x256xbf16>
  return
}

// -----

// The router scores every expert.
dsv3.weight @r : tensor<4x256xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'router' weight @r has shape 4x256 but this op needs 2x256 (experts x hidden)}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @r experts [@g, @u, @d, @g, @u, @d] : tensor<?x256xbf16>
  return
}

// -----

// The correction bias is fp32, as in the checkpoint.
dsv3.weight @r : tensor<2x256xbf16>
dsv3.weight @b : tensor<2xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'bias' weight @b must be f32, got 'bf16'}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 1.0>
      router @r bias @b experts [@g, @u, @d, @g, @u, @d] : tensor<?x256xbf16>
  return
}

// -----

// Routed experts all have the same width.
dsv3.weight @r : tensor<2x256xbf16>
dsv3.weight @g : tensor<64x256xbf16>
dsv3.weight @u : tensor<64x256xbf16>
dsv3.weight @d : tensor<256x64xbf16>
dsv3.weight @g1 : tensor<32x256xbf16>
dsv3.weight @u1 : tensor<32x256xbf16>
dsv3.weight @d1 : tensor<256x32xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'expert 1 gate' weight @g1 has shape 32x256 but this op needs 64x256 (intermediate x hidden)}}
  %0 = dsv3.moe %x routing <experts = 2, top_k = 1, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>
      router @r experts [@g, @u, @d, @g1, @u1, @d1] : tensor<?x256xbf16>
  return
}

// -----

// eh_proj maps the concatenated [embedding, hidden] back to the hidden size.
dsv3.weight @n : tensor<256xbf16>
dsv3.weight @eh : tensor<256x256xbf16>
func.func @f(%h: tensor<?x256xbf16>, %e: tensor<?x256xbf16>) {
  // expected-error @+1 {{'eh_proj' weight @eh has shape 256x256 but this op needs 256x512 (hidden x 2 * hidden)}}
  %0 = dsv3.mtp %h, %e enorm @n hnorm @n eh_proj @eh eps 1.0e-6 : tensor<?x256xbf16>
  return
}

// -----

// The head's rows are the vocabulary.
dsv3.weight @head : tensor<1000x256xbf16>
func.func @f(%x: tensor<?x256xbf16>) {
  // expected-error @+1 {{'head' weight @head has shape 1000x256 but this op needs 1024x256 (vocab x hidden)}}
  %0 = dsv3.lm_head %x head @head : tensor<?x256xbf16> -> tensor<?x1024xf32>
  return
}

// -----

// Logits keep the token dimensions.
func.func @f(%x: tensor<?x?x256xbf16>) {
  // expected-error @+1 {{result must be the input shape with the hidden dimension replaced by the vocabulary}}
  %0 = dsv3.lm_head %x head @head : tensor<?x?x256xbf16> -> tensor<?x1024xf32>
  return
}
