#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the host and every operator from
# source (Rust, Python, JavaScript and C), then runs the host's unit and integration tests
# (real RocksDB, real NATS, real components) and the guest SDKs' and operators' native tests.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER="$(scripts/setup.sh)"
export NATS_SERVER
source scripts/env.sh
# One profile and one package set for every cargo call, so RocksDB is built once.
cargo build --release --workspace --all-targets
scripts/build-operators.sh
cargo test --release --workspace
# The guests' native tests in the test profile: the release profile's LTO (for small
# components) would make each test binary a slow link.
cargo test --target-dir target/guest --manifest-path guest-sdk/rust/Cargo.toml
cargo test --target-dir target/guest --manifest-path examples/Cargo.toml
cargo test --target-dir target/guest --manifest-path tests/operators/Cargo.toml
# The Python, JavaScript and C SDKs' own tests, then every operator's native tests.
(cd guest-sdk/python && python3 -m unittest discover -s tests)
node --test guest-sdk/js/test/
guest-sdk/c/tests/run.sh
for dir in examples/python/*/ tests/operators/python/*/ examples/js/*/ tests/operators/js/*/; do
  "$EDDY_BIN" test "$dir"
done
