//! # eddy-host
//!
//! The host of Eddy, a stream processor whose operators are WebAssembly components with
//! keyed state in RocksDB. Modules, one per concern, with one-way dependencies:
//!
//! - [`config`]: the job file.
//! - [`runtime`]: the wasmtime engine, component loading and caching, limits, calls.
//! - [`state`]: RocksDB keyed state, its cache, the host side of the `state` imports.
//! - [`checkpoint`]: the record binding state to source positions.
//! - [`savepoint`]: portable snapshots of state and positions, and their restore.
//! - [`io`]: sources and sinks.
//! - [`metrics`]: the live counters and histograms of a running job.
//! - [`admin`]: the admin HTTP API (`GET /jobs`, `GET /metrics`).
//! - [`job`]: the coordinator and workers that wire them together.
//!
//! Running a job from code:
//!
//! ```no_run
//! use std::sync::Arc;
//! use eddy_host::{config::JobConfig, job::{Job, RunOptions, module_cache_dir}, runtime::Runtime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = JobConfig::load("examples/word-count/job.toml".as_ref())?;
//! let runtime = Arc::new(Runtime::new(Some(module_cache_dir(&cfg)))?);
//! let report = Job::open(cfg, runtime)?.run(&RunOptions::default())?;
//! println!("{} records in, {} out", report.records_in, report.records_out);
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod checkpoint;
pub mod config;
pub mod io;
pub mod job;
pub mod metrics;
pub mod project;
pub mod runtime;
pub mod savepoint;
pub mod state;
