#!/usr/bin/env bash
# Assembles the seed corpus of every fuzz target into OUT/<target>/ (default
# build/fuzz/corpus): the inputs that tests/fuzz/seeds.txt lists from tests/data, plus the
# regression inputs of tests/fuzz/regressions/<target>/. Nothing generated is committed;
# libFuzzer adds the inputs it finds to these directories while it runs.
# Usage: tests/fuzz/make_corpus.sh [OUT]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=$(cd "$here/../data" && pwd)
out=${1:-$here/../../build/fuzz/corpus}

while read -r target glob; do
  case $target in ''|'#'*) continue ;; esac
  mkdir -p "$out/$target"
  # Seeds are named after their path under tests/data, so the same file lands once.
  for f in "$data"/$glob; do
    [ -f "$f" ] || { echo "make_corpus.sh: no file matches $glob" >&2; exit 1; }
    rel=${f#"$data"/}
    cp "$f" "$out/$target/seed_${rel//\//_}"
  done
done < "$here/seeds.txt"

for dir in "$here"/regressions/*/; do
  [ -d "$dir" ] || continue
  target=$(basename "$dir")
  mkdir -p "$out/$target"
  for f in "$dir"*; do
    [ -f "$f" ] && cp "$f" "$out/$target/regression_$(basename "$f")"
  done
done

for dir in "$out"/*/; do
  printf 'make_corpus.sh: %-12s %3d seed files\n' "$(basename "$dir")" \
    "$(find "$dir" -maxdepth 1 -type f | wc -l)"
done
