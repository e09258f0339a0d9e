#!/usr/bin/env bash
# Installs the Debian packages dsv3c builds and tests with. Idempotent: installs only what
# is missing, so it is cheap to call before every build.
set -euo pipefail

packages=(
  cmake ninja-build ccache g++ python3
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  flatbuffers-compiler libflatbuffers-dev
  libfmt-dev libgtest-dev nlohmann-json3-dev
  libpcre2-dev pkg-config
  libcpp-httplib-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
