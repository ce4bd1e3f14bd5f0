//! Golden-file check shared by the examples' tests: runs `input.jsonl` through the SDK's
//! native harness the way the host's file source and sink would (one JSON record per line
//! in; `{"key":…,"value":…}` per emitted record out) and compares with
//! `expected-output.jsonl`. The expected files were worked out by hand, not produced by
//! this code, so the check guards both the operator and the files.

use std::collections::BTreeMap;

use eddy_sdk::Operator;
use eddy_sdk::testing::{Harness, RecordBuilder};
use serde::{Deserialize, Serialize};

/// One line of the file source's JSON format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLine {
    key: String,
    value: String,
    timestamp: Option<i64>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// One line of the file sink's JSON format (headers omitted when empty).
#[derive(Serialize)]
struct OutputLine<'a> {
    key: &'a str,
    value: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

/// What the example emits for `input`, one JSON object per line.
pub fn run<Op: Operator>(harness: &mut Harness<Op>, input: &str) -> String {
    let mut output = String::new();
    for line in input.lines().filter(|line| !line.trim().is_empty()) {
        let line: InputLine = serde_json::from_str(line).unwrap();
        let mut record = RecordBuilder::new(&line.key, &line.value);
        if let Some(timestamp) = line.timestamp {
            record = record.timestamp(timestamp);
        }
        for (name, value) in line.headers {
            record = record.header(name, value);
        }
        for emitted in harness.process_record(record).unwrap() {
            let line = OutputLine {
                key: emitted.key_str().unwrap(),
                value: emitted.value_str().unwrap(),
                headers: emitted.headers.iter().cloned().collect(),
            };
            output.push_str(&serde_json::to_string(&line).unwrap());
            output.push('\n');
        }
    }
    output
}

/// Checks `{dir}/input.jsonl` against `{dir}/expected-output.jsonl`.
pub fn check<Op: Operator>(mut harness: Harness<Op>, dir: &str) {
    let input = std::fs::read_to_string(format!("{dir}/input.jsonl")).unwrap();
    let expected = std::fs::read_to_string(format!("{dir}/expected-output.jsonl")).unwrap();
    let actual = run(&mut harness, &input);
    for (n, (actual, expected)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(actual, expected, "output line {}", n + 1);
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "output line count"
    );
}
