//! Guards the examples: each example's job, run on its own input, writes exactly its
//! `expected-output.jsonl` (byte for byte, in order), exactly its `expected-late.jsonl` to
//! the late-data output (none when there is no such file), and nothing to the dead-letter
//! output.

use std::sync::Arc;

use eddy_host::config::{JobConfig, SinkConfig};
use eddy_host::job::{Job, RunOptions};
use eddy_host::runtime::Runtime;
use eddy_tests::repo_root;

fn check_example(name: &str) {
    let dir = repo_root().join("examples").join(name);
    let mut cfg = JobConfig::load(&dir.join("job.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("output.jsonl");
    let dead = tmp.path().join("dead-letter.jsonl");
    cfg.sink = SinkConfig::File { path: out.clone() };
    cfg.dead_letter = SinkConfig::File { path: dead.clone() };
    let late = tmp.path().join("late.jsonl");
    cfg.event_time.late_data = SinkConfig::File { path: late.clone() };
    cfg.state.dir = tmp.path().join("state");
    let runtime = Arc::new(Runtime::new(None).unwrap());
    let report = Job::open(cfg, runtime)
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    assert!(report.records_in > 0, "{name}: no records");
    let expected = std::fs::read_to_string(dir.join("expected-output.jsonl")).unwrap();
    let got = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        got.trim_end(),
        expected.trim_end(),
        "{name}: output differs from expected-output.jsonl"
    );
    assert!(
        !dead.exists() || std::fs::read_to_string(&dead).unwrap().is_empty(),
        "{name}: dead letters"
    );
    let expected_late =
        std::fs::read_to_string(dir.join("expected-late.jsonl")).unwrap_or_default();
    let got_late = std::fs::read_to_string(&late).unwrap_or_default();
    assert_eq!(
        got_late.trim_end(),
        expected_late.trim_end(),
        "{name}: late-data output differs from expected-late.jsonl"
    );
}

#[test]
fn word_count_example() {
    check_example("word-count");
}

#[test]
fn order_state_machine_example() {
    check_example("order-state-machine");
}

#[test]
fn dedup_example() {
    check_example("dedup");
}

#[test]
fn top_n_example() {
    check_example("top-n");
}

#[test]
fn fraud_detection_example() {
    check_example("fraud-detection");
}

#[test]
fn sessionize_example() {
    check_example("sessionize");
}

#[test]
fn windowed_top_n_example() {
    check_example("windowed-top-n");
}
