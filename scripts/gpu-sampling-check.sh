#!/usr/bin/env bash
# Sampling and dsv3-run's modes on the GPU machine, end to end, carrying
# .gpu-carry-sample (scripts/gpu-sampling-prepare.sh makes it):
#   1. the sampler kernel test (test/gpu/sample_test.cu: every option against
#      the CPU reference, distributions, timings);
#   2. token ids on tiny-groups-qlora (FP8, random weights): a seed repeats,
#      another seed differs, temperature 0 is the default greedy; top-k 1,
#      top-p 1e-6 and min-p 1 reduce sampling to the greedy tokens; large
#      presence or frequency penalties forbid repeats; all options together
#      are reproducible; --logits-out and --teacher-force (lockstep) agree
#      with the greedy run;
#   3. text with a small byte-level tokenizer (test/tools/Inputs): one
#      streamed prompt, --input-file as JSON lines in input order, --stop
#      cutting a greedy reply exactly where the stop string first appears,
#      and --interactive with /clear and a growing history;
#   4. text with DeepSeek-V3's tokenizer on tiny-vocab-v3 (vocabulary 129280):
#      sampled replies to Unicode prompts are valid UTF-8, in every mode.
# Prints each check as ok/FAIL; exit 1 if any failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
carry=${DSV3_SAMPLE_CARRY:-$root/.gpu-carry-sample}
work=${DSV3_SAMPLE_DIR:-/tmp/dsv3-sampling}
run=$carry/bin/dsv3-run
rm -rf "$work" && mkdir -p "$work"
status=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; status=1; }
same() { if cmp -s "$2" "$3"; then ok "$1"; else bad "$1"; diff "$2" "$3" | head -5; fi; }
differ() { if cmp -s "$2" "$3"; then bad "$1"; else ok "$1"; fi; }

echo "== 1. sampler kernel against the CPU reference"
if "$carry/bin/sample_test"; then ok "sample_test"; else bad "sample_test"; fi

echo "== 2. token ids, tiny-groups-qlora"
plan=$carry/plans/tiny-groups-qlora.plan
"$carry/bin/dsv3-ckpt" random "$plan" "$root/configs/tiny-groups-qlora.json" "$work/tiny" --seed 3 > /dev/null
ids() { "$run" "$plan" "$work/tiny" --prompt-ids 1,2,3,4 --prompt-ids 9,8,7 --max-new-tokens 24 "$@" 2>> "$work/stderr"; }
ids --temperature 0.8 --seed 11 > "$work/a"
ids --temperature 0.8 --seed 11 > "$work/b"
ids --temperature 0.8 --seed 12 > "$work/c"
ids --temperature 0 > "$work/greedy"
ids > "$work/default"
same "same seed, same tokens" "$work/a" "$work/b"
differ "another seed, other tokens" "$work/a" "$work/c"
same "temperature 0 is the default greedy" "$work/greedy" "$work/default"
differ "sampling at 0.8 differs from greedy" "$work/a" "$work/greedy"
ids --temperature 1.5 --top-k 1 --seed 5 > "$work/topk1"
same "top-k 1 gives the greedy tokens" "$work/greedy" "$work/topk1"
ids --temperature 1.5 --top-p 0.000001 --seed 5 > "$work/topp"
same "top-p 1e-6 gives the greedy tokens" "$work/greedy" "$work/topp"
ids --temperature 1.5 --min-p 1 --seed 5 > "$work/minp"
same "min-p 1 gives the greedy tokens" "$work/greedy" "$work/minp"
for penalty in presence frequency; do
  ids --$penalty-penalty 100 > "$work/$penalty"
  if awk '{ delete seen; for (i = 3; i <= NF; ++i) { if ($i in seen) exit 1; seen[$i] = 1 } }' "$work/$penalty"; then
    ok "$penalty penalty 100: no token repeats"
  else
    bad "$penalty penalty 100: a token repeats"
  fi
  differ "$penalty penalty changes the greedy tokens" "$work/greedy" "$work/$penalty"
done
all=(--temperature 0.9 --top-k 40 --top-p 0.9 --min-p 0.02 --presence-penalty 0.5 --frequency-penalty 0.3 --seed 7)
ids "${all[@]}" > "$work/all1"
ids "${all[@]}" > "$work/all2"
same "all options: same seed, same tokens" "$work/all1" "$work/all2"
differ "all options differ from greedy" "$work/all1" "$work/greedy"
# Lockstep (what gpu-e2e.sh uses): --logits-out's rows give the greedy
# tokens by argmax; --teacher-force feeds the given tokens.
ids --logits-out "$work/logits.npy" > "$work/lockstep"
same "--logits-out: the same greedy tokens" "$work/greedy" "$work/lockstep"
python3 - "$work/logits.npy" "$work/greedy" <<'PY' || status=1
import sys
import numpy as np
logits = np.load(sys.argv[1])
tokens = [[int(t) for t in line.split()[2:]] for line in open(sys.argv[2])]
assert logits.shape == (24, 2, 1024) and logits.dtype == np.float32, logits.shape
assert (logits.argmax(axis=2).T == np.array(tokens)).all()
print("ok: --logits-out is [24, 2, 1024] float32 and its argmax is the greedy tokens")
PY
python3 -c "import numpy as np; np.save('$work/teacher.npy', np.full((23, 2), 5, np.int32))"
ids --teacher-force "$work/teacher.npy" --logits-out "$work/forced.npy" > /dev/null
python3 - "$work/forced.npy" "$work/logits.npy" <<'PY' || status=1
import sys
import numpy as np
forced, free = np.load(sys.argv[1]), np.load(sys.argv[2])
assert np.array_equal(forced[0], free[0]), "the prefill does not depend on the forced tokens"
assert not np.array_equal(forced[1:], free[1:]), "forcing token 5 changed nothing"
print("ok: --teacher-force: same prefill logits, other decode logits")
PY
echo "--- seed 11:"; cat "$work/a"; echo "--- greedy:"; cat "$work/greedy"
echo "--- all options:"; cat "$work/all1"

echo "== 3. text, a small byte-level tokenizer"
tok=$root/test/tools/Inputs/tiny-tokenizer
text() { "$run" "$plan" "$work/tiny" --tokenizer "$tok" "$@"; }
text --prompt "hello world" --max-new-tokens 20 --temperature 0.7 --seed 3 > "$work/single" 2>> "$work/stderr"
if [ -s "$work/single" ]; then ok "one prompt streams a reply"; else bad "one prompt: no reply"; fi
printf 'hello\nworld 123\nhello hello\n' > "$work/lines.txt"
text --input-file "$work/lines.txt" --max-new-tokens 16 > "$work/lines.jsonl" 2>> "$work/stderr"
text --input-file "$work/lines.txt" --max-new-tokens 16 --top-k 20 --temperature 1 --seed 4 > "$work/lines-sampled.jsonl" 2>> "$work/stderr"
python3 - "$work/lines.jsonl" "$work/lines-sampled.jsonl" <<'PY' || status=1
import json, sys
for path in sys.argv[1:]:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert [r["index"] for r in rows] == [0, 1, 2], rows
    for r in rows:
        assert 1 <= r["completion_tokens"] <= 16 and r["finish_reason"] in ("length", "eos", "stop"), r
print("ok: --input-file gives 3 JSON lines in input order, at most 16 tokens each")
PY
# --stop: cut the first greedy reply where a piece of it first appears.
stop=$(python3 - "$work/lines.jsonl" <<'PY'
import json, sys
text = json.loads(open(sys.argv[1], encoding="utf-8").readline())["text"]
for start in range(len(text) // 2, len(text) - 2):
    piece = text[start:start + 3]
    if "\ufffd" not in piece and "\n" not in piece:
        print(piece, end="")
        break
PY
)
if [ -n "$stop" ]; then
  text --input-file "$work/lines.txt" --max-new-tokens 16 --stop "$stop" > "$work/stopped.jsonl" 2>> "$work/stderr"
  python3 - "$work/lines.jsonl" "$work/stopped.jsonl" "$stop" <<'PY' || status=1
import json, sys
full = json.loads(open(sys.argv[1], encoding="utf-8").readline())
cut = json.loads(open(sys.argv[2], encoding="utf-8").readline())
stop = sys.argv[3]
want = full["text"][:full["text"].index(stop)]
assert cut["text"] == want and cut["finish_reason"] == "stop", (cut, want, stop)
print(f"ok: --stop {stop!r} ends the reply where it first appears ({len(want)} chars kept)")
PY
else
  bad "--stop: no usable piece of text to stop at"
fi
printf 'hello\n/clear\nhi there\nagain\n/exit\n' |
  text --interactive --max-new-tokens 8 > "$work/chat.out" 2> "$work/chat.err"
prefills=$(grep -o 'prefill [0-9]* tokens' "$work/chat.err" | awk '{print $2}' | tr '\n' ' ')
read -r first second third <<< "$prefills"
if grep -q "(conversation cleared)" "$work/chat.out" && [ -n "${third:-}" ] && [ "$third" -gt "$second" ]; then
  ok "--interactive: /clear, and the third turn's prompt holds the second ($prefills tokens)"
else
  bad "--interactive (prefills: $prefills)"; cat "$work/chat.out" "$work/chat.err"
fi

echo "== 4. text, DeepSeek-V3's tokenizer on tiny-vocab-v3"
plan3=$carry/plans/tiny-vocab-v3.plan
"$carry/bin/dsv3-ckpt" random "$plan3" "$root/configs/tiny-vocab-v3.json" "$work/v3" --seed 5 > /dev/null
cp "$carry/deepseek-tokenizer/"* "$work/v3/"   # the checkpoint directory's own tokenizer
v3() { "$run" "$plan3" "$work/v3" "$@"; }
v3 --prompt "Hello, 世界! 👋 Wie geht's? Привет" --temperature 0.8 --top-p 0.95 --seed 1 --max-new-tokens 40 > "$work/v3-single" 2>> "$work/stderr"
printf 'The quick brown fox\n東京の天気は\nint main() { return 0; }\n🙂🙃 مرحبا\n' > "$work/v3-lines.txt"
v3 --input-file "$work/v3-lines.txt" --system "Be brief." --temperature 0.7 --top-k 50 --min-p 0.01 \
   --frequency-penalty 0.2 --seed 2 --max-new-tokens 24 > "$work/v3-lines.jsonl" 2>> "$work/stderr"
printf '你好\nand now?\n' | v3 --interactive --temperature 0.6 --max-new-tokens 12 > "$work/v3-chat" 2>> "$work/stderr"
python3 - "$work" <<'PY' || status=1
import json, sys
work = sys.argv[1]
for name in ("v3-single", "v3-chat"):
    text = open(f"{work}/{name}", "rb").read().decode("utf-8")  # strict: fails on broken UTF-8
    assert len(text.strip()) > 0, name
rows = [json.loads(line) for line in open(f"{work}/v3-lines.jsonl", encoding="utf-8")]
assert [r["index"] for r in rows] == [0, 1, 2, 3], rows
print("ok: DeepSeek-V3 tokenizer: streamed, batched and chat replies are valid UTF-8, in order")
print("--- one prompt:", open(f"{work}/v3-single", encoding="utf-8").read()[:200])
for r in rows:
    print(f"--- line {r['index']}: {r['completion_tokens']} tokens, {r['finish_reason']}: {r['text'][:80]!r}")
PY
echo "== dsv3-run timings (stderr)"
grep -h "ms/step" "$work/stderr" | tail -4
exit $status
