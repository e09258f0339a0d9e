#!/usr/bin/env python3
"""Reference outputs from Hugging Face transformers' DeepseekV3ForCausalLM.

Runs the model in float32 on the weights of a checkpoint directory written by
dsv3-ckpt (FP8 weights dequantized here, exactly, in float32: w * scale_inv per
128x128 block), and saves, for the workloads of test/gpu/e2e/README.md:

  prefill:  last-position logits of each prompt of the prefill batches
  decode:   logits at each of N greedy decode steps, and the tokens chosen
  greedy:   N free-running greedy tokens per prompt, with the top-3 each step

to an .npz file that compare.py reads beside our runtime's outputs.
"""
import argparse
import glob
import json
import os
import re
import sys

import numpy as np
import torch
from safetensors import safe_open


def load_checkpoint(directory):
    """All tensors of a Hugging Face checkpoint directory, by name, on the CPU."""
    files = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    if not files:
        sys.exit(f"{directory}: no .safetensors files")
    tensors = {}
    for path in files:
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
    return tensors


def dequantize(weight, scale_inv, block):
    """FP8 e4m3 weight times its block scales, in float32 (partial edge blocks)."""
    rows, cols = weight.shape
    expanded = scale_inv.float().repeat_interleave(block[0], 0)[:rows]
    expanded = expanded.repeat_interleave(block[1], 1)[:, :cols]
    return weight.float() * expanded


def dequantized_state(tensors, block):
    state = {}
    for name, tensor in tensors.items():
        if name.endswith("_scale_inv"):
            continue
        scale = tensors.get(name + "_scale_inv")
        if tensor.dtype == torch.float8_e4m3fn:
            if scale is None:
                sys.exit(f"{name}: FP8 without a scale")
            state[name] = dequantize(tensor, scale, block)
        else:
            state[name] = tensor.float()
    return state


def build_model(directory, device):
    from transformers import AutoConfig, DeepseekV3ForCausalLM

    config = AutoConfig.from_pretrained(directory)
    block = [128, 128]
    qc = getattr(config, "quantization_config", None)
    if qc:
        block = list((qc if isinstance(qc, dict) else qc.to_dict()).get("weight_block_size", block))
        config.quantization_config = None
        if hasattr(config, "__dict__"):
            config.__dict__.pop("quantization_config", None)
    config.torch_dtype = torch.float32
    config._attn_implementation = "eager"
    with torch.device(device):
        model = DeepseekV3ForCausalLM(config).to(torch.float32)
    model.eval()

    state = dequantized_state(load_checkpoint(directory), block)
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    used = set()
    for name, param in list(params.items()) + [(n, b) for n, b in buffers.items() if n in state]:
        if name in state:
            source = state[name]
            used.add(name)
        else:
            # transformers may pack per-expert weights into one parameter:
            # experts.gate_up_proj [E, 2I, H] (or transposed), experts.down_proj.
            m = re.match(r"(model\.layers\.\d+\.mlp\.experts)\.(gate_up_proj|down_proj)$", name)
            if not m:
                sys.exit(f"transformers parameter {name} {tuple(param.shape)} has no checkpoint tensor")
            prefix, kind = m.groups()
            count = param.shape[0]
            # Expert by expert into the packed parameter: stacking all of
            # them first would need another copy of the largest tensor.
            with torch.no_grad():
                for e in range(count):
                    if kind == "gate_up_proj":
                        part = torch.cat([state[f"{prefix}.{e}.gate_proj.weight"],
                                          state[f"{prefix}.{e}.up_proj.weight"]], 0)
                    else:
                        part = state[f"{prefix}.{e}.down_proj.weight"]
                    if tuple(part.shape) != tuple(param[e].shape):
                        part = part.T
                    if tuple(part.shape) != tuple(param[e].shape):
                        sys.exit(f"{name}[{e}]: checkpoint shape {tuple(part.shape)} vs model {tuple(param[e].shape)}")
                    param[e].copy_(part.to(device))
                    for p in ("gate_proj", "up_proj", "down_proj"):
                        used.add(f"{prefix}.{e}.{p}.weight")
            continue
        if tuple(source.shape) != tuple(param.shape):
            sys.exit(f"{name}: checkpoint shape {tuple(source.shape)} vs model {tuple(param.shape)}")
        with torch.no_grad():
            param.copy_(source.to(device))
    # MTP layers (model.layers.<num_hidden_layers>.*) are not part of transformers' model.
    unused = [n for n in state if n not in used and not n.startswith(f"model.layers.{config.num_hidden_layers}.")]
    if unused:
        sys.exit(f"checkpoint tensors transformers did not take: {unused[:5]} ({len(unused)})")
    return model, config


def route_as_deepseek(config):
    """A router forward with the semantics of DeepSeek's own code for every
    scoring_func / topk_method, for configs transformers' native router
    ignores: it always applies sigmoid scores and noaux_tc group selection
    (DeepseekV3TopkRouter.forward in transformers 5.17). Softmax or sigmoid
    scores in fp32; `greedy` takes the top-k of all experts,
    `group_limited_greedy` keeps the topk_group groups with the largest
    single score first, `noaux_tc` ranks by score + bias with groups scored
    by their top-2 sum; the weights are the unbiased scores of the picks,
    normalized when norm_topk_prob, times routed_scaling_factor."""
    scoring = getattr(config, "scoring_func", "sigmoid")
    method = getattr(config, "topk_method", "noaux_tc")
    k = config.num_experts_per_tok
    groups = getattr(config, "n_group", 1) or 1
    keep = getattr(config, "topk_group", 1) or 1

    def forward(module, hidden_states):
        x = hidden_states.reshape(-1, hidden_states.shape[-1]).float()
        logits = torch.nn.functional.linear(x, module.weight.float())
        scores = logits.sigmoid() if scoring == "sigmoid" else logits.softmax(-1)
        choice = scores
        if method == "noaux_tc":
            choice = scores + module.e_score_correction_bias.float()
        experts = choice.shape[-1]
        if method != "greedy" and groups > 1:
            grouped = choice.view(-1, groups, experts // groups)
            group_scores = (grouped.topk(2, dim=-1).values.sum(-1) if method == "noaux_tc"
                            else grouped.max(-1).values)
            kept = group_scores.topk(keep, dim=-1).indices
            mask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, kept, True)
            choice = choice.masked_fill(~mask.repeat_interleave(experts // groups, 1), float("-inf"))
        indices = choice.topk(k, dim=-1).indices
        weights = scores.gather(1, indices)
        if config.norm_topk_prob:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return logits, weights * config.routed_scaling_factor, indices

    return forward


def patch_routers(model, config):
    """Gives transformers' routers DeepSeek's semantics where they differ
    (see route_as_deepseek); returns how many were replaced."""
    if (getattr(config, "scoring_func", "sigmoid") == "sigmoid"
            and getattr(config, "topk_method", "noaux_tc") == "noaux_tc"):
        return 0
    count = 0
    for layer in model.model.layers:
        gate = getattr(layer.mlp, "gate", None)
        if gate is not None and hasattr(gate, "weight"):
            gate.forward = route_as_deepseek(config).__get__(gate)
            count += 1
    return count


class RoutingMargins:
    """Records, for each token a forward pass routes, how close its routing
    came to a different choice: the smallest gap, over the MoE layers, between
    the last kept and the first dropped group score and between the last kept
    and the first dropped expert score. A gap below the noise of the bf16
    activations means another engine may pick other experts for that token,
    and its logits then differ by far more than rounding."""

    def __init__(self, model, config):
        self.config = config
        self.current = None
        for layer in model.model.layers:
            gate = getattr(layer.mlp, "gate", None)
            if gate is not None and hasattr(gate, "weight"):
                gate.register_forward_hook(self.hook)

    def start(self):
        self.current = None

    def hook(self, module, inputs, output):
        # Recompute the router logits from the input, whatever the router returns.
        x = inputs[0].float()
        logits = torch.nn.functional.linear(x.reshape(-1, x.shape[-1]), module.weight.float())
        c = self.config
        scoring = getattr(c, "scoring_func", "sigmoid")
        scores = logits.sigmoid() if scoring == "sigmoid" else logits.softmax(-1)
        bias = getattr(module, "e_score_correction_bias", None)
        choice = scores + bias.float() if bias is not None else scores
        experts, k = choice.shape[-1], c.num_experts_per_tok
        groups, keep = getattr(c, "n_group", 1) or 1, getattr(c, "topk_group", 1) or 1
        margin = torch.full((choice.shape[0],), float("inf"), device=choice.device)
        if groups > 1 and keep < groups:
            grouped = choice.view(-1, groups, experts // groups)
            if bias is not None:
                group_scores = grouped.topk(2, dim=-1).values.sum(-1)
            else:
                group_scores = grouped.max(-1).values
            ordered = group_scores.sort(-1, descending=True).values
            margin = torch.minimum(margin, ordered[:, keep - 1] - ordered[:, keep])
            kept = group_scores.topk(keep, dim=-1).indices
            mask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, kept, True)
            choice = choice.masked_fill(~mask.repeat_interleave(experts // groups, 1), float("-inf"))
        ordered = choice.sort(-1, descending=True).values
        if k < experts:
            margin = torch.minimum(margin, ordered[:, k - 1] - ordered[:, k])
        margin = margin.cpu().numpy()
        self.current = margin if self.current is None else np.minimum(self.current, margin)


MARGINS = None


def quantize_activations(x, block=128):
    """DeepSeek's online activation quantization, simulated: per token and
    `block` channels, scale = max(amax, 1e-4) / 448, values rounded to e4m3."""
    shape = x.shape
    x = x.float().reshape(-1, shape[-1])
    pad = (-shape[-1]) % block
    blocks = torch.nn.functional.pad(x, (0, pad)).view(x.shape[0], -1, block)
    scale = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448.0
    q = (blocks / scale).to(torch.float8_e4m3fn).float() * scale
    return q.view(x.shape[0], -1)[:, :shape[-1]].reshape(shape)


def emulate_fp8_activations(model, fp8_weights, block):
    """Makes every projection whose checkpoint weight is FP8 see quantized
    inputs, as DeepSeek's inference (and our plan) computes it: the reference
    for the FP8 path's arithmetic, apart from the rounding of quantization
    itself."""
    count = 0
    for name, module in model.named_modules():
        # kv_b is applied dequantized, to unquantized latents (DeepSeek absorbs
        # it into attention in bf16), so its input stays as it is.
        if name.endswith("kv_b_proj"):
            continue
        if isinstance(module, torch.nn.Linear) and f"{name}.weight" in fp8_weights:
            module.register_forward_pre_hook(lambda m, args: (quantize_activations(args[0], block[1]),))
            count += 1
        elif module.__class__.__name__.endswith("Experts") and hasattr(module, "gate_up_proj") \
                and f"{name}.0.gate_proj.weight" in fp8_weights:
            module.forward = make_quantized_experts(module, block[1])
            count += 1
    return count


def make_quantized_experts(module, block):
    return make_experts_forward(module, lambda x: quantize_activations(x, block), lambda y: y)


def make_experts_forward(module, on_input, on_output):
    """transformers' packed-experts forward, written out so that each GEMM's
    input passes through on_input and each GEMM's output through on_output."""
    def matmul(x, w, out_features):
        return x @ (w.T if w.shape[0] == out_features else w)

    def forward(hidden_states, top_k_index, top_k_weights):
        out = torch.zeros_like(hidden_states, dtype=torch.float32)
        x = on_input(hidden_states)
        gate_up, down = module.gate_up_proj, module.down_proj
        hidden = hidden_states.shape[-1]
        for e in range(gate_up.shape[0]):
            tokens, slots = (top_k_index == e).nonzero(as_tuple=True)
            if tokens.numel() == 0:
                continue
            width = max(gate_up[e].shape) // 2 if min(gate_up[e].shape) == hidden else min(gate_up[e].shape) // 2
            gu = on_output(matmul(x[tokens], gate_up[e], 2 * width))
            g, u = gu[:, :width], gu[:, width:]
            h = on_input(torch.nn.functional.silu(g) * u)
            y = on_output(matmul(h, down[e], hidden))
            out.index_add_(0, tokens, y * top_k_weights[tokens, slots, None].float())
        return out.to(hidden_states.dtype)

    return forward


def to_bf16_and_back(x):
    return x.to(torch.bfloat16).to(x.dtype) if torch.is_tensor(x) and x.is_floating_point() else x


def emulate_bf16_roundings(model, level):
    """Rounds chosen tensors of the float32 model to bf16, to measure what
    each kind of rounding costs at the logits: `gemm-inputs` rounds what a
    bf16 tensor-core GEMM reads (every projection's and expert's input, and
    the cached latent c_kv); `gemm-io` also each GEMM's output; `all` also
    every norm's output and every decoder layer's output (the residual
    stream)."""
    rounded_output = level in ("gemm-io", "all")
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(lambda m, args: (to_bf16_and_back(args[0]),) + args[1:])
            if rounded_output:
                module.register_forward_hook(lambda m, args, out: to_bf16_and_back(out))
        elif module.__class__.__name__.endswith("Experts") and hasattr(module, "gate_up_proj"):
            module.forward = make_experts_forward(
                module, to_bf16_and_back, to_bf16_and_back if rounded_output else (lambda y: y))
        elif name.endswith("kv_a_layernorm") or (level == "all" and "norm" in name.split(".")[-1]):
            module.register_forward_hook(lambda m, args, out: to_bf16_and_back(out))
        elif level == "all" and re.fullmatch(r"model\.layers\.\d+", name):
            module.register_forward_hook(
                lambda m, args, out: (to_bf16_and_back(out[0]),) + tuple(out[1:])
                if isinstance(out, tuple) else to_bf16_and_back(out))


@torch.no_grad()
def last_logits(model, ids, device):
    """The last position's logits, and the routing margin of the last token."""
    MARGINS.start()
    out = model(torch.tensor([ids], device=device), use_cache=False)
    margin = MARGINS.current[-1] if MARGINS.current is not None else np.inf
    return out.logits[0, -1].float().cpu().numpy(), margin


@torch.no_grad()
def greedy(model, ids, steps, device, forced=None):
    """Greedy decode with the KV cache: logits at each step, the chosen
    tokens, and each step's routing margin (of the token it just ran)."""
    def forward(tokens, past):
        MARGINS.start()
        out = model(torch.tensor([tokens], device=device), past_key_values=past, use_cache=True)
        margin = MARGINS.current[-1] if MARGINS.current is not None else np.inf
        return out, margin

    out, margin = forward(ids, None)
    past = out.past_key_values
    logits, margins = [out.logits[0, -1].float().cpu().numpy()], [margin]
    tokens = []
    for _ in range(steps):
        token = int(forced[len(tokens)]) if forced is not None else int(np.argmax(logits[-1]))
        tokens.append(token)
        out, margin = forward([token], past)
        past = out.past_key_values
        logits.append(out.logits[0, -1].float().cpu().numpy())
        margins.append(margin)
    return np.stack(logits), np.array(tokens, dtype=np.int32), np.array(margins)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--workloads", required=True, help="workloads.json from make_workloads.py")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--decode-tokens-from", help="another reference .npz whose decode "
                        "tokens to feed (so two references see the same decode inputs)")
    parser.add_argument("--perturb", type=float, default=0.0,
                        help="multiply the embeddings by (1 + perturb * N(0,1)): how much "
                             "bf16-sized input noise moves this reference's logits")
    parser.add_argument("--fp8-activations", action="store_true",
                        help="quantize the inputs of FP8 projections as DeepSeek's inference does")
    parser.add_argument("--round-bf16", choices=("gemm-inputs", "gemm-io", "all"),
                        help="float32 model with chosen tensors rounded to bf16 (see "
                             "emulate_bf16_roundings): what each rounding costs")
    parser.add_argument("--bfloat16", action="store_true",
                        help="run transformers in bfloat16 instead of float32 (the same "
                             "weights, rounded): a yardstick for what bf16 inference loses")
    args = parser.parse_args()

    work = json.load(open(args.workloads))
    model, config = build_model(args.checkpoint, args.device)
    patched = patch_routers(model, config)
    if patched:
        print(f"reference: {patched} routers given DeepSeek's {config.scoring_func} / "
              f"{config.topk_method} routing (transformers' own applies sigmoid / noaux_tc)")
    if args.bfloat16:
        model = model.to(torch.bfloat16)
    if args.round_bf16:
        emulate_bf16_roundings(model, args.round_bf16)
    margins = RoutingMargins(model, config)
    if args.perturb:
        generator = torch.Generator(device=args.device).manual_seed(1234)
        model.model.embed_tokens.register_forward_hook(
            lambda m, i, out: out * (1 + args.perturb * torch.randn(
                out.shape, device=out.device, generator=generator, dtype=out.dtype)))
    if args.fp8_activations:
        fp8 = {n for n, t in load_checkpoint(args.checkpoint).items() if t.dtype == torch.float8_e4m3fn}
        print(f"reference: FP8 activations emulated on {emulate_fp8_activations(model, fp8, [128, 128])} modules")
    if os.environ.get("DSV3_E2E_SHOW_MODEL"):
        print(model.model.layers[-1])
    global MARGINS
    MARGINS = margins
    result = {}
    for name, prompts in work["prefill"].items():
        runs = [last_logits(model, p, args.device) for p in prompts]
        result[f"prefill_{name}"] = np.stack([r[0] for r in runs])
        result[f"prefill_{name}_margin"] = np.array([r[1] for r in runs])
    decode_logits, decode_tokens, decode_margins = [], [], []
    forced = np.load(args.decode_tokens_from)["decode_tokens"] if args.decode_tokens_from else None
    for b, p in enumerate(work["decode"]["prompts"]):
        logits, tokens, step_margins = greedy(model, p, work["decode"]["steps"], args.device,
                                              None if forced is None else forced[b])
        decode_logits.append(logits)
        decode_tokens.append(tokens)
        decode_margins.append(step_margins)
    result["decode_logits"] = np.stack(decode_logits)      # [B, steps + 1, V]
    result["decode_tokens"] = np.stack(decode_tokens)      # [B, steps]
    result["decode_margin"] = np.stack(decode_margins)     # [B, steps + 1]
    greedy_tokens, greedy_top3, greedy_margins = [], [], []
    for p in work["greedy"]["prompts"]:
        logits, tokens, step_margins = greedy(model, p, work["greedy"]["steps"], args.device)
        greedy_tokens.append(tokens)
        greedy_top3.append(np.argsort(-logits[:-1], axis=1)[:, :3])
        greedy_margins.append(step_margins[:-1])
    result["greedy_tokens"] = np.stack(greedy_tokens)
    result["greedy_top3"] = np.stack(greedy_top3)
    result["greedy_margin"] = np.stack(greedy_margins)  # [P, steps]: routing of the token run
    np.savez(args.out, **result)
    print(f"reference: {len(result)} arrays written to {args.out}")


if __name__ == "__main__":
    main()
