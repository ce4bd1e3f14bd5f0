#!/usr/bin/env bash
# Builds and runs the native tests of the C SDK under AddressSanitizer and
# UndefinedBehaviorSanitizer (leaks fail the run). Needs a native C compiler ($CC, default cc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(-std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I "$here/.." -I "$here/../bindings")
# The generated bindings, natively: their Wasm import/export attributes mean nothing here (-w).
${CC:-cc} "${flags[@]}" -w -c -o "$tmp/operator_world.o" "$here/../bindings/operator_world.c"
${CC:-cc} "${flags[@]}" -Wall -Wextra -Werror -Wno-attributes \
  -o "$tmp/test" "$here/test_eddy.c" "$here/../eddy.c" "$tmp/operator_world.o"
"$tmp/test"
