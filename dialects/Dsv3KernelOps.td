//===- Dsv3KernelOps.td - dsv3 kernel-level operations ------------------===//
//
// One op per kernel template of targets/cuda/kernels/. Activations are 2-D
// `[rows, cols]` tensors whose rows are dynamic (tokens T, sequences B, or
// routed rows R = T * top_k); weights come in as `dsv3.weight_ref` values.
// The FP8 ops act_quant, dequant and fp8_gemm are in Dsv3Ops.td.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_KERNEL_OPS_TD
#define DSV3_KERNEL_OPS_TD

// Kernel ops that read or write one layer's latent KV cache.
def Dsv3_KvCacheResource : Resource<"::dsv3::KvCacheResource">;

def Dsv3_Rows : RankedTensorOf<[BF16, F16, F32]>;
def Dsv3_IndexVector : RankedTensorOf<[I32]>;

def Dsv3_GatherOp : Dsv3_Op<"gather", [Pure]> {
  let summary = "rows of a table picked by index";
  let description = [{
    `out[r] = table[indices[r]]`: the embedding lookup, and the pick of each
    sequence's last token before the head.

    ```mlir
    %h = dsv3.gather %table[%tokens] : tensor<129280x7168xbf16>, tensor<?xi32> -> tensor<?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$table, Dsv3_IndexVector:$indices);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $table `[` $indices `]` attr-dict `:` type($table) `,` type($indices) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_NormalizeOp : Dsv3_Op<"normalize", [Pure]> {
  let summary = "RMS normalization of each row";
  let description = [{
    `y = x * rsqrt(mean(x^2) + eps) * weight`, in fp32, per row, rounded once
    to the result's element type (bf16 where a GEMM reads it); the input may
    be wider (an fp32 residual or GEMM output). When the input has more
    channels than the weight, the leading ones are normalized (the latent
    part of a `kv_a` row, without its rope key).

    ```mlir
    %y = dsv3.normalize %x, %w eps 1.0e-06 : tensor<?x7168xf32>, tensor<7168xbf16> -> tensor<?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$input, Dsv3_Rows:$weight, F64Attr:$eps);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` $eps attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_AddNormalizeOp : Dsv3_Op<"add_normalize",
    [Pure, AllTypesMatch<["residual", "sum"]>]> {
  let summary = "residual addition fused with the next RMS normalization";
  let description = [{
    `sum = residual + delta` (in fp32, stored as the residual's type), then
    `normalized = normalize(sum)` (rounded to its own type).

    ```mlir
    %h, %n = dsv3.add_normalize %h0, %attn, %w eps 1.0e-06
        : tensor<?x7168xf32>, tensor<?x7168xf32>, tensor<7168xbf16> -> tensor<?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$residual, Dsv3_Rows:$delta, Dsv3_Rows:$weight,
                       F64Attr:$eps);
  let results = (outs Dsv3_Rows:$sum, Dsv3_Rows:$normalized);
  let assemblyFormat = [{
    $residual `,` $delta `,` $weight `eps` $eps attr-dict `:` type($residual) `,` type($delta)
    `,` type($weight) `->` type($normalized)
  }];
  let hasVerifier = 1;
}

def Dsv3_NormalizeQuantOp : Dsv3_Op<"normalize_quant", [Pure]> {
  let summary = "RMS normalization quantized to FP8 for the GEMM that reads it";
  let description = [{
    `normalize` rounded to bf16, then `act_quant` of that row with one scale
    per `block` channels, in one pass: the same values and scales as the two
    ops, without the bf16 row in memory. `dsv3-fuse-norm-quant` forms it when
    only quantizations read the normalization. The weight's channels must be
    whole blocks.

    ```mlir
    %q, %s = dsv3.normalize_quant %x, %w eps 1.0e-06 block 128
        : tensor<?x1536xf32>, tensor<1536xbf16> -> tensor<?x1536xf8E4M3FN>, tensor<?x12xf32>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$input, Dsv3_Rows:$weight, F64Attr:$eps, I64Attr:$block);
  let results = (outs RankedTensorOf<[F8E4M3FN]>:$output, RankedTensorOf<[F32]>:$scales);
  let assemblyFormat = [{
    $input `,` $weight `eps` $eps `block` $block attr-dict `:` type($input) `,` type($weight)
    `->` type($output) `,` type($scales)
  }];
  let hasVerifier = 1;
}

def Dsv3_AddNormalizeQuantOp : Dsv3_Op<"add_normalize_quant",
    [Pure, AllTypesMatch<["residual", "sum"]>]> {
  let summary = "residual addition, RMS normalization and FP8 quantization in one pass";
  let description = [{
    `add_normalize` whose normalized row (rounded to bf16) is quantized as
    `act_quant` would, one scale per `block` channels; the sum is kept.

    ```mlir
    %h, %q, %s = dsv3.add_normalize_quant %h0, %attn, %w eps 1.0e-06 block 128
        : tensor<?x7168xf32>, tensor<?x7168xf32>, tensor<7168xbf16>
          -> tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$residual, Dsv3_Rows:$delta, Dsv3_Rows:$weight,
                       F64Attr:$eps, I64Attr:$block);
  let results = (outs Dsv3_Rows:$sum, RankedTensorOf<[F8E4M3FN]>:$output,
                      RankedTensorOf<[F32]>:$scales);
  let assemblyFormat = [{
    $residual `,` $delta `,` $weight `eps` $eps `block` $block attr-dict `:` type($residual)
    `,` type($delta) `,` type($weight) `->` type($output) `,` type($scales)
  }];
  let hasVerifier = 1;
}

def Dsv3_Bf16GemmOp : Dsv3_Op<"bf16_gemm", [Pure]> {
  let summary = "matrix multiply with a BF16 weight, out = lhs * rhs^T";
  let description = [{
    fp32 accumulation; the result is bf16, or f32 for the router and the head.

    ```mlir
    %logits = dsv3.bf16_gemm %x, %w : tensor<?x7168xbf16>, tensor<256x7168xbf16> -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$lhs, Dsv3_Rows:$rhs);
  let results = (outs RankedTensorOf<[BF16, F32]>:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_SwigluOp : Dsv3_Op<"swiglu", [Pure, AllTypesMatch<["gate", "up"]>]> {
  let summary = "silu(gate) * up";
  let description = [{
    In fp32, rounded once to the result's element type (bf16 for the down
    projection that reads it).

    ```mlir
    %h = dsv3.swiglu %gate, %up : tensor<?x2048xf32> -> tensor<?x2048xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$gate, Dsv3_Rows:$up);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($gate) `->` type($result)";
  let hasVerifier = 1;
}

def Dsv3_SwigluQuantOp : Dsv3_Op<"swiglu_quant", [Pure, AllTypesMatch<["gate", "up"]>]> {
  let summary = "silu(gate) * up, quantized to FP8 per token and block";
  let description = [{
    The SwiGLU product in fp32, then quantized like `act_quant` for an FP8
    down projection.

    ```mlir
    %q, %s = dsv3.swiglu_quant %gate, %up block 128
        : tensor<?x2048xbf16> -> tensor<?x2048xf8E4M3FN>, tensor<?x16xf32>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$gate, Dsv3_Rows:$up, I64Attr:$block);
  let results = (outs RankedTensorOf<[F8E4M3FN]>:$output, RankedTensorOf<[F32]>:$scales);
  let assemblyFormat = [{
    $gate `,` $up `block` $block attr-dict `:` type($gate) `->` type($output) `,` type($scales)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// MLA
//===----------------------------------------------------------------------===//

def Dsv3_MlaCoreOp : Dsv3_Op<"mla_core", [
    MemoryEffects<[MemRead<Dsv3_KvCacheResource>, MemWrite<Dsv3_KvCacheResource>]>]> {
  let summary = "MLA attention between the projections, before absorption";
  let description = [{
    From the projected queries `q` `[T, heads * (nope + rope)]` and the
    `kv_a` output `[T, kv_lora + rope]`: normalizes the latent with
    `kv_norm`, applies RoPE at `positions`, appends this step's latent and
    rope key to layer `layer`'s cache (sequence `token_seq`, pages
    `block_table`), and attends causally with the per-head keys and values
    that `kv_b` expands from the latent. The result is `[T, heads * v]`,
    before the output projection. `dsv3-absorb-mla` rewrites it into kernels
    that run on the latent cache directly.

    ```mlir
    %o = dsv3.mla_core %q, %kv_a, %kv_norm, %kv_b, %positions, %token_seq, %block_table
        layer 0 shape <...> rope <...> softmax_scale 0.135 eps 1.0e-06
        : tensor<?x24576xbf16>, tensor<?x576xbf16>, tensor<512xbf16>, tensor<32768x512xbf16>,
          tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x16384xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$q, Dsv3_Rows:$kv_a, Dsv3_Rows:$kv_norm, Dsv3_Rows:$kv_b,
                       Dsv3_IndexVector:$positions, Dsv3_IndexVector:$token_seq,
                       Dsv3_IndexVector:$block_table, I64Attr:$layer,
                       Dsv3_MlaShapeAttr:$shape, Dsv3_RopeAttr:$rope,
                       F64Attr:$softmax_scale, F64Attr:$eps);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $q `,` $kv_a `,` $kv_norm `,` $kv_b `,` $positions `,` $token_seq `,` $block_table
    `layer` $layer `shape` $shape `rope` $rope `softmax_scale` $softmax_scale `eps` $eps
    attr-dict `:` type($q) `,` type($kv_a) `,` type($kv_norm) `,` type($kv_b) `,`
    type($positions) `,` type($token_seq) `,` type($block_table) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_RopeQOp : Dsv3_Op<"rope_q", [Pure, AllTypesMatch<["q", "result"]>]> {
  let summary = "rotary embedding of the queries' rope parts";
  let description = [{
    Rotates the last `qk_rope_head_dim` values of each head of `q`
    `[T, heads * (nope + rope)]`: interleaved pairs by `positions[t] *
    inv_freq[i]`, cos and sin times `rope_scale` (YaRN's attention factor).

    ```mlir
    %q2 = dsv3.rope_q %q, %positions, %inv_freq shape <...> rope_scale 1.0
        : tensor<?x24576xbf16>, tensor<?xi32>, tensor<32xf32>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$q, Dsv3_IndexVector:$positions,
                       RankedTensorOf<[F32]>:$inv_freq, Dsv3_MlaShapeAttr:$shape,
                       F64Attr:$rope_scale);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $q `,` $positions `,` $inv_freq `shape` $shape `rope_scale` $rope_scale attr-dict
    `:` type($q) `,` type($positions) `,` type($inv_freq)
  }];
  let hasVerifier = 1;
}

def Dsv3_MlaAbsorbQOp : Dsv3_Op<"mla_absorb_q", [Pure]> {
  let summary = "queries projected into the latent space (W_UK absorbed)";
  let description = [{
    `q_lat[t, h, :] = q_nope[t, h, :] * W_UK[h]`, where `W_UK[h]` are the
    first `nope` rows of head h's block of `kv_b` (bf16).

    ```mlir
    %q_lat = dsv3.mla_absorb_q %q, %kv_b shape <...>
        : tensor<?x24576xbf16>, tensor<32768x512xbf16> -> tensor<?x65536xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$q, Dsv3_Rows:$kv_b, Dsv3_MlaShapeAttr:$shape);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $q `,` $kv_b `shape` $shape attr-dict `:` type($q) `,` type($kv_b) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_KvWriteOp : Dsv3_Op<"kv_write", [MemoryEffects<[MemWrite<Dsv3_KvCacheResource>]>]> {
  let summary = "appends the step's latents and rope keys to a layer's cache";
  let description = [{
    For each token: `[rms_norm(kv_a[t, :kv_lora]) * kv_norm,
    rope(kv_a[t, kv_lora:])]` into layer `layer`'s cache at the slot of
    `(token_seq[t], positions[t])`, through `block_table`.

    ```mlir
    dsv3.kv_write %kv_a, %kv_norm, %positions, %token_seq, %block_table, %inv_freq layer 0
        shape <...> rope_scale 1.0 eps 1.0e-06
        : tensor<?x576xbf16>, tensor<512xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32xf32>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$kv_a, Dsv3_Rows:$kv_norm, Dsv3_IndexVector:$positions,
                       Dsv3_IndexVector:$token_seq, Dsv3_IndexVector:$block_table,
                       RankedTensorOf<[F32]>:$inv_freq, I64Attr:$layer,
                       Dsv3_MlaShapeAttr:$shape, F64Attr:$rope_scale, F64Attr:$eps);
  let assemblyFormat = [{
    $kv_a `,` $kv_norm `,` $positions `,` $token_seq `,` $block_table `,` $inv_freq
    `layer` $layer `shape` $shape `rope_scale` $rope_scale `eps` $eps attr-dict `:`
    type($kv_a) `,` type($kv_norm) `,` type($positions) `,` type($token_seq) `,`
    type($block_table) `,` type($inv_freq)
  }];
  let hasVerifier = 1;
}

def Dsv3_MlaAttentionOp : Dsv3_Op<"mla_attention", [MemoryEffects<[MemRead<Dsv3_KvCacheResource>]>]> {
  let summary = "causal attention over a layer's latent cache";
  let description = [{
    For token t and head h: scores `(q_lat[t,h] . c_j + q_pe[t,h] . k_pe_j) *
    softmax_scale` over the cached positions `j <= positions[t]` of sequence
    `token_seq[t]`; the result is `sum_j p_j c_j` `[T, heads * kv_lora]`.
    `q` supplies the roped `q_pe`.

    ```mlir
    %o_lat = dsv3.mla_attention %q_lat, %q, %positions, %token_seq, %block_table layer 0
        shape <...> softmax_scale 0.135
        : tensor<?x65536xbf16>, tensor<?x24576xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
        -> tensor<?x65536xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$q_lat, Dsv3_Rows:$q, Dsv3_IndexVector:$positions,
                       Dsv3_IndexVector:$token_seq, Dsv3_IndexVector:$block_table,
                       I64Attr:$layer, Dsv3_MlaShapeAttr:$shape, F64Attr:$softmax_scale);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $q_lat `,` $q `,` $positions `,` $token_seq `,` $block_table `layer` $layer
    `shape` $shape `softmax_scale` $softmax_scale attr-dict `:` type($q_lat) `,` type($q)
    `,` type($positions) `,` type($token_seq) `,` type($block_table) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_MlaAbsorbOutOp : Dsv3_Op<"mla_absorb_out", [Pure]> {
  let summary = "attention output from the latent space (W_UV absorbed)";
  let description = [{
    `out[t, h, :] = W_UV[h] * o_lat[t, h, :]`, where `W_UV[h]` are the last
    `v` rows of head h's block of `kv_b` (bf16).

    ```mlir
    %o = dsv3.mla_absorb_out %o_lat, %kv_b shape <...>
        : tensor<?x65536xbf16>, tensor<32768x512xbf16> -> tensor<?x16384xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$latent, Dsv3_Rows:$kv_b, Dsv3_MlaShapeAttr:$shape);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $latent `,` $kv_b `shape` $shape attr-dict `:` type($latent) `,` type($kv_b) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_MlaPrefillAttentionOp : Dsv3_Op<"mla_prefill_attention", [
    MemoryEffects<[MemRead<Dsv3_KvCacheResource>]>,
    AllTypesMatch<["into", "result"]>]> {
  let summary = "causal attention with per-head keys and values (no absorption)";
  let description = [{
    For token t and head h: scores `(q_nope[t,h] . k_nope[j,h] + q_pe[t,h] .
    k_pe_j) * softmax_scale` over the step rows `j = t - positions[t] .. t`,
    the result `sum_j p_j v[j,h]` `[T, heads * v]`. `kv` `[T, heads * (nope +
    v)]` holds each step row's `kv_b` expansion (head h's `k_nope`, then its
    `v`); `k_pe_j` is read from layer `layer`'s cache at the slot of
    `(token_seq[j], positions[j])`. Valid only for steps whose every run
    starts at position 0 (no resumed run): a token's keys are then the rows
    before it in its run. `dsv3-absorb-mla` guards it so
    (`dsv3.when = "fresh"`).

    The result takes `into`'s buffer: `into` is the absorbed path's result of
    the same attention, which runs instead on the other steps. Both compute
    the same values; the memory planner gives them one buffer so that the
    output projection reads whichever ran.

    ```mlir
    %o = dsv3.mla_prefill_attention %q, %kv, %positions, %token_seq, %block_table into %o_abs
        layer 0 shape <...> softmax_scale 0.135
        : tensor<?x24576xf32>, tensor<?x32768xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
        -> tensor<?x16384xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$q, Dsv3_Rows:$kv, Dsv3_IndexVector:$positions,
                       Dsv3_IndexVector:$token_seq, Dsv3_IndexVector:$block_table,
                       Dsv3_Rows:$into, I64Attr:$layer, Dsv3_MlaShapeAttr:$shape,
                       F64Attr:$softmax_scale);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $q `,` $kv `,` $positions `,` $token_seq `,` $block_table `into` $into `layer` $layer
    `shape` $shape `softmax_scale` $softmax_scale attr-dict `:` type($q) `,` type($kv)
    `,` type($positions) `,` type($token_seq) `,` type($block_table) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def Dsv3_StackedWeightRefOp : Dsv3_Op<"stacked_weight_ref",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "same-shaped weights stacked into one tensor, with their scales";
  let description = [{
    The routed experts' projections as one `[experts, N, K]` tensor (the
    loader places each checkpoint tensor at its index), plus
    `[experts, ceil(N/b), ceil(K/b)]` scales when they are FP8.

    ```mlir
    %w, %s = dsv3.stacked_weight_ref [@model.layers.3.mlp.experts.0.gate_proj.weight, ...]
        : tensor<256x2048x7168xf8E4M3FN>, tensor<256x16x56xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefArrayAttr:$weights);
  let results = (outs Variadic<AnyStaticShapeTensor>:$values);
  let assemblyFormat = "$weights attr-dict `:` type($values)";
}

def Dsv3_MoeRouteOp : Dsv3_Op<"moe_route", [Pure]> {
  let summary = "expert selection and routing weights per token";
  let description = [{
    From the router's fp32 logits `[T, experts]` (and the correction bias for
    noaux_tc), picks `top_k` experts per token as `routing` says and returns
    their ids `[T, top_k]` and weights `[T, top_k]`.

    ```mlir
    %ids, %weights = dsv3.moe_route %logits, %bias routing <...>
        : tensor<?x256xf32>, tensor<256xf32> -> tensor<?x8xi32>, tensor<?x8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$logits,
                       Optional<RankedTensorOf<[F32]>>:$bias,
                       Dsv3_RoutingAttr:$routing);
  let results = (outs RankedTensorOf<[I32]>:$ids, RankedTensorOf<[F32]>:$weights);
  let assemblyFormat = [{
    $logits (`,` $bias^)? `routing` $routing attr-dict `:` type($logits) (`,` type($bias)^)?
    `->` type($ids) `,` type($weights)
  }];
  let hasVerifier = 1;
}

def Dsv3_MoeAlignOp : Dsv3_Op<"moe_align", [Pure]> {
  let summary = "sorts the (token, choice) entries by expert";
  let description = [{
    The `R = T * top_k` entries `t * top_k + k` sorted by expert: `offsets`
    `[experts + 1]` (each expert's row range), `tokens` `[R]` (the token of
    each row, which the grouped GEMM gathers) and `rows` `[R]` (the row of
    each entry, which the combine reads).

    ```mlir
    %offsets, %tokens, %rows = dsv3.moe_align %ids experts 256
        : tensor<?x8xi32> -> tensor<257xi32>, tensor<?xi32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I32]>:$ids, I64Attr:$experts);
  let results = (outs RankedTensorOf<[I32]>:$offsets, RankedTensorOf<[I32]>:$tokens,
                      RankedTensorOf<[I32]>:$rows);
  let assemblyFormat = [{
    $ids `experts` $experts attr-dict `:` type($ids) `->` type($offsets) `,` type($tokens)
    `,` type($rows)
  }];
  let hasVerifier = 1;
}

def Dsv3_GroupedGemmOp : Dsv3_Op<"grouped_gemm", [Pure, AttrSizedOperandSegments]> {
  let summary = "one GEMM per expert over the rows routed to it";
  let description = [{
    Row r, in expert e's range `offsets[e] <= r < offsets[e+1]`, is
    `lhs[gather ? gather[r] : r] * rhs[e]^T`. FP8 operands carry per-row
    (lhs) and per-block (rhs) scales as in `fp8_gemm`.

    ```mlir
    %y = dsv3.grouped_gemm %xq scales %xs gather %tokens, %w scales %ws offsets %offsets block [128, 128]
        : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<?xi32>, tensor<256x2048x7168xf8E4M3FN>,
           tensor<256x16x56xf32>, tensor<257xi32>) -> tensor<?x2048xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$lhs, Optional<RankedTensorOf<[F32]>>:$lhs_scales,
                       Optional<RankedTensorOf<[I32]>>:$gather, AnyRankedTensor:$rhs,
                       Optional<RankedTensorOf<[F32]>>:$rhs_scales,
                       RankedTensorOf<[I32]>:$offsets, DenseI64ArrayAttr:$block);
  let results = (outs RankedTensorOf<[BF16, F32]>:$result);
  let assemblyFormat = [{
    $lhs (`scales` $lhs_scales^)? (`gather` $gather^)? `,` $rhs (`scales` $rhs_scales^)?
    `offsets` $offsets `block` $block attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Dsv3_Fp8GemmPairOp : Dsv3_Op<"fp8_gemm_pair", [Pure]> {
  let summary = "two FP8 x FP8 products of one input, launched together";
  let description = [{
    `result0 = lhs * rhs0^T` and `result1 = lhs * rhs1^T`, each exactly as
    `fp8_gemm` computes it: `dsv3-pair-gemms` makes one of two `fp8_gemm`s
    that read the same quantized activations (q_a with kv_a, gate with up),
    so that a decode step reads both weights in one launch.

    ```mlir
    %q, %kv = dsv3.fp8_gemm_pair %xq scales %xs, %wq scales %wqs, %wkv scales %wkvs block [128, 128]
        : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32>,
           tensor<576x7168xf8E4M3FN>, tensor<5x56xf32>) -> (tensor<?x1536xf32>, tensor<?x576xf32>)
    ```
  }];
  let arguments = (ins RankedTensorOf<[F8E4M3FN]>:$lhs, RankedTensorOf<[F32]>:$lhs_scales,
                       RankedTensorOf<[F8E4M3FN]>:$rhs0, RankedTensorOf<[F32]>:$rhs0_scales,
                       RankedTensorOf<[F8E4M3FN]>:$rhs1, RankedTensorOf<[F32]>:$rhs1_scales,
                       DenseI64ArrayAttr:$block);
  let results = (outs RankedTensorOf<[BF16, F32]>:$result0, RankedTensorOf<[BF16, F32]>:$result1);
  let assemblyFormat = [{
    $lhs `scales` $lhs_scales `,` $rhs0 `scales` $rhs0_scales `,` $rhs1 `scales` $rhs1_scales
    `block` $block attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Dsv3_GroupedGemmPairOp : Dsv3_Op<"grouped_gemm_pair", [Pure]> {
  let summary = "two FP8 x FP8 grouped products of one input, launched together";
  let description = [{
    `result0` and `result1` are `grouped_gemm` of the same FP8 rows (and
    gather, offsets, block) with the stacked experts `rhs0` and `rhs1`: the
    routed experts' gate and up, paired by `dsv3-pair-gemms`.

    ```mlir
    %g, %u = dsv3.grouped_gemm_pair %xq scales %xs gather %tokens, %wg scales %wgs, %wu scales %wus
        offsets %offsets block [128, 128]
        : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<?xi32>, tensor<256x2048x7168xf8E4M3FN>,
           tensor<256x16x56xf32>, tensor<256x2048x7168xf8E4M3FN>, tensor<256x16x56xf32>,
           tensor<257xi32>) -> (tensor<?x2048xf32>, tensor<?x2048xf32>)
    ```
  }];
  let arguments = (ins RankedTensorOf<[F8E4M3FN]>:$lhs, RankedTensorOf<[F32]>:$lhs_scales,
                       Optional<RankedTensorOf<[I32]>>:$gather,
                       RankedTensorOf<[F8E4M3FN]>:$rhs0, RankedTensorOf<[F32]>:$rhs0_scales,
                       RankedTensorOf<[F8E4M3FN]>:$rhs1, RankedTensorOf<[F32]>:$rhs1_scales,
                       RankedTensorOf<[I32]>:$offsets, DenseI64ArrayAttr:$block);
  let results = (outs RankedTensorOf<[BF16, F32]>:$result0, RankedTensorOf<[BF16, F32]>:$result1);
  let assemblyFormat = [{
    $lhs `scales` $lhs_scales (`gather` $gather^)? `,` $rhs0 `scales` $rhs0_scales `,` $rhs1
    `scales` $rhs1_scales `offsets` $offsets `block` $block attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Dsv3_MoeCombineOp : Dsv3_Op<"moe_combine", [Pure]> {
  let summary = "sums each token's expert outputs by routing weight";
  let description = [{
    `out[t] = sum_k weights[t, k] * expert_out[rows[t * top_k + k]]`
    `(+ shared[t])`, in fp32.

    ```mlir
    %y = dsv3.moe_combine %expert_out, %rows, %weights, %shared
        : tensor<?x7168xbf16>, tensor<?xi32>, tensor<?x8xf32>, tensor<?x7168xbf16> -> tensor<?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$expert_out, RankedTensorOf<[I32]>:$rows,
                       RankedTensorOf<[F32]>:$weights, Optional<Dsv3_Rows>:$shared);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $expert_out `,` $rows `,` $weights (`,` $shared^)? attr-dict `:` type($expert_out) `,`
    type($rows) `,` type($weights) (`,` type($shared)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_ConcatOp : Dsv3_Op<"concat", [Pure]> {
  let summary = "two row tensors side by side";
  let description = [{
    `[lhs, rhs]` along the columns: MTP's concatenation of the normalized
    embedding and hidden state.

    ```mlir
    %c = dsv3.concat %e, %h : tensor<?x7168xbf16>, tensor<?x7168xbf16> -> tensor<?x14336xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$lhs, Dsv3_Rows:$rhs);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_ConvertOp : Dsv3_Op<"convert", [Pure]> {
  let summary = "rows converted to another element type";
  let description = [{
    Rounds (or widens) every element: the bf16 GEMM input made from an f32
    activation that no normalization precedes.

    ```mlir
    %b = dsv3.convert %x : tensor<?x7168xf32> -> tensor<?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Rows:$input);
  let results = (outs Dsv3_Rows:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

#endif // DSV3_KERNEL_OPS_TD
