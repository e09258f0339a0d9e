#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds dsv3c into
# ${DSV3_BUILD_DIR:-build} with ninja (and ccache, when present).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}

"$root/scripts/setup.sh"
if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$build" "$@"
