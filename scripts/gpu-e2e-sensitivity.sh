set -u
cd "$(dirname "$0")/.."
w=/tmp/dsv3-e2e; mkdir -p $w
for name in tiny-no-qlora-one-group tiny-softmax; do
  ckpt=$w/ckpt-$name
  .gpu-carry/bin/dsv3-ckpt random .gpu-carry/plans/$name-fp8.plan configs/$name.json $ckpt --seed 7 >/dev/null
  python3 test/gpu/e2e/make_workloads.py --vocab 1024 --out $w/$name.json
  for mode in "plain:" "plain-p:--perturb 2e-3" "quant:--fp8-activations" "quant-p:--fp8-activations --perturb 2e-3"; do
    tag=${mode%%:*}; opts=${mode#*:}
    python3 test/gpu/e2e/hf_reference.py --checkpoint $ckpt --workloads $w/$name.json --out $w/$name-$tag.npz $opts 2>&1 | grep -v transformers
  done
  python3 - $w $name <<'PY'
import numpy as np, sys
w, name = sys.argv[1:]
r = {t: np.load(f"{w}/{name}-{t}.npz") for t in ("plain", "plain-p", "quant", "quant-p")}
def err(a, b):
    return max(np.linalg.norm(x - y) / np.linalg.norm(y) for x, y in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])))
for key in ("prefill_single", "prefill_mixed"):
    print(f"{name} {key}: fp32 ref moved by 2e-3 input noise {err(r['plain-p'][key], r['plain'][key]):.3e}; "
          f"quantized ref moved {err(r['quant-p'][key], r['quant'][key]):.3e}; quantized vs fp32 {err(r['quant'][key], r['plain'][key]):.3e}")
PY
  rm -rf $ckpt
done
