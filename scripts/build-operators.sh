#!/usr/bin/env bash
# Builds every Wasm operator from source — the examples and the test fixtures — for
# wasm32-wasip2, and puts the components in target/operators/<crate_name>.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

for ws in examples tests/operators; do
  cargo build --quiet --release --target wasm32-wasip2 \
    --target-dir target/guest --manifest-path "$ws/Cargo.toml"
done
mkdir -p target/operators
for f in target/guest/wasm32-wasip2/release/*.wasm; do
  cp -p "$f" target/operators/
done
echo "operators built: $(cd target/operators && ls *.wasm | tr '\n' ' ')" >&2
