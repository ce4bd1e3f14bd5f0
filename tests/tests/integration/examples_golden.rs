//! Guards the examples: each example's job, run on its own input, writes exactly its
//! `expected-output.jsonl` (byte for byte, in order), exactly its `expected-late.jsonl` to
//! the late-data output (none when there is no such file), and nothing to the dead-letter
//! output. The Python, JavaScript and C examples are ports of Rust ones: their jobs read the
//! Rust example's input and must write its expected output, byte for byte.

use eddy_host::config::{JobConfig, SinkConfig};
use eddy_host::job::{Job, RunOptions};
use eddy_tests::{repo_root, runtime};

fn check_example(name: &str) {
    check_port(name, name);
}

/// Runs the job of example folder `name` and compares with the expected files of example
/// `expected` (the Rust original of a port).
fn check_port(name: &str, expected: &str) {
    check_port_with(name, expected, None);
}

/// [`check_port`], with the job's module replaced by component `module` when given.
fn check_port_with(name: &str, expected: &str, module: Option<&str>) {
    let dir = repo_root().join("examples").join(name);
    let mut cfg = JobConfig::load(&dir.join("job.toml")).unwrap();
    if let Some(module) = module {
        cfg.operator.module = eddy_tests::operator(module);
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("output.jsonl");
    let dead = tmp.path().join("dead-letter.jsonl");
    cfg.sink = SinkConfig::File { path: out.clone() };
    cfg.dead_letter = SinkConfig::File { path: dead.clone() };
    let late = tmp.path().join("late.jsonl");
    cfg.event_time.late_data = SinkConfig::File { path: late.clone() };
    cfg.state.dir = tmp.path().join("state");
    let report = Job::open(cfg, runtime())
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    assert!(report.records_in > 0, "{name}: no records");
    let expected_dir = repo_root().join("examples").join(expected);
    let expected = std::fs::read_to_string(expected_dir.join("expected-output.jsonl")).unwrap();
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
        std::fs::read_to_string(expected_dir.join("expected-late.jsonl")).unwrap_or_default();
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

#[test]
fn python_word_count_port() {
    check_port("python/word-count", "word-count");
}

#[test]
fn python_dedup_port() {
    check_port("python/dedup", "dedup");
}

#[test]
fn js_word_count_port() {
    check_port("js/word-count", "word-count");
}

#[test]
fn js_word_count_port_on_spidermonkey() {
    check_port_with(
        "js/word-count",
        "word-count",
        Some("word_count_js_spidermonkey"),
    );
}

#[test]
fn js_top_n_port() {
    check_port("js/top-n", "top-n");
}

#[test]
fn c_word_count_port() {
    check_port("c/word-count", "word-count");
}

#[test]
fn python_sessionize_port() {
    check_port("python/sessionize", "sessionize");
}

#[test]
fn js_windowed_top_n_port() {
    check_port("js/windowed-top-n", "windowed-top-n");
}
