//! Golden-file check shared by the examples' tests: runs `input.jsonl` through the SDK's
//! native harness the way the host's file source and sink would (one JSON record per line
//! in; `{"key":…,"value":…}` per emitted record out) and compares with
//! `expected-output.jsonl`. The expected files were worked out by hand, not produced by
//! this code, so the check guards both the operator and the files.
//!
//! [`check`] feeds the records one by one, as a job without event time does (timestamps
//! 0 unless given, no watermark). [`check_event_time`] also runs the watermark and timers
//! as the host does (see [`run_event_time`]), with the `[event-time]` table of the
//! example's `job.toml`, and compares the records it keeps from the operator as late with
//! `expected-late.jsonl`.

// Each example uses some of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use eddy_sdk::testing::{Emitted, Harness, RecordBuilder};
use eddy_sdk::{NO_WATERMARK, Operator};
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

impl InputLine {
    fn parse(line: &str) -> Self {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("input line {line}: {e}"))
    }

    /// The event timestamp the file source gives the record (0 when the line has none).
    fn timestamp(&self) -> i64 {
        self.timestamp.unwrap_or(0)
    }

    fn record(&self) -> RecordBuilder {
        let mut record = RecordBuilder::new(&self.key, &self.value);
        if let Some(timestamp) = self.timestamp {
            record = record.timestamp(timestamp);
        }
        for (name, value) in &self.headers {
            record = record.header(name, value);
        }
        record
    }
}

/// Appends a sink line per emitted record.
fn write(output: &mut String, emitted: Vec<Emitted>) {
    for emitted in emitted {
        let line = OutputLine {
            key: emitted.key_str().unwrap(),
            value: emitted.value_str().unwrap(),
            headers: emitted.headers.iter().cloned().collect(),
        };
        output.push_str(&serde_json::to_string(&line).unwrap());
        output.push('\n');
    }
}

/// The lines of `input` that hold a record.
fn records(input: &str) -> impl Iterator<Item = InputLine> + '_ {
    input
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(InputLine::parse)
}

/// What the example emits for `input`, one JSON object per line.
pub fn run<Op: Operator>(harness: &mut Harness<Op>, input: &str) -> String {
    let mut output = String::new();
    for line in records(input) {
        write(&mut output, harness.process_record(line.record()).unwrap());
    }
    output
}

/// Checks `{dir}/input.jsonl` against `{dir}/expected-output.jsonl`.
pub fn check<Op: Operator>(mut harness: Harness<Op>, dir: &str) {
    let input = std::fs::read_to_string(format!("{dir}/input.jsonl")).unwrap();
    let expected = std::fs::read_to_string(format!("{dir}/expected-output.jsonl")).unwrap();
    let actual = run(&mut harness, &input);
    compare("output", &actual, &expected);
}

/// The settings of a job file's `[event-time]` table that decide what the operator sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTime {
    /// `max-out-of-orderness`, in ms (default 0).
    pub max_out_of_orderness_ms: i64,
    /// `allowed-lateness`, in ms (default 0).
    pub allowed_lateness_ms: i64,
}

/// The `[event-time]` table of a job file's text, `None` when it has none. Only what the
/// examples use is understood: durations, `timestamp = { from = "record" }`, `idle-timeout`
/// (which a file source never reaches) and `late-data` (where late records go).
pub fn event_time(job: &str) -> Option<EventTime> {
    let mut lines = job.lines().map(str::trim);
    lines.find(|line| *line == "[event-time]")?;
    let mut event_time = EventTime::default();
    for line in lines.take_while(|line| !line.starts_with('[')) {
        let line = line.split(" #").next().unwrap_or_default().trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("[event-time] line {line:?}"));
        let value = value.trim();
        match name.trim() {
            "max-out-of-orderness" => event_time.max_out_of_orderness_ms = duration_ms(value),
            "allowed-lateness" => event_time.allowed_lateness_ms = duration_ms(value),
            "timestamp" => assert_eq!(
                value.replace(' ', ""),
                r#"{from="record"}"#,
                "the golden runner takes timestamps from the records only"
            ),
            "idle-timeout" | "late-data" => {}
            other => panic!("[event-time] {other} is not known to the golden runner"),
        }
    }
    Some(event_time)
}

/// A quoted human duration (`"5s"`, `"500ms"`, `"1m 30s"`, `"2h"`) in ms.
fn duration_ms(quoted: &str) -> i64 {
    let text = quoted.trim_matches('"');
    let mut total = 0;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: i64 = rest[..digits]
            .parse()
            .unwrap_or_else(|e| panic!("duration {quoted}: {e}"));
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == ' ')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            other => panic!("duration {quoted}: unknown unit {other:?}"),
        };
        total += number * scale;
        rest = rest[unit..].trim_start();
    }
    total
}

/// What an event-time run gives: the output records and the late records, one sink line
/// each.
#[derive(Debug, Default)]
pub struct EventTimeOutput {
    /// The records the operator emitted, timers included, in order.
    pub output: String,
    /// The input records kept from the operator as late, in order, as the late-data file
    /// sink writes them: `{"key":…,"value":…,"headers":{…}}`, the headers being the
    /// record's own plus `eddy-late-timestamp` and `eddy-late-watermark`.
    pub late: String,
}

/// Runs `input` through the harness the way the host runs a file source with event time
/// (`event_time` is the job's `[event-time]` table, `None` without one):
/// - the source's watermark is the largest timestamp routed so far, minus the
///   out-of-orderness, minus 1 (none before the first record); with one source it is the
///   job's;
/// - before each record, the event-time timers due at the watermark it sees fire (their
///   emits go to the output first);
/// - with `[event-time]`, a record whose timestamp plus the allowed lateness is at or below
///   the watermark is late: it goes to the late output instead of the operator;
/// - when the input ends, the watermark jumps to the maximum and every timer left fires.
pub fn run_event_time<Op: Operator>(
    harness: &mut Harness<Op>,
    input: &str,
    event_time: Option<EventTime>,
) -> EventTimeOutput {
    let settings = event_time.unwrap_or_default();
    let mut out = EventTimeOutput::default();
    let mut max_timestamp = None::<i64>;
    for line in records(input) {
        let watermark = max_timestamp.map_or(NO_WATERMARK, |max| {
            max.saturating_sub(settings.max_out_of_orderness_ms)
                .saturating_sub(1)
        });
        write(
            &mut out.output,
            harness.advance_watermark(watermark).unwrap(),
        );
        let timestamp = line.timestamp();
        if event_time.is_some()
            && timestamp.saturating_add(settings.allowed_lateness_ms) <= watermark
        {
            // As the host writes it: the record, with its timestamp and the watermark that
            // made it late as headers.
            let mut headers = line.headers.clone();
            headers.insert("eddy-late-timestamp".to_owned(), timestamp.to_string());
            headers.insert("eddy-late-watermark".to_owned(), watermark.to_string());
            let late = OutputLine {
                key: &line.key,
                value: &line.value,
                headers,
            };
            out.late.push_str(&serde_json::to_string(&late).unwrap());
            out.late.push('\n');
            continue;
        }
        write(
            &mut out.output,
            harness.process_record(line.record()).unwrap(),
        );
        max_timestamp = Some(max_timestamp.map_or(timestamp, |max| max.max(timestamp)));
    }
    write(
        &mut out.output,
        harness.advance_watermark(i64::MAX).unwrap(),
    );
    out
}

/// Checks `{dir}/input.jsonl`, run with the `[event-time]` of `{dir}/job.toml`, against
/// `{dir}/expected-output.jsonl` and (when it exists; otherwise nothing may be late)
/// `{dir}/expected-late.jsonl`.
pub fn check_event_time<Op: Operator>(mut harness: Harness<Op>, dir: &str) {
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}"));
    let job = read("job.toml").unwrap();
    let input = read("input.jsonl").unwrap();
    let expected = read("expected-output.jsonl").unwrap();
    let expected_late = read("expected-late.jsonl").unwrap_or_default();
    let actual = run_event_time(&mut harness, &input, event_time(&job));
    compare("output", &actual.output, &expected);
    compare("late", &actual.late, &expected_late);
}

fn compare(what: &str, actual: &str, expected: &str) {
    for (n, (actual, expected)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(actual, expected, "{what} line {}", n + 1);
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "{what} line count"
    );
}

#[test]
fn event_time_tables_are_read_as_the_host_reads_them() {
    assert_eq!(event_time("[source]\npath = \"x\"\n"), None);
    let job = r#"
[event-time]
max-out-of-orderness = "1m 30s"   # generous
allowed-lateness = "500ms"
timestamp = { from = "record" }
late-data = { type = "file", path = "late.jsonl" }

[state]
dir = "x"
"#;
    assert_eq!(
        event_time(job),
        Some(EventTime {
            max_out_of_orderness_ms: 90_000,
            allowed_lateness_ms: 500,
        })
    );
    assert_eq!(event_time("[event-time]\n"), Some(EventTime::default()));
    assert_eq!(duration_ms("\"2h\""), 7_200_000);
    assert_eq!(duration_ms("\"0s\""), 0);
}
