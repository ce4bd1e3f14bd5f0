//! `eddy`: the command line of the Eddy stream processor.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use eddy_host::config::JobConfig;
use eddy_host::job::{Job, RunOptions, module_cache_dir};
use eddy_host::runtime::Runtime;

/// Eddy runs stateful stream operators written as WebAssembly components.
#[derive(Parser)]
#[command(name = "eddy", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a job until its input ends (or Ctrl-C), with checkpoints; resumes from the
    /// last checkpoint of its state directory.
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// How often to log progress, e.g. "5s"; "0s" for never.
        #[arg(long, default_value = "5s", value_parser = humantime_serde::re::humantime::parse_duration)]
        progress_every: Duration,
    },
    /// Shows an operator component's world, version and state descriptors.
    InspectModule {
        /// The `.wasm` component.
        module: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            job,
            progress_every,
        } => run_job(&job, progress_every),
        Command::InspectModule { module, json } => inspect_module(&module, json),
    }
}

fn run_job(path: &std::path::Path, progress_every: Duration) -> anyhow::Result<()> {
    let cfg = JobConfig::load(path)?;
    let name = cfg.name.clone();
    let runtime = Arc::new(Runtime::new(Some(module_cache_dir(&cfg)))?);
    let job = Job::open(cfg, runtime).with_context(|| format!("cannot start job `{name}`"))?;
    let opts = RunOptions {
        progress_every: (!progress_every.is_zero()).then_some(progress_every),
        ..RunOptions::default()
    };
    let stop = opts.stop.clone();
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("stopping after a final checkpoint (Ctrl-C again to abort)");
    })
    .context("cannot install the Ctrl-C handler")?;
    let report = job
        .run(&opts)
        .with_context(|| format!("job `{name}` failed"))?;
    let cp = report.last_checkpoint.as_ref();
    eprintln!(
        "job `{name}`: {} records in, {} out, {} dead-lettered, {} instance restarts; checkpoint {} at {} in {:.2?}",
        report.records_in,
        report.records_out,
        report.dead_letters,
        report.restarts,
        cp.map_or(0, |c| c.id),
        cp.map(|c| format!("{:?}", c.positions)).unwrap_or_default(),
        report.elapsed,
    );
    Ok(())
}

fn inspect_module(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(None)?;
    let m = runtime.load(path)?;
    if json {
        let v = serde_json::json!({
            "path": m.path,
            "sha256": m.sha256,
            "size": m.size,
            "name": m.info.name,
            "version": m.info.version,
            "states": m.info.states,
            "world": m.world,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("module   {}", m.path.display());
    println!("sha256   {}", m.sha256);
    println!("size     {} bytes", m.size);
    println!("operator {} {}", m.info.name, m.info.version);
    println!("states   {}", m.info.states.len());
    for (h, s) in m.info.states.iter().enumerate() {
        let ttl = s
            .ttl_ms
            .map(|t| format!(", ttl {t} ms"))
            .unwrap_or_default();
        println!(
            "  [{h}] {} ({} state, schema v{}{ttl})",
            s.name, s.kind, s.schema_version
        );
    }
    println!("world");
    for w in &m.world {
        println!("  {w}");
    }
    Ok(())
}
