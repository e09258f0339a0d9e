#!/usr/bin/env python3
"""Runs dsv3-run on the end-to-end workloads and saves its logits.

prefill_single.npy / prefill_mixed.npy: the prefill step's logits [1, B, V];
decode.npy: prefill plus the decode steps, fed the reference's greedy tokens
(teacher forcing); greedy.npy: prefill plus free-running greedy steps; both
[steps + 1, B, V] float32, as dsv3-run --logits-out writes them (one row per
generated token; the tokens fed after step s are row s of --teacher-force).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def run(binary, plan, checkpoint, prompts, out, steps, teacher=None, extra=()):
    """steps: how many logit rows to record (1 = the prefill's alone)."""
    command = [binary, plan, checkpoint, "--max-new-tokens", str(steps),
               "--logits-out", out, *extra]
    for p in prompts:
        command += ["--prompt-ids", ",".join(str(t) for t in p)]
    if teacher is not None:
        command += ["--teacher-force", teacher]
    start = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"dsv3-run failed ({result.returncode}):\n{result.stderr[-4000:]}")
    print(f"  dsv3-run {os.path.basename(out)}: {time.time() - start:.1f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsv3-run", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--workloads", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    work = json.load(open(args.workloads))
    ref = np.load(args.reference)
    os.makedirs(args.out, exist_ok=True)
    for kind in ("single", "mixed"):
        run(args.dsv3_run, args.plan, args.checkpoint, work["prefill"][kind],
            f"{args.out}/prefill_{kind}.npy", 1)
    teacher = f"{args.out}/teacher.npy"
    np.save(teacher, np.ascontiguousarray(ref["decode_tokens"].T.astype(np.int32)))  # [steps, B]
    run(args.dsv3_run, args.plan, args.checkpoint, work["decode"]["prompts"],
        f"{args.out}/decode.npy", work["decode"]["steps"] + 1, teacher=teacher)
    run(args.dsv3_run, args.plan, args.checkpoint, work["greedy"]["prompts"],
        f"{args.out}/greedy.npy", work["greedy"]["steps"] + 1)


if __name__ == "__main__":
    main()
