#!/usr/bin/env bash
# The hardware check, in one invocation on a GPU machine that reaches no package registry: records
# the environment, unpacks the carried .deb files (scripts/fetch-deps.sh) into a private prefix,
# builds for this GPU's architecture only the targets it runs, then runs the GPU suites (any skip
# is a failure), the CPU suites, compute-sanitizer memcheck (caching allocator off) and racecheck,
# and `sdlora bench` beside bench/torch_reference.py at the same shapes. Each stage has its own
# time limit inside BUDGET and a recorded exit code; everything lands in at most 8 files in OUT:
#   summary.txt env.txt build.log tests.log cpu-tests.log sanitizer.log bench.json
#   bench-eager.json (the step without the CUDA graph) torch.json
# Exit 0 only when every required stage passed; 3 when no GPU was found (within seconds, before
# building anything); 1 otherwise.
#
#   OUT=DIR BUDGET=540 [SDLORA_COMMIT=HASH] scripts/gpu-check.sh
#   SDLORA_GPU_CHECK_DRY_RUN=1 OUT=DIR scripts/gpu-check.sh   # no GPU: every stage but the GPU's
#   scripts/gpu-check.sh --digest                              # the source digest summary.txt names
#
# Environment: BUDGET seconds (540), OUT (out/gpu-check), SDLORA_GPU_CHECK_BUILD (build-gpu-check),
# SDLORA_BENCH_ARGS (the shapes of both benchmarks), SDLORA_SANITIZER_API_ERRORS (no),
# SDLORA_FAKE_COMPUTE_CAP (9.0, dry run), NVIDIA_SMI (nvidia-smi), SDLORA_LOG_CAP (bytes, 12000000).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

source_digest() {
  find . -type f -not -path './.git/*' -not -path './.deps/*' -not -path './build*' \
    -not -path './out/*' -not -path './runs/*' -not -path './.gl/*' -not -path './.whl/*' \
    -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}
if [ "${1:-}" = "--digest" ]; then source_digest; exit 0; fi
[ $# -eq 0 ] || { echo "usage: OUT=DIR BUDGET=SECONDS scripts/gpu-check.sh [--digest]" >&2; exit 2; }

start=$(date +%s)
BUDGET=${BUDGET:-540}
deadline=$((start + BUDGET))
DRY=${SDLORA_GPU_CHECK_DRY_RUN:-0}
OUT=${OUT:-$root/out/gpu-check}
BUILD=${SDLORA_GPU_CHECK_BUILD:-build-gpu-check}
BENCH_ARGS=${SDLORA_BENCH_ARGS:---preset vit_base_patch16_224 --batch 128 --steps 10 --warmup 3}
API_ERRORS=${SDLORA_SANITIZER_API_ERRORS:-no}
NVSMI=${NVIDIA_SMI:-nvidia-smi}
CAP=${SDLORA_LOG_CAP:-12000000}
mkdir -p "$OUT"
rm -f "$OUT"/{summary.txt,env.txt,build.log,tests.log,cpu-tests.log,sanitizer.log,bench.json,bench-eager.json,torch.json}
work=$(mktemp -d "${TMPDIR:-/tmp}/sdlora-gpu-check.XXXXXX")
stages=$work/stages.tsv # name, status, exit code, seconds, limit
: >"$stages"
notes=$work/notes.txt # lines for the summary
: >"$notes"
. scripts/deps.sh
sdlora_find_cuda
export PATH="$PATH:/usr/local/cuda/bin"
note() { echo "$*" | tee -a "$notes"; }
elapsed() { echo $(($(date +%s) - start)); }

# Keeps the first CAP bytes of stdin and drains the rest, saying how much it dropped (a stage's
# output is never cut by closing its pipe).
capped() {
  head -c "$CAP"
  local rest
  rest=$(wc -c)
  [ "$rest" -gt 0 ] && printf '\n[log capped at %s bytes: %s more bytes dropped]\n' "$CAP" "$rest"
  return 0
}

# stage NAME REQUIRED MAX_SECONDS RESERVE LOG -- COMMAND...: runs COMMAND under `timeout` for
# min(MAX_SECONDS, the budget left less RESERVE seconds kept for later stages), output appended
# to LOG (capped), and records the result. A stage that would get under 15 s is not started:
# a failure for a REQUIRED stage (1), a note for an optional one (0, run as time allows).
stage() {
  local name=$1 required=$2 max=$3 reserve=$4 log=$5
  shift 6
  local left=$((deadline - $(date +%s) - reserve - 5))
  [ "$DRY" = 1 ] && max=$left # a dry run on a small machine: the budget alone limits
  local limit=$((max < left ? max : left))
  if [ "$limit" -lt 15 ]; then
    local why="not run: out of budget"
    [ "$required" = 1 ] && why="FAIL: $why"
    printf '%s\t%s\t-\t0\t%s\n' "$name" "$why" "$limit" >>"$stages"
    echo "== $name: $why (${left}s left after the reserve)" >>"$log"
    [ "$required" = 1 ] && return 124 || return 0
  fi
  echo "== $name (limit ${limit}s, at $(elapsed)s): $*" >>"$log"
  local t0 rc
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" 2>&1 | capped >>"$log"
  rc=${PIPESTATUS[0]}
  local secs=$(($(date +%s) - t0)) status=pass
  # A time-out of an optional stage (as time allows) is noted; any other failure counts.
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    if [ "$required" = 1 ]; then status="FAIL: timed out"; else status="timed out (optional)"; fi
  elif [ "$rc" != 0 ]; then status=FAIL; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$limit" >>"$stages"
  echo "== $name: $status (exit $rc, ${secs}s)" >>"$log"
  return "$rc"
}
# Records a stage that was deliberately not run (dry run, or nothing to do).
skip_stage() { printf '%s\t%s\t-\t0\t-\n' "$1" "$2" >>"$stages"; }

write_summary() {
  local verdict=$1
  {
    echo "sdlora GPU check: $verdict"
    echo "device: ${gpu_name:-none}  compute capability: ${cap:-none}  driver: ${driver:-none}"
    echo "commit: ${SDLORA_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}  source digest: $digest"
    echo "budget: ${BUDGET}s, used $(elapsed)s$([ "$DRY" = 1 ] && echo '  (DRY RUN: no GPU; GPU-only stages not run)')"
    echo
    printf '%-26s %-34s %5s %6s %6s\n' stage status exit secs limit
    while IFS=$'\t' read -r n s c t l; do
      printf '%-26s %-34s %5s %6s %6s\n' "$n" "$s" "$c" "$t" "$l"
    done <"$stages"
    echo
    cat "$notes"
  } >"$OUT/summary.txt"
}

digest=$(source_digest)

# ---- GPU: found by nvidia-smi (or faked by the dry run). Without one: stop now, exit 3.
if [ "$DRY" = 1 ]; then
  cap=${SDLORA_FAKE_COMPUTE_CAP:-9.0}
  gpu_name="none (dry run)"
  driver=none
else
  query=$(timeout 20 "$NVSMI" --query-gpu=name,compute_cap,driver_version,memory.total \
    --format=csv,noheader 2>&1)
  smi_rc=$?
  gpu_name=$(echo "$query" | head -1 | cut -d, -f1 | sed 's/^ *//')
  cap=$(echo "$query" | head -1 | cut -d, -f2 | tr -d ' ')
  driver=$(echo "$query" | head -1 | cut -d, -f3 | tr -d ' ')
  if [ "$smi_rc" != 0 ] || ! [[ "$cap" =~ ^[0-9]+\.[0-9]+$ ]]; then
    { echo "$NVSMI --query-gpu: exit $smi_rc"; echo "$query"; uname -a; } >"$OUT/env.txt"
    gpu_name="" cap="" driver=""
    note "NO GPU FOUND: '$NVSMI' gave no device (exit $smi_rc: $(echo "$query" | head -1))."
    note "Nothing was built or run. On a machine without a GPU, use SDLORA_GPU_CHECK_DRY_RUN=1."
    skip_stage gpu "FAIL: no GPU found"
    write_summary "FAILED (no GPU found)"
    cat "$OUT/summary.txt"
    exit 3
  fi
fi
arch=${cap/./}

# ---- environment
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: ${SDLORA_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  echo "source digest: $digest (scripts/gpu-check.sh --digest on the same tree)"
  git status --short 2>/dev/null | head -50 | sed 's/^/  dirty: /'
  echo "budget: $BUDGET s; dry run: $DRY; build: $BUILD; bench args: $BENCH_ARGS"
  echo "host: $(uname -a)"
  echo "cpus: $(nproc); memory: $(free -g 2>/dev/null | awk '/Mem:/{print $2 " GiB"}')"
  echo "disk: $(df -h . | tail -1)"
  for c in "$NVSMI" nvcc compute-sanitizer cmake ninja g++ python3; do
    echo "--- $c: $(command -v "$c" || echo 'not found')"
    case "$c" in
      "$NVSMI") timeout 20 "$c" 2>&1; timeout 20 "$c" -q 2>&1 | head -120 ;;
      *) command -v "$c" >/dev/null && timeout 20 "$c" --version 2>&1 | head -5 ;;
    esac
  done
  echo "--- glibc: $(ldd --version 2>&1 | head -1)"
  echo "--- python3 torch: $(timeout 60 python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "--- carried packages (.deps/debs/MANIFEST.txt):"
  cat .deps/debs/MANIFEST.txt 2>/dev/null || echo "none carried"
} >"$OUT/env.txt" 2>&1
note "environment recorded in env.txt ($(elapsed)s)"

# ---- libraries: the carried .deb files into a private prefix (never into /).
prefix=$root/.deps/prefix
unpack_debs() {
  rm -rf "$prefix" && mkdir -p "$prefix" || return 1
  local f n=0
  for f in .deps/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$f" "$prefix" || return 1
    else # ar + tar where dpkg is missing
      (cd "$work" && rm -f data.tar.* && ar x "$root/$f" && tar -xf data.tar.* -C "$prefix") || return 1
    fi
    n=$((n + 1))
  done
  echo "unpacked $n packages into $prefix"
  rm -rf "$prefix/usr/share/doc" # its links point into packages not carried (gcc-12-base)
  # Absolute links (zlib1g-dev's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) would point
  # into the machine's own /: relink them, relative, to the file inside the prefix.
  local link target dest
  while IFS= read -r link; do
    target=$(readlink "$link")
    case "$target" in /*) ;; *) continue ;; esac
    dest=$prefix$target
    if [ -e "$dest" ]; then
      ln -sfn "$(realpath -s --relative-to="$(dirname "$link")" "$dest")" "$link"
      echo "relinked ${link#"$prefix"} -> $(readlink "$link")"
    else
      echo "dangling absolute link ${link#"$prefix"} -> $target (not in the carried packages)"
      return 1
    fi
  done < <(find "$prefix" -type l)
  local bad
  bad=$(find "$prefix" -xtype l)
  [ -z "$bad" ] || { echo "dangling links left: $bad"; return 1; }
}
cmake_prefix=()
if ls .deps/debs/*.deb >/dev/null 2>&1; then
  export -f unpack_debs
  export prefix root work
  stage deps 1 60 0 "$OUT/build.log" -- bash -c unpack_debs
  libdirs="$prefix/usr/lib/x86_64-linux-gnu:$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:$prefix/lib/x86_64-linux-gnu"
  cmake_prefix=(-DCMAKE_PREFIX_PATH="$prefix/usr;$prefix" -DCMAKE_LIBRARY_ARCHITECTURE=x86_64-linux-gnu)
else
  skip_stage deps "none carried: system packages"
  note "no .deps/debs: building against the machine's own packages (scripts/fetch-deps.sh makes them)"
  libdirs=""
fi
# The test and bench binaries find OpenBLAS's own libraries (libgfortran5, ...) here; cmake and
# python run without it, so the machine's tools never load the carried libraries.
runenv=(env "LD_LIBRARY_PATH=${libdirs}${libdirs:+:}${LD_LIBRARY_PATH:-}")
runenv_q=$(printf '%q ' "${runenv[@]}")

# ---- configure and build: this GPU's architecture only, only the targets the check runs.
gen=Ninja
command -v ninja >/dev/null || gen="Unix Makefiles"
stage configure 1 120 0 "$OUT/build.log" -- cmake -S . -B "$BUILD" -G "$gen" \
  -DCMAKE_BUILD_TYPE=Release -DSDLORA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DSDLORA_WERROR=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "${cmake_prefix[@]}"
configured=$?
if [ "$configured" = 0 ]; then
  {
    echo "== where the libraries were found:"
    grep -E '^(OPENBLAS_LIBRARY|OPENBLAS_INCLUDE_DIR|GTest_DIR|ZLIB_LIBRARY[A-Z_]*|TURBOJPEG_LIBRARY|STB_INCLUDE_DIR|nlohmann_json_DIR|CLI11_DIR|CLI11_INCLUDE_DIR|CMAKE_CUDA_ARCHITECTURES|CMAKE_CUDA_COMPILER|CMAKE_CXX_COMPILER):' \
      "$BUILD/CMakeCache.txt"
  } >>"$OUT/build.log"
  if [ -n "$libdirs" ] && grep -E '^(OPENBLAS_LIBRARY|GTest_DIR|TURBOJPEG_LIBRARY|STB_INCLUDE_DIR):' \
    "$BUILD/CMakeCache.txt" | grep -v "$prefix" >/dev/null; then
    note "note: some libraries were found outside the carried prefix (see build.log)"
  fi
  targets=$(cmake --build "$BUILD" --target help 2>/dev/null | sed -n 's/^\(\.\.\. \)\{0,1\}\([A-Za-z0-9_]*_tests\|sdlora\)[: ].*/\2/p' | sort -u | tr '\n' ' ')
  note "build targets: $targets"
  # shellcheck disable=SC2086
  stage build 1 420 0 "$OUT/build.log" -- cmake --build "$BUILD" -j "$(nproc)" --target $targets
  built=$?
  warnings=$(grep -c 'warning:' "$OUT/build.log")
  [ "$warnings" = 0 ] || note "build: $warnings compiler warnings (build.log)"
  if [ -x "$BUILD/tests/tensor/tensor_tests" ]; then
    { echo "== libraries of tensor_tests:"; "${runenv[@]}" ldd "$BUILD/tests/tensor/tensor_tests"; } >>"$OUT/build.log" 2>&1
  fi
else
  built=1
fi
if [ "$built" != 0 ]; then
  note "BUILD FAILED: nothing was run (build.log)"
  write_summary "FAILED (build)"
  cat "$OUT/summary.txt"
  exit 1
fi

# ---- GPU suites: SDLORA_REQUIRE_GPU=1 makes a test without a usable GPU fail, and any test that
# ctest still reports as skipped or not run fails the stage.
gpu_suites() {
  SDLORA_REQUIRE_GPU=1 ctest --test-dir "$BUILD" -L gpu --no-tests=error --output-on-failure \
    -j 8 --timeout 240 | tee "$work/gpu-ctest.txt"
  local rc=${PIPESTATUS[0]}
  local skipped
  skipped=$(grep -cE '\*\*\*Skipped|\(Skipped\)|\(Disabled\)|Not Run|\[  SKIPPED \]' "$work/gpu-ctest.txt")
  if [ "$skipped" != 0 ]; then
    echo "gpu-check: $skipped skipped or not-run GPU tests: a skip is a failure here"
    return 1
  fi
  return "$rc"
}
export -f gpu_suites
export BUILD work
gpu_reserve=$((DRY == 1 ? 0 : 300))
stage gpu-tests 1 240 "$gpu_reserve" "$OUT/tests.log" -- "${runenv[@]}" bash -c gpu_suites
gpu_rc=$?
grep -E 'tests passed|tests failed' "$work/gpu-ctest.txt" 2>/dev/null | tail -1 | sed 's/^/gpu suites: /' >>"$notes"
if [ "$DRY" = 1 ] && [ "$gpu_rc" != 0 ]; then
  if grep -q 'failed instead of skipped because SDLORA_REQUIRE_GPU=1' "$OUT/tests.log"; then
    sed -i 's/^\(gpu-tests\tFAIL\)\t/\1 (expected: dry run, no GPU)\t/' "$stages"
    note "dry run: every GPU test failed instead of skipping, as SDLORA_REQUIRE_GPU=1 requires"
    gpu_rc=0
  fi
fi

# ---- CPU suites, beside the sanitizers (they use the CPU, the sanitizers the GPU).
cpu_suites() {
  ctest --test-dir "$BUILD" -L cpu -E '^BenchReference' --no-tests=error --output-on-failure \
    -j "$1" --timeout 300
}
export -f cpu_suites
cpu_jobs=$(($(nproc) > 4 ? $(nproc) - 2 : $(nproc)))
cpu_reserve=$((DRY == 1 ? 0 : 150))
stage cpu-tests 1 360 "$cpu_reserve" "$OUT/cpu-tests.log" -- "${runenv[@]}" bash -c 'cpu_suites "$0"' "$cpu_jobs" &
cpu_pid=$!

# ---- compute-sanitizer: memcheck (exact allocations, no reuse: SDLORA_NO_CACHING_ALLOCATOR=1)
# on the suites that launch every kernel; racecheck on the kernels with shared memory. A finding
# fails the stage (exit 86). GpuMemory.* asserts the caching itself, so it is left out.
sanitize() { # sanitize TOOL BINARY FILTER [compute-sanitizer options]
  local tool=$1 exe=$2 filter=$3
  shift 3
  SDLORA_NO_CACHING_ALLOCATOR=1 compute-sanitizer --tool "$tool" --error-exitcode 86 \
    --print-limit 100 "$@" "$exe" --gtest_filter="$filter" --gtest_brief=1
}
export -f sanitize
if [ "$DRY" = 1 ]; then
  for s in memcheck-tensor memcheck-data memcheck-autograd memcheck-nn memcheck-cl racecheck; do
    skip_stage "$s" "not run: dry run"
  done
  echo "dry run: compute-sanitizer stages not run" >>"$OUT/sanitizer.log"
else
  t=$BUILD/tests
  san_reserve=150 # bench and the PyTorch reference come after
  stage memcheck-tensor 1 200 "$san_reserve" "$OUT/sanitizer.log" -- "${runenv[@]}" bash -c \
    "sanitize memcheck $t/tensor/tensor_gpu_tests '-GpuMemory.*' --report-api-errors $API_ERRORS"
  stage memcheck-data 1 90 "$san_reserve" "$OUT/sanitizer.log" -- "${runenv[@]}" bash -c \
    "sanitize memcheck $t/data/data_gpu_tests '*' --report-api-errors $API_ERRORS"
  for suite in autograd nn cl; do
    stage "memcheck-$suite" 0 120 "$san_reserve" "$OUT/sanitizer.log" -- "${runenv[@]}" bash -c \
      "sanitize memcheck $t/$suite/${suite}_gpu_tests '*' --report-api-errors $API_ERRORS"
  done
  stage racecheck 0 120 "$san_reserve" "$OUT/sanitizer.log" -- "${runenv[@]}" bash -c \
    "sanitize racecheck $t/tensor/tensor_gpu_tests 'GpuReduce.*:GpuSoftmax.*:GpuLayerNorm.*:GpuCrossEntropy.*:GpuLayout.*' --racecheck-report hazard"
  grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^== ' "$OUT/sanitizer.log" | grep -v '^== .*(limit' |
    sed 's/^/sanitizer: /' >>"$notes"
fi
wait "$cpu_pid"
grep -E 'tests passed|tests failed' "$OUT/cpu-tests.log" | tail -1 | sed 's/^/cpu suites: /' >>"$notes"

# ---- benchmarks, on a quiet machine: ours, then PyTorch eager (and torch.compile if time is left)
# with the same shapes. On the dry run, ours alone on the CPU at a tiny size.
bench_ok() { # validates bench.json: CUDA with TF32 (or the CPU on the dry run), finite figures
  python3 - "$1" "$2" <<'EOF'
import json, math, sys
j = json.load(open(sys.argv[1]))
want_cuda = sys.argv[2] == "cuda"
assert j["device"].startswith("cuda") == want_cuda, f"device {j['device']}"
assert j["tf32"] == want_cuda, f"tf32 {j['tf32']}"
for part in ("train", "inference"):
    assert j[part]["images_per_s"] > 0, part
assert math.isfinite(j["train"]["loss_last"]), "loss"
print("bench.json: ok")
EOF
}
export -f bench_ok
if [ "$DRY" = 1 ]; then
  bench_args="--device cpu --preset vit_tiny_patch16_224 --image 32 --patch 16 --depth 2 --batch 4 --steps 2 --warmup 1"
  dev=cpu
else
  bench_args="--device cuda $BENCH_ARGS"
  dev=cuda
fi
stage bench 1 120 70 "$OUT/tests.log" -- bash -c \
  "$runenv_q '$BUILD/apps/sdlora' bench $bench_args >'$OUT/bench.json' && bench_ok '$OUT/bench.json' $dev"
# The same step without the CUDA graph (every step eager): what the graph saves.
stage bench-eager 0 90 70 "$OUT/tests.log" -- bash -c \
  "$runenv_q '$BUILD/apps/sdlora' bench $bench_args --no-cuda-graph >'$OUT/bench-eager.json' && bench_ok '$OUT/bench-eager.json' $dev"
if [ "$DRY" = 1 ]; then
  skip_stage torch-eager "not run: dry run"
  skip_stage torch-compile "not run: dry run"
else
  torch_py=${SDLORA_TORCH_PYTHON:-python3}
  stage torch-eager 1 150 0 "$OUT/tests.log" -- bash -c \
    "PYTHONUNBUFFERED=1 $torch_py bench/torch_reference.py --device cuda $BENCH_ARGS --modes eager >'$work/torch-eager.json'"
  stage torch-compile 0 200 0 "$OUT/tests.log" -- bash -c \
    "PYTHONUNBUFFERED=1 $torch_py bench/torch_reference.py --device cuda $BENCH_ARGS --modes compile >'$work/torch-compile.json'"
  python3 - "$work" "$OUT/torch.json" <<'EOF' >>"$OUT/tests.log" 2>&1
import json, os, sys
rows = []
for mode in ("eager", "compile"):
    p = os.path.join(sys.argv[1], f"torch-{mode}.json")
    try:
        rows += json.load(open(p))
    except Exception as e:
        rows.append({"implementation": f"pytorch-{mode}", "error": f"no result ({type(e).__name__}: {e})"})
json.dump(rows, open(sys.argv[2], "w"), indent=2)
EOF
fi
# The side-by-side table (the format of bench/compare.py).
python3 - "$OUT/bench.json" "$OUT/bench-eager.json" "$OUT/torch.json" <<'EOF' >>"$notes" 2>&1
import json, os, sys
rows = []
for p in sys.argv[1:]:
    if os.path.exists(p) and os.path.getsize(p):
        try:
            j = json.load(open(p))
            rows += j if isinstance(j, list) else [j]
        except Exception as e:
            rows.append({"implementation": os.path.basename(p), "error": f"unreadable: {e}"})
if not rows:
    print("benchmarks: no results")
    sys.exit()
base = rows[0]
if "model" in base:
    m = base["model"]
    print(f"benchmarks: device {base['device']}, precision {base['precision']}, tf32 {base['tf32']}, "
          f"batch {base['batch']}, ViT width {m['width']} depth {m['depth']} image {m['image']} "
          f"patch {m['patch']}, rank {base['adapters']['rank']}, {base['adapters']['past_components']} "
          f"frozen components; median of {base['steps']} steps after {base['warmup']}")
print(f"{'implementation':<18}{'train img/s':>13}{'ms/step':>10}{'peak MB':>10}{'infer img/s':>13}"
      f"{'infer peak MB':>15}")
for r in rows:
    if "error" in r or "train" not in r:
        print(f"{r.get('implementation', '?'):<18}  {r.get('error', 'no figures')}")
        continue
    t, i = r["train"], r["inference"]
    name = r["implementation"] + (" (graph)" if r.get("cuda_graph") else "")
    print(f"{name:<18}{t['images_per_s']:>13.1f}{t['ms_per_step']:>10.1f}"
          f"{t['peak_bytes'] / 2**20:>10.0f}{i['images_per_s']:>13.1f}{i['peak_bytes'] / 2**20:>15.0f}")
EOF

# ---- verdict: no stage failed (dry run: the GPU tests failing as they must without a GPU).
failed=$(awk -F'\t' '$2 ~ /^FAIL/ && $2 !~ /expected/ {printf "%s ", $1}' "$stages")
if [ -z "$failed" ]; then
  write_summary "PASSED$([ "$DRY" = 1 ] && echo ' (dry run)')"
  rc=0
else
  write_summary "FAILED: $failed"
  rc=1
fi
rm -rf "$work"
cat "$OUT/summary.txt"
exit "$rc"
