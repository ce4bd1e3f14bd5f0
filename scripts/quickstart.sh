#!/usr/bin/env bash
# Sets up what is missing, builds eddy and the example operators, and runs the word-count
# example end to end with NATS JetStream in and out: eddy starts a local nats-server on
# loopback, the input file is published into a stream, the Wasm operator counts words with
# keyed state in RocksDB, and the counts are published, exactly once, into another stream.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER="$(scripts/setup.sh)"
export NATS_SERVER
cargo build --release --workspace --all-targets
scripts/build-operators.sh rust
rm -rf target/examples/word-count-nats
job=examples/word-count/job-nats.toml
./target/release/eddy publish "$job" examples/word-count/input.jsonl --format json
./target/release/eddy run "$job"
echo
echo "the output stream (eddy read $job):"
./target/release/eddy read "$job"
