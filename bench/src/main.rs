//! `eddy-bench`: the keyed-count benchmark of docs/benchmarks.md.
//!
//! Workload (the same as the Flink baseline's): record i is the word `"w" + (i * 7919 % K)`,
//! generated at run time; a keyed count in value state; one (word, count) output per record
//! into a discarding sink; state and positions made durable in RocksDB every second.
//!
//! Three ways, each in its own child process (so that peak RSS is per variant), in one run:
//! - `native`: a Rust operator calling the host's state layer directly, with the same
//!   source thread, worker thread, cache and checkpoints as a job;
//! - `wasm-per-record`: the word-count component through `eddy`'s job loop, one record per
//!   `process` call;
//! - `wasm-batched`: the same with the job's default batch size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use eddy_host::checkpoint::{self, CheckpointRecord};
use eddy_host::config::{JobConfig, defaults};
use eddy_host::io::key::KeyExtractor;
use eddy_host::io::{SourceRecord, source};
use eddy_host::job::{Job, RunOptions};
use eddy_host::runtime::Runtime;
use eddy_host::state::{Descriptor, KeyedState, StateDb, StateKind};

#[derive(Parser)]
#[command(about = "Keyed-count benchmark: native vs Wasm per-record vs Wasm batched")]
struct Args {
    /// Records per run.
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Distinct keys; several values run in turn (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    keys: Vec<u64>,
    /// Variants to run (comma-separated): native, wasm-per-record, wasm-batched, and on
    /// event time (generator timestamps 1 ms apart) wasm-window (a tumbling one-minute
    /// count per key) and wasm-timers (one event-time timer registered and fired per
    /// record). Ratios are to the first variant of the list.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "native,wasm-per-record,wasm-batched"
    )]
    variants: Vec<String>,
    /// Records for the per-record variant (it is slow; its rate is steady well before 10M).
    #[arg(long, default_value_t = 2_000_000)]
    per_record_records: u64,
    /// The word-count component (built by scripts/build-operators.sh).
    #[arg(long, default_value = "target/operators/word_count.wasm")]
    module: PathBuf,
    /// Instead of the keyed-count variants: the NATS pipeline benchmark (raw client vs eddy
    /// on the same input stream, alternated, `--rounds` each).
    #[arg(long)]
    nats: bool,
    /// Instead of the keyed-count variants: recovery time. For each `--keys` K, `eddy run`
    /// builds state with K keys (K records) and is aborted right after its last checkpoint;
    /// a second `eddy run` then has one record left to process, and is timed.
    #[arg(long)]
    recovery: bool,
    /// Instead of the keyed-count variants: hot-swap pauses. A word count over a generator
    /// (the first `--keys` value, 2 workers) swaps between `--module` and `--swap-module`
    /// this many times under load; prints the pause p50/p99/max and the throughput.
    #[arg(long)]
    swap: Option<u32>,
    /// Instead of the keyed-count variants: savepoint write and restore throughput at each
    /// `--keys` K (state built by the native keyed count over K records), next to a raw
    /// RocksDB scan of the same state.
    #[arg(long)]
    savepoint: bool,
    /// Milliseconds of load before each swap of --swap (a schema-changing swap migrates
    /// every key seen so far: give it time to see them all).
    #[arg(long, default_value_t = 300)]
    swap_after: u64,
    /// The module swapped in and out with `--module` for --swap.
    #[arg(long, default_value = "target/operators/word_count_v2.wasm")]
    swap_module: PathBuf,
    /// Instead of the keyed-count variants: word count in every SDK language, one run:
    /// component size, first compile, cached load and instantiation times, and ns/record of
    /// the batched job (`--records`, the first `--keys` value) next to the Rust component.
    /// Takes `LANGUAGE=MODULE` pairs (comma-separated); the first is the reference.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_missing_value = "rust=target/operators/word_count.wasm,c=target/operators/word_count_c.wasm,python=target/operators/word_count_py.wasm,js=target/operators/word_count_js.wasm"
    )]
    languages: Option<Vec<String>>,
    /// Rounds of each side for --nats.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Internal: run one variant in this process and print its result as JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Figures {
    variant: String,
    keys: u64,
    records: u64,
    seconds: f64,
    checkpoints: u64,
    peak_rss_mib: f64,
    outputs: u64,
    /// Timers fired.
    #[serde(default)]
    timers: u64,
    /// Checkpoint duration (barrier to durable) p50 / p99 / max, ms; empty for `native`.
    checkpoint_ms: Vec<f64>,
    /// Processing pause per checkpoint p50 / p99 / max, ms; empty for `native`.
    pause_ms: Vec<f64>,
}

/// p50, p99 and max of `d`, in ms (empty when `d` is).
fn percentiles(d: &[Duration]) -> Vec<f64> {
    if d.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<f64> = d.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    vec![at(0.5), at(0.99), v[v.len() - 1]]
}

fn fmt_ms(p: &[f64]) -> String {
    match p {
        [a, b, c] => format!("{a:.0}/{b:.0}/{c:.0}"),
        _ => "-".into(),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(variant) = &args.child {
        let keys = args.keys[0];
        let records = if variant == "wasm-per-record" {
            args.per_record_records
        } else {
            args.records
        };
        let f = run_variant(variant, records, keys, &args.module)?;
        println!("{}", serde_json::to_string(&f)?);
        return Ok(());
    }
    if args.nats {
        return nats_bench(&args);
    }
    if args.recovery {
        return recovery_bench(&args);
    }
    if let Some(n) = args.swap {
        return swap_bench(&args, n);
    }
    if args.savepoint {
        return savepoint_bench(&args);
    }
    if let Some(languages) = &args.languages {
        return languages_bench(&args, languages);
    }
    let exe = std::env::current_exe()?;
    println!(
        "keyed count, checkpoints every {:?}, discarding sink; {} records ({} for per-record)",
        defaults::CHECKPOINT_INTERVAL,
        args.records,
        args.per_record_records
    );
    println!(
        "{:>9} {:<16} {:>12} {:>10} {:>9} {:>12} {:>6} {:>16} {:>12}",
        "keys",
        "variant",
        "records/s",
        "ns/record",
        "vs first",
        "peak RSS MiB",
        "ckpts",
        "ckpt ms p50/99/max",
        "pause ms p50/99/max"
    );
    for &keys in &args.keys {
        let mut native_ns = None;
        for v in &args.variants {
            let out = Command::new(&exe)
                .args(["--child", v, "--keys", &keys.to_string()])
                .args(["--records", &args.records.to_string()])
                .args(["--per-record-records", &args.per_record_records.to_string()])
                .arg("--module")
                .arg(&args.module)
                .output()
                .context("cannot run the benchmark child")?;
            if !out.status.success() {
                bail!(
                    "variant {v} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let f: Figures = serde_json::from_slice(&out.stdout)?;
            let (expected, what) = match v.as_str() {
                // One timer per record, each fired once.
                "wasm-timers" => (f.timers, "timers fired"),
                // One result per key and minute window (records are 1 ms apart).
                "wasm-window" => (f.records, "records"),
                _ => (f.outputs, "outputs"),
            };
            if expected != f.records {
                bail!("variant {v}: {expected} {what} for {} records", f.records);
            }
            let ns = f.seconds * 1e9 / f.records as f64;
            if native_ns.is_none() {
                native_ns = Some(ns);
            }
            let ratio = native_ns
                .map(|n| format!("{:.2}x", ns / n))
                .unwrap_or_default();
            println!(
                "{:>9} {:<16} {:>12.0} {:>10.1} {:>9} {:>12.1} {:>6} {:>18} {:>19}",
                keys,
                v,
                f.records as f64 / f.seconds,
                ns,
                ratio,
                f.peak_rss_mib,
                f.checkpoints,
                fmt_ms(&f.checkpoint_ms),
                fmt_ms(&f.pause_ms)
            );
        }
    }
    Ok(())
}

/// The figures of `--languages`: per component, its size, what loading it costs, and its
/// batched word-count rate (in a child process, as the other variants).
fn languages_bench(args: &Args, languages: &[String]) -> Result<()> {
    use eddy_host::config::Limits;
    use eddy_host::runtime::NoState;
    let keys = args.keys[0];
    println!(
        "word count per language: {} records, {keys} keys, batched; instantiation: median of 20",
        args.records
    );
    println!(
        "{:<8} {:>10} {:>12} {:>12} {:>14} {:>12} {:>10} {:>9}",
        "language",
        "size KiB",
        "compile ms",
        "cached ms",
        "instantiate µs",
        "records/s",
        "ns/record",
        "vs first"
    );
    let exe = std::env::current_exe()?;
    let mut first_ns = None;
    for pair in languages {
        let Some((language, module)) = pair.split_once('=') else {
            bail!("--languages {pair}: give LANGUAGE=MODULE");
        };
        let module = Path::new(module);
        let size = std::fs::metadata(module)
            .with_context(|| format!("{} (run scripts/build-operators.sh)", module.display()))?
            .len();
        // First compile into an empty cache, then a load from it.
        let cache = tempfile::tempdir()?;
        let runtime = Runtime::new(Some(cache.path().to_path_buf()))?;
        let started = Instant::now();
        runtime.load(module)?;
        let compile = started.elapsed();
        let started = Instant::now();
        let loaded = runtime.load(module)?;
        let cached = started.elapsed();
        let prepared = runtime.prepare::<NoState>(&loaded, Limits::default())?;
        let mut instantiations: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                let instance = prepared.instantiate(NoState);
                let took = started.elapsed();
                instance.map(|_| took)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{language}: cannot instantiate: {e}"))?;
        instantiations.sort();
        let out = Command::new(&exe)
            .args(["--child", "wasm-batched", "--keys", &keys.to_string()])
            .args(["--records", &args.records.to_string()])
            .arg("--module")
            .arg(module)
            .output()
            .context("cannot run the benchmark child")?;
        if !out.status.success() {
            bail!(
                "{language} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let f: Figures = serde_json::from_slice(&out.stdout)?;
        if f.outputs != f.records {
            bail!(
                "{language}: {} outputs for {} records",
                f.outputs,
                f.records
            );
        }
        let ns = f.seconds * 1e9 / f.records as f64;
        let first = *first_ns.get_or_insert(ns);
        println!(
            "{:<8} {:>10.0} {:>12.0} {:>12.1} {:>14.0} {:>12.0} {:>10.0} {:>8.2}x",
            language,
            size as f64 / 1024.0,
            compile.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            instantiations[instantiations.len() / 2].as_secs_f64() * 1e6,
            f.records as f64 / f.seconds,
            ns,
            ns / first
        );
    }
    Ok(())
}

fn run_variant(variant: &str, records: u64, keys: u64, module: &Path) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let batch = defaults::BATCH_SIZE;
    let windows = Path::new("target/operators/window_count.wasm");
    let (seconds, checkpoints, outputs, timers, checkpoint_ms, pause_ms) = match variant {
        "native" => {
            let (s, c, o) = native(dir.path(), records, keys)?;
            (s, c, o, 0, Vec::new(), Vec::new())
        }
        "wasm-per-record" => wasm(dir.path(), records, keys, module, 1, "{}")?,
        "wasm-batched" => wasm(dir.path(), records, keys, module, batch, "{}")?,
        "wasm-window" => wasm(dir.path(), records, keys, windows, batch, "{}")?,
        "wasm-timers" => wasm(
            dir.path(),
            records,
            keys,
            Path::new("target/operators/timer_count.wasm"),
            batch,
            "{}",
        )?,
        other => bail!("unknown variant {other}"),
    };
    Ok(Figures {
        variant: variant.into(),
        keys,
        records,
        seconds,
        checkpoints,
        peak_rss_mib: peak_rss_mib(),
        outputs,
        timers,
        checkpoint_ms,
        pause_ms,
    })
}

type WasmFigures = (f64, u64, u64, u64, Vec<f64>, Vec<f64>);

fn wasm(
    dir: &Path,
    records: u64,
    keys: u64,
    module: &Path,
    batch: u32,
    config: &str,
) -> Result<WasmFigures> {
    let module = std::fs::canonicalize(module)
        .with_context(|| format!("{} (run scripts/build-operators.sh)", module.display()))?;
    let job = format!(
        r#"name = "bench"
[operator]
uid = "word-count"
module = "{}"
batch-size = {batch}
config = {config}
[source]
type = "generator"
count = {records}
keys = {keys}
[sink]
type = "discard"
[state]
dir = "state"
"#,
        module.display()
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, job)?;
    let cfg = JobConfig::load(&path)?;
    let runtime = Arc::new(Runtime::new(Some(dir.join("cache")))?);
    let job = Job::open(cfg, runtime)?;
    let report = job.run(&RunOptions::default())?;
    if report.records_in != records {
        bail!("processed {} of {records} records", report.records_in);
    }
    Ok((
        report.elapsed.as_secs_f64(),
        report.checkpoints,
        report.records_out,
        report.timers_fired,
        percentiles(&report.checkpoint_durations),
        percentiles(&report.checkpoint_pauses),
    ))
}

/// The native operator: the same generator thread, channel, worker thread, state cache and
/// checkpoint commits as a job; the count itself is plain Rust.
fn native(dir: &Path, records: u64, keys: u64) -> Result<(f64, u64, u64)> {
    let db = Arc::new(StateDb::open(&dir.join("state"), defaults::MAX_KEY_GROUPS)?);
    let reg = db.register("word-count", &[count_descriptor()])?;
    let mut state = KeyedState::new(db.clone(), reg, defaults::CACHE_MIB as usize * 1024 * 1024);
    let cfg = eddy_host::config::SourceConfig::Generator {
        count: records,
        keys,
    };
    let mut src = source::open(&cfg, KeyExtractor::new(Default::default()), 0, None)?;
    let batch = defaults::BATCH_SIZE as usize;
    let (tx, rx) = mpsc::sync_channel::<Vec<SourceRecord>>(4);
    let started = Instant::now();
    let producer = std::thread::spawn(move || {
        loop {
            let mut buf = Vec::with_capacity(batch);
            let more = src.poll(&mut buf, batch).unwrap();
            if !buf.is_empty() && tx.send(buf).is_err() {
                break;
            }
            if !more {
                break;
            }
        }
    });
    let mut outputs = 0u64;
    let mut emitted: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(batch);
    let mut last_cp = Instant::now();
    let mut checkpoints = 0;
    let mut position = 0;
    // As in a job: drain on the worker, commit on another thread, one commit in flight,
    // evict only once it is durable.
    type Commit = std::thread::JoinHandle<Result<(), checkpoint::CheckpointError>>;
    let mut in_flight: Option<Commit> = None;
    let start_commit = |state: &mut KeyedState, position: u64, id: u64| -> Commit {
        let mut ops = Vec::new();
        state.drain_dirty(&mut ops);
        let db = db.clone();
        std::thread::spawn(move || {
            checkpoint::commit(
                &db,
                ops,
                &CheckpointRecord {
                    format: checkpoint::CHECKPOINT_FORMAT,
                    id,
                    job: "bench".into(),
                    operator_uid: "word-count".into(),
                    module_sha256: "native".into(),
                    states: vec![count_descriptor()],
                    operator_states: Vec::new(),
                    positions: [("generator".to_string(), position)].into(),
                    created_at_ms: checkpoint::now_ms(),
                    modules: Vec::new(),
                    max_timestamps: Default::default(),
                    watermark: None,
                },
            )
        })
    };
    for batch in rx {
        for r in &batch {
            let n = state.value_with(0, &r.key, |v| {
                v.map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            })? + 1;
            state.value_put(0, &r.key, Some(&n.to_le_bytes()))?;
            emitted.push((r.key.clone(), n.to_string().into_bytes()));
            position = r.position;
        }
        outputs += emitted.len() as u64;
        emitted.clear();
        if in_flight.as_ref().is_some_and(|h| h.is_finished()) {
            in_flight.take().unwrap().join().unwrap()?;
            if state.over_budget() {
                state.evict_clean();
            }
        }
        if in_flight.is_none() && last_cp.elapsed() >= Duration::from_secs(1) {
            checkpoints += 1;
            in_flight = Some(start_commit(&mut state, position, checkpoints));
            last_cp = Instant::now();
        }
    }
    if let Some(h) = in_flight.take() {
        h.join().unwrap()?;
    }
    checkpoints += 1;
    start_commit(&mut state, position, checkpoints)
        .join()
        .unwrap()?;
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("generator thread panicked"))?;
    Ok((started.elapsed().as_secs_f64(), checkpoints, outputs))
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Recovery time: state with K keys, an abort right after the last checkpoint, and a
/// timed restart of the `eddy` binary with one record left to process.
fn recovery_bench(args: &Args) -> Result<()> {
    let eddy = std::env::current_exe()?.with_file_name("eddy");
    let module = std::fs::canonicalize(&args.module)
        .with_context(|| format!("{} (run scripts/build-operators.sh)", args.module.display()))?;
    println!(
        "recovery: `eddy run` aborted (as kill -9) right after its last checkpoint, then a restart with one record left, timed as a whole process"
    );
    println!(
        "{:>9} {:>12} {:>12} {:>14}",
        "keys", "build s", "state MiB", "restart s"
    );
    for &keys in &args.keys {
        let dir = tempfile::tempdir()?;
        let job = |count: u64| {
            format!(
                "name = \"recovery\"\n[operator]\nuid = \"word-count\"\nmodule = \"{}\"\n[source]\ntype = \"generator\"\ncount = {count}\nkeys = {keys}\n[sink]\ntype = \"discard\"\n[state]\ndir = \"state\"\n",
                module.display()
            )
        };
        let path = dir.path().join("job.toml");
        std::fs::write(&path, job(keys))?;
        let t = Instant::now();
        let first = Command::new(&eddy)
            .arg("run")
            .arg(&path)
            .env("EDDY_FAULT", "after-last-commit:1")
            .output()
            .with_context(|| format!("cannot run {}", eddy.display()))?;
        let build = t.elapsed();
        if first.status.success() || first.status.code().is_some() {
            bail!(
                "the first run was to abort after its last checkpoint: {}",
                String::from_utf8_lossy(&first.stderr)
            );
        }
        let size = dir_size(&dir.path().join("state")) as f64 / (1024.0 * 1024.0);
        std::fs::write(&path, job(keys + 1))?;
        let t = Instant::now();
        let second = Command::new(&eddy).arg("run").arg(&path).output()?;
        let restart = t.elapsed();
        let err = String::from_utf8_lossy(&second.stderr);
        if !second.status.success() || !err.contains(": 1 records in") {
            bail!("the restart was to process one record: {err}");
        }
        println!(
            "{:>9} {:>12.1} {:>12.0} {:>14.3}",
            keys,
            build.as_secs_f64(),
            size,
            restart.as_secs_f64()
        );
    }
    Ok(())
}

/// The word count's state.
fn count_descriptor() -> Descriptor {
    Descriptor {
        name: "count".into(),
        kind: StateKind::Value,
        schema_version: 1,
        ttl: None,
        codec: None,
    }
}

/// Savepoint write / raw scan / restore at each `--keys` (see `--savepoint`).
fn savepoint_bench(args: &Args) -> Result<()> {
    use eddy_host::savepoint::{self, RestoreTarget};
    println!(
        "{:>10} {:>10} {:>22} {:>22} {:>22}",
        "keys", "MB", "raw scan entries/s", "write entries/s MB/s", "restore entries/s MB/s"
    );
    for &keys in &args.keys {
        let dir = tempfile::tempdir()?;
        native(dir.path(), keys, keys)?;
        let db = StateDb::open(&dir.path().join("state"), defaults::MAX_KEY_GROUPS)?;
        let t = Instant::now();
        let (mut n, mut raw_bytes) = (0u64, 0u64);
        db.scan_prefix(&[1], &[1], |k, v| {
            n += 1;
            raw_bytes += (k.len() + v.len()) as u64;
            true
        })?;
        let scan = t.elapsed().as_secs_f64();
        if n != keys {
            bail!("the scan saw {n} entries for {keys} keys");
        }
        let sp = dir.path().join("sp");
        let t = Instant::now();
        let (manifest, written) = savepoint::write(&db, &sp)?;
        let write = t.elapsed().as_secs_f64();
        drop(db);
        let states = manifest.operators[0]
            .states
            .iter()
            .map(|s| s.descriptor.clone())
            .collect::<Vec<_>>();
        let target = RestoreTarget {
            job: "bench",
            uid: "word-count",
            module_sha256: "native",
            states: &states,
            operator_states: &[],
            max_key_groups: defaults::MAX_KEY_GROUPS,
            allow_non_restored: false,
        };
        let t = Instant::now();
        let (_, restored) = savepoint::restore(
            &sp,
            &dir.path().join("restored"),
            &target,
            &mut |_, _, _| Err("no migration in this benchmark".into()),
        )?;
        let restore = t.elapsed().as_secs_f64();
        if written.entries != keys || restored.entries != keys {
            bail!(
                "{keys} keys: {} written, {} restored",
                written.entries,
                restored.entries
            );
        }
        let mb = written.bytes as f64 / 1e6;
        println!(
            "{:>10} {:>10.1} {:>22.0} {:>13.0} {:>8.1} {:>13.0} {:>8.1}",
            keys,
            mb,
            n as f64 / scan,
            keys as f64 / write,
            mb / write,
            keys as f64 / restore,
            mb / restore
        );
    }
    Ok(())
}

/// Swaps the module of a running word count `n` times (see `--swap`).
fn swap_bench(args: &Args, n: u32) -> Result<()> {
    use eddy_host::admin::{Control, SwapModule, SwapOutcome};
    let keys = args.keys[0];
    let dir = tempfile::tempdir()?;
    let modules = [
        std::fs::canonicalize(&args.module)?,
        std::fs::canonicalize(&args.swap_module).with_context(|| {
            format!(
                "{} (run scripts/build-operators.sh)",
                args.swap_module.display()
            )
        })?,
    ];
    let job = format!(
        r#"name = "bench"
[operator]
uid = "word-count"
module = "{}"
parallelism = 2
[source]
type = "generator"
count = 1000000000000
keys = {keys}
[sink]
type = "discard"
[state]
dir = "state"
"#,
        modules[0].display()
    );
    let path = dir.path().join("job.toml");
    std::fs::write(&path, job)?;
    let cfg = JobConfig::load(&path)?;
    let runtime = Arc::new(Runtime::new(Some(dir.path().join("cache")))?);
    let job = Job::open(cfg, runtime)?;
    let control = job.control();
    let stats = job.stats();
    let opts = RunOptions::default();
    let stop = opts.stop.clone();
    let running = std::thread::spawn(move || job.run(&opts));
    let mut pauses = Vec::new();
    let started = Instant::now();
    let in_at_start = stats.records_in.load(std::sync::atomic::Ordering::Relaxed);
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(args.swap_after));
        let to = &modules[(i as usize + 1) % 2];
        match control.swap(SwapModule::Path(to.clone()), Some("eddy-bench".into())) {
            SwapOutcome::Swapped { pause_ms, .. } => {
                pauses.push(Duration::from_secs_f64(pause_ms / 1e3))
            }
            SwapOutcome::Refused { reason } => bail!("swap {i} refused: {reason}"),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let records = stats.records_in.load(std::sync::atomic::Ordering::Relaxed) - in_at_start;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = running
        .join()
        .map_err(|_| anyhow::anyhow!("the job panicked"))??;
    let rollbacks = stats.rollbacks.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "hot swap under load: {n} swaps between {} and {}, {keys} keys, 2 workers",
        args.module.display(),
        args.swap_module.display()
    );
    if report.swap_pauses.len() != pauses.len() {
        bail!(
            "{} swaps answered, {} in the report",
            pauses.len(),
            report.swap_pauses.len()
        );
    }
    println!(
        "swap pause (longest worker stop) ms p50/p99/max: {}",
        fmt_ms3(&percentiles(&pauses))
    );
    println!(
        "routing stopped ms p50/p99/max: at the swap {}, at the end of probation {}",
        fmt_ms3(&percentiles(&report.swap_routing_stops)),
        fmt_ms3(&percentiles(&report.probation_end_pauses)),
    );
    println!(
        "{rollbacks} rollbacks; {:.0} records/s over the swaps; checkpoint pause ms p50/p99/max {}",
        records as f64 / seconds,
        fmt_ms3(&percentiles(&report.checkpoint_pauses)),
    );
    Ok(())
}

fn fmt_ms3(p: &[f64]) -> String {
    match p {
        [a, b, c] => format!("{a:.2}/{b:.2}/{c:.2}"),
        _ => "-".into(),
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Raw NATS pipeline vs eddy's word count over the same JetStream input.
fn nats_bench(args: &Args) -> Result<()> {
    use eddy_host::io::nats::{LocalServer, NatsConn};
    let dir = tempfile::tempdir()?;
    let server = LocalServer::start(&dir.path().join("nats"))?;
    let conn = NatsConn::connect(server.url())?;
    let keys = args.keys[0];
    conn.ensure_stream("in", &["in".to_string()], Duration::from_secs(120))?;
    let t = Instant::now();
    conn.publish_all(
        "in",
        (0..args.records).map(|i| {
            (
                format!("i{i}"),
                format!("w{}", i * 7919 % keys).into_bytes(),
            )
        }),
    )?;
    println!(
        "NATS pipeline, {} records, {keys} keys (input published in {:.1?}); output: one message per input with Nats-Msg-Id",
        args.records,
        t.elapsed()
    );
    let module = std::fs::canonicalize(&args.module)?;
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        let raw = raw_pipeline(server.url(), args.records, &format!("raw{round}"))?;
        let report = run_nats_word_count(
            dir.path(),
            &format!("pipe{round}"),
            "in",
            "",
            server.url(),
            &module,
        )?;
        if report.records_out != args.records {
            bail!("eddy emitted {} of {}", report.records_out, args.records);
        }
        let eddy = args.records as f64 / report.elapsed.as_secs_f64();
        println!(
            "round {round}: raw {raw:>9.0} rec/s   eddy {eddy:>9.0} rec/s   eddy/raw {:.2}   checkpoints {} (max pause {:.1?})",
            eddy / raw,
            report.checkpoints,
            report.max_checkpoint_pause
        );
        ratios.push(eddy / raw);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median eddy/raw: {:.2}", ratios[ratios.len() / 2]);

    // Aggregating: one output per 1,000 inputs, against the raw consume rate.
    let agg_keys = (args.records / 1000).max(1);
    conn.ensure_stream("agg", &["agg".to_string()], Duration::from_secs(120))?;
    conn.publish_all(
        "agg",
        (0..args.records).map(|i| {
            (
                format!("a{i}"),
                format!("w{}", i * 7919 % agg_keys).into_bytes(),
            )
        }),
    )?;
    println!("aggregating: {agg_keys} keys, word count emitting every 1000th count of a word");
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        let raw = raw_consume(server.url(), "agg", args.records)?;
        let report = run_nats_word_count(
            dir.path(),
            &format!("agg{round}"),
            "agg",
            "config = { emit-every = 1000 }",
            server.url(),
            &module,
        )?;
        if report.records_in != args.records {
            bail!("eddy processed {} of {}", report.records_in, args.records);
        }
        let eddy = args.records as f64 / report.elapsed.as_secs_f64();
        println!(
            "round {round}: raw consume {raw:>9.0} rec/s   eddy {eddy:>9.0} rec/s   eddy/raw {:.2}   outputs {}",
            eddy / raw,
            report.records_out
        );
        ratios.push(eddy / raw);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median eddy/raw (aggregating): {:.2}",
        ratios[ratios.len() / 2]
    );
    Ok(())
}

/// Runs the word-count component over NATS stream `input` (bounded) into subject `name`,
/// with state in `dir/name`, checkpoints every second; `config` is an `[operator]` line.
fn run_nats_word_count(
    dir: &Path,
    name: &str,
    input: &str,
    config: &str,
    url: &str,
    module: &Path,
) -> Result<eddy_host::job::JobReport> {
    let job = dir.join(format!("{name}.toml"));
    std::fs::write(
        &job,
        format!(
            r#"name = "bench-{name}"
[operator]
uid = "word-count"
module = "{}"
{config}
[source]
type = "nats"
stream = "{input}"
bounded = true
[key]
from = "value"
[sink]
type = "nats"
subject = "{name}-out"
[nats]
url = "{url}"
[state]
dir = "{name}-state"
"#,
            module.display()
        ),
    )?;
    let cfg = JobConfig::load(&job)?;
    let runtime = Arc::new(Runtime::new(Some(dir.join("cache")))?);
    Ok(Job::open(cfg, runtime)?.run(&RunOptions::default())?)
}

/// Consumes a whole stream (continuous pull, 4096 per request, no acks) and does nothing
/// else.
fn raw_consume(url: &str, stream: &str, records: u64) -> Result<f64> {
    use async_nats::jetstream::{self, consumer};
    use futures_util::StreamExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await?);
        let c = js
            .get_stream(stream)
            .await?
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await?;
        let t = Instant::now();
        let mut messages = c.stream().max_messages_per_batch(4096).messages().await?;
        let mut n = 0u64;
        while n < records {
            let Some(m) = messages.next().await else {
                bail!("the pull ended after {n} messages");
            };
            let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
            let _seq = m
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            n += 1;
        }
        Ok(records as f64 / t.elapsed().as_secs_f64())
    })
}

/// Consumes stream "in" from the start and publishes one output per input, pipelined, with
/// a message id, waiting for every ack: the most a client can do on this server.
fn raw_pipeline(url: &str, records: u64, out_subject: &str) -> Result<f64> {
    use async_nats::jetstream::{self, consumer, stream};
    use futures_util::StreamExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = async_nats::connect(url).await?;
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(8192)
            .build(client);
        js.get_or_create_stream(stream::Config {
            name: out_subject.to_string(),
            subjects: vec![out_subject.to_string()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
        let input = js.get_stream("in").await?;
        let c = input
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await?;
        let t = Instant::now();
        let mut pending = std::collections::VecDeque::new();
        let mut messages = c.stream().max_messages_per_batch(4096).messages().await?;
        let mut n = 0u64;
        while n < records {
            let Some(m) = messages.next().await else {
                bail!("the pull ended after {n} messages");
            };
            let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
            let seq = m
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            let mut h = async_nats::HeaderMap::new();
            h.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("raw/{seq}/0").as_str(),
            );
            let f = js
                .publish_with_headers(out_subject.to_string(), h, m.payload.clone())
                .await?;
            pending.push_back(f);
            if pending.len() >= 4096
                && let Some(f) = pending.pop_front()
            {
                f.await?;
            }
            n += 1;
        }
        for f in pending {
            f.await?;
        }
        Ok(records as f64 / t.elapsed().as_secs_f64())
    })
}
