//! Eddy's integration tests: real RocksDB on disk, real `.wasm` components built from
//! source, the real `eddy` binary. One test binary (linking wasmtime and RocksDB once);
//! one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_api;
mod checkpoint_fallback;
mod cli_modules;
mod crash_recovery;
mod event_time;
mod examples_golden;
mod fault_isolation;
mod hot_swap;
mod nats_exactly_once;
mod operator_state;
mod projects;
mod restart_state;
mod savepoints;
mod state_semantics;
mod state_ttl;
