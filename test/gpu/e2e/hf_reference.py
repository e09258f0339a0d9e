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
            if kind == "gate_up_proj":
                parts = [torch.cat([state[f"{prefix}.{e}.gate_proj.weight"],
                                    state[f"{prefix}.{e}.up_proj.weight"]], 0) for e in range(count)]
            else:
                parts = [state[f"{prefix}.{e}.down_proj.weight"] for e in range(count)]
            for e in range(count):
                for p in ("gate_proj", "up_proj", "down_proj"):
                    used.add(f"{prefix}.{e}.{p}.weight")
            source = torch.stack(parts)
            if tuple(source.shape) != tuple(param.shape):
                source = source.transpose(1, 2)
        if tuple(source.shape) != tuple(param.shape):
            sys.exit(f"{name}: checkpoint shape {tuple(source.shape)} vs model {tuple(param.shape)}")
        with torch.no_grad():
            param.copy_(source.to(device))
    # MTP layers (model.layers.<num_hidden_layers>.*) are not part of transformers' model.
    unused = [n for n in state if n not in used and not n.startswith(f"model.layers.{config.num_hidden_layers}.")]
    if unused:
        sys.exit(f"checkpoint tensors transformers did not take: {unused[:5]} ({len(unused)})")
    return model, config


@torch.no_grad()
def last_logits(model, ids, device):
    out = model(torch.tensor([ids], device=device), use_cache=False)
    return out.logits[0, -1].float().cpu().numpy()


@torch.no_grad()
def greedy(model, ids, steps, device):
    """Greedy decode with the KV cache: logits at each step, the chosen tokens."""
    out = model(torch.tensor([ids], device=device), use_cache=True)
    past = out.past_key_values
    logits = [out.logits[0, -1].float().cpu().numpy()]
    tokens = []
    for _ in range(steps):
        token = int(np.argmax(logits[-1]))
        tokens.append(token)
        out = model(torch.tensor([[token]], device=device), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits.append(out.logits[0, -1].float().cpu().numpy())
    return np.stack(logits), np.array(tokens, dtype=np.int32)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--workloads", required=True, help="workloads.json from make_workloads.py")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    work = json.load(open(args.workloads))
    model, config = build_model(args.checkpoint, args.device)
    if os.environ.get("DSV3_E2E_SHOW_MODEL"):
        print(model.model.layers[-1])
    result = {}
    for name, prompts in work["prefill"].items():
        result[f"prefill_{name}"] = np.stack([last_logits(model, p, args.device) for p in prompts])
    decode_logits, decode_tokens = [], []
    for p in work["decode"]["prompts"]:
        logits, tokens = greedy(model, p, work["decode"]["steps"], args.device)
        decode_logits.append(logits)
        decode_tokens.append(tokens)
    result["decode_logits"] = np.stack(decode_logits)      # [B, steps + 1, V]
    result["decode_tokens"] = np.stack(decode_tokens)      # [B, steps]
    greedy_tokens, greedy_top3 = [], []
    for p in work["greedy"]["prompts"]:
        logits, tokens = greedy(model, p, work["greedy"]["steps"], args.device)
        greedy_tokens.append(tokens)
        greedy_top3.append(np.argsort(-logits[:-1], axis=1)[:, :3])
    result["greedy_tokens"] = np.stack(greedy_tokens)
    result["greedy_top3"] = np.stack(greedy_top3)
    np.savez(args.out, **result)
    print(f"reference: {len(result)} arrays written to {args.out}")


if __name__ == "__main__":
    main()
