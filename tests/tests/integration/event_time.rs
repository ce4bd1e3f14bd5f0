//! Guards event time (real RocksDB, real components, the real binary, NATS where it says):
//! timers fire in timestamp order, once each, with their key's state; a crash between
//! registering and firing loses and repeats no timer; windows over out-of-order input equal
//! a batch computation, and late records go to the late-data output; timers move with
//! their key groups through a savepoint into another parallelism.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use eddy_host::io::nats::{LocalServer, NatsConn};
use eddy_tests::{TestJob, kill_runs_after, operator, read_json_lines, run_to_end};
use serde_json::json;

fn at(key: &str, value: &str, ts: i64) -> String {
    json!({"key": key, "value": value, "timestamp": ts}).to_string()
}

/// The input of the timer-order test, and what a run of it must emit (event time only).
fn timer_script() -> (Vec<String>, Vec<String>) {
    let input = [
        ("a", "event:3000", 1000),
        ("b", "event:2000", 1100),
        ("a", "event:3000", 1200), // the same timer again: it fires once
        ("c", "event:2500", 1300),
        ("c", "unevent:2500", 1400), // deleted: never fires
        ("d", "chain:2", 1450),
        ("d", "event:2000", 1500),
        ("e", "processing:0", 1600), // already due on the wall clock
        ("b", "x", 2500),
        ("b", "y", 5000), // sees watermark 2499: b@2000 and d@2000 fire before it
        ("a", "z", 9000), // sees 4999: a@3000, d@3000 and the d@4000 it registers
    ]
    .iter()
    .map(|(k, v, t)| at(k, v, *t))
    .collect();
    let expected = [
        "b fired event 2000 records=2 fired=1",
        "d fired event 2000 records=2 fired=1",
        "a fired event 3000 records=2 fired=1",
        "d fired event 3000 records=2 fired=2",
        "d fired event 4000 records=2 fired=3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    (input, expected)
}

fn lines(job: &TestJob) -> Vec<String> {
    job.output()
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect()
}

eddy_tests::in_every_language!("timer_probe":
    timers_fire_in_timestamp_order_once_each_with_their_keys_state,
    a_failing_timer_goes_to_the_dead_letter_output_and_the_job_goes_on,
    timers_move_with_their_key_groups_through_a_savepoint_into_another_parallelism,
);

fn timers_fire_in_timestamp_order_once_each_with_their_keys_state(probe: &str) {
    let (input, expected) = timer_script();
    for parallelism in [1, 3] {
        let job = TestJob::new(probe)
            .operator_settings(&format!("parallelism = {parallelism}"))
            .tables("[event-time]\nlate-data = { type = \"file\", path = \"late.jsonl\" }");
        job.append_input(&input);
        let report = job.run().unwrap();
        assert_eq!(report.records_in, input.len() as u64);
        let got = lines(&job);
        let processing: Vec<&String> = got.iter().filter(|l| l.contains("processing")).collect();
        assert_eq!(
            processing,
            ["e fired processing 0 records=1 fired=1"],
            "parallelism {parallelism}"
        );
        let event: Vec<String> = got
            .iter()
            .filter(|l| l.contains(" event "))
            .cloned()
            .collect();
        if parallelism == 1 {
            assert_eq!(event, expected, "in timestamp order, then key order");
        } else {
            // Across workers the order of keys is free; each key's own order is not.
            let mut sorted = event.clone();
            sorted.sort();
            let mut want = expected.clone();
            want.sort();
            assert_eq!(sorted, want, "parallelism {parallelism}");
            let d: Vec<&String> = event.iter().filter(|l| l.starts_with("d ")).collect();
            assert_eq!(
                d,
                expected
                    .iter()
                    .filter(|l| l.starts_with("d "))
                    .collect::<Vec<_>>()
            );
        }
        assert!(job.dead_letters().is_empty());
        assert!(read_json_lines(&job.path("late.jsonl")).is_empty());
    }
}

fn a_failing_timer_goes_to_the_dead_letter_output_and_the_job_goes_on(probe: &str) {
    let job = TestJob::new(probe);
    job.append_input(&[
        at("f", "fail-timer", 100),
        at("f", "event:500", 200),
        at("g", "event:500", 300),
        at("g", "x", 1000),
    ]);
    job.run().unwrap();
    assert_eq!(lines(&job), ["g fired event 500 records=2 fired=1"]);
    let dead = job.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["key"], "f");
    assert_eq!(dead[0]["headers"]["eddy-timer"], "event-time 500");
    assert!(
        dead[0]["headers"]["eddy-error"]
            .as_str()
            .unwrap()
            .contains("asked to fail this timer")
    );
}

/// The probe's output for a timer registered `after:1000` by every record of a stream whose
/// record `i` has key `w{i*7919 % keys}` and timestamp `10 * i` (watermark: the previous
/// record's timestamp - 1): computed here by a plain pass, independent of the host.
fn expected_firings(records: u64, keys: u64) -> HashMap<(String, i64), String> {
    let key = |i: u64| format!("w{}", i * 7919 % keys);
    let ts = |i: u64| 10 * i as i64;
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for i in 0..records {
        by_key.entry(key(i)).or_default().push(i);
    }
    let mut out = HashMap::new();
    for (k, idx) in &by_key {
        for (rank, &i) in idx.iter().enumerate() {
            let t = ts(i) + 1000;
            // It fires before the first later record of its key that sees a watermark
            // (the previous record's timestamp - 1) at or past it; else at the end.
            let before = idx[rank + 1..]
                .iter()
                .position(|&j| ts(j - 1) > t)
                .map_or(idx.len(), |p| rank + 1 + p);
            out.insert(
                (k.clone(), t),
                format!("fired event {t} records={before} fired={}", rank + 1),
            );
        }
    }
    out
}

#[test]
fn a_crash_between_registering_and_firing_fires_every_timer_once_in_effect() {
    let nats = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&nats.path().join("nats")).unwrap();
    let conn = NatsConn::connect(server.url()).unwrap();
    let (records, keys) = (80_000u64, 400u64);
    conn.ensure_stream("events", &["events".to_string()], Duration::from_secs(600))
        .unwrap();
    conn.publish_all(
        "events",
        (0..records).map(|i| {
            let v =
                json!({"k": format!("w{}", i * 7919 % keys), "ts": 10 * i, "cmd": "after:1000"});
            (format!("in-{i}"), v.to_string().into_bytes())
        }),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "timers"
[operator]
uid = "probe"
module = "{module}"
parallelism = 2
batch-size = 64
[source]
type = "nats"
stream = "events"
bounded = true
[key]
from = "json-field"
field = "k"
[sink]
type = "nats"
subject = "fired"
duplicate-window = "10m"
[nats]
url = "{url}"
[state]
dir = "state"
checkpoint-interval = "40ms"
[event-time]
timestamp = {{ from = "json-field", field = "ts" }}
"#,
            module = operator("timer_probe").display(),
            url = server.url(),
        ),
    )
    .unwrap();
    // Kills at arbitrary instants, then aborts at chosen points (between a firing and
    // its checkpoint, inside a commit…), each run resuming from the last checkpoint.
    let killed = kill_runs_after(&job, dir.path(), &[500, 700, 600]);
    assert!(
        killed > 0,
        "every run ended before its kill; make the input longer"
    );
    for fault in [
        "after-emit:40",
        "before-commit:3",
        "after-process:300",
        "after-commit:5",
    ] {
        let out = eddy_tests::eddy_run(&job, dir.path())
            .env("EDDY_FAULT", fault)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("EDDY_FAULT: aborting at"),
            "{fault} did not fire: {stderr}"
        );
    }
    run_to_end(&job, dir.path());

    let out = conn.read_stream("fired").unwrap();
    let expected = expected_firings(records, keys);
    let mut seen = std::collections::HashSet::new();
    let mut wrong = Vec::new();
    for m in &out {
        let id = m.id.clone().unwrap_or_default();
        assert!(seen.insert(id.clone()), "output id {id} twice");
        let key = m.key.clone().unwrap_or_default();
        let payload = String::from_utf8_lossy(&m.payload).into_owned();
        let t: i64 = payload.split(' ').nth(2).unwrap().parse().unwrap();
        if expected.get(&(key.clone(), t)) != Some(&payload) {
            let want = expected.get(&(key.clone(), t));
            wrong.push(format!("{key}: {payload} (want {want:?})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} firings differ from a straight run, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    assert_eq!(out.len(), expected.len(), "one output per timer");
    drop(server);
}

/// A deterministic pseudo-random sequence (xorshift), so the input is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn windows_over_out_of_order_input_equal_a_batch_computation_and_late_records_are_kept_apart() {
    windows_equal_a_batch_computation("windowed_top_n");
}

/// The same check against the JavaScript port of the example, whose windows come from the
/// JavaScript SDK.
#[test]
fn javascript_windows_over_out_of_order_input_equal_a_batch_computation() {
    windows_equal_a_batch_computation("windowed_top_n_js");
}

fn windows_equal_a_batch_computation(module: &str) {
    const T0: i64 = 1_700_000_000_000;
    const OOO: i64 = 5_000;
    const LATENESS: i64 = 30_000;
    const WINDOW: i64 = 60_000;
    let mut rng = Rng(0x5eed);
    let categories = ["books", "games", "music", "tools", "toys"];
    let mut input = Vec::new();
    let mut events = Vec::new();
    for i in 0..4_000i64 {
        let r = rng.next();
        let mut ts = T0 + i * 100 - (r % 8_000) as i64;
        if i % 37 == 0 {
            ts -= 25_000 + (r % 60_000) as i64; // some within lateness, some beyond
        }
        let cat = categories[(r >> 20) as usize % categories.len()];
        let product = format!("p{:02}", (r >> 30) % 40);
        input.push(at(cat, &product, ts));
        events.push((cat.to_string(), product, ts));
    }
    // The batch computation: which records are late (timestamp + lateness at or below the
    // watermark before them, the watermark being the largest timestamp so far - 5 s -
    // 1 ms), and per category and one-minute window, the count of each product over the
    // records that are not.
    let mut max_ts: Option<i64> = None;
    let mut late = Vec::new();
    let mut counts: BTreeMap<(String, i64), BTreeMap<String, u64>> = BTreeMap::new();
    for (cat, product, ts) in &events {
        let wm = max_ts.map_or(i64::MIN, |m| m - OOO - 1);
        if wm != i64::MIN && ts + LATENESS <= wm {
            late.push((cat.clone(), product.clone(), *ts));
            continue;
        }
        let start = ts - ts.rem_euclid(WINDOW);
        *counts
            .entry((cat.clone(), start))
            .or_default()
            .entry(product.clone())
            .or_default() += 1;
        max_ts = Some(max_ts.map_or(*ts, |m| m.max(*ts)));
    }
    assert!(late.len() > 10, "the input must have late records");

    let job = TestJob::new(module)
        .operator_settings("parallelism = 2\nconfig = { n = 1000, allowed-lateness-ms = 30000 }")
        .tables(
            "[event-time]\nmax-out-of-orderness = \"5s\"\nallowed-lateness = \"30s\"\nlate-data = { type = \"file\", path = \"late.jsonl\" }",
        );
    job.append_input(&input);
    job.run().unwrap();

    // The last result of each window is its final count.
    let mut last: BTreeMap<(String, i64), Vec<(String, u64)>> = BTreeMap::new();
    let mut on_time = HashMap::new();
    for (_, v) in job.output() {
        let v: serde_json::Value = serde_json::from_str(&v).unwrap();
        let key = (
            v["category"].as_str().unwrap().to_string(),
            v["start"].as_i64().unwrap(),
        );
        if !v["late"].as_bool().unwrap() {
            *on_time.entry(key.clone()).or_insert(0) += 1;
        }
        let top = v["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["product"].as_str().unwrap().to_string(),
                    p["count"].as_u64().unwrap(),
                )
            })
            .collect();
        last.insert(key, top);
    }
    for (key, products) in &counts {
        let mut want: Vec<(String, u64)> = products.iter().map(|(p, n)| (p.clone(), *n)).collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(last.get(key), Some(&want), "{module}: window {key:?}");
    }
    assert_eq!(last.len(), counts.len(), "no window that has no records");
    assert!(
        on_time.values().all(|n| *n == 1),
        "each window fires once on time"
    );
    let got_late: Vec<(String, String, i64)> = read_json_lines(&job.path("late.jsonl"))
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap().to_string(),
                l["value"].as_str().unwrap().to_string(),
                l["headers"]["eddy-late-timestamp"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got_late, late,
        "the late-data output holds exactly the late records"
    );
}

fn timers_move_with_their_key_groups_through_a_savepoint_into_another_parallelism(probe: &str) {
    // Part A registers timers that are not due when it ends (kept); part B makes them due.
    let a: Vec<String> = (0..400)
        .map(|i| at(&format!("k{}", i % 40), "after:100000", 1_000 * i))
        .collect();
    let b: Vec<String> = (400..800)
        .map(|i| at(&format!("k{}", i % 40), "after:100000", 1_000 * i))
        .collect();
    let tables = |end: &str| {
        format!(
            "[event-time]\nend-of-input = \"{end}\"\nlate-data = {{ type = \"file\", path = \"late.jsonl\" }}"
        )
    };
    // Straight: one worker, all of it.
    let straight = TestJob::new(probe).tables(&tables("fire-timers"));
    straight.append_input(&a);
    straight.append_input(&b);
    straight.run().unwrap();
    let mut want = lines(&straight);
    assert_eq!(want.len(), 800);

    // One worker over part A, a savepoint, then three workers over part B.
    let first = TestJob::new(probe).tables(&tables("keep-timers"));
    first.append_input(&a);
    first.run().unwrap();
    let mut got = lines(&first);
    assert!(got.len() < 400, "timers were pending at the savepoint");
    let sp = first.savepoint("sp");
    let second = TestJob::new(probe)
        .operator_settings("parallelism = 3")
        .tables(&tables("fire-timers"));
    second.append_input(&a);
    second.append_input(&b);
    second.run_from_savepoint(&sp);
    got.extend(lines(&second));
    got.sort();
    want.sort();
    assert_eq!(got, want, "the same firings as a straight run");
}
