#!/bin/sh
# Builds the fake NVML library: test/fakes/nvml/build/libnvidia-ml.so.1 (used by `npm run build:fake-nvml`
# and by the NVML tests and bench when the library is missing or older than its source).
# Writes to a temporary file and renames it, so concurrent builds (parallel jest workers) never
# expose a half-written library.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/build/libnvidia-ml.so.1"
mkdir -p "$here/build"
tmp="$out.tmp.$$"
${CC:-gcc} -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared \
  -Wl,-soname,libnvidia-ml.so.1 -o "$tmp" "$here/fake_nvml.c" -lpthread
mv -f "$tmp" "$out"
echo "built $out"
