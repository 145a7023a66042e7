#!/bin/sh
# Builds the fake AMD SMI library: test/fakes/amdsmi/build/libamd_smi.so (used by
# `npm run build:fake-amdsmi` and by the amdsmi tests when the library is missing or older than its
# source). Writes to a temporary file and renames it, so concurrent builds never expose a
# half-written library.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/build/libamd_smi.so"
mkdir -p "$here/build"
tmp="$out.tmp.$$"
${CC:-gcc} -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared \
  -Wl,-soname,libamd_smi.so -o "$tmp" "$here/fake_amdsmi.c" -lpthread
mv -f "$tmp" "$out"
echo "built $out"
