#!/usr/bin/env bash
# Sets up what is missing, builds eddy and the example operators, and runs the word-count
# example end to end: records from a file, a Wasm operator with keyed state in RocksDB,
# output to a file.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build-operators.sh
cargo build --release --workspace --all-targets
rm -rf target/examples/word-count
./target/release/eddy run examples/word-count/job.toml
echo
echo "output (target/examples/word-count/output.jsonl):"
cat target/examples/word-count/output.jsonl
