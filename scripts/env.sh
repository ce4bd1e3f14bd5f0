# Sourced by the other scripts: puts the toolchains scripts/setup.sh installs on PATH
# (componentize-py, zig, jco), so that `eddy build` finds them.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/target/tools/venv/bin:$root/target/tools/node/node_modules/.bin:$PATH"
# The eddy binary of this build (cargo's target folder may be elsewhere: CARGO_TARGET_DIR).
export EDDY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/eddy"
