// RUN: dsv3-opt %s -split-input-file -verify-diagnostics

// A block scale needs positive block sizes.
// expected-error @+1 {{block size must be positive, got 0x128}}
dsv3.weight @w : tensor<256x256xf8E4M3FN> scale <0x128, "s" : 2x2>

// -----

// A block scale needs a 2-d block size.
// expected-error @+1 {{expected a 2-d block size (rows x cols)}}
dsv3.weight @w : tensor<256x256xf8E4M3FN> scale <128x128x128, "s" : 2x2>

// -----

// A block scale needs a scale tensor name.
// expected-error @+1 {{the scale tensor needs a name}}
dsv3.weight @w : tensor<256x256xf8E4M3FN> scale <128x128, "" : 2x2>

// -----

// MLA needs an even rope head dimension (rotary pairs).
// expected-error @+1 {{qk_rope_head_dim must be a positive even number (rotary pairs), got 15}}
func.func @f() attributes {shape = #dsv3.mla_shape<heads = 2, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 15, v_head_dim = 32>} { return }

// -----

// MLA needs at least one head.
// expected-error @+1 {{heads must be at least 1, got 0}}
func.func @f() attributes {shape = #dsv3.mla_shape<heads = 0, q_lora_rank = 0, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>} { return }

// -----

// A negative query LoRA rank is meaningless (0 means none).
// expected-error @+1 {{q_lora_rank must be 0 (none) or positive, got -1}}
func.func @f() attributes {shape = #dsv3.mla_shape<heads = 2, q_lora_rank = -1, kv_lora_rank = 64, qk_nope_head_dim = 32, qk_rope_head_dim = 16, v_head_dim = 32>} { return }

// -----

// RoPE needs a positive base.
// expected-error @+1 {{theta must be positive, got 0}}
func.func @f() attributes {rope = #dsv3.rope<theta = 0.0, yarn_factor = 1.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0>} { return }

// -----

// YaRN's correction range must be ordered.
// expected-error @+1 {{beta_fast (1.000000e+00) must exceed beta_slow (3.200000e+01)}}
func.func @f() attributes {rope = #dsv3.rope<theta = 1.0e4, yarn_factor = 40.0, original_max_position = 4096, beta_fast = 1.0, beta_slow = 32.0, mscale = 1.0, mscale_all_dim = 1.0>} { return }

// -----

// Experts must divide evenly into groups.
// expected-error @+1 {{experts (10) must divide evenly into groups (4)}}
func.func @f() attributes {r = #dsv3.routing<experts = 10, top_k = 2, groups = 4, topk_groups = 2, method = noaux_tc, score = sigmoid, normalize = true, scale = 1.0>} { return }

// -----

// At most all groups can be kept.
// expected-error @+1 {{topk_groups must be in [1, groups = 8], got 9}}
func.func @f() attributes {r = #dsv3.routing<experts = 256, top_k = 8, groups = 8, topk_groups = 9, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.5>} { return }

// -----

// The router cannot pick more experts than the kept groups hold.
// expected-error @+1 {{top_k (9) exceeds the experts in the 1 kept groups of 8}}
func.func @f() attributes {r = #dsv3.routing<experts = 64, top_k = 9, groups = 8, topk_groups = 1, method = noaux_tc, score = sigmoid, normalize = true, scale = 2.5>} { return }

// -----

// top_k must not exceed the number of experts.
// expected-error @+1 {{top_k must be in [1, experts = 4], got 5}}
func.func @f() attributes {r = #dsv3.routing<experts = 4, top_k = 5, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = 1.0>} { return }

// -----

// noaux_tc scores groups by their top-2 experts, so groups need two.
// expected-error @+1 {{noaux_tc scores a group by its top-2 experts, but groups hold 1}}
func.func @f() attributes {r = #dsv3.routing<experts = 8, top_k = 2, groups = 8, topk_groups = 4, method = noaux_tc, score = sigmoid, normalize = true, scale = 1.0>} { return }

// -----

// The routed scaling factor must be positive.
// expected-error @+1 {{scale must be positive, got -1}}
func.func @f() attributes {r = #dsv3.routing<experts = 8, top_k = 2, groups = 1, topk_groups = 1, method = greedy, score = softmax, normalize = false, scale = -1.0>} { return }

// -----

// Unknown routing methods are rejected by name.
// expected-error @+2 {{expected ::dsv3::RoutingMethod to be one of: greedy, group_limited_greedy, noaux_tc}}
// expected-error @+1 {{failed to parse Dsv3_RoutingAttr parameter 'method'}}
func.func @f() attributes {r = #dsv3.routing<experts = 8, top_k = 2, groups = 1, topk_groups = 1, method = best, score = softmax, normalize = false, scale = 1.0>} { return }
