#!/usr/bin/env python3
"""Distance between two transformers references of the same workloads (for
example bfloat16 against float32): the worst and median relative L2 error of
the last-position logits per check, the same measure compare.py applies to
dsv3-run. A yardstick, not a check: it says how far bf16 inference by
transformers itself lands from the float32 reference on this model."""
import argparse
import json

import numpy as np


def rel_err(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--reference", required=True, help="the float32 reference .npz")
    parser.add_argument("--other", required=True, help="the reference to measure .npz")
    parser.add_argument("--results", required=True, help="JSON lines file to append to")
    args = parser.parse_args()
    ref, other = np.load(args.reference), np.load(args.other)
    checks = {
        "prefill single logits": ("prefill_single",),
        "prefill mixed logits": ("prefill_mixed",),
        "decode logits (teacher-forced)": ("decode_logits",),
    }
    with open(args.results, "a") as out:
        for what, (key,) in checks.items():
            a = other[key].reshape(-1, other[key].shape[-1])
            b = ref[key].reshape(-1, ref[key].shape[-1])
            errors = [rel_err(x, y) for x, y in zip(a, b)]
            row = {"config": args.name, "check": what + " (yardstick)",
                   "value": max(errors), "median": float(np.median(errors)),
                   "limit": "-", "ok": True, "rows": len(errors)}
            print(f"  {what}: worst {row['value']:.3e}, median {row['median']:.3e} over {len(errors)} rows")
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
