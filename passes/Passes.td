//===- Passes.td - dsv3 passes -------------------------------------------===//

#ifndef DSV3_PASSES_TD
#define DSV3_PASSES_TD

include "mlir/Pass/PassBase.td"

def Decompose : Pass<"dsv3-decompose", "::mlir::ModuleOp"> {
  let summary = "Lower graph ops to kernel ops over flattened token rows";
  let description = [{
    Rewrites each entry point from the graph form (token ids and positions
    shaped `[batch, seq]`) to the step form the runtime executes: `T` tokens
    flattened across the batch, with the sequence of each token, the
    sequences' cache pages and the row of each sequence's last token:

    ```mlir
    func.func @prefill(%tokens: tensor<?xi32>, %positions: tensor<?xi32>,
                       %token_seq: tensor<?xi32>, %block_table: tensor<?x?xi32>,
                       %last_rows: tensor<?xi32>)
        -> (tensor<?xVxf32>, tensor<?xHxbf16>)   // last tokens' logits, hidden
    ```

    Every graph op becomes the kernel ops that compute it, with weights as
    `dsv3.weight_ref` values: a projection by an FP8 weight becomes an
    `fp8_gemm` of the bf16 activations (weight-only FP8, as DeepSeek's
    inference demo runs by default), or with `quantize-activations`
    `act_quant` + `fp8_gemm` of FP8 activations (DeepSeek's training-time
    scheme: activation blocks = the weight's column blocks; twice the tensor
    throughput, a few percent of error per GEMM); by a BF16 weight
    `bf16_gemm`; `mla` its projections around an
    un-absorbed `mla_core` (kv_b dequantized to bf16); `moe` router GEMM,
    `moe_route`, `moe_align`, grouped GEMMs over stacked experts,
    `swiglu[_quant]`, the shared experts and `moe_combine`; `mtp` two norms,
    `concat` and `eh_proj`; `lm_head` picks the last rows before its GEMM.

    Precision: GEMMs write f32, the residual stream starts as f32 embedding
    rows, and every activation stays f32 except GEMM inputs, which are bf16:
    `normalize` and `swiglu` round their results once, and an f32 value a
    GEMM reads directly goes through `convert`.
  }];
  let dependentDialects = ["::dsv3::Dsv3Dialect", "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect"];
  let options = [
    Option<"quantizeActivations", "quantize-activations", "bool", "false",
           "Quantize the activations of FP8-weight GEMMs to FP8 (1x128 blocks)">,
  ];
}

def AbsorbMla : Pass<"dsv3-absorb-mla", "::mlir::ModuleOp"> {
  let summary = "Run MLA attention on the latent cache, kv_b absorbed";
  let description = [{
    Rewrites each `mla_core` into the absorbed form DeepSeek uses for decode:
    `rope_q` (YaRN frequencies become a constant), `mla_absorb_q` (W_UK folded
    into the query), `kv_write` (the step's normalized latents and roped keys
    into the layer's cache), `mla_attention` over the latent cache, and
    `mla_absorb_out` (W_UV applied to the latent result). Only `c_kv` and
    `k_pe` are ever cached.

    In the `prefill` entry point (with `prefill-direct`) the absorbed ops are
    guarded to steps that resume a sequence (`dsv3.when = "resumed"`), and a
    second path runs on the others (`"fresh"`: every sequence's rows start at
    position 0, a new prompt): `normalize` of the latent, `bf16_gemm` by
    `kv_b` (each step row's per-head keys and values), and
    `mla_prefill_attention` over them, writing the absorbed path's result
    buffer. With `quantize-activations` and an FP8 `kv_b` the expansion is
    `act_quant` and a block-scaled `fp8_gemm` instead of the `bf16_gemm`. Without earlier context the expansion costs what absorbing the
    queries and outputs costs, and each (query, key) pair takes
    `nope + rope + v` multiply-adds per head instead of `2 kv_lora + rope`.
    Both paths are causal through the positions and not quadratic in memory.
  }];
  let options = [
    Option<"prefillDirect", "prefill-direct", "bool", "true",
           "In the prefill entry, attend with kv_b-expanded keys and values "
           "on steps that resume no sequence">,
    Option<"quantizeActivations", "quantize-activations", "bool", "false",
           "Expand an FP8 kv_b with an FP8 x FP8 GEMM (the latent quantized "
           "per token and block, as dsv3-decompose quantizes GEMM inputs)">,
  ];
  let dependentDialects = ["::dsv3::Dsv3Dialect", "::mlir::arith::ArithDialect"];
}

def FuseNormQuant : Pass<"dsv3-fuse-norm-quant", "::mlir::ModuleOp"> {
  let summary = "Quantize a normalization's output to FP8 in the normalizing kernel";
  let description = [{
    A `normalize` or `add_normalize` whose bf16 result only one `act_quant`
    reads becomes `normalize_quant` or `add_normalize_quant`: the row is
    normalized, rounded to bf16 and quantized in one pass over it, the same
    values and scales as before, without writing the bf16 row and reading it
    back. A result that another op reads too (the router's bf16 GEMM) stays
    as it is, as does a pair with different step guards (`dsv3.when`). Run
    it after `dsv3-fuse-residual-norm` and CSE, which merge duplicate
    quantizations of one row.
  }];
  let dependentDialects = ["::dsv3::Dsv3Dialect"];
}

def PairGemms : Pass<"dsv3-pair-gemms", "::mlir::ModuleOp"> {
  let summary = "Launch two FP8 x FP8 products of one input together";
  let description = [{
    Two `fp8_gemm`s with FP8 activations that read the same quantized rows
    (the same `lhs`, scales, block and result type: q_a with kv_a, gate
    with up) become one `fp8_gemm_pair`; two `grouped_gemm`s that read the
    same FP8 rows through the same gather and expert offsets (the routed
    experts' gate and up) become one `grouped_gemm_pair`. At decode the code
    generator then reads both weights in one launch. Products are paired in
    program order, two at a time; the pair takes the first one's place (a
    weight reference the second one reads is moved before it), and a pair
    with different step guards (`dsv3.when`) stays apart. Results, and the
    arithmetic, are those of the two products.
  }];
  let dependentDialects = ["::dsv3::Dsv3Dialect"];
}

def FuseResidualNorm : Pass<"dsv3-fuse-residual-norm", "::mlir::ModuleOp"> {
  let summary = "Fuse each residual addition into the normalization that reads it";
  let description = [{
    `%sum = arith.addf %residual, %delta` followed by `dsv3.normalize %sum`
    becomes one `dsv3.add_normalize`, which adds and normalizes in one pass
    over the rows; every other use of the sum reads the fused op's sum.
  }];
  let dependentDialects = ["::dsv3::Dsv3Dialect"];
}

def PlanMemory : Pass<"dsv3-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Place every activation in one arena per entry point";
  let description = [{
    Bounds each activation's rows by the plan's limits (tokens T <=
    `max-tokens`, sequences B <= `max-sequences`, routed rows R = T * top_k),
    computes its live range in the entry point's straight-line body, and
    assigns it a byte offset in the entry point's arena, reusing the space of
    values no longer live (first fit, 256-byte aligned). Each op records its
    results' offsets in `dsv3.offsets` and their row bound in `dsv3.rows`
    (`T`, `B`, `R` with a multiplier, or a constant); each entry point records
    `dsv3.arena_bytes`, the peak. Weights, constants and the step's inputs
    are not in the arena.
  }];
  let options = [
    Option<"maxTokens", "max-tokens", "int64_t", "8192",
           "Most tokens one step may carry (prefill chunk size)">,
    Option<"maxSequences", "max-sequences", "int64_t", "256",
           "Most sequences one step may carry">,
  ];
  let dependentDialects = ["::dsv3::Dsv3Dialect"];
}

#endif // DSV3_PASSES_TD
