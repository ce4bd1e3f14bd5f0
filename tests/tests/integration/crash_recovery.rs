//! Guards recovery from a crash: `eddy run` killed with SIGKILL at arbitrary instants and
//! restarted on the same state directory ends with exactly the right state — no record's
//! effect lost or counted twice — because state and positions are committed together.

use eddy_tests::{kill_runs_after, operator, read_pairs, run_to_end};

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
    // Kill it several times at different instants, while it runs; then let it finish.
    let killed = kill_runs_after(&job, dir.path(), &[300, 450, 250, 600]);
    assert!(
        killed > 0,
        "the job finished before any kill; make it longer"
    );
    run_to_end(&job, dir.path());

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

#[test]
fn a_checkpoint_past_its_timeout_stops_the_job_and_a_restart_ends_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (records, keys) = (200_000u64, 100u64);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "timeout"
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
checkpoint-interval = "20ms"
checkpoint-timeout = "1s"
"#,
            operator("word_count").display()
        ),
    )
    .unwrap();
    // The second checkpoint's commit hangs (as on a stalled disk): the job must stop with
    // an error that names the setting, not hang or go on without checkpoints.
    let started = std::time::Instant::now();
    let out = eddy_tests::eddy_run(&job, dir.path())
        .env("EDDY_FAULT", "stall-commit:2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("checkpoint-timeout")
            && stderr.contains("EDDY_FAULT: stalling"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let stderr = run_to_end(&job, dir.path());
    assert!(
        stderr.contains(&format!("\"generator\": {records}")),
        "{stderr}"
    );
    let mut last: std::collections::HashMap<String, u64> = Default::default();
    for (k, v) in read_pairs(&dir.path().join("output.jsonl")) {
        last.insert(k, v.parse().unwrap());
    }
    assert_eq!(last.len() as u64, keys);
    assert!(last.values().all(|n| *n == records / keys), "{last:?}");
}
