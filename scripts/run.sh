#!/usr/bin/env bash
# The main job: builds dsv3c and compiles a model configuration (by default the
# bundled DeepSeek-V3 config), printing a summary of the module. Any arguments
# go to dsv3c instead (see `scripts/run.sh --help`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}

"$root/scripts/build.sh" dsv3c >/dev/null
if [ $# -eq 0 ]; then
  set -- "$root/configs/deepseek-v3.json"
fi
exec "$build/bin/dsv3c" "$@"
