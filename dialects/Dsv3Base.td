//===- Dsv3Base.td - the dsv3 dialect, its enums and attributes ---------===//
//
// The dialect that models DeepSeek-V3-family networks: graph-level ops (one
// per model component) that the frontend emits, and kernel-level ops (FP8
// quantization, block-scaled GEMMs, ...) that passes lower them to.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_BASE_TD
#define DSV3_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Dsv3_Dialect : Dialect {
  let name = "dsv3";
  let summary = "DeepSeek-V3-family models: MLA, MoE and FP8 operations";
  let description = [{
    Models the DeepSeek-V3 architecture at two levels. Graph ops (`embed`,
    `rms_norm`, `mla`, `dense_mlp`, `moe`, `mtp`, `lm_head`) describe one model
    component each and name their weights by checkpoint tensor (module-level
    `dsv3.weight` symbols, named exactly as in the Hugging Face checkpoint).
    Kernel ops (`weight_ref`, `act_quant`, `dequant`, `fp8_gemm`) describe the
    work of individual GPU kernels on SSA tensors.
  }];
  let cppNamespace = "::dsv3";
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Dsv3_RoutingMethod : I32EnumAttr<"RoutingMethod",
    "how the router selects experts (Hugging Face `topk_method`)", [
      I32EnumAttrCase<"greedy", 0>,
      I32EnumAttrCase<"group_limited_greedy", 1>,
      I32EnumAttrCase<"noaux_tc", 2>]> {
  let cppNamespace = "::dsv3";
  let genSpecializedAttr = 0;
}

def Dsv3_RoutingScore : I32EnumAttr<"RoutingScore",
    "the router's score function (Hugging Face `scoring_func`)", [
      I32EnumAttrCase<"softmax", 0>,
      I32EnumAttrCase<"sigmoid", 1>]> {
  let cppNamespace = "::dsv3";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attribute parameters
//===----------------------------------------------------------------------===//

// A double, printed so that it parses back to the same bits.
def Dsv3_F64Parameter : APFloatParameter<"a 64-bit float"> {
  let parser = [{ ::dsv3::parseF64Parameter($_parser) }];
  let printer = [{ $_printer.printFloat($_self) }];
}

def Dsv3_BoolParameter : AttrParameter<"bool", "true or false"> {
  let parser = [{ ::dsv3::parseBoolParameter($_parser) }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class Dsv3_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Dsv3_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def Dsv3_BlockScaleAttr : Dsv3_Attr<"BlockScale", "block_scale"> {
  let summary = "block-wise FP8 scales of a weight";
  let description = [{
    An FP8 weight of shape `R x C` carries one fp32 scale per
    `block_rows x block_cols` block, stored in the checkpoint tensor named here
    (`<weight>_scale_inv`), of shape `ceil(R/block_rows) x ceil(C/block_cols)`.
    Edge blocks are partial (e.g. the 576-row `kv_a_proj_with_mqa`).

    ```mlir
    #dsv3.block_scale<128x128, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv" : 5x56>
    ```
  }];
  let parameters = (ins "int64_t":$blockRows, "int64_t":$blockCols,
                        StringRefParameter<"scale tensor name">:$tensor,
                        "int64_t":$scaleRows, "int64_t":$scaleCols);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def Dsv3_MlaShapeAttr : Dsv3_Attr<"MlaShape", "mla_shape"> {
  let summary = "head counts and ranks of a multi-head latent attention";
  let description = [{
    `q_lora_rank = 0` means the query is projected directly (`q_proj`).
    The query/key head is `qk_nope_head_dim + qk_rope_head_dim` wide; only
    `kv_lora_rank + qk_rope_head_dim` values per token are cached.

    ```mlir
    #dsv3.mla_shape<heads = 128, q_lora_rank = 1536, kv_lora_rank = 512,
                    qk_nope_head_dim = 128, qk_rope_head_dim = 64, v_head_dim = 128>
    ```
  }];
  let parameters = (ins "int64_t":$heads, "int64_t":$q_lora_rank,
                        "int64_t":$kv_lora_rank, "int64_t":$qk_nope_head_dim,
                        "int64_t":$qk_rope_head_dim, "int64_t":$v_head_dim);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getQkHeadDim() const { return getQkNopeHeadDim() + getQkRopeHeadDim(); }
    bool hasQLora() const { return getQLoraRank() > 0; }
  }];
}

def Dsv3_RopeAttr : Dsv3_Attr<"Rope", "rope"> {
  let summary = "rotary position embedding, optionally YaRN-scaled";
  let description = [{
    Rotary embedding over interleaved pairs with base `theta`. `yarn_factor = 1`
    means plain RoPE; otherwise YaRN with the given original context length,
    `beta_fast`/`beta_slow` correction range and `mscale`/`mscale_all_dim`.

    ```mlir
    #dsv3.rope<theta = 1.000000e+04, yarn_factor = 4.000000e+01,
               original_max_position = 4096, beta_fast = 3.200000e+01,
               beta_slow = 1.000000e+00, mscale = 1.000000e+00,
               mscale_all_dim = 1.000000e+00>
    ```
  }];
  let parameters = (ins Dsv3_F64Parameter:$theta,
                        Dsv3_F64Parameter:$yarn_factor,
                        "int64_t":$original_max_position,
                        Dsv3_F64Parameter:$beta_fast,
                        Dsv3_F64Parameter:$beta_slow,
                        Dsv3_F64Parameter:$mscale,
                        Dsv3_F64Parameter:$mscale_all_dim);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The rotation frequency of each of the `dim / 2` pairs, YaRN-corrected
    /// as Hugging Face's `_compute_yarn_parameters` does.
    ::llvm::SmallVector<float> getInverseFrequencies(int64_t dim) const;
    /// The factor YaRN applies to cos and sin (1 without YaRN).
    double getAttentionFactor() const;
  }];
}

def Dsv3_RoutingAttr : Dsv3_Attr<"Routing", "routing"> {
  let summary = "how a mixture-of-experts layer routes tokens";
  let description = [{
    `experts` routed experts in `groups` equal groups; each token keeps the
    best `topk_groups` groups and picks `top_k` experts among them, scored
    with `score` and selected by `method`; the weights are normalized when
    `normalize` and multiplied by `scale`.

    ```mlir
    #dsv3.routing<experts = 256, top_k = 8, groups = 8, topk_groups = 4,
                  method = noaux_tc, score = sigmoid, normalize = true,
                  scale = 2.500000e+00>
    ```
  }];
  let parameters = (ins "int64_t":$experts, "int64_t":$top_k,
                        "int64_t":$groups, "int64_t":$topk_groups,
                        EnumParameter<Dsv3_RoutingMethod>:$method,
                        EnumParameter<Dsv3_RoutingScore>:$score,
                        Dsv3_BoolParameter:$normalize,
                        Dsv3_F64Parameter:$scale);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // DSV3_BASE_TD
