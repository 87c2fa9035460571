#!/usr/bin/env bash
# On a machine with Debian's package registry: downloads, as .deb files into .deps/debs
# (git-ignored), the library packages the build needs (scripts/deps.sh) and every library they
# depend on that a bare image may lack (OpenBLAS's libgfortran5 and libquadmath0, zlib1g behind
# zlib1g-dev's libz.so, libturbojpeg0, libstb0, googletest, ...), for a GPU machine that reaches no
# registry: scripts/gpu-check.sh unpacks them into a prefix of its own, never into /.
# The C library, the C++ runtime and the compiler's base packages are left out: the GPU machine's
# own compiler brings them, and a second copy would fight with its loader.
#   scripts/fetch-deps.sh          then copy .deps/ along with the source (README: GPU check)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

# data/ needs libjpeg-turbo's TurboJPEG API whether or not deps.sh lists it yet.
wanted="${SDLORA_LIB_PACKAGES/libopenblas-openmp-dev/} libturbojpeg0-dev"
# OpenBLAS's pthread flavour, which the build finds (openblas-pthread/), not the alternatives.
# Not the OpenMP flavour: it needs Debian's libgomp, and a second libgomp beside the GPU
# machine's own compiler's would fight with it; the CPU's thread count matters little there.
wanted="$wanted libopenblas-pthread-dev libopenblas0-pthread"
base=" libc6 libc6-dev libc-dev libgcc-s1 libstdc++6 gcc-12-base libcrypt1 libcrypt-dev linux-libc-dev "

# The dependency closure: Depends and Pre-Depends, the first choice of each alternative group,
# stopping at the base packages and at virtual ones.
declare -A seen=()
queue=()
for p in $wanted; do [ -n "${seen[$p]:-}" ] || { seen[$p]=1; queue+=("$p"); }; done
i=0
while [ "$i" -lt "${#queue[@]}" ]; do
  pkg=${queue[$i]}
  i=$((i + 1))
  in_group=0
  while read -r line; do
    case "$line" in
      "|Depends: "* | "|PreDepends: "*) alt=1 ;;
      "Depends: "* | "PreDepends: "*) alt=0 ;;
      *) continue ;;
    esac
    dep=${line#*: }
    # In a group "A | B | C" only A is taken; the group ends at its first line without '|'.
    if [ "$in_group" = 1 ]; then
      [ "$alt" = 1 ] || in_group=0
      continue
    fi
    [ "$alt" = 1 ] && in_group=1
    case "$dep" in "<"*) continue ;; esac
    case "$base" in *" $dep "*) continue ;; esac
    [ -n "${seen[$dep]:-}" ] && continue
    seen[$dep]=1
    queue+=("$dep")
  done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
             --no-replaces --no-enhances "$pkg" 2>/dev/null | tail -n +2)
done

rm -rf .deps/debs
mkdir -p .deps/debs
(cd .deps/debs && apt-get download "${queue[@]}" 2>&1 | grep -v -e "^Get:" -e "unsandboxed" || true)
missing=""
for p in "${queue[@]}"; do ls .deps/debs/"${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "fetch-deps: could not download:$missing (run 'apt-get update' first?)" >&2
  exit 1
fi
(
  cd .deps/debs
  for f in *.deb; do
    printf '%s %s %s\n' "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" \
      "$(sha256sum "$f" | cut -c1-16)"
  done
) > .deps/debs/MANIFEST.txt
echo "fetch-deps: ${#queue[@]} packages in .deps/debs ($(du -sh .deps/debs | cut -f1)):"
sed 's/^/  /' .deps/debs/MANIFEST.txt

# cudnn-frontend's headers (the fused attention), from the pinned PyPI wheel.
scripts/fetch-cudnn-frontend.sh
