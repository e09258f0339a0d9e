#!/usr/bin/env bash
# Issue 6's GPU check of `dsv3-run --serve`, on the GPU machine, carrying
# .gpu-carry-serve (scripts/gpu-serve-prepare.sh makes it):
#   1. a random FP8 checkpoint of tiny-vocab-v3 (DeepSeek-V3's vocabulary)
#      with DeepSeek-V3's tokenizer beside it;
#   2. the server on 127.0.0.1 with the KV cache at its default (32 contexts
#      of 1024 tokens), and test/gpu/serve/serve_check.py against it: 32
#      prompts alone, the same 32 as concurrent streams, the closeness check
#      between them, KV pages back to 0, then a soak of DSV3_SOAK_SECONDS
#      (default 180) with clients that disconnect midway and bad requests;
#   3. the server again with a small KV cache (DSV3_SERVE_SMALL_PAGES, default
#      40 pages of 64 tokens) so that the 32 streams preempt each other: the
#      same check without the soak, and preemptions required;
#   4. each server must still be running when its check ends (it never
#      crashes on input); its log's last lines are printed.
# Extra server options (e.g. --no-cuda-graphs) go in DSV3_SERVE_OPTIONS.
# Logs go to $OUT when set (the device tool brings them back), else the work
# directory. Exit status 1 if any check failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
carry=${DSV3_SERVE_CARRY:-$root/.gpu-carry-serve}
work=${DSV3_SERVE_DIR:-/tmp/dsv3-serve}
logs=${OUT:-$work}
soak=${DSV3_SOAK_SECONDS:-180}
small_pages=${DSV3_SERVE_SMALL_PAGES:-40}
read -r -a extra <<< "${DSV3_SERVE_OPTIONS:-}"
export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1
plan=$carry/plans/tiny-vocab-v3.plan
rm -rf "$work" && mkdir -p "$work" "$logs"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

"$carry/bin/dsv3-ckpt" random "$plan" "$root/configs/tiny-vocab-v3.json" "$work/ckpt" --seed 5 > /dev/null || {
  echo "FAIL: dsv3-ckpt random"; exit 1; }
cp "$carry/deepseek-tokenizer/"* "$work/ckpt/"

status=0
results=()
# serve NAME PORT SECONDS CHECK_ARGS... -- SERVER_ARGS...
serve() {
  local name=$1 port=$2 limit=$3; shift 3
  local check=() server=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do check+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  server=("$@")
  local log=$logs/server-$name.log
  echo "== $name: dsv3-run --serve --port $port ${server[*]} ${extra[*]}"
  "$carry/bin/dsv3-run" "$plan" "$work/ckpt" --serve --port "$port" --max-new-tokens 512 \
    "${server[@]}" "${extra[@]}" > "$log" 2>&1 &
  local pid=$!
  if ! python3 - "$port" <<'PY'; then
import sys, time, urllib.request
for _ in range(600):
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
    echo "FAIL: $name: the server did not answer /health"; tail -20 "$log"
    kill "$pid" 2>/dev/null; status=1; results+=("$name: no server"); return
  fi
  grep -m1 "serving" "$log"
  # A hung server must not eat the device call: the check has a deadline.
  timeout -k 5 "$limit" python3 "$root/test/gpu/serve/serve_check.py" --port "$port" \
    --label "$name" "${check[@]}" 2>&1 | tee "$logs/check-$name.log"
  local rc=${PIPESTATUS[0]}
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; wait "$pid" 2>/dev/null
    alive=yes
  else
    wait "$pid"; alive="no (exit $?)"; rc=1
  fi
  echo "-- $name server log (last lines):"; tail -5 "$log"
  [ "$rc" -eq 0 ] || status=1
  results+=("$name: check exit $rc, server alive at the end: $alive")
}

serve default 18080 $((soak + 150)) --soak-seconds "$soak"
serve small-kv 18081 100 --soak-seconds 0 --expect-preemption -- --kv-pages "$small_pages"

echo
for name in default small-kv; do
  sed -n '/^serve check:/,$p' "$logs/check-$name.log" 2>/dev/null
done
echo
echo "== gpu-serve summary"
for line in "${results[@]}"; do echo "  $line"; done
[ "$status" -eq 0 ] && echo "  all checks passed" || echo "  FAILED"
exit "$status"
