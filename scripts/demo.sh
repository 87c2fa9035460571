#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs the missing Debian packages (Fashion-MNIST
# among them), builds the sdlora binary (with the CUDA backend when nvcc is found; a GPU is used
# when present) and runs `sdlora demo`: SD-LoRA, SD-LoRA-RR, SD-LoRA-KD, sequential LoRA and a
# linear probe on Split Fashion-MNIST, run folders under OUT (default runs/demo).
#   scripts/demo.sh [OUT] [extra sdlora demo flags, e.g. --device cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
sdlora_install_packages
sdlora_find_cuda
out=${1:-runs/demo}
[ $# -gt 0 ] && shift
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSDLORA_CUDA=AUTO >/dev/null
cmake --build build -j "$(nproc)" --target sdlora
build/apps/sdlora demo --out "$out" "$@"
