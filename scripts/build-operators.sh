#!/usr/bin/env bash
# Builds every Wasm operator from source — the examples and the test fixtures, in every
# language — and puts the components in target/operators/:
#   Rust crates (examples/, tests/operators/)  -> <crate_name>.wasm
#   examples/<lang>/<name>, tests/operators/<lang>/<name> for lang python, js, c
#                                              -> <name with _>_<py|js|c>.wasm, by `eddy build`
# Usage: scripts/build-operators.sh [rust] [python] [js] [c]   (default: all of them)
# The non-Rust builds need the eddy binary (cargo build --release --workspace) and the
# toolchains scripts/setup.sh installs; a component newer than its sources is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(rust python js c)
wants() {
  local l
  for l in "${languages[@]}"; do [ "$l" = "$1" ] && return 0; done
  return 1
}

mkdir -p target/operators
if wants rust; then
  for ws in examples tests/operators; do
    cargo build --quiet --release --target wasm32-wasip2 \
      --target-dir target/guest --manifest-path "$ws/Cargo.toml"
  done
  for f in target/guest/wasm32-wasip2/release/*.wasm; do
    cp -p "$f" target/operators/
  done
fi

eddy="$EDDY_BIN"
# Whether component $1 is missing or older than a source of project $2 (or than eddy, which
# embeds the SDKs).
stale() {
  [ ! -f "$1" ] || [ "$eddy" -nt "$1" ] || [ -n "$(find "$2" -newer "$1" -type f \
    -not -path '*/target/*' -not -path '*/node_modules/*' -not -path '*/__pycache__/*' \
    -print -quit)" ]
}
for lang in python js c; do
  wants "$lang" || continue
  case $lang in python) suffix=py ;; *) suffix=$lang ;; esac
  for dir in examples/$lang/*/ tests/operators/$lang/*/; do
    [ -d "$dir" ] || continue
    if [ ! -x "$eddy" ]; then
      echo "error: $eddy is missing: run cargo build --release --workspace first" >&2
      exit 1
    fi
    name=$(basename "$dir")
    out="target/operators/${name//-/_}_$suffix.wasm"
    stale "$out" "$dir" || continue
    "$eddy" build "$dir" -o "$out" >&2
  done
done
# One JavaScript example on the other engine too, SpiderMonkey (QuickJS is the default).
sm=target/operators/word_count_js_spidermonkey.wasm
if wants js && stale "$sm" examples/js/word-count; then
  "$eddy" build examples/js/word-count --js-engine spidermonkey -o "$sm" >&2
fi
echo "operators built: $(cd target/operators && ls *.wasm | tr '\n' ' ')" >&2
