#!/bin/sh
# Prepares the payload scripts/gpu-check.sh needs on the GPU machine (which has Python, pynvml and
# torch but no Node): .device/node.xz (this machine's Node binary) and .device/exporter.tar.xz
# (exporter/dist plus the exporter's production node_modules, koffi's prebuilt included).
# .device/ is git-ignored; carry it with the device call (carry: [".device"]).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .device
rm -f .device/node.xz .device/exporter.tar.xz .device/files.txt

echo "building the exporter…" >&2
npm run -s build -w exporter >&2

node_bin=$(command -v node)
echo "compressing $node_bin ($(node -v))…" >&2
xz -T2 -6 -c "$node_bin" > .device/node.xz

# The exporter's production dependency closure, as paths relative to the repository root.
npm ls -w exporter --omit=dev --all --parseable 2>/dev/null \
  | sed "s|^$root/||" | grep -E '(^|/)node_modules/' | grep -v '^node_modules/@jouleflow/' | sort -u > .device/deps.txt
{
  echo exporter/package.json
  echo exporter/dist
  cat .device/deps.txt
} > .device/files.txt
for p in $(cat .device/files.txt); do [ -e "$p" ] || { echo "missing: $p" >&2; exit 1; }; done
echo "packing exporter/dist and $(wc -l < .device/deps.txt) packages…" >&2
# Source maps, type declarations and docs are not needed at runtime.
tar -cf - --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' --exclude='*.test.js' \
  --exclude='node_modules/better-sqlite3/deps' --exclude='node_modules/better-sqlite3/src' \
  -T .device/files.txt | xz -T2 -6 > .device/exporter.tar.xz
rm -f .device/deps.txt .device/files.txt

size=$(du -cb .device/node.xz .device/exporter.tar.xz | tail -1 | cut -f1)
ls -la .device >&2
echo "payload: $((size / 1048576)) MiB (limit 60)" >&2
[ "$size" -lt $((60 * 1048576)) ] || { echo "payload too large" >&2; exit 1; }
