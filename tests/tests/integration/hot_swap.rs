//! Guards hot swap (real nats-server, RocksDB, components built from source, the `eddy`
//! binary and its admin API): a module swapped in while a producer publishes takes over at
//! one record, with every input's output exactly once and every count exact; a module that
//! traps on probation is rolled back with nothing of it left in the output; an
//! incompatible module is refused before anything changes; a `kill -9` around a swap
//! restarts consistently with the last completed checkpoint, and a restart after a
//! completed swap runs the swapped-in module; a swap that changes a state's schema
//! migrates it at the barrier, and one whose `migrate` cannot is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eddy_host::io::nats::{LocalServer, NatsConn};
use eddy_tests::{KillOnDrop, eddy, eddy_run, free_port, http_get, operator};

pub(super) const RECORDS: u64 = 20_000;
const KEYS: u64 = 100;

/// A job reading NATS stream `words` (continuously fed) and writing `counts`, with an
/// admin API; also used by the savepoint tests.
pub(super) struct Swapping {
    pub(super) dir: tempfile::TempDir,
    _server: LocalServer,
    conn: Arc<NatsConn>,
    pub(super) port: u16,
}

impl Swapping {
    pub(super) fn new(parallelism: u32) -> Swapping {
        Swapping::with(&format!("parallelism = {parallelism}"))
    }

    /// A job with these `[operator]` settings besides uid and module.
    pub(super) fn with(operator_settings: &str) -> Swapping {
        Swapping::running("word_count", operator_settings)
    }

    /// A job running operator `module` (by crate name), with these `[operator]` settings.
    pub(super) fn running(module: &str, operator_settings: &str) -> Swapping {
        let dir = tempfile::tempdir().unwrap();
        let server = LocalServer::start(&dir.path().join("nats")).unwrap();
        let conn = NatsConn::connect(server.url()).unwrap();
        conn.ensure_stream("words", &["words".to_string()], Duration::from_secs(120))
            .unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("job.toml"),
            format!(
                r#"name = "swap-test"
[operator]
uid = "word-count"
module = "{module}"
{operator_settings}
[source]
type = "nats"
stream = "words"
[key]
from = "value"
[sink]
type = "nats"
subject = "counts"
[nats]
url = "{url}"
[state]
dir = "state"
checkpoint-interval = "200ms"
[admin]
listen = "127.0.0.1:{port}"
"#,
                module = operator(module).display(),
                url = server.url(),
            ),
        )
        .unwrap();
        Swapping {
            dir,
            _server: server,
            conn,
            port,
        }
    }

    pub(super) fn job_file(&self) -> PathBuf {
        self.dir.path().join("job.toml")
    }

    pub(super) fn start(&self, fault: Option<&str>) -> KillOnDrop {
        self.start_job(&self.job_file(), fault, &[])
    }

    /// `eddy run JOB ARGS…`, once its admin API answers.
    pub(super) fn start_job(&self, job: &Path, fault: Option<&str>, args: &[&str]) -> KillOnDrop {
        let mut cmd = eddy_run(job, self.dir.path());
        cmd.args(args);
        if let Some(f) = fault {
            cmd.env("EDDY_FAULT", f);
        }
        let mut child = KillOnDrop(cmd.spawn().unwrap());
        self.wait_for("the admin API", || {
            if let Ok(Some(status)) = child.0.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("eddy run stopped ({status}) before its admin API answered: {err}");
            }
            http_get(self.port, "/jobs").is_some()
        });
        child
    }

    /// Publishes inputs `from..to` in chunks, with pauses: a continuous load.
    pub(super) fn produce(&self, from: u64, to: u64) {
        let mut i = from;
        while i < to {
            let end = (i + 500).min(to);
            self.publish(i, end);
            i = end;
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn publish(&self, from: u64, to: u64) {
        self.conn
            .publish_all(
                "words",
                (from..to).map(|i| {
                    (
                        format!("in-{i}"),
                        format!("w{}", i * 7919 % KEYS).into_bytes(),
                    )
                }),
            )
            .unwrap();
    }

    /// Runs `during` (a swap, a savepoint) while a producer publishes inputs from 0 on, at
    /// ~10,000/s; the producer holds the last `KEEP_BACK` inputs until `during` returns, so
    /// that they follow it, then publishes the rest up to `to`.
    pub(super) fn under_load<R>(&self, to: u64, during: impl FnOnce() -> R) -> R {
        const KEEP_BACK: u64 = 2000;
        /// Lets the producer go on even when `during` panics.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut i = 0;
                while i < to - KEEP_BACK && !done.load(Ordering::Relaxed) {
                    let end = (i + 100).min(to - KEEP_BACK);
                    self.publish(i, end);
                    i = end;
                    std::thread::sleep(Duration::from_millis(10));
                }
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                self.produce(i, to);
            });
            let _done = Done(&done);
            during()
        })
    }

    fn outputs(&self) -> Vec<eddy_host::io::nats::StoredMessage> {
        self.conn.read_stream("counts").unwrap_or_default()
    }

    /// How many outputs the stream holds.
    pub(super) fn out_count(&self) -> u64 {
        self.conn.last_sequence("counts").unwrap_or(0)
    }

    pub(super) fn wait_for(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(super) fn jobs(&self) -> serde_json::Value {
        let (code, body) = http_get(self.port, "/jobs").unwrap();
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn swap(&self, module: &Path) -> (bool, String, String) {
        eddy(
            &[
                "swap",
                "--job",
                &format!("http://127.0.0.1:{}", self.port),
                "--operator",
                "word-count",
                "--module",
                module.to_str().unwrap(),
                "--requested-by",
                "hot-swap test",
            ],
            self.dir.path(),
        )
    }

    /// Every input's output exactly once, with the exact count, in v1 shape (`"3"`) or v2
    /// shape (`{"count":3,"v":2,"word":"w7"}`); returns the sequences answered by v2.
    pub(super) fn assert_exact(&self) -> Vec<u64> {
        let out = self.outputs();
        let mut seen = std::collections::HashSet::new();
        let mut v2 = Vec::new();
        for m in &out {
            let id = m.id.clone().unwrap();
            assert!(seen.insert(id.clone()), "output {id} twice");
            let seq: u64 = id.rsplit('/').nth(1).unwrap().parse().unwrap();
            assert!((1..=RECORDS).contains(&seq), "{id}: no such input");
            let i = seq - 1;
            let word = format!("w{}", i * 7919 % KEYS);
            let count = i / KEYS + 1;
            assert_eq!(m.key.as_deref(), Some(word.as_str()), "{id}");
            let text = String::from_utf8(m.payload.clone()).unwrap();
            if text == count.to_string() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{id}: {text} is neither v1 nor v2 of count {count}"));
            assert_eq!(
                v,
                serde_json::json!({"count": count, "v": 2, "word": word}),
                "{id}"
            );
            v2.push(seq);
        }
        assert_eq!(out.len() as u64, RECORDS, "one output per input");
        v2.sort_unstable();
        v2
    }
}

fn module_sha(path: &Path) -> String {
    let (ok, out, err) = eddy(
        &["inspect-module", path.to_str().unwrap(), "--json"],
        Path::new("."),
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["sha256"].as_str().unwrap().to_string()
}

#[test]
fn a_swap_under_load_takes_over_at_one_record_exactly_once() {
    let s = Swapping::new(2);
    let _job = s.start(None);
    s.under_load(RECORDS, || {
        s.wait_for("the first outputs", || s.out_count() > 3000);
        let (ok, out, err) = s.swap(&operator("word_count_v2"));
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("swapped operator `word-count`")
                && out.contains("version 2.0.0")
                && out.contains("at checkpoint"),
            "{out}"
        );
    });
    s.wait_for("every output", || s.out_count() >= RECORDS);
    let v2 = s.assert_exact();
    // One cut: every input before it answered by v1, every one after by v2.
    let first = *v2.first().expect("v2 answered some inputs");
    assert!(first > 3000 && first < RECORDS, "cut at {first}");
    assert_eq!(v2, (first..=RECORDS).collect::<Vec<_>>(), "a single cut");
    let op = &s.jobs()[0]["operators"][0];
    assert_eq!(op["module-sha256"], module_sha(&operator("word_count_v2")));
    assert_eq!(op["version"], "2.0.0");
    assert_eq!(op["swaps"], 1);
    assert_eq!(op["rollbacks"], 0);
    let history = op["module-history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["change"], "job-file");
    assert_eq!(history[1]["change"], "swap");
    assert_eq!(history[1]["requested-by"], "hot-swap test");
    let (_, metrics) = http_get(s.port, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"eddy_swaps_total{job="swap-test",operator="word-count"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"eddy_swap_pause_seconds_count{job="swap-test",operator="word-count"} 1"#),
        "{metrics}"
    );
}

#[test]
fn a_module_that_traps_on_probation_is_rolled_back_and_leaves_no_trace() {
    // Small batches: the module answers two batches before it traps in the third, so the
    // rollback has outputs to hold back.
    let s = Swapping::with("batch-size = 4");
    let _job = s.start(None);
    s.under_load(RECORDS, || {
        s.wait_for("the first outputs", || s.out_count() > 3000);
        // The swap itself succeeds; the rollback follows on the tenth record.
        let (ok, out, err) = s.swap(&operator("trap_on_tenth"));
        assert!(ok, "{out}{err}");
    });
    s.wait_for("every output", || s.out_count() >= RECORDS);
    let v2 = s.assert_exact();
    assert!(
        v2.is_empty(),
        "outputs of the rolled-back module escaped: {v2:?}"
    );
    s.wait_for("the rollback in /jobs", || {
        s.jobs()[0]["operators"][0]["rollbacks"] == 1
    });
    let op = &s.jobs()[0]["operators"][0];
    assert_eq!(op["module-sha256"], module_sha(&operator("word_count")));
    let problem = op["last-swap-problem"].as_str().unwrap();
    assert!(
        problem.contains("rolled back")
            && problem.contains("failed on probation")
            && problem.contains("operator trapped"),
        "{problem}"
    );
    let history = op["module-history"].as_array().unwrap();
    let changes: Vec<&str> = history
        .iter()
        .map(|h| h["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["job-file", "swap", "rollback"]);
    let (_, metrics) = http_get(s.port, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"eddy_swap_rollbacks_total{job="swap-test",operator="word-count"} 1"#),
        "{metrics}"
    );
}

#[test]
fn incompatible_or_broken_modules_are_refused_before_anything_changes() {
    let s = Swapping::new(1);
    let _job = s.start(None);
    s.produce(0, 2000);
    s.wait_for("the first outputs", || s.out_count() >= 2000);
    let (ok, out, err) = s.swap(&operator("count_as_map"));
    assert!(!ok, "{out}");
    assert!(
        err.contains("swap refused")
            && err.contains("state `count` as map state")
            && err.contains("stored as value state"),
        "{err}"
    );
    let junk = s.dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let (ok, _, err) = s.swap(&junk);
    assert!(!ok && err.contains("not a WebAssembly file"), "{err}");
    let (ok, _, err) = s.swap(&operator("word_count"));
    assert!(!ok && err.contains("is the one running already"), "{err}");
    let (ok, _, err) = eddy(
        &[
            "swap",
            "--job",
            &format!("http://127.0.0.1:{}", free_port()),
            "--operator",
            "word-count",
            "--module",
            operator("word_count_v2").to_str().unwrap(),
        ],
        s.dir.path(),
    );
    assert!(
        !ok && err.contains("cannot reach the job's admin API"),
        "{err}"
    );
    // The job goes on with its module, exactly.
    s.produce(2000, RECORDS);
    s.wait_for("every output", || s.out_count() >= RECORDS);
    assert!(s.assert_exact().is_empty());
    let op = &s.jobs()[0]["operators"][0];
    assert_eq!(op["swaps"], 0);
    assert_eq!(op["module-history"].as_array().unwrap().len(), 1);
    assert!(
        op["last-swap-problem"]
            .as_str()
            .unwrap()
            .starts_with("refused:")
    );
}

/// Swaps with the process set to abort at `fault`, restarts without it, and finishes the
/// input; returns the module the restarted job runs and the v2-answered sequences.
fn crash_around_a_swap(fault: &str) -> (String, Vec<u64>) {
    let s = Swapping::new(2);
    {
        let mut job = s.start(Some(fault));
        s.produce(0, 6000);
        s.wait_for("the first outputs", || s.out_count() >= 5000);
        // The process dies during or right after the swap: the CLI may or may not get
        // the answer.
        let _ = s.swap(&operator("word_count_v2"));
        s.produce(6000, 8000);
        s.wait_for("the injected abort", || {
            matches!(job.0.try_wait(), Ok(Some(_)))
        });
        let mut err = String::new();
        std::io::Read::read_to_string(&mut job.0.stderr.take().unwrap(), &mut err).unwrap();
        let point = fault.split(':').next().unwrap();
        assert!(
            err.contains(&format!("EDDY_FAULT: aborting at {point}")),
            "the job did not die at {point}: {err}"
        );
    }
    let _job = s.start(None);
    s.produce(8000, RECORDS);
    s.wait_for("every output", || s.out_count() >= RECORDS);
    let v2 = s.assert_exact();
    let running = s.jobs()[0]["operators"][0]["module-sha256"]
        .as_str()
        .unwrap()
        .to_string();
    (running, v2)
}

#[test]
fn kill_9_in_the_middle_of_a_swap_restarts_consistently() {
    let v1 = module_sha(&operator("word_count"));
    // Aborted right after the instances were replaced (on probation): nothing of v2 is
    // durable or out; the restart runs v1 from the rollback point.
    let (running, v2) = crash_around_a_swap("after-swap:1");
    assert_eq!(running, v1);
    assert!(v2.is_empty(), "{v2:?}");
    // Aborted right after probation released v2's held outputs (some may have reached the
    // stream, some not), before a checkpoint named v2: the restart runs v1 from the
    // rollback point; released outputs stand (a replay's are dropped by their ids) and
    // every count is exact either way (`assert_exact`).
    let (running, _) = crash_around_a_swap("after-release:1");
    assert_eq!(running, v1);
}

#[test]
fn a_restart_after_a_completed_swap_runs_the_swapped_in_module() {
    let s = Swapping::new(1);
    {
        let _job = s.start(None);
        s.produce(0, 5000);
        s.wait_for("the first outputs", || s.out_count() >= 5000);
        let (ok, out, err) = s.swap(&operator("word_count_v2"));
        assert!(ok, "{out}{err}");
        let swapped_at = swapped_at(&out);
        s.produce(5000, 7000);
        s.wait_for("a checkpoint naming the new module", || {
            s.jobs()[0]["last-checkpoint"]["id"].as_u64().unwrap_or(0) > swapped_at + 1
        });
        // kill -9 when the KillOnDrop ends.
    }
    let _job = s.start(None);
    s.produce(7000, RECORDS);
    s.wait_for("every output", || s.out_count() >= RECORDS);
    let v2 = s.assert_exact();
    assert_eq!(v2.last(), Some(&RECORDS));
    let op = &s.jobs()[0]["operators"][0];
    assert_eq!(op["module-sha256"], module_sha(&operator("word_count_v2")));
    let stored = op["module-history"][1]["path"].as_str().unwrap();
    assert!(
        stored.contains("/modules/") && Path::new(stored).exists(),
        "{stored}"
    );
}

/// The checkpoint a swap happened at, from `eddy swap`'s answer.
fn swapped_at(answer: &str) -> u64 {
    answer
        .split("at checkpoint ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_swap_that_changes_a_schema_migrates_the_state_at_the_barrier() {
    // v1 keeps each count in four little-endian bytes (schema 1), v2 in a struct (schema
    // 2) with a `migrate` from schema 1; both emit the count as text. Exact counts after
    // the swap prove that every value was migrated, in both workers' key groups.
    let s = Swapping::running("count_u32", "parallelism = 2");
    {
        let _job = s.start(None);
        let at = s.under_load(8000, || {
            s.wait_for("the first outputs", || s.out_count() > 3000);
            let (ok, out, err) = s.swap(&operator("count_struct"));
            assert!(ok, "{out}{err}");
            swapped_at(&out)
        });
        s.wait_for("a checkpoint with the migrated state", || {
            s.jobs()[0]["last-checkpoint"]["id"].as_u64().unwrap_or(0) > at + 1
        });
        let op = &s.jobs()[0]["operators"][0];
        assert_eq!(op["version"], "2.0.0");
        assert_eq!(op["rollbacks"], 0);
        // A downgrade: v1 has no `migrate` from schema 2, which is tried on stored values
        // before anything changes.
        let (ok, out, err) = s.swap(&operator("count_u32"));
        assert!(!ok, "{out}");
        assert!(
            err.contains("cannot migrate state `count` from schema version 2 to 1")
                && err.contains("unsupported"),
            "{err}"
        );
        // kill -9 when the KillOnDrop ends: the restart must open the state with the
        // schema version the last checkpoint committed.
    }
    let _job = s.start(None);
    s.produce(8000, RECORDS);
    s.wait_for("every output", || s.out_count() >= RECORDS);
    assert!(s.assert_exact().is_empty(), "decimal counts only");
    let op = &s.jobs()[0]["operators"][0];
    assert_eq!(op["module-sha256"], module_sha(&operator("count_struct")));
}

#[test]
fn a_migration_that_fails_in_one_worker_is_forgotten_by_every_worker() {
    // One worker's migration pass fails (injected), the other's succeeds: the swap is
    // refused and both workers go on with the old module and the old bytes, so every count
    // stays exact. A worker that kept its migrated values would feed struct bytes to v1.
    let s = Swapping::running("count_u32", "parallelism = 2");
    let _job = s.start(Some("fail-migrate:1"));
    s.under_load(RECORDS, || {
        s.wait_for("the first outputs", || s.out_count() > 3000);
        let (ok, out, err) = s.swap(&operator("count_struct"));
        assert!(!ok, "{out}");
        assert!(
            err.contains("could not start") && err.contains("the migration failed"),
            "{err}"
        );
    });
    s.wait_for("every output", || s.out_count() >= RECORDS);
    assert!(s.assert_exact().is_empty(), "decimal counts only");
    let op = &s.jobs()[0]["operators"][0];
    assert_eq!(op["version"], "1.0.0");
    assert_eq!(op["swaps"], 0);
}
