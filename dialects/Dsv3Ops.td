//===- Dsv3Ops.td - dsv3 operations -------------------------------------===//

#ifndef DSV3_OPS_TD
#define DSV3_OPS_TD

include "dialects/Dsv3Base.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class Dsv3_Op<string mnemonic, list<Trait> traits = []>
    : Op<Dsv3_Dialect, mnemonic, traits>;

// Element types a checkpoint tensor may have.
def Dsv3_WeightElement : AnyTypeOf<[BF16, F16, F32, F8E4M3FN]>;
// Activations between graph ops.
def Dsv3_Activation : RankedTensorOf<[BF16, F16, F32]>;
def Dsv3_TokenIds : RankedTensorOf<[I32, I64]>;

// Graph ops that name weights implement SymbolUserOpInterface: their shapes
// are checked against the `dsv3.weight` declarations they refer to.
class Dsv3_GraphOp<string mnemonic, list<Trait> traits = []>
    : Dsv3_Op<mnemonic, !listconcat(traits,
        [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>])>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def Dsv3_WeightOp : Dsv3_Op<"weight", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "a checkpoint tensor";
  let description = [{
    Declares one weight of the model, named exactly as the tensor in the
    Hugging Face checkpoint, with its static shape and element type. An FP8
    (`f8E4M3FN`) weight carries a `#dsv3.block_scale` naming its scale tensor;
    the scale's shape must be `ceil(rows/block_rows) x ceil(cols/block_cols)`.
    Graph ops refer to weights by symbol.

    ```mlir
    dsv3.weight @model.layers.0.self_attn.kv_a_proj_with_mqa.weight
        : tensor<576x7168xf8E4M3FN>
        scale <128x128, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv" : 5x56>
    dsv3.weight @model.norm.weight : tensor<7168xbf16>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<AnyStaticShapeTensor>:$type,
                       OptionalAttr<Dsv3_BlockScaleAttr>:$scale);
  let assemblyFormat = "$sym_name `:` $type (`scale` $scale^)? attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Dsv3_WeightRefOp : Dsv3_Op<"weight_ref",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "the value of a weight, and its block scales";
  let description = [{
    Brings a `dsv3.weight` into SSA form for kernel ops. A block-scaled weight
    yields two results, the FP8 tensor and its fp32 scales; any other weight
    yields one.

    ```mlir
    %w, %s = dsv3.weight_ref @model.layers.0.self_attn.o_proj.weight
        : tensor<7168x16384xf8E4M3FN>, tensor<56x128xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight);
  let results = (outs Variadic<AnyStaticShapeTensor>:$values);
  let assemblyFormat = "$weight attr-dict `:` type($values)";
}

//===----------------------------------------------------------------------===//
// Graph ops
//===----------------------------------------------------------------------===//

def Dsv3_EmbedOp : Dsv3_GraphOp<"embed"> {
  let summary = "token embedding lookup";
  let description = [{
    Looks up each token id in the `vocab x hidden` table.

    ```mlir
    %h = dsv3.embed %tokens table @model.embed_tokens.weight
        : tensor<?x?xi32> -> tensor<?x?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_TokenIds:$tokens, FlatSymbolRefAttr:$table);
  let results = (outs Dsv3_Activation:$result);
  let assemblyFormat =
      "$tokens `table` $table attr-dict `:` type($tokens) `->` type($result)";
  let hasVerifier = 1;
}

def Dsv3_RmsNormOp : Dsv3_GraphOp<"rms_norm",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "RMS normalization over the last dimension";
  let description = [{
    `y = x / sqrt(mean(x^2) + eps) * weight`, computed in fp32.

    ```mlir
    %y = dsv3.rms_norm %x weight @model.norm.weight eps 1.000000e-06
        : tensor<?x?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Activation:$input, FlatSymbolRefAttr:$weight,
                       F64Attr:$eps);
  let results = (outs Dsv3_Activation:$result);
  let assemblyFormat =
      "$input `weight` $weight `eps` $eps attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Dsv3_MlaOp : Dsv3_GraphOp<"mla", [AllTypesMatch<["input", "result"]>]> {
  let summary = "multi-head latent attention of one layer";
  let description = [{
    The whole attention block of layer `layer` (its latent KV cache slot):
    `q = q_b(rms_norm(q_a(x)))` (or `q_proj(x)` without a query LoRA), split
    per head into `nope` and `rope` parts; `kv_a(x)` gives the latent `c_kv`
    (then `kv_a_norm`) and the shared `k_pe`; `kv_b(c_kv)` gives per-head
    `k_nope` and `v`; rotary embedding on the rope parts at `positions`;
    causal softmax attention with `softmax_scale`; `o` projects back to the
    hidden size. Only `c_kv` and `k_pe` are cached.

    ```mlir
    %a = dsv3.mla %x, %positions layer 0
        shape <heads = 128, q_lora_rank = 1536, kv_lora_rank = 512,
               qk_nope_head_dim = 128, qk_rope_head_dim = 64, v_head_dim = 128>
        rope <theta = 1.000000e+04, ...> softmax_scale 0.1352 eps 1.000000e-06
        q_a @model.layers.0.self_attn.q_a_proj.weight
        q_a_norm @model.layers.0.self_attn.q_a_layernorm.weight
        q_b @model.layers.0.self_attn.q_b_proj.weight
        kv_a @model.layers.0.self_attn.kv_a_proj_with_mqa.weight
        kv_a_norm @model.layers.0.self_attn.kv_a_layernorm.weight
        kv_b @model.layers.0.self_attn.kv_b_proj.weight
        o @model.layers.0.self_attn.o_proj.weight
        : tensor<?x?x7168xbf16>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins Dsv3_Activation:$input, Dsv3_TokenIds:$positions,
                       I64Attr:$layer, Dsv3_MlaShapeAttr:$shape,
                       Dsv3_RopeAttr:$rope, F64Attr:$softmax_scale,
                       F64Attr:$eps,
                       OptionalAttr<FlatSymbolRefAttr>:$q_proj,
                       OptionalAttr<FlatSymbolRefAttr>:$q_a_proj,
                       OptionalAttr<FlatSymbolRefAttr>:$q_a_layernorm,
                       OptionalAttr<FlatSymbolRefAttr>:$q_b_proj,
                       FlatSymbolRefAttr:$kv_a_proj_with_mqa,
                       FlatSymbolRefAttr:$kv_a_layernorm,
                       FlatSymbolRefAttr:$kv_b_proj,
                       FlatSymbolRefAttr:$o_proj);
  let results = (outs Dsv3_Activation:$result);
  let assemblyFormat = [{
    $input `,` $positions `layer` $layer `shape` $shape `rope` $rope
    `softmax_scale` $softmax_scale `eps` $eps
    (`q` $q_proj^)? (`q_a` $q_a_proj^)? (`q_a_norm` $q_a_layernorm^)?
    (`q_b` $q_b_proj^)? `kv_a` $kv_a_proj_with_mqa `kv_a_norm` $kv_a_layernorm
    `kv_b` $kv_b_proj `o` $o_proj
    attr-dict `:` type($input) `,` type($positions)
  }];
  let hasVerifier = 1;
}

def Dsv3_DenseMlpOp : Dsv3_GraphOp<"dense_mlp",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "SwiGLU feed-forward block";
  let description = [{
    `down(silu(gate(x)) * up(x))`, used by the first `first_k_dense_replace`
    layers.

    ```mlir
    %y = dsv3.dense_mlp %x gate @model.layers.0.mlp.gate_proj.weight
        up @model.layers.0.mlp.up_proj.weight
        down @model.layers.0.mlp.down_proj.weight : tensor<?x?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Activation:$input, FlatSymbolRefAttr:$gate_proj,
                       FlatSymbolRefAttr:$up_proj, FlatSymbolRefAttr:$down_proj);
  let results = (outs Dsv3_Activation:$result);
  let assemblyFormat = [{
    $input `gate` $gate_proj `up` $up_proj `down` $down_proj attr-dict
    `:` type($result)
  }];
}

def Dsv3_MoeOp : Dsv3_GraphOp<"moe", [AllTypesMatch<["input", "result"]>]> {
  let summary = "mixture-of-experts feed-forward block";
  let description = [{
    Scores every token against the `router` weight (in fp32), adds the
    `correction_bias` for choosing (noaux_tc) but weights by the unbiased
    score, routes each token to `top_k` experts as `routing` says, and sums
    their SwiGLU outputs times the routing weights; the shared experts (one
    SwiGLU of `n_shared_experts x moe_intermediate_size`) see every token.
    `experts` lists, expert by expert, the gate, up and down projections.

    ```mlir
    %y = dsv3.moe %x routing <experts = 256, top_k = 8, groups = 8,
                  topk_groups = 4, method = noaux_tc, score = sigmoid,
                  normalize = true, scale = 2.500000e+00>
        router @model.layers.3.mlp.gate.weight
        bias @model.layers.3.mlp.gate.e_score_correction_bias
        experts [@model.layers.3.mlp.experts.0.gate_proj.weight, ...]
        shared [@model.layers.3.mlp.shared_experts.gate_proj.weight, ...]
        : tensor<?x?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Activation:$input, Dsv3_RoutingAttr:$routing,
                       FlatSymbolRefAttr:$router,
                       OptionalAttr<FlatSymbolRefAttr>:$correction_bias,
                       FlatSymbolRefArrayAttr:$experts,
                       OptionalAttr<FlatSymbolRefArrayAttr>:$shared_experts);
  let results = (outs Dsv3_Activation:$result);
  let assemblyFormat = [{
    $input `routing` $routing `router` $router (`bias` $correction_bias^)?
    `experts` $experts (`shared` $shared_experts^)? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_MtpOp : Dsv3_GraphOp<"mtp",
    [AllTypesMatch<["hidden", "embedding", "result"]>]> {
  let summary = "input of a multi-token-prediction module";
  let description = [{
    `eh_proj(concat(enorm(embedding), hnorm(hidden)))`: combines the
    embedding of the next token with the previous depth's hidden state; a full
    attention + MoE block, `shared_head.norm` and the head follow.

    ```mlir
    %h = dsv3.mtp %hidden, %embedding enorm @model.layers.61.enorm.weight
        hnorm @model.layers.61.hnorm.weight eh_proj @model.layers.61.eh_proj.weight
        eps 1.000000e-06 : tensor<?x?x7168xbf16>
    ```
  }];
  let arguments = (ins Dsv3_Activation:$hidden, Dsv3_Activation:$embedding,
                       FlatSymbolRefAttr:$enorm, FlatSymbolRefAttr:$hnorm,
                       FlatSymbolRefAttr:$eh_proj, F64Attr:$eps);
  let results = (outs Dsv3_Activation:$result);
  let assemblyFormat = [{
    $hidden `,` $embedding `enorm` $enorm `hnorm` $hnorm `eh_proj` $eh_proj
    `eps` $eps attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

def Dsv3_LmHeadOp : Dsv3_GraphOp<"lm_head"> {
  let summary = "output projection to vocabulary logits";
  let description = [{
    `logits = x * head^T` in fp32; the head is kept in BF16.

    ```mlir
    %logits = dsv3.lm_head %x head @lm_head.weight
        : tensor<?x?x7168xbf16> -> tensor<?x?x129280xf32>
    ```
  }];
  let arguments = (ins Dsv3_Activation:$input, FlatSymbolRefAttr:$head);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat =
      "$input `head` $head attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// FP8 kernel ops
//===----------------------------------------------------------------------===//

def Dsv3_ActQuantOp : Dsv3_Op<"act_quant", [Pure]> {
  let summary = "per-token, per-block FP8 quantization of activations";
  let description = [{
    Splits the last dimension into blocks of `block` channels and quantizes
    each block of each token to `f8E4M3FN` with scale `amax / 448`; the scales
    have `ceil(K / block)` entries per token.

    ```mlir
    %q, %s = dsv3.act_quant %x block 128
        : tensor<?x7168xbf16> -> tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[BF16, F16, F32]>:$input, I64Attr:$block);
  let results = (outs RankedTensorOf<[F8E4M3FN]>:$output,
                      RankedTensorOf<[F32]>:$scales);
  let assemblyFormat = [{
    $input `block` $block attr-dict `:` type($input) `->` type($output) `,`
    type($scales)
  }];
  let hasVerifier = 1;
}

def Dsv3_DequantOp : Dsv3_Op<"dequant", [Pure]> {
  let summary = "expands a block-scaled FP8 weight to a wider float type";
  let description = [{
    `out[i, j] = input[i, j] * scales[i / block[0], j / block[1]]`.

    ```mlir
    %w = dsv3.dequant %q, %s block [128, 128]
        : tensor<576x7168xf8E4M3FN>, tensor<5x56xf32> -> tensor<576x7168xbf16>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F8E4M3FN]>:$input,
                       RankedTensorOf<[F32]>:$scales,
                       DenseI64ArrayAttr:$block);
  let results = (outs RankedTensorOf<[BF16, F16, F32]>:$output);
  let assemblyFormat = [{
    $input `,` $scales `block` $block attr-dict `:` type($input) `,`
    type($scales) `->` type($output)
  }];
  let hasVerifier = 1;
}

def Dsv3_Fp8GemmOp : Dsv3_Op<"fp8_gemm", [Pure]> {
  let summary = "matrix multiply with a block-scaled FP8 weight, out = lhs * rhs^T";
  let description = [{
    `rhs` is an `N x K` FP8 weight with one scale per `block[0] x block[1]`
    block. `lhs` is either `M x K` FP8 with one scale per row per `block[1]`
    columns (DeepSeek's quantized activations), or `M x K` bf16 with no scales
    (weight-only FP8: the weight is dequantized exactly inside the product).
    Each `block[1]`-deep slice of K is accumulated in fp32 and scaled by the
    scales of both operands before it is added to the result.

    ```mlir
    %y = dsv3.fp8_gemm %a scales %as, %w scales %ws block [128, 128]
        : (tensor<?x7168xf8E4M3FN>, tensor<?x56xf32>, tensor<1536x7168xf8E4M3FN>,
           tensor<12x56xf32>) -> tensor<?x1536xbf16>
    %z = dsv3.fp8_gemm %x, %w scales %ws block [128, 128]
        : (tensor<?x7168xbf16>, tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32>)
          -> tensor<?x1536xbf16>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F8E4M3FN, BF16]>:$lhs,
                       Optional<RankedTensorOf<[F32]>>:$lhs_scales,
                       RankedTensorOf<[F8E4M3FN]>:$rhs,
                       RankedTensorOf<[F32]>:$rhs_scales,
                       DenseI64ArrayAttr:$block);
  let results = (outs RankedTensorOf<[BF16, F32]>:$result);
  let assemblyFormat = [{
    $lhs (`scales` $lhs_scales^)? `,` $rhs `scales` $rhs_scales `block` $block attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

include "dialects/Dsv3KernelOps.td"

#endif // DSV3_OPS_TD
