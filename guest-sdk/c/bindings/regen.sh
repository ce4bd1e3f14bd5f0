#!/usr/bin/env bash
# Regenerates the C bindings of wit/operator.wit (world `operator-world`) in this folder:
# operator_world.c, operator_world.h and operator_world_component_type.o (the object that
# carries the `component-type:operator-world` custom section; link it into every operator).
#
# Needs wit-bindgen-cli 0.63.0 with the C generator (a ~10 minute build):
#   cargo install wit-bindgen-cli@0.63.0 --locked --no-default-features --features c
# Set WIT_BINDGEN to use a binary that is not on PATH.
set -euo pipefail
cd "$(dirname "$0")"
WIT_BINDGEN=${WIT_BINDGEN:-wit-bindgen}
version=$("$WIT_BINDGEN" --version)
if [ "$version" != "wit-bindgen-cli 0.63.0" ]; then
  echo "regen.sh: expected wit-bindgen-cli 0.63.0, found '$version'" >&2
  echo "  install it: cargo install wit-bindgen-cli@0.63.0 --locked --no-default-features --features c" >&2
  exit 1
fi
"$WIT_BINDGEN" c ../../../wit --world operator-world --out-dir .
