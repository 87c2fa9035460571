#!/usr/bin/env sh
# ctest helper: bench_loader at a tiny size keeping its images (--keep), a second run refusing the
# now non-empty folder, then bench/torch_loader_reference.py over the same files with the first
# Python that has torch and torchvision (skipped, exit 77, when none has them).
#   bench/check_loader_reference.sh BENCH_LOADER_BINARY
set -eu
here=$(dirname "$0")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$1" --images 12 --threads 1 --epochs 2 --batch 4 --width 64 --height 48 --keep "$dir/images" \
  >"$dir/ours.json"
grep -q '"first_epoch_images_per_s"' "$dir/ours.json"
n=$(find "$dir/images" -name '*.jpg' | wc -l)
[ "$n" -eq 12 ] || { echo "expected 12 kept JPEGs, found $n"; exit 1; }
if "$1" --images 2 --threads 1 --keep "$dir/images" >/dev/null 2>"$dir/err"; then
  echo "bench_loader wrote into a non-empty --keep folder"; exit 1
fi
grep -q "not empty" "$dir/err"
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c "import torch, torchvision" >/dev/null 2>&1; then
    "$py" "$here/torch_loader_reference.py" --dir "$dir/images" --workers 0,1 --batch 4 \
      --epochs 2 >"$dir/torch.json"
    "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['images'] == 12; \
assert all(r['first_epoch_images_per_s'] > 0 for r in j['runs']); print('torch loader', j['runs'])" \
      "$dir/torch.json"
    exit 0
  fi
done
echo "no Python with torch and torchvision (Debian: python3-torchvision): PyTorch's side not run"
exit 77
