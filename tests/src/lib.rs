//! Helpers for Eddy's integration tests: find the operators built from source, write job
//! files into temporary folders, run jobs in-process or through the `eddy` binary, and read
//! what they wrote. Tests using them read as specifications.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use eddy_host::config::JobConfig;
use eddy_host::job::{Job, JobReport, RunOptions};
use eddy_host::runtime::Runtime;

/// One test per SDK language for each check: `check::rust`, `check::python` and
/// `check::js` call `check` with the component of the Rust test fixture (`"state_probe"`)
/// or of its port (`"state_probe_py"`, `"state_probe_js"`), which must behave the same.
#[macro_export]
macro_rules! in_every_language {
    ($fixture:literal: $($check:ident),* $(,)?) => {$(
        mod $check {
            #[test]
            fn rust() {
                super::$check($fixture);
            }

            #[test]
            fn python() {
                super::$check(concat!($fixture, "_py"));
            }

            #[test]
            fn js() {
                super::$check(concat!($fixture, "_js"));
            }
        }
    )*};
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The component of operator crate `name` (e.g. "word_count"), built from source by
/// `scripts/build-operators.sh` (the test command runs it first).
pub fn operator(name: &str) -> PathBuf {
    let p = repo_root()
        .join("target/operators")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-operators.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The compiled-module cache every test shares (in-process runs and the `eddy` binary, via
/// `EDDY_MODULE_CACHE`), so each component compiles once per build, not once per test: the
/// Python and JavaScript components take seconds to compile.
pub fn module_cache() -> PathBuf {
    repo_root().join("target/test-module-cache")
}

/// A runtime with the shared test module cache.
pub fn runtime() -> Arc<Runtime> {
    Arc::new(Runtime::new(Some(module_cache())).unwrap())
}

/// The `eddy` binary of this build (beside the test executable's folder).
pub fn eddy_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap(); // target/<profile>/deps
    let bin = dir.parent().unwrap().join("eddy");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --workspace first",
        bin.display()
    );
    bin
}

/// A JSON-lines source record.
pub fn rec(key: &str, value: &str) -> String {
    serde_json::json!({ "key": key, "value": value }).to_string()
}

/// One test job in its own temporary folder: job file, input, output, dead letters, state.
pub struct TestJob {
    pub dir: tempfile::TempDir,
    pub module: PathBuf,
    pub uid: String,
    pub extra_operator: String,
    pub extra_state: String,
    /// Tables after `[state]` (e.g. `[event-time]`).
    pub extra_tables: String,
    pub input_name: String,
}

impl TestJob {
    pub fn new(operator_name: &str) -> TestJob {
        TestJob {
            dir: tempfile::tempdir().unwrap(),
            module: operator(operator_name),
            uid: "op".into(),
            extra_operator: String::new(),
            extra_state: String::new(),
            extra_tables: String::new(),
            input_name: "input.jsonl".into(),
        }
    }

    /// Adds lines to the `[operator]` table (e.g. `parallelism = 2`).
    pub fn operator_settings(mut self, toml: &str) -> Self {
        self.extra_operator.push_str(toml);
        self.extra_operator.push('\n');
        self
    }

    /// Adds lines to the `[state]` table.
    pub fn state_settings(mut self, toml: &str) -> Self {
        self.extra_state.push_str(toml);
        self.extra_state.push('\n');
        self
    }

    /// Adds tables after `[state]`.
    pub fn tables(mut self, toml: &str) -> Self {
        self.extra_tables.push_str(toml);
        self.extra_tables.push('\n');
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn job_file(&self) -> PathBuf {
        self.path("job.toml")
    }

    /// Writes the job file.
    pub fn write_job(&self) -> PathBuf {
        let text = format!(
            r#"name = "test"
[operator]
uid = "{uid}"
module = "{module}"
{extra_operator}
[source]
type = "file"
path = "{input}"
format = "json"
[sink]
type = "file"
path = "output.jsonl"
[dead-letter]
type = "file"
path = "dead-letter.jsonl"
[state]
dir = "state"
{extra_state}
{extra_tables}"#,
            uid = self.uid,
            module = self.module.display(),
            extra_operator = self.extra_operator,
            input = self.input_name,
            extra_state = self.extra_state,
            extra_tables = self.extra_tables,
        );
        std::fs::write(self.job_file(), text).unwrap();
        self.job_file()
    }

    /// Appends lines to the input file.
    pub fn append_input<S: AsRef<str>>(&self, lines: &[S]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&self.input_name))
            .unwrap();
        for l in lines {
            writeln!(f, "{}", l.as_ref()).unwrap();
        }
    }

    /// Runs the job in-process to the end of its input.
    pub fn run(&self) -> Result<JobReport, eddy_host::job::JobError> {
        let cfg = JobConfig::load(&self.write_job()).unwrap();
        Job::open(cfg, runtime())?.run(&RunOptions::default())
    }

    /// Writes a savepoint of the job's state (`eddy savepoint JOB DIR`) into folder `name`
    /// of the job's folder; returns its path.
    pub fn savepoint(&self, name: &str) -> PathBuf {
        let sp = self.path(name);
        let (ok, _, err) = eddy(
            &[
                "savepoint",
                self.job_file().to_str().unwrap(),
                sp.to_str().unwrap(),
            ],
            self.dir.path(),
        );
        assert!(ok, "eddy savepoint: {err}");
        sp
    }

    /// Runs the job through the binary from savepoint `sp` (`eddy run --from-savepoint`)
    /// to the end of its input.
    pub fn run_from_savepoint(&self, sp: &Path) {
        self.write_job();
        let out = eddy_run(&self.job_file(), self.dir.path())
            .args(["--from-savepoint", sp.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "eddy run --from-savepoint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Output records as (key, value) pairs.
    pub fn output(&self) -> Vec<(String, String)> {
        read_pairs(&self.path("output.jsonl"))
    }

    /// Dead-letter records as JSON.
    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        read_json_lines(&self.path("dead-letter.jsonl"))
    }
}

/// Reads a JSON-lines file (missing file: no lines).
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Reads a sink file as (key, value) string pairs.
pub fn read_pairs(path: &Path) -> Vec<(String, String)> {
    read_json_lines(path)
        .into_iter()
        .map(|v| {
            (
                v["key"].as_str().unwrap_or_default().to_string(),
                v["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Runs `eddy` with arguments; returns (success, stdout, stderr).
pub fn eddy(args: &[&str], cwd: &Path) -> (bool, String, String) {
    let out = Command::new(eddy_bin())
        .args(args)
        .current_dir(cwd)
        .env("EDDY_LOG", "warn")
        .env(eddy_host::job::MODULE_CACHE_ENV, module_cache())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `eddy run JOB` in `cwd`, ready to spawn: warnings only, stderr piped, no progress lines.
pub fn eddy_run(job: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(eddy_bin());
    c.args(["run", job.to_str().unwrap(), "--progress-every", "0s"])
        .current_dir(cwd)
        .env("EDDY_LOG", "warn")
        .env(eddy_host::job::MODULE_CACHE_ENV, module_cache())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

/// Starts `eddy run JOB` once per delay and kills it with SIGKILL after that many
/// milliseconds; returns how many runs were still running when killed.
pub fn kill_runs_after(job: &Path, cwd: &Path, delays_ms: &[u64]) -> usize {
    let mut killed = 0;
    for &ms in delays_ms {
        let mut child = eddy_run(job, cwd).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = child.wait();
    }
    killed
}

/// Runs `eddy run JOB` to the end and asserts it succeeded; returns its stderr.
pub fn run_to_end(job: &Path, cwd: &Path) -> String {
    let out = eddy_run(job, cwd).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Kills the child process when dropped (when a test ends, also by a failed assertion).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET on 127.0.0.1; returns (status code, body), or `None` when nothing
/// answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}
