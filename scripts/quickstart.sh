#!/usr/bin/env bash
# Sets up what is missing, builds eddy and the example operators, and runs the word-count
# example end to end with NATS JetStream in and out: eddy starts a local nats-server on
# loopback, the input file is published into a stream, the Wasm operator counts words with
# keyed state in RocksDB, and the counts are published, exactly once, into another stream.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER="$(scripts/setup.sh)"
export NATS_SERVER
source scripts/env.sh
cargo build --release --workspace --all-targets
scripts/build-operators.sh rust
rm -rf target/examples/word-count-nats
job=examples/word-count/job-nats.toml
"$EDDY_BIN" publish "$job" examples/word-count/input.jsonl --format json
"$EDDY_BIN" run "$job"
echo
echo "the output stream (eddy read $job):"
"$EDDY_BIN" read "$job"
