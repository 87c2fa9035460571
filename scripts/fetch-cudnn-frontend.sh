#!/usr/bin/env bash
# Fetches cudnn-frontend's C++ headers (header-only; NVIDIA ships them in the nvidia-cudnn-frontend
# wheel on PyPI) into the git-ignored .deps/cudnn-frontend/include, where CMake finds them for the
# fused attention (tensor/cuda/sdpa.cpp). Nothing else from the wheel is used. Needs pip and unzip.
#   scripts/fetch-cudnn-frontend.sh      (scripts/fetch-deps.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.32.0  # pinned: the SDPA graph API used in tensor/cuda/sdpa.cpp
dest=.deps/cudnn-frontend
if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$version" ]; then
  echo "fetch-cudnn-frontend: $version already in $dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  "nvidia-cudnn-frontend==$version" -d "$tmp"
rm -rf "$dest"
mkdir -p "$dest"
unzip -q "$tmp"/nvidia_cudnn_frontend-*.whl 'include/*' -d "$dest"
echo "$version" > "$dest/VERSION"
echo "fetch-cudnn-frontend: headers of nvidia-cudnn-frontend $version in $dest/include"
