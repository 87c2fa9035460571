#!/usr/bin/env bash
# Downloads the library packages as .deb files into .deps/debs (git-ignored), for a GPU machine
# that reaches no package registry: scripts/gpu-check.sh unpacks them into a prefix of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
mkdir -p .deps/debs
cd .deps/debs
# The -dev packages and the runtime libraries they need beyond a base system.
apt-get download $SDLORA_LIB_PACKAGES googletest libopenblas0 libopenblas0-pthread \
  libopenblas-pthread-dev libgfortran5 libstb0 2>&1 | grep -v "^Get:" || true
ls -1 *.deb | wc -l | xargs echo "packages in .deps/debs:"
du -sh . | cut -f1 | xargs echo "size:"
