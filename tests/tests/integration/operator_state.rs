//! Guards operator (non-keyed) state (real RocksDB, the real `opstate-probe` component,
//! the real binary for savepoints): it survives a restart, a failing call leaves no trace
//! in it, and at a change of parallelism (through a savepoint, or a restart over the same
//! state) even-split lists are split among the workers with every item kept once and
//! union lists reach every worker whole.

use std::collections::BTreeSet;

use eddy_tests::TestJob;
use serde_json::{Value, json};

/// A source record of key `key` whose value is the probe's command.
fn op(key: &str, op: &str, item: &str) -> String {
    let command = json!({"key": key, "op": op, "item": item});
    eddy_tests::rec(key, &command.to_string())
}

/// `dump` records under enough keys to reach every worker of up to 4 (key groups are
/// spread in contiguous ranges; 64 keys land in each range of 128 groups / 4).
fn dumps() -> Vec<String> {
    (0..64).map(|i| op(&format!("d{i}"), "dump", "")).collect()
}

/// The distinct (buffer, rules) lists the workers dumped, from the output lines after
/// the first `skip`.
fn dumped(job: &TestJob, skip: usize) -> BTreeSet<(Vec<String>, Vec<String>)> {
    let list = |v: &Value, name: &str| -> Vec<String> {
        v[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    job.output()
        .into_iter()
        .skip(skip)
        .map(|(_, v)| {
            let v: Value = serde_json::from_str(&v).unwrap();
            (list(&v, "buffer"), list(&v, "rules"))
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

eddy_tests::in_every_language!("opstate_probe":
    operator_state_survives_a_restart_and_a_failing_call_leaves_no_trace,
    operator_state_redistributes_when_the_parallelism_changes,
);

fn operator_state_survives_a_restart_and_a_failing_call_leaves_no_trace(probe: &str) {
    let job = TestJob::new(probe);
    job.append_input(&[
        op("a", "buffer", "b1"),
        op("b", "rule", "r1"),
        op("c", "buffer", "b2"),
        op("a", "fail", "never"),
        op("d", "dump", ""),
    ]);
    job.run().unwrap();
    let want = (strings(&["b1", "b2"]), strings(&["r1"]));
    assert_eq!(
        dumped(&job, 0),
        BTreeSet::from([want.clone()]),
        "the failed call's item is not there"
    );
    let dead = job.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    // A restart starts from the checkpoint's lists.
    job.append_input(&[op("e", "dump", "")]);
    job.run().unwrap();
    assert_eq!(dumped(&job, 1), BTreeSet::from([want]));
}

fn operator_state_redistributes_when_the_parallelism_changes(probe: &str) {
    let items: Vec<String> = (0..9).map(|i| format!("i{i}")).collect();
    let mut input: Vec<String> = items.iter().map(|i| op(i, "buffer", i)).collect();
    input.push(op("x", "rule", "r1"));
    input.push(op("y", "rule", "r2"));

    // One worker holds every item; a savepoint; a restore into three workers.
    let first = TestJob::new(probe);
    first.append_input(&input);
    first.run().unwrap();
    let sp = first.savepoint("sp");
    // `savepoint dump` is for keyed state, and says so when asked for an operator state.
    let (ok, _, err) = eddy_tests::eddy(
        &[
            "savepoint",
            "dump",
            sp.to_str().unwrap(),
            "--operator",
            "op",
            "--state",
            "buffer",
        ],
        first.dir.path(),
    );
    assert!(!ok);
    assert!(err.contains("is an operator (non-keyed) state"), "{err}");
    let second = TestJob::new(probe).operator_settings("parallelism = 3");
    second.append_input(&input);
    second.append_input(&dumps());
    second.run_from_savepoint(&sp);
    // Even split: three contiguous parts of three, each item once; union: every worker
    // has both rules.
    let rules = strings(&["r1", "r2"]);
    let want: BTreeSet<_> = items
        .chunks(3)
        .map(|c| (c.to_vec(), rules.clone()))
        .collect();
    assert_eq!(dumped(&second, 0), want);

    // A restart over the same state into two workers: the three lists, concatenated in
    // worker order, split in two; each of the three workers wrote both rules, and a union
    // hands every worker all of them (as Flink's union redistribution does).
    let third = TestJob {
        extra_operator: "parallelism = 2\n".into(),
        ..second
    };
    third.append_input(&dumps());
    third.run().unwrap();
    let union = strings(&["r1", "r1", "r1", "r2", "r2", "r2"]);
    let want: BTreeSet<_> = [items[..5].to_vec(), items[5..].to_vec()]
        .into_iter()
        .map(|b| (b, union.clone()))
        .collect();
    assert_eq!(dumped(&third, 64), want);
}
