//! Guards recovery from a crash: `eddy run` killed with SIGKILL at arbitrary instants and
//! restarted on the same state directory ends with exactly the right state — no record's
//! effect lost or counted twice — because state and positions are committed together.

use std::process::{Command, Stdio};
use std::time::Duration;

use eddy_tests::{eddy_bin, operator, read_pairs};

#[test]
fn kill_9_at_random_instants_then_restart_ends_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (records, keys) = (400_000u64, 500u64);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "crash"
[operator]
uid = "word-count"
module = "{}"
batch-size = 64
[source]
type = "generator"
count = {records}
keys = {keys}
[sink]
type = "file"
path = "output.jsonl"
[state]
dir = "state"
checkpoint-interval = "50ms"
"#,
            operator("word_count").display()
        ),
    )
    .unwrap();
    let run = || {
        Command::new(eddy_bin())
            .args(["run", job.to_str().unwrap(), "--progress-every", "0s"])
            .current_dir(dir.path())
            .env("EDDY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Kill it several times at different instants, while it runs.
    let mut killed = 0;
    for delay_ms in [300u64, 450, 250, 600] {
        let mut child = run();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait();
    }
    assert!(
        killed > 0,
        "the job finished before any kill; make it longer"
    );
    // Let it finish.
    let out = run().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The file sink is at-least-once across crashes, but the state is exact: the last count
    // emitted for every word is its true count, and each word's counts rise by one.
    let pairs = read_pairs(&dir.path().join("output.jsonl"));
    assert!(pairs.len() as u64 >= records);
    let mut last: std::collections::HashMap<String, u64> = Default::default();
    for (k, v) in &pairs {
        let n: u64 = v.parse().unwrap();
        let prev = last.insert(k.clone(), n).unwrap_or(0);
        // After a crash the replay restarts from the checkpointed count, so a count may go
        // back — but never to a value below what a checkpoint held, and never skip ahead.
        assert!(
            n <= prev + 1,
            "{k}: {prev} then {n}: a record counted twice"
        );
    }
    assert_eq!(last.len() as u64, keys);
    for (k, n) in &last {
        assert_eq!(*n, records / keys, "final count of {k}");
    }
}
