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
use eddy_host::job::{Job, MODULE_CACHE_ENV, RunOptions, module_cache_dir};
use eddy_host::project;
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
        /// Start from this savepoint (the job's state directory must be empty): states
        /// are matched by operator uid and name, migrated where their schema version
        /// changed, and the sources resume at the savepoint's positions.
        #[arg(long, value_name = "DIR")]
        from_savepoint: Option<PathBuf>,
        /// With --from-savepoint: leave behind states no operator of the job claims.
        #[arg(long, requires = "from_savepoint")]
        allow_non_restored_state: bool,
    },
    /// Writes a savepoint (portable state and positions) of a stopped job (`JOB.toml DIR`)
    /// or of a running one (`--job URL DIR [--stop]`), or inspects or dumps one.
    #[command(args_conflicts_with_subcommands = true)]
    Savepoint {
        #[command(subcommand)]
        action: Option<SavepointAction>,
        /// The job file (the job must be stopped: its state directory not in use).
        job: Option<PathBuf>,
        /// The folder to write the savepoint into.
        dir: Option<PathBuf>,
        /// A running job's admin API, e.g. http://127.0.0.1:8642, instead of a job file.
        #[arg(long = "job", value_name = "URL")]
        url: Option<String>,
        /// With --job: the job processes nothing after the savepoint and ends.
        #[arg(long, requires = "url")]
        stop: bool,
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
    /// Scaffolds an operator project: a word-count operator in the language, its job file,
    /// an input with its expected output, a native test and a README.
    New {
        /// rust, python, js or c.
        language: String,
        /// The new folder; its name (lowercase letters, digits, '-') names the operator.
        dir: PathBuf,
    },
    /// Builds an operator project (Rust, Python, JavaScript or C, told by its files) into a
    /// component, against the WIT contract of this eddy.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the component (default: target/<folder name>.wasm in the project).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// The engine of a JavaScript operator: quickjs (small, fast to load) or
        /// spidermonkey.
        #[arg(long, default_value = "quickjs")]
        js_engine: String,
    },
    /// Runs an operator project's native tests (no Wasm, no host): cargo test, Python's
    /// unittest or node --test, with the SDK this eddy embeds.
    Test {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
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

#[derive(Subcommand)]
enum SavepointAction {
    /// Summarizes a savepoint: job, positions, operators, states with entry counts and sizes.
    Inspect {
        /// The savepoint folder.
        dir: PathBuf,
    },
    /// Prints the entries of one state as JSON lines: key, map key (map state), value or
    /// items (list state). Values, map keys and items of a state with codec json appear as
    /// the JSON they hold; other bytes as a string when UTF-8, else {"base64": …}.
    Dump {
        /// The savepoint folder.
        dir: PathBuf,
        /// The operator uid.
        #[arg(long)]
        operator: String,
        /// The state name.
        #[arg(long)]
        state: String,
        /// Only this record key.
        #[arg(long)]
        key: Option<String>,
        /// Output format.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
    },
    /// Writes a savepoint from JSON lines, without running any operator: each state's
    /// entries in the format `dump` prints. The job file gives the operator uid, the module
    /// (its state descriptors) and the key-group count.
    Bootstrap {
        /// The job file.
        job: PathBuf,
        /// The folder to write.
        dir: PathBuf,
        /// STATE=FILE: a state's entries (repeat for several states).
        #[arg(long = "state", value_name = "STATE=FILE", required = true)]
        states: Vec<String>,
        /// SOURCE=POSITION: the position the state reflects per source (a restore resumes
        /// after it), e.g. file:input.jsonl=5000.
        #[arg(long = "position", value_name = "SOURCE=POSITION")]
        positions: Vec<String>,
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
            from_savepoint,
            allow_non_restored_state,
        } => run_job(
            &job,
            progress_every,
            from_savepoint.as_deref(),
            allow_non_restored_state,
        ),
        Command::Savepoint {
            action: Some(action),
            ..
        } => match action {
            SavepointAction::Inspect { dir } => savepoint_inspect(&dir),
            SavepointAction::Dump {
                dir,
                operator,
                state,
                key,
                format: _,
            } => savepoint_dump(&dir, &operator, &state, key.as_deref()),
            SavepointAction::Bootstrap {
                job,
                dir,
                states,
                positions,
            } => savepoint_bootstrap(&job, &dir, &states, &positions),
        },
        // With --job URL the one positional (the folder) lands in `job`.
        Command::Savepoint {
            action: None,
            job,
            dir,
            url,
            stop,
        } => match (url, job, dir) {
            (Some(url), Some(dir), None) => savepoint_running(&url, &dir, stop),
            (None, Some(job), Some(dir)) => savepoint_take(&job, &dir),
            _ => anyhow::bail!(
                "usage: eddy savepoint JOB.toml DIR | eddy savepoint --job URL DIR [--stop] | eddy savepoint inspect|dump|bootstrap …"
            ),
        },
        Command::New { language, dir } => new_project(&language, &dir),
        Command::Build {
            dir,
            out,
            js_engine,
        } => {
            let js_engine = project::JsEngine::parse(&js_engine)?;
            let built = project::build(&dir, &project::BuildOptions { out, js_engine })?;
            eprintln!("built {}", built.display());
            Ok(())
        }
        Command::Test { dir } => Ok(project::test(&dir)?),
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

fn new_project(language: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let language = project::Language::parse(language)?;
    let files = project::scaffold(language, dir)?;
    println!(
        "created {} operator project {} ({} files)",
        language.name(),
        dir.display(),
        files.len()
    );
    let test = if language == project::Language::C {
        String::new()
    } else {
        format!("\n  eddy test {}", dir.display())
    };
    println!(
        "next:{test}\n  eddy build {dir}\n  eddy run {dir}/job.toml",
        dir = dir.display()
    );
    Ok(())
}

/// An HTTP client that returns error statuses as answers (their bodies say why).
fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn unreachable_api(base: &str, e: ureq::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach the job's admin API at {base}: {e}; is the job running with an [admin] table, and is this its listen address?"
    )
}

/// The name of the job behind an admin API.
fn job_name(agent: &ureq::Agent, base: &str) -> anyhow::Result<String> {
    let text = agent
        .get(format!("{base}/jobs"))
        .call()
        .map_err(|e| unreachable_api(base, e))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable_api(base, e))?;
    let jobs: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{base}/jobs did not answer with JSON"))?;
    jobs[0]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{base}/jobs names no job"))
}

/// POSTs `body` to `path` of the admin API at `base`; returns whether the status was a
/// success, and the JSON answer (`what` names the request in errors).
fn post_json(
    agent: &ureq::Agent,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    what: &str,
) -> anyhow::Result<(bool, serde_json::Value)> {
    let mut req = agent.post(format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut answer = req.send(body).map_err(|e| unreachable_api(base, e))?;
    let status = answer.status();
    let text = answer
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable_api(base, e))?;
    let v = serde_json::from_str(&text)
        .with_context(|| format!("the {what} answer ({status}) is not JSON: {text}"))?;
    Ok((status.is_success(), v))
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
    let agent = http_agent();
    let name = job_name(&agent, base)?;
    let who = requested_by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "eddy swap".into());
    let (_, v) = post_json(
        &agent,
        base,
        &format!("/jobs/{name}/operators/{operator}/swap"),
        &[
            ("content-type", "application/wasm"),
            ("x-requested-by", &who),
        ],
        &bytes,
        "swap",
    )?;
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

fn run_job(
    path: &std::path::Path,
    progress_every: Duration,
    from_savepoint: Option<&std::path::Path>,
    allow_non_restored: bool,
) -> anyhow::Result<()> {
    let cfg = JobConfig::load(path)?;
    let name = cfg.name.clone();
    let runtime = Arc::new(Runtime::new(Some(module_cache_dir(&cfg)))?);
    if let Some(sp) = from_savepoint {
        let started = std::time::Instant::now();
        let (record, summary) =
            eddy_host::job::restore_savepoint(&cfg, &runtime, sp, allow_non_restored)
                .with_context(|| format!("cannot restore savepoint {}", sp.display()))?;
        eprintln!(
            "restored savepoint {}: {} entries ({} migrated), {:.1} MB in {:.2?}; sources resume after {:?}",
            sp.display(),
            summary.entries,
            summary.migrated,
            summary.bytes as f64 / 1e6,
            started.elapsed(),
            record.positions
        );
    }
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

fn savepoint_take(job: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    let cfg = JobConfig::load(job)?;
    if !cfg.state.dir.exists() {
        anyhow::bail!(
            "job `{}` has no state at {} yet: run it first",
            cfg.name,
            cfg.state.dir.display()
        );
    }
    let started = std::time::Instant::now();
    let db = eddy_host::state::StateDb::open(&cfg.state.dir, cfg.state.max_key_groups)?;
    let (m, summary) = eddy_host::savepoint::write(&db, dir)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "savepoint of job `{}` at checkpoint {} written to {}: {} entries, {:.1} MB in {:.2} s ({:.0} entries/s, {:.0} MB/s); positions {:?}",
        m.job,
        m.checkpoint,
        dir.display(),
        summary.entries,
        summary.bytes as f64 / 1e6,
        secs,
        summary.entries as f64 / secs,
        summary.bytes as f64 / 1e6 / secs,
        m.positions
    );
    Ok(())
}

fn savepoint_running(url: &str, dir: &std::path::Path, stop: bool) -> anyhow::Result<()> {
    let base = url.trim_end_matches('/');
    let agent = http_agent();
    let name = job_name(&agent, base)?;
    // The folder is on the job's host; make it absolute as this machine sees it.
    let dir = std::path::absolute(dir)?;
    let body = serde_json::json!({ "dir": dir, "stop": stop }).to_string();
    let (ok, v) = post_json(
        &agent,
        base,
        &format!("/jobs/{name}/savepoints"),
        &[("content-type", "application/json")],
        body.as_bytes(),
        "savepoint",
    )?;
    if !ok {
        anyhow::bail!(
            "savepoint failed: {}",
            v["reason"].as_str().unwrap_or("no reason given")
        );
    }
    println!(
        "savepoint of job `{name}` at checkpoint {} written to {}: {} entries, {:.1} MB; positions {}{}",
        v["checkpoint"],
        dir.display(),
        v["entries"],
        v["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        v["positions"],
        if stop { "; the job stopped at it" } else { "" }
    );
    Ok(())
}

fn savepoint_bootstrap(
    job: &std::path::Path,
    dir: &std::path::Path,
    states: &[String],
    positions: &[String],
) -> anyhow::Result<()> {
    use eddy_host::io::json_to_bytes;
    use eddy_host::savepoint::{BootstrapTarget, Entry, dump_to_bytes};
    use eddy_host::state::StateKind;
    let cfg = JobConfig::load(job)?;
    let module = Runtime::new(Some(module_cache_dir(&cfg)))?.load(&cfg.operator.module)?;
    let mut out = Vec::new();
    for spec in states {
        let Some((name, file)) = spec.split_once('=') else {
            anyhow::bail!("--state {spec}: give STATE=FILE");
        };
        let Some(d) = module.info.states.iter().find(|d| d.name == name) else {
            anyhow::bail!(
                "--state {name}: module {} declares no such state (it declares: {})",
                module.path.display(),
                module
                    .info
                    .states
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        let mut entries = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let at = || format!("{file} line {}", i + 1);
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
            // Values, map keys and list items in the state's codec (JSON as JSON); record
            // keys are bytes.
            let field = |name: &str| {
                v.get(name)
                    .ok_or_else(|| anyhow::anyhow!("{}: no `{name}`", at()))
            };
            let coded = |field: &serde_json::Value, what: &str| {
                dump_to_bytes(d, field).map_err(|e| anyhow::anyhow!("{}: `{what}`: {e}", at()))
            };
            // Values and list items of a state with a TTL start their life now.
            let value_of = |field: &serde_json::Value, what: &str| {
                coded(field, what).map(|b| eddy_host::savepoint::stamped(d, b))
            };
            let value = if d.kind == StateKind::List {
                let items = field("items")?
                    .as_array()
                    .ok_or_else(|| anyhow::anyhow!("{}: list state needs `items`", at()))?
                    .iter()
                    .map(|i| value_of(i, "items"))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                eddy_host::state::keys::encode_list(&items)
            } else {
                value_of(field("value")?, "value")?
            };
            entries.push(Entry {
                key: json_to_bytes(field("key")?).ok_or_else(|| {
                    anyhow::anyhow!("{}: `key` must be a string or {{\"base64\": …}}", at())
                })?,
                map_key: (d.kind == StateKind::Map)
                    .then(|| coded(field("map-key")?, "map-key"))
                    .transpose()?,
                value,
            });
        }
        out.push((d.clone(), entries));
    }
    let mut at = std::collections::BTreeMap::new();
    for p in positions {
        let Some((source, pos)) = p.rsplit_once('=') else {
            anyhow::bail!("--position {p}: give SOURCE=POSITION");
        };
        at.insert(
            source.to_string(),
            pos.parse::<u64>()
                .with_context(|| format!("--position {p}: not a number"))?,
        );
    }
    let target = BootstrapTarget {
        job: &cfg.name,
        uid: &cfg.operator.uid,
        module_sha256: &module.sha256,
        module_version: &module.info.version,
        max_key_groups: cfg.state.max_key_groups,
        positions: at,
    };
    let (_, summary) = eddy_host::savepoint::bootstrap(dir, &target, out)?;
    println!(
        "bootstrapped savepoint {}: {} entries, {:.1} MB",
        dir.display(),
        summary.entries,
        summary.bytes as f64 / 1e6
    );
    Ok(())
}

fn savepoint_inspect(dir: &std::path::Path) -> anyhow::Result<()> {
    let m = eddy_host::savepoint::read_manifest(dir)?;
    println!("savepoint  {}", dir.display());
    println!("format     {}", m.format);
    println!("job        {}", m.job);
    println!("checkpoint {}", m.checkpoint);
    println!("created    {} ms since the epoch", m.created_at_ms);
    println!("key groups {}", m.max_key_groups);
    for (s, p) in &m.positions {
        println!("position   {s} {p}");
    }
    for op in &m.operators {
        println!(
            "operator   {} (module {} version {})",
            op.uid, op.module_sha256, op.module_version
        );
        for st in &op.states {
            let d = &st.descriptor;
            println!(
                "  state {} ({} state, schema v{}, codec {}): {} entries, {} bytes in {} files",
                d.name,
                d.kind,
                d.schema_version,
                d.codec.as_deref().unwrap_or("unknown"),
                st.entries(),
                st.bytes(),
                st.files.len()
            );
        }
        for st in &op.operator_states {
            let d = &st.descriptor;
            println!(
                "  operator state {} (list, {}, schema v{}, codec {}): lists of {} workers, {} bytes",
                d.name,
                d.redistribution,
                d.schema_version,
                d.codec.as_deref().unwrap_or("unknown"),
                st.file.entries,
                st.file.bytes
            );
        }
    }
    Ok(())
}

fn savepoint_dump(
    dir: &std::path::Path,
    operator: &str,
    state: &str,
    key: Option<&str>,
) -> anyhow::Result<()> {
    use eddy_host::io::bytes_to_json;
    let m = eddy_host::savepoint::read_manifest(dir)?;
    let Some(op) = m.operators.iter().find(|o| o.uid == operator) else {
        anyhow::bail!(
            "the savepoint has no operator `{operator}` (it has: {})",
            m.operators
                .iter()
                .map(|o| o.uid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let Some(st) = op.states.iter().find(|s| s.descriptor.name == state) else {
        if op
            .operator_states
            .iter()
            .any(|s| s.descriptor.name == state)
        {
            anyhow::bail!(
                "`{state}` is an operator (non-keyed) state of operator `{operator}`: `savepoint dump` shows keyed state only; `savepoint inspect` summarizes operator states"
            );
        }
        anyhow::bail!(
            "operator `{operator}` has no state `{state}` in the savepoint (it has: {})",
            op.states
                .iter()
                .map(|s| s.descriptor.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let d = &st.descriptor;
    let kind = d.kind;
    let coded = |b: &[u8], key: &[u8]| {
        eddy_host::savepoint::bytes_to_dump(d, b).map_err(|why| {
            eddy_host::savepoint::SavepointError::Refused(format!(
                "key {}: {why}",
                String::from_utf8_lossy(key)
            ))
        })
    };
    // Values and list items without the TTL stamp of a state with a TTL.
    let value = |b: &[u8], key: &[u8]| {
        let user = eddy_host::savepoint::unstamped(d, b).map_err(|why| {
            eddy_host::savepoint::SavepointError::Refused(format!(
                "key {}: {why}",
                String::from_utf8_lossy(key)
            ))
        })?;
        coded(user, key)
    };
    // With a key, only the file of its key group.
    let group = key.map(|k| {
        u32::from(eddy_host::state::keys::key_group(
            k.as_bytes(),
            m.max_key_groups,
        ))
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for file in st
        .files
        .iter()
        .filter(|f| group.is_none_or(|g| (f.key_groups[0]..f.key_groups[1]).contains(&g)))
    {
        eddy_host::savepoint::read_file(
            dir,
            file,
            kind == eddy_host::state::StateKind::Map,
            |e| {
                if key.is_some_and(|k| k.as_bytes() != e.key.as_slice()) {
                    return Ok(());
                }
                let mut line = serde_json::json!({ "key": bytes_to_json(&e.key) });
                if let Some(mk) = &e.map_key {
                    line["map-key"] = coded(mk, &e.key)?;
                }
                if kind == eddy_host::state::StateKind::List {
                    let items = eddy_host::state::keys::decode_list(&e.value).ok_or_else(|| {
                        eddy_host::savepoint::SavepointError::Corrupt {
                            path: dir.join(&file.path),
                            why: format!(
                                "the list of key {} does not decode",
                                String::from_utf8_lossy(&e.key)
                            ),
                        }
                    })?;
                    line["items"] = items
                        .iter()
                        .map(|i| value(i, &e.key))
                        .collect::<Result<_, _>>()?;
                } else {
                    line["value"] = value(&e.value, &e.key)?;
                }
                writeln!(out, "{line}").map_err(|source| eddy_host::savepoint::SavepointError::Io {
                    path: "stdout".into(),
                    source,
                })
            },
        )?;
    }
    out.flush()?;
    Ok(())
}

fn inspect_module(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    // Without a job there is no state folder to keep compiled modules beside: only the
    // shared cache, when one is named, spares the next inspection the compile.
    let runtime = Runtime::new(std::env::var_os(MODULE_CACHE_ENV).map(PathBuf::from))?;
    let m = runtime.load(path)?;
    if json {
        let v = serde_json::json!({
            "path": m.path,
            "sha256": m.sha256,
            "size": m.size,
            "name": m.info.name,
            "version": m.info.version,
            "states": &m.info.states[..m.info.guest_states],
            "host-states": &m.info.states[m.info.guest_states..],
            "operator-states": m.info.operator_states,
            "world": m.world,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("module   {}", m.path.display());
    println!("sha256   {}", m.sha256);
    println!("size     {} bytes", m.size);
    println!("operator {} {}", m.info.name, m.info.version);
    println!("states   {}", m.info.guest_states);
    for (h, s) in m.info.states.iter().enumerate() {
        let host = if h >= m.info.guest_states {
            ", kept by the host"
        } else {
            ""
        };
        let ttl = s
            .ttl
            .map(|t| {
                let update = match t.update {
                    eddy_host::state::TtlUpdate::OnCreateAndWrite => "on create and write",
                    eddy_host::state::TtlUpdate::OnReadAndWrite => "on read and write",
                };
                format!(", ttl {} ms renewed {update}", t.ttl_ms)
            })
            .unwrap_or_default();
        let codec = s
            .codec
            .as_deref()
            .map(|c| format!(", codec {c}"))
            .unwrap_or_default();
        println!(
            "  [{h}] {} ({} state, schema v{}{codec}{ttl}{host})",
            s.name, s.kind, s.schema_version
        );
    }
    if !m.info.operator_states.is_empty() {
        println!("operator states {}", m.info.operator_states.len());
        for (h, s) in m.info.operator_states.iter().enumerate() {
            let how = s.redistribution;
            let codec = s
                .codec
                .as_deref()
                .map(|c| format!(", codec {c}"))
                .unwrap_or_default();
            println!(
                "  [{h}] {} (list, {how}, schema v{}{codec})",
                s.name, s.schema_version
            );
        }
    }
    println!("world");
    for w in &m.world {
        println!("  {w}");
    }
    Ok(())
}
