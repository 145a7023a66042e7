#!/bin/sh
# GPU check of the NVML source, for the device machine (real NVIDIA GPU, Python with pynvml and
# torch, no Node). Prepare the payload first on a machine with Node: scripts/prepare-gpu-check.sh,
# then run this with .device carried along. Prints a table (exported GPU joules vs the NVML counter
# delta read independently with pynvml, error %, exporter CPU %) and writes gpu-check.json and
# exporter.log to $OUT. Exit 0: |error| < 0.5 %.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f .device/node.xz ] || [ ! -f .device/exporter.tar.xz ]; then
  echo "gpu-check: .device/node.xz and .device/exporter.tar.xz missing: run scripts/prepare-gpu-check.sh and carry .device" >&2
  exit 2
fi
python3 -c 'import pynvml' 2>/dev/null || { echo "gpu-check: python module pynvml (nvidia-ml-py) missing" >&2; exit 2; }
exec python3 scripts/gpu-check.py "$@"
