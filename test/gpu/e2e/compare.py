#!/usr/bin/env python3
"""Compares dsv3-run's outputs with the transformers reference.

Logits: relative L2 error ||ours - ref|| / ||ref|| per row, worst row
reported, against the tolerance (1e-2 BF16, 3e-2 FP8). Greedy continuations:
identical up to the first divergence; there, our token must be in the
reference's top 3 and the reference's token in ours, unless the reference
routed that step's token within --tie-margin of another choice (reported
apart, as for the logits). Prints one table row per
check and exits 1 if any fails.
"""
import argparse
import json
import sys

import numpy as np


def rel_err(ours, ref):
    ours = ours.astype(np.float64)
    ref = ref.astype(np.float64)
    if not np.all(np.isfinite(ours)):
        return float("inf")
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--ours", required=True, help="folder with dsv3-run's .npy outputs")
    parser.add_argument("--tolerance", type=float, required=True)
    parser.add_argument("--results", required=True, help="JSON lines file to append to")
    parser.add_argument("--tie-margin", type=float, default=2e-3,
                        help="rows whose token's reference routing came closer than this to "
                             "another choice are reported apart (near ties flip experts)")
    args = parser.parse_args()
    ref = np.load(args.reference)
    rows = []

    def check(what, ours, refs, margins):
        errors = [rel_err(o, r) for o, r in zip(ours, refs)]
        clear = [e for e, m in zip(errors, margins) if m >= args.tie_margin]
        ties = [(i, e, m) for i, (e, m) in enumerate(zip(errors, margins)) if m < args.tie_margin]
        worst = max(clear) if clear else 0.0
        row = {"config": args.name, "check": what, "value": worst,
               "limit": args.tolerance, "ok": worst <= args.tolerance,
               "median": float(np.median(clear)) if clear else 0.0,
               "rows": len(errors), "near_ties": len(ties)}
        if ties:
            row["divergences"] = [f"row {i}: near routing tie (margin {m:.1e}), error {e:.3e}"
                                  for i, e, m in ties[:8]]
        rows.append(row)
        return errors

    for kind in ("single", "mixed"):
        ours = np.load(f"{args.ours}/prefill_{kind}.npy")[0]        # [B, V]
        check(f"prefill {kind} logits", list(ours), list(ref[f"prefill_{kind}"]),
              list(ref[f"prefill_{kind}_margin"]))

    ours = np.load(f"{args.ours}/decode.npy")                      # [steps + 1, B, V]
    refs = ref["decode_logits"].transpose(1, 0, 2)                  # [steps + 1, B, V]
    margins = ref["decode_margin"].T                                # [steps + 1, B]
    check(f"decode {ours.shape[0] - 1} steps logits (teacher-forced)",
          list(ours.reshape(-1, ours.shape[-1])), list(refs.reshape(-1, refs.shape[-1])),
          list(margins.reshape(-1)))
    if not rows[-1]["ok"]:
        # Where it goes wrong: the first failing (step, sequence) pairs.
        bad = [(s, b, rel_err(ours[s, b], refs[s, b]), margins[s, b])
               for s in range(ours.shape[0]) for b in range(ours.shape[1])
               if rel_err(ours[s, b], refs[s, b]) > args.tolerance]
        rows[-1].setdefault("divergences", []).extend(
            f"step {s} sequence {b}: {e:.3e} (routing margin {m:.1e})" for s, b, e, m in bad[:12])

    ours = np.load(f"{args.ours}/greedy.npy")                      # [steps + 1, B, V]
    ref_tokens, ref_top3 = ref["greedy_tokens"], ref["greedy_top3"]
    # The routing margin of the token each step ran (older references lack it).
    greedy_margin = ref["greedy_margin"] if "greedy_margin" in ref.files else \
        np.full(ref_tokens.shape, np.inf)
    divergences, bad = [], 0
    for b in range(ref_tokens.shape[0]):
        our_tokens = ours[:-1, b].argmax(axis=1)
        for step in range(ref_tokens.shape[1]):
            if our_tokens[step] == ref_tokens[b, step]:
                continue
            our_top3 = np.argsort(-ours[step, b])[:3]
            close = our_tokens[step] in ref_top3[b, step] and ref_tokens[b, step] in our_top3
            tie = greedy_margin[b, step] < args.tie_margin
            verdict = "within top-3 both ways" if close else "NOT within top-3"
            if not close and tie:
                verdict += f", at a routing near tie (margin {greedy_margin[b, step]:.1e}): reported apart"
            divergences.append(f"prompt {b} step {step}: ours {our_tokens[step]} ref {ref_tokens[b, step]}"
                               f" ({verdict})")
            bad += not close and not tie
            break
    rows.append({"config": args.name, "check": f"greedy {ref_tokens.shape[0]}x{ref_tokens.shape[1]} tokens",
                 "value": len(divergences), "limit": "top-3", "ok": bad == 0,
                 "divergences": divergences})
    with open(args.results, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    for row in rows:
        ties = f" ({row['near_ties']}/{row['rows']} rows near a routing tie, reported apart)" \
            if row.get("near_ties") else ""
        print(f"{row['config']:<28} {row['check']:<44} {row['value']:<12.4g} "
              f"{str(row['limit']):<8} {'ok' if row['ok'] else 'FAIL'}{ties}"
              if isinstance(row["value"], float) else
              f"{row['config']:<28} {row['check']:<44} {row['value']} divergences {'ok' if row['ok'] else 'FAIL'}")
        for d in row.get("divergences", []):
            print(f"    {d}")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
