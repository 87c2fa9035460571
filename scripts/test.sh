#!/usr/bin/env bash
# Installs missing Debian packages, checks the formatting (scripts/format.sh --check), then
# configures, builds and runs the whole test suite:
# once with the CUDA backend when nvcc is present (build/), once CPU-only (build-cpu/).
# GPU tests skip with a printed reason on machines without a GPU. The full run then adds 20 s of
# each fuzzer (scripts/fuzz.sh) and the crash test (scripts/crash-test.sh: a tiny training run
# killed at every rename and resumed); --sanitize adds the CPU suite under ASan + UBSan
# (build-asan/, clang).
#   scripts/test.sh              both configurations, fuzzers, crash test (CI)
#   scripts/test.sh --quick      the default configuration only
#   scripts/test.sh --sanitize   everything, plus the sanitizer suite
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

sdlora_install_packages
sdlora_find_cuda

echo "== format check"
scripts/format.sh --check

jobs=$(nproc)
run_suite() {  # run_suite BUILD_DIR CMAKE_ARGS...
  local dir=$1; shift
  echo "== configure $dir $*"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSDLORA_WERROR=ON "$@"
  echo "== build $dir"
  cmake --build "$dir" -j "$jobs"
  echo "== test $dir"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

run_suite build -DSDLORA_CUDA=AUTO
if [ "${1:-}" != "--quick" ]; then
  run_suite build-cpu -DSDLORA_CUDA=OFF
fi
if [ "${1:-}" != "--quick" ]; then
  # Every fuzzer for 20 s, then the crash test on the CPU build.
  scripts/fuzz.sh 20
  scripts/crash-test.sh build-cpu/apps/sdlora
fi
if [ "${1:-}" = "--sanitize" ] || [ "${2:-}" = "--sanitize" ]; then
  # The CPU suite under ASan + UBSan (clang).
  CC=clang CXX=clang++ run_suite build-asan -DSDLORA_CUDA=OFF -DSDLORA_SANITIZE=ON
fi
