#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan, build-fuzz/), writes their
# seed corpora from the test fixtures, and runs each for SECONDS (default 60). Any crash, leak,
# timeout (10 s on one input), out-of-memory (2 GB) or broken invariant fails the script; the
# input that caused it is kept in build-fuzz/findings/<harness>/.
#   scripts/fuzz.sh [SECONDS]         every harness
#   FUZZERS="idx pickle" scripts/fuzz.sh 30
#   SDLORA_FUZZ_DIR=build-asan scripts/fuzz.sh 20   in a sanitizer build tree that also holds the
#                                                 test suite (scripts/test.sh does this)
#   RUNS=10000000 scripts/fuzz.sh 100000   a long run: each harness stops after RUNS executions
#                                          (or SECONDS); the corpus carries over between runs
#   JOBS=2 RUNS=10000000 FUZZERS=checkpoint scripts/fuzz.sh 100000
#                                          the same on 2 processes sharing the corpus, RUNS/2 each
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
runs=${RUNS:--1}
jobs=${JOBS:-1}
dir=${SDLORA_FUZZ_DIR:-build-fuzz}
all="safetensors checkpoint pickle cifar_binary idx image image_lists config state"
fuzzers=${FUZZERS:-$all}

if [ -f "$dir/CMakeCache.txt" ]; then  # an existing tree keeps its other options (tests, ...)
  cmake -S . -B "$dir" -DSDLORA_FUZZ=ON >/dev/null
else
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSDLORA_WERROR=ON -DSDLORA_CUDA=OFF -DSDLORA_FUZZ=ON -DSDLORA_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$dir" -j "$(nproc)" --target fuzz_make_corpus $(for f in $fuzzers; do echo fuzz_$f; done)

rm -rf "$dir/seeds"
"$dir/tests/fuzz/fuzz_make_corpus" "$dir/seeds" "$PWD"
# The harnesses hand their input to the parsers as files: in memory (/dev/shm) that is about five
# times faster than on disk. A private folder, removed at the end.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  TMPDIR=$(mktemp -d /dev/shm/sdlora-fuzz.XXXXXX)
  export TMPDIR
  trap 'rm -rf "$TMPDIR"' EXIT
fi
# malloc_context_size: allocation and free stacks of 8 frames, not 30 (unwinding and storing
# them was a tenth of an execution); a finding replays with full stacks by running the harness
# on the kept input.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:abort_on_error=1:malloc_context_size=8
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
log_of() {  # log_of HARNESS PROCESS: fuzz_<harness>.log, or .<k>.log with several processes
  if [ "$jobs" -gt 1 ]; then echo "$dir/fuzz_$1.$2.log"; else echo "$dir/fuzz_$1.log"; fi
}
failed=""
for f in $fuzzers; do
  corpus="$dir/corpus/$f"
  findings="$dir/findings/$f"
  mkdir -p "$corpus" "$findings"
  echo "== fuzz_$f for ${seconds}s, $jobs process(es)"
  # Each process stops after its share of RUNS; they share the corpus folder (libFuzzer reloads
  # it, so each sees the others' finds); libFuzzer seeds each from the clock and its pid.
  each=$runs
  [ "$runs" -gt 0 ] && each=$(((runs + jobs - 1) / jobs))
  pids=()
  for k in $(seq 1 "$jobs"); do
    log=$(log_of "$f" "$k")
    "$dir/tests/fuzz/fuzz_$f" "$corpus" "$dir/seeds/$f" -max_total_time="$seconds" \
      -runs="$each" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$findings/" -print_final_stats=1 2>"$log" &
    pids+=("$!")
  done
  k=0
  for pid in "${pids[@]}"; do
    k=$((k + 1))
    log=$(log_of "$f" "$k")
    if ! wait "$pid"; then
      tail -n 40 "$log"
      case " $failed " in *" $f "*) ;; *) failed="$failed $f" ;; esac
    else
      grep -E "stat::number_of_executed_units|Done" "$log" | tail -n 2
    fi
  done
done
if [ -n "$failed" ]; then
  echo "fuzzing found problems in:$failed (inputs in $dir/findings/)"
  exit 1
fi
echo "fuzzing: no crash, leak or timeout in $fuzzers"
