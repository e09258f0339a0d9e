#!/usr/bin/env bash
# End-to-end check on the GPU machine: for each model and weight format, a
# random checkpoint (dsv3-ckpt), the transformers reference in float32
# (test/gpu/e2e/hf_reference.py), our plan run by dsv3-run, and the comparison
# (compare.py). Runtime binaries and plans are built on the development machine
# (scripts/gpu-e2e-prepare.sh) and carried in .gpu-carry/, since the GPU
# machine has no LLVM/MLIR. Prints one table at the end; exit 1 if a check fails.
#   scripts/gpu-e2e.sh [CASE...]   CASE = <config>:<fp8|fp8act|fp8act-cublaslt|bf16>[:pinned],
#                                  default: all but the fp8act ones
# fp8 is an FP8 checkpoint run with bf16 activations (dsv3c's default), fp8act
# the same checkpoint with activations quantized to FP8 (--activation-dtype=fp8),
# also compared with a reference that emulates that quantization;
# fp8act-cublaslt (deepseek-v3-2layer) is fp8act with the dense FP8 products
# of 5 rows or more on cuBLASLt (plan Gemm steps).
# ":pinned" writes the checkpoint with dsv3-ckpt --pinned-routing (noaux_tc
# routers choose by bias, far from ties), so that the comparison measures
# arithmetic rather than which side's rounding tips a routing near-tie.
# deepseek-v3* configs run a lighter workload (8 decode steps, 2 greedy
# prompts: transformers loops over 256 experts per token) unless DSV3_E2E_FULL=1.
# DSV3_E2E_YARDSTICK=1 also runs transformers in bfloat16 and reports its
# distance from the float32 reference (ref_distance.py): a yardstick, not a check.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
carry=$root/.gpu-carry
work=${DSV3_E2E_DIR:-/tmp/dsv3-e2e}
results=${OUT:-$work}/e2e-results.jsonl
mkdir -p "$work" "$(dirname "$results")"
: > "$results"
export PYTHONUNBUFFERED=1

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  # tiny-groups-qlora routes 16 experts in 4 groups through 3 MoE layers with
  # random routers: near ties are common and any tie at an earlier token moves
  # every later logit, so its checks pin routing (see docs/e2e-results.md).
  cases=(tiny-groups-qlora:bf16:pinned tiny-groups-qlora:fp8:pinned
         tiny-no-qlora-one-group:bf16 tiny-no-qlora-one-group:fp8
         tiny-softmax:bf16 tiny-softmax:fp8 deepseek-v3-2layer:bf16 deepseek-v3-2layer:fp8)
fi

status=0
for case in "${cases[@]}"; do
  IFS=: read -r name dtype routing <<< "$case"
  pin=$([ "${routing:-}" = pinned ] && echo --pinned-routing || true)
  label="$name $dtype${routing:+ $routing}"
  plan=$carry/plans/$name-$dtype.plan
  ckpt=$work/ckpt-$name-$dtype
  tolerance=$([ "$dtype" = bf16 ] && echo 1e-2 || echo 3e-2)
  vocab=$(python3 -c "import json;print(json.load(open('$root/configs/$name.json'))['vocab_size'])")
  echo "== $label"
  start=$SECONDS
  "$carry/bin/dsv3-ckpt" random "$plan" "$root/configs/$name.json" "$ckpt" --seed 7 $pin || { status=1; continue; }
  echo "  checkpoint: $((SECONDS - start)) s"
  light=$([[ $name == deepseek-v3* && -z ${DSV3_E2E_FULL:-} ]] && echo --light || true)
  python3 "$root/test/gpu/e2e/make_workloads.py" --vocab "$vocab" --out "$work/$name.json" $light
  start=$SECONDS
  python3 "$root/test/gpu/e2e/hf_reference.py" --checkpoint "$ckpt" \
      --workloads "$work/$name.json" --out "$work/ref-$name-$dtype.npz" || { status=1; rm -rf "$ckpt"; continue; }
  echo "  transformers reference: $((SECONDS - start)) s"
  python3 "$root/test/gpu/e2e/run_ours.py" --dsv3-run "$carry/bin/dsv3-run" --plan "$plan" \
      --checkpoint "$ckpt" --workloads "$work/$name.json" --reference "$work/ref-$name-$dtype.npz" \
      --out "$work/ours-$name-$dtype" || { status=1; rm -rf "$ckpt"; continue; }
  python3 "$root/test/gpu/e2e/compare.py" --name "$label" \
      --reference "$work/ref-$name-$dtype.npz" --ours "$work/ours-$name-$dtype" \
      --tolerance "$tolerance" --results "$results" || status=1
  # Decode steps replay CUDA graphs and kernels start under their
  # predecessors' tails (dependent launches): the same generation with every
  # launch queued one by one, and with plain launches, must give the same
  # logits, bit for bit (a kernel racing its predecessor would not).
  same_logits_run() {
    "$carry/bin/dsv3-run" "$plan" "$ckpt" --prompt-ids 1,2,3 --prompt-ids 5,6,7,8,9,10 \
        --prompt-ids 4 --max-new-tokens 70 --logits-out "$work/logits-$1.npy" "${@:2}" \
        > "$work/ids-$1.txt" 2>> "$work/graphs.log"
  }
  if same_logits_run default && same_logits_run eager --no-cuda-graphs &&
     same_logits_run plain --no-dependent-launches; then
    python3 - "$work" "$label" "$results" <<'PY' || status=1
import json, sys
import numpy as np
work, label, results = sys.argv[1:]
default = np.load(f"{work}/logits-default.npy")
ok = True
for variant, check in (("eager", "CUDA graphs vs eager: logits differing"),
                       ("plain", "dependent vs plain launches: logits differing")):
    other = np.load(f"{work}/logits-{variant}.npy")
    same = default.shape == other.shape and np.array_equal(default, other, equal_nan=False)
    differing = int((default != other).sum()) if default.shape == other.shape else -1
    ok = ok and same
    with open(results, "a") as out:
        out.write(json.dumps({"config": label, "check": check, "value": differing,
                              "limit": 0, "ok": bool(same)}) + "\n")
sys.exit(0 if ok else 1)
PY
  else
    echo "  dsv3-run with graphs, without, or with plain launches failed: $(tail -3 "$work/graphs.log")"; status=1
  fi
  if [[ $dtype == fp8act* ]]; then
    # The same FP8 run against a reference that quantizes activations as
    # DeepSeek's inference does: what is left is arithmetic, not quantization.
    python3 "$root/test/gpu/e2e/hf_reference.py" --checkpoint "$ckpt" --fp8-activations \
        --decode-tokens-from "$work/ref-$name-$dtype.npz" \
        --workloads "$work/$name.json" --out "$work/ref-$name-$dtype-q.npz" &&
    python3 "$root/test/gpu/e2e/compare.py" --name "$label (quantized ref)" \
        --reference "$work/ref-$name-$dtype-q.npz" --ours "$work/ours-$name-$dtype" \
        --tolerance 1e-2 --results "$results" || status=1
  fi
  if [ -n "${DSV3_E2E_YARDSTICK:-}" ]; then
    # How far transformers itself lands in bfloat16 on the same weights and
    # decode inputs: the scale of error bf16 inference has on this model.
    python3 "$root/test/gpu/e2e/hf_reference.py" --checkpoint "$ckpt" --bfloat16 \
        --decode-tokens-from "$work/ref-$name-$dtype.npz" \
        --workloads "$work/$name.json" --out "$work/ref-$name-$dtype-bf16.npz" &&
    python3 "$root/test/gpu/e2e/ref_distance.py" --name "$label (transformers bf16)" \
        --reference "$work/ref-$name-$dtype.npz" --other "$work/ref-$name-$dtype-bf16.npz" \
        --results "$results" || status=1
  fi
  rm -rf "$ckpt"
done

echo
echo "== end-to-end against transformers $(python3 -c 'import transformers;print(transformers.__version__)') on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
python3 - "$results" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    value = r["value"] if isinstance(r["value"], int) else f"{r['value']:.3e}"
    median = f"{r['median']:.2e}" if "median" in r else ""
    print(f"{r['config']:<34} {r['check']:<50} {value:<11} {median:<9} {str(r['limit']):<7} {'ok' if r['ok'] else 'FAIL'}")
PY
exit $status
