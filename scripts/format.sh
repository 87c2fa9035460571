#!/usr/bin/env bash
# Formats the project's C++ and CUDA sources with the repository's .clang-format (Debian's
# clang-format 14, which scripts/deps.sh installs).
#   scripts/format.sh           rewrite the files in place
#   scripts/format.sh --check   change nothing; list the files that differ and exit 1 (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null ||
  { echo "format.sh: clang-format not found (Debian package clang-format)" >&2; exit 2; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
else
  mapfile -t files < <(find . -path ./build\* -prune -o -path ./.deps -prune -o \
    \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print)
fi
case "${1:-}" in
  "")
    clang-format -i "${files[@]}"
    echo "format.sh: formatted ${#files[@]} files" ;;
  --check)
    bad=()
    for f in "${files[@]}"; do
      clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if [ ${#bad[@]} -gt 0 ]; then
      echo "format.sh: ${#bad[@]} of ${#files[@]} files differ from .clang-format (run scripts/format.sh):" >&2
      printf '  %s\n' "${bad[@]}" >&2
      exit 1
    fi
    echo "format.sh: ${#files[@]} files match .clang-format" ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
