#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the host and every operator from
# source, then runs the host's unit and integration tests (real RocksDB, real components)
# and the guest SDK's and examples' native tests.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER="$(scripts/setup.sh)"
export NATS_SERVER
scripts/build-operators.sh
# One profile and one package set for every cargo call, so RocksDB is built once.
cargo build --release --workspace --all-targets
cargo test --release --workspace
# The guests' native tests in the test profile: the release profile's LTO (for small
# components) would make each test binary a slow link.
cargo test --target-dir target/guest --manifest-path guest-sdk/rust/Cargo.toml
cargo test --target-dir target/guest --manifest-path examples/Cargo.toml
cargo test --target-dir target/guest --manifest-path tests/operators/Cargo.toml
