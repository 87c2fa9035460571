#!/usr/bin/env bash
# Installs missing Debian packages, checks the formatting (scripts/format.sh --check), then
# configures, builds and runs the whole test suite twice:
#   build/       the default configuration: the CUDA backend when nvcc is present (g++, nvcc);
#                GPU tests skip with a printed reason on machines without a GPU;
#   build-asan/  CPU-only, clang, every object under ASan + UBSan (any finding fails its test,
#                leaks included), which also builds the libFuzzer harnesses.
# The full run then gives each fuzzer 20 s in build-asan (scripts/fuzz.sh) and runs the crash
# test (scripts/crash-test.sh: a tiny training run killed at every rename and resumed) with the
# sanitized binary.
#   scripts/test.sh              all of the above (CI)
#   scripts/test.sh --quick      the default configuration only
#   scripts/test.sh --plain-cpu  all of the above, plus an uninstrumented CPU-only build (build-cpu/)
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
  # Sanitizers and fuzzers in one clang tree: the CPU suite under ASan + UBSan (LeakSanitizer on),
  # then 20 s of each fuzzer, then the crash test with the sanitized binary.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  CC=clang CXX=clang++ run_suite build-asan -DSDLORA_CUDA=OFF -DSDLORA_SANITIZE=ON -DSDLORA_FUZZ=ON
  SDLORA_FUZZ_DIR=build-asan scripts/fuzz.sh 20
  scripts/crash-test.sh build-asan/apps/sdlora
fi
if [ "${1:-}" = "--plain-cpu" ]; then
  run_suite build-cpu -DSDLORA_CUDA=OFF
fi
