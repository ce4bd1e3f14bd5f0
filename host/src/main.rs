//! `eddy`: the command line of the Eddy stream processor.

use std::io::Write;
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
    /// Publishes the lines of a file into a job's NATS source stream (created when missing),
    /// each with a message id from the file name and line, so publishing again adds nothing.
    Publish {
        /// The job file (its [source] must be of type "nats" with a subject).
        job: PathBuf,
        /// The file: one record per line; with --format json, `{"value": …}` objects.
        input: PathBuf,
        /// "lines" (the line is the value) or "json".
        #[arg(long, default_value = "lines")]
        format: String,
        /// The source stream to publish into, when the job reads several.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Prints the messages of a job's NATS output stream (or, with --source, its input
    /// stream) as JSON lines: sequence, message id, key, value.
    Read {
        /// The job file.
        job: PathBuf,
        /// Read the source stream instead of the sink's (name it when the job reads
        /// several).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "STREAM")]
        source: Option<String>,
    },
    /// Replaces the module of a running job's operator without stopping it (a hot swap,
    /// through the job's admin API); the job rolls it back by itself if it misbehaves on its
    /// first records.
    Swap {
        /// The job's admin API, e.g. http://127.0.0.1:8642 (its `[admin] listen`).
        #[arg(long)]
        job: String,
        /// The operator's uid.
        #[arg(long)]
        operator: String,
        /// The new `.wasm` component (sent to the job, which may run elsewhere).
        #[arg(long)]
        module: PathBuf,
        /// Who asks, for the module history (default: $USER).
        #[arg(long)]
        requested_by: Option<String>,
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn")),
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
        Command::Publish {
            job,
            input,
            format,
            stream,
        } => publish(&job, &input, &format, stream.as_deref()),
        Command::Read { job, source } => read(&job, source.as_deref()),
        Command::Swap {
            job,
            operator,
            module,
            requested_by,
        } => swap(&job, &operator, &module, requested_by),
    }
}

fn swap(
    url: &str,
    operator: &str,
    module: &std::path::Path,
    requested_by: Option<String>,
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    let base = url.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let unreachable = |e: ureq::Error| {
        anyhow::anyhow!(
            "cannot reach the job's admin API at {base}: {e}; is the job running with an [admin] table, and is this its listen address?"
        )
    };
    let text = agent
        .get(format!("{base}/jobs"))
        .call()
        .map_err(unreachable)?
        .body_mut()
        .read_to_string()
        .map_err(unreachable)?;
    let jobs: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{base}/jobs did not answer with JSON"))?;
    let Some(name) = jobs[0]["name"].as_str() else {
        anyhow::bail!("{base}/jobs names no job");
    };
    let who = requested_by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "eddy swap".into());
    let mut answer = agent
        .post(format!("{base}/jobs/{name}/operators/{operator}/swap"))
        .header("content-type", "application/wasm")
        .header("x-requested-by", &who)
        .send(&bytes[..])
        .map_err(unreachable)?;
    let status = answer.status();
    let text = answer.body_mut().read_to_string().map_err(unreachable)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the swap answer ({status}) is not JSON: {text}"))?;
    match v["result"].as_str() {
        Some("swapped") => {
            println!(
                "swapped operator `{operator}` of job `{name}` to module {} (version {}) at checkpoint {}; processing paused {:.1} ms; on probation for its first records",
                v["module-sha256"].as_str().unwrap_or("?"),
                v["version"].as_str().unwrap_or("?"),
                v["checkpoint"],
                v["pause-ms"].as_f64().unwrap_or(f64::NAN),
            );
            Ok(())
        }
        _ => anyhow::bail!(
            "swap refused: {}",
            v["reason"].as_str().unwrap_or("no reason given")
        ),
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

fn publish(
    job: &std::path::Path,
    input: &std::path::Path,
    format: &str,
    stream: Option<&str>,
) -> anyhow::Result<()> {
    let cfg = JobConfig::load(job)?;
    let (stream, subject) = cfg.nats_source(stream).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (`eddy publish` writes into a NATS source stream; use --stream)",
            job.display()
        )
    })?;
    let Some(subject) = subject else {
        anyhow::bail!(
            "{}: source stream `{stream}` has no `subject`; `eddy publish` needs one to publish to",
            job.display()
        );
    };
    let subject = subject.to_string();
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut records = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value = match format {
            "lines" => line.as_bytes().to_vec(),
            "json" => {
                let v: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{} line {}: not JSON", input.display(), i + 1))?;
                match v.get("value") {
                    Some(serde_json::Value::String(s)) => s.as_bytes().to_vec(),
                    _ => anyhow::bail!(
                        "{} line {}: no string field `value`",
                        input.display(),
                        i + 1
                    ),
                }
            }
            other => anyhow::bail!("--format {other}: use lines or json"),
        };
        records.push((format!("{name}:{}", i + 1), value));
    }
    let (conn, _server) = eddy_host::job::connect_nats(&cfg)?;
    conn.ensure_stream(
        stream,
        std::slice::from_ref(&subject),
        eddy_host::config::defaults::DUPLICATE_WINDOW,
    )?;
    let n = conn.publish_all(&subject, records)?;
    eprintln!(
        "published {n} records to {subject} (stream {stream} at {})",
        conn.url()
    );
    Ok(())
}

fn read(job: &std::path::Path, source: Option<&str>) -> anyhow::Result<()> {
    use eddy_host::config::{SinkConfig, default_stream_name};
    let cfg = JobConfig::load(job)?;
    let stream = match (source, &cfg.sink) {
        (Some(want), _) => cfg
            .nats_source((!want.is_empty()).then_some(want))
            .map_err(|e| anyhow::anyhow!("{}: {e} (use --source STREAM)", job.display()))?
            .0
            .to_string(),
        (
            None,
            SinkConfig::Nats {
                subject, stream, ..
            },
        ) => stream
            .clone()
            .unwrap_or_else(|| default_stream_name(subject)),
        (None, _) => anyhow::bail!("{}: its [sink] is not a NATS stream", job.display()),
    };
    let (conn, _server) = eddy_host::job::connect_nats(&cfg)?;
    let mut out = std::io::stdout().lock();
    for m in conn.read_stream(&stream)? {
        let line = serde_json::json!({
            "seq": m.sequence,
            "id": m.id,
            "key": m.key,
            "value": eddy_host::io::bytes_to_json(&m.payload),
        });
        writeln!(out, "{line}")?;
    }
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
