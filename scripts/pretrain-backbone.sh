#!/usr/bin/env bash
# Regenerates the demo's backbone, models/glyph_vit.safetensors: installs the font packages,
# builds sdlora and pre-trains the small ViT on glyphs rendered from every installed font
# (about 30 minutes on 2 CPU cores; far less with --device cuda).
#   scripts/pretrain-backbone.sh [extra sdlora pretrain flags]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
SDLORA_PACKAGES="$SDLORA_BUILD_PACKAGES $SDLORA_LIB_PACKAGES $SDLORA_FONT_PACKAGES"
sdlora_install_packages
sdlora_find_cuda
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target sdlora
build/apps/sdlora pretrain --out models/glyph_vit.safetensors --images 800000 --epochs 1 \
  --lr 2e-3 --seed 0 --threads 1 --log-every 200 "$@"
