//! The one place that owns the `bindgen!` output for the operator world.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "operator-world",
    imports: { default: trappable },
});
