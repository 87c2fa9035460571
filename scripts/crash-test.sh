#!/usr/bin/env bash
# Crash consistency: runs `sdlora train` (the demo config at a tiny size, CPU) once without
# interruption, then kills it at each rename point of every task's end (the checkpoint,
# state.json, metrics.json, metrics.csv; just before and just after the rename, through
# SDLORA_CRASH_AT, see data/file_io.h) and with kill -9 at random moments, resumes each killed
# run with --resume, and requires the same final metrics (everything but wall times) and
# byte-identical checkpoints as the uninterrupted run.
#   scripts/crash-test.sh [SDLORA_BINARY] [RANDOM_KILLS]   (default build-rel/apps/sdlora, 3)
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build-rel/apps/sdlora}
random_kills=${2:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/sdlora-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
tasks=2
sets=(--set init_cls=5 --set increment=5 --set train_per_class=8 --set test_per_class=4
      --set init_epoch=1 --set epochs=1 --set batch_size=8 --set device=cpu --set threads=1
      --set num_workers=1)
train() { "$bin" train --config configs/demo-fashion-mnist.json "${sets[@]}" "$@" >/dev/null 2>&1; }

# Metrics without the wall-clock fields, for comparison.
stable_metrics() {
  python3 - "$1" <<'PY'
import json, sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items()
                if not any(t in k for t in ("seconds", "time", "per_s", "images_s", "peak"))}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))
PY
}

compare() {  # compare RUN_DIR LABEL
  local dir=$1 label=$2 ok=1 k
  for k in $(seq 0 $((tasks - 1))); do
    cmp -s "$work/ref/checkpoints/task_$k.safetensors" "$dir/checkpoints/task_$k.safetensors" ||
      { echo "FAIL $label: checkpoints/task_$k.safetensors differs"; ok=0; }
  done
  [ "$(stable_metrics "$work/ref/metrics.json")" == "$(stable_metrics "$dir/metrics.json" 2>/dev/null)" ] ||
    { echo "FAIL $label: metrics.json differs"; ok=0; }
  [ "$(cut -d, -f1-$((tasks + 2)) "$work/ref/metrics.csv")" == "$(cut -d, -f1-$((tasks + 2)) "$dir/metrics.csv" 2>/dev/null)" ] ||
    { echo "FAIL $label: metrics.csv differs"; ok=0; }
  [ $ok == 1 ] && echo "ok   $label"
  return $((1 - ok))
}

echo "== uninterrupted run"
start=$(date +%s.%N)
train --out "$work/ref" || { echo "the reference run failed"; exit 1; }
ref_secs=$(python3 -c "import time; print(time.time() - $start)")
failures=0
run_killed() {  # run_killed LABEL [env...]: a run that is killed, then resumed
  local label=$1; shift
  local dir="$work/$label"
  env "$@" "$bin" train --config configs/demo-fashion-mnist.json "${sets[@]}" --out "$dir" \
    >/dev/null 2>&1
  local rc=$?
  if [ $rc != 86 ]; then  # 86: the exit of a SDLORA_CRASH_AT point
    echo "FAIL $label: the crash point was not reached (exit $rc)"
    failures=$((failures + 1))
    return
  fi
  if ! train --resume "$dir"; then
    echo "FAIL $label: --resume failed (killed with rc $rc)"
    failures=$((failures + 1))
    return
  fi
  compare "$dir" "$label" || failures=$((failures + 1))
}

echo "== kills at the rename points"
for k in $(seq 0 $((tasks - 1))); do
  n=$((k + 1))
  for when in before after; do
    run_killed "task_$k.safetensors-$when" SDLORA_CRASH_AT="task_$k.safetensors:1:$when"
    for f in state.json metrics.json metrics.csv; do
      run_killed "$f-$n-$when" SDLORA_CRASH_AT="$f:$n:$when"
    done
  done
done

echo "== kill -9 at random moments"
for r in $(seq 1 "$random_kills"); do
  # Once the run folder exists (the data is loaded), kill within the time training takes.
  delay=$(python3 -c "import random; print(round(random.uniform(0.0, $ref_secs / 2), 2))")
  dir="$work/random-$r"
  "$bin" train --config configs/demo-fashion-mnist.json "${sets[@]}" --out "$dir" >/dev/null 2>&1 &
  pid=$!
  while [ ! -f "$dir/config.json" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ ! -f "$dir/config.json" ]; then
    echo "FAIL random-$r: the run ended before its folder existed"
    failures=$((failures + 1))
    continue
  fi
  if ! train --resume "$dir"; then
    echo "FAIL random-$r: --resume failed after a kill at ${delay}s"
    failures=$((failures + 1))
    continue
  fi
  compare "$dir" "random-$r (kill at ${delay}s)" || failures=$((failures + 1))
done

if [ $failures != 0 ]; then
  echo "crash test: $failures failure(s)"
  exit 1
fi
echo "crash test: every killed run resumed to the uninterrupted run's results"
