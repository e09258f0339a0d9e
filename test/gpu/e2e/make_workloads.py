#!/usr/bin/env python3
"""The end-to-end workloads: seeded random prompts for one vocabulary size.

prefill.single: 1 prompt of 17 tokens; prefill.mixed: 4 prompts of mixed
lengths up to 300; decode: 4 prompts, 32 teacher-forced steps; greedy: 8
prompts, 32 free-running greedy tokens.
"""
import argparse
import json

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--light", action="store_true",
                        help="fewer decode steps and greedy prompts, for full-width models whose "
                             "transformers reference is slow")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    def prompt(length):
        return [int(t) for t in rng.integers(0, args.vocab, length)]

    work = {
        "prefill": {
            "single": [prompt(17)],
            "mixed": [prompt(n) for n in (300, 57, 1, 180)],
        },
        "decode": {"prompts": [prompt(n) for n in (5, 33, 64, 17)], "steps": 32},
        "greedy": {"prompts": [prompt(n) for n in (3, 8, 12, 16, 20, 25, 31, 40)], "steps": 32},
    }
    if args.light:
        work["decode"]["steps"] = 8
        work["greedy"] = {"prompts": work["greedy"]["prompts"][:2], "steps": 8}
    json.dump(work, open(args.out, "w"))


if __name__ == "__main__":
    main()
