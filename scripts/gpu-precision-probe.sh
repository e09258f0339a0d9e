#!/usr/bin/env bash
# Where bf16 inference loses accuracy (GPU machine, with .gpu-carry from
# scripts/gpu-e2e-prepare.sh): for each model, a BF16 random checkpoint and the
# float32 transformers reference, then the same model with chosen tensors
# rounded to bf16 (hf_reference.py --round-bf16: GEMM inputs and the cached
# latent; also GEMM outputs; also norms and the residual stream) and in full
# bfloat16, each measured against float32 as compare.py measures dsv3-run.
#   scripts/gpu-precision-probe.sh [CONFIG[:pinned]...]
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
carry=$root/.gpu-carry
work=${DSV3_E2E_DIR:-/tmp/dsv3-probe}
results=${OUT:-$work}/precision-probe.jsonl
mkdir -p "$work" "$(dirname "$results")"
: > "$results"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(tiny-groups-qlora:pinned tiny-no-qlora-one-group:pinned)
for model in "${models[@]}"; do
  IFS=: read -r name routing <<< "$model"
  pin=$([ "${routing:-}" = pinned ] && echo --pinned-routing || true)
  ckpt=$work/ckpt-$name
  vocab=$(python3 -c "import json;print(json.load(open('$root/configs/$name.json'))['vocab_size'])")
  "$carry/bin/dsv3-ckpt" random "$carry/plans/$name-bf16.plan" "$root/configs/$name.json" "$ckpt" \
      --seed 7 $pin >/dev/null || exit 1
  python3 "$root/test/gpu/e2e/make_workloads.py" --vocab "$vocab" --out "$work/$name.json"
  python3 "$root/test/gpu/e2e/hf_reference.py" --checkpoint "$ckpt" --workloads "$work/$name.json" \
      --out "$work/$name-f32.npz" 2>&1 | grep -v "^\[transformers\]"
  for mode in round-gemm-inputs:"--round-bf16 gemm-inputs" round-gemm-io:"--round-bf16 gemm-io" \
              round-all:"--round-bf16 all" bfloat16:"--bfloat16"; do
    tag=${mode%%:*}; opts=${mode#*:}
    python3 "$root/test/gpu/e2e/hf_reference.py" --checkpoint "$ckpt" --workloads "$work/$name.json" \
        --decode-tokens-from "$work/$name-f32.npz" --out "$work/$name-$tag.npz" $opts 2>&1 |
        grep -v "^\[transformers\]"
    python3 "$root/test/gpu/e2e/ref_distance.py" --name "$name${routing:+ $routing} $tag" \
        --reference "$work/$name-f32.npz" --other "$work/$name-$tag.npz" --results "$results"
  done
  rm -rf "$ckpt"
done
echo
echo "== bf16 roundings vs float32 (worst / median relative L2 error of last-position logits)"
python3 - "$results" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['config']:<48} {r['check']:<46} {r['value']:.3e} {r['median']:.3e}")
PY
