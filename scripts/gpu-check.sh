#!/usr/bin/env bash
# On a machine with a GPU: builds for that GPU and runs the whole suite, optionally the GPU
# tests under compute-sanitizer. Libraries come from Debian packages, either installed or
# carried as .deb files in .deps/debs (scripts/fetch-deps.sh), unpacked into .deps/prefix.
#   scripts/gpu-check.sh [--sanitize] [--build DIR]
# Writes a summary (device, driver, commit, results) to $OUT/gpu-check.txt when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
sanitize=0
build=build-gpu
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --build) build=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
sdlora_find_cuda
prefix_args=()
if [ -d .deps/debs ] && ls .deps/debs/*.deb >/dev/null 2>&1; then
  prefix=$PWD/.deps/prefix
  mkdir -p "$prefix"
  for f in .deps/debs/*.deb; do dpkg -x "$f" "$prefix"; done
  libdirs="$prefix/usr/lib/x86_64-linux-gnu:$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:$prefix/lib/x86_64-linux-gnu"
  export LD_LIBRARY_PATH="$libdirs:${LD_LIBRARY_PATH:-}"
  prefix_args=(-DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_LIBRARY_ARCHITECTURE=x86_64-linux-gnu)
fi

arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
[ -n "$arch" ] || { echo "no GPU found by nvidia-smi" >&2; exit 1; }
gen=Ninja; command -v ninja >/dev/null || gen="Unix Makefiles"
cmake -S . -B "$build" -G "$gen" -DCMAKE_BUILD_TYPE=Release -DSDLORA_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" "${prefix_args[@]}" || exit 1
cmake --build "$build" -j "$(nproc)" || exit 1

log=${OUT:-/tmp}/gpu-check.txt
{
  echo "device: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  echo "driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
  echo "cuda: $(nvcc --version | tail -1)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
} > "$log"
ctest --test-dir "$build" --output-on-failure -j 4 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
if [ "$sanitize" = 1 ]; then
  for exe in "$build"/tests/*/*_gpu_tests; do
    [ -x "$exe" ] || continue
    echo "== compute-sanitizer memcheck $exe" | tee -a "$log"
    compute-sanitizer --tool memcheck --error-exitcode 1 "$exe" 2>&1 | tail -5 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  done
fi
echo "gpu-check exit status: $status" | tee -a "$log"
exit "$status"
