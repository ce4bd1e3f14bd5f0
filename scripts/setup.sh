#!/usr/bin/env bash
# Installs what building and testing eddy needs, when it is missing: the wasm32-wasip2 Rust
# target (operators), libclang (the RocksDB bindings' bindgen) and a C++ compiler (RocksDB).
# Safe to run again; it changes nothing that is already there.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2
fi

packages=()
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  packages+=(libclang-dev)
fi
command -v c++ >/dev/null 2>&1 || packages+=(g++)
if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing ${packages[*]} with apt-get" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
