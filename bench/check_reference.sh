#!/usr/bin/env sh
# ctest helper: runs bench/compare.py (sdlora bench beside the PyTorch reference) at a tiny size on
# the CPU with the first Python that has torch; exits 77 (ctest: skipped) when none has it.
#   bench/check_reference.sh SDLORA_BINARY
set -eu
here=$(dirname "$0")
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c "import torch" >/dev/null 2>&1; then
    exec "$py" "$here/compare.py" --sdlora "$1" --device cpu --preset vit_tiny_patch16_224 \
      --image 32 --patch 16 --depth 2 --batch 4 --steps 2 --warmup 1 --rank 4 --past 2
  fi
done
echo "no Python with torch found (Debian: python3-torch): the PyTorch reference is not checked"
exit 77
