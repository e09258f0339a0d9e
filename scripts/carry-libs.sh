#!/usr/bin/env bash
# Copies into DEST the shared libraries that the given binaries load from
# this machine's Debian packages (PCRE2, cpp-httplib and what it pulls in),
# under their sonames, so that they run on the GPU machine, whose image lacks
# some of them: the scripts that run there put DEST on LD_LIBRARY_PATH.
# The C and C++ runtimes stay the device's own.
#   scripts/carry-libs.sh DEST BINARY...
set -euo pipefail
dest=$1; shift
mkdir -p "$dest"
ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
while read -r soname path; do
  case $soname in
    libc.so.*|libm.so.*|libstdc++.so.*|libgcc_s.so.*|ld-linux*|libdl.so.*|libpthread.so.*|librt.so.*) ;;
    *) cp -L "$path" "$dest/$soname" ;;
  esac
done
