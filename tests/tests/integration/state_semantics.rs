//! Guards the WIT state semantics end to end (SDK → component → host → RocksDB): every
//! value, map and list operation, paged iteration that merges cached and stored entries,
//! clear, isolation between keys, reducing and aggregating state, and persistence of all of
//! it across a restart. The same scripts run against the state probe in every language with
//! an SDK (Rust, Python, JavaScript) and must get the same answers.

use eddy_tests::TestJob;
use serde_json::{Value, json};

fn cmd(key: &str, c: Value) -> String {
    json!({ "key": key, "value": c.to_string() }).to_string()
}

/// Runs the probe over `cmds` (appended to its input) and returns the answers, in order.
fn run(job: &TestJob, cmds: &[(&str, Value)]) -> Vec<(String, Value)> {
    let before = job.output().len();
    let lines: Vec<String> = cmds.iter().map(|(k, c)| cmd(k, c.clone())).collect();
    job.append_input(&lines);
    job.run().unwrap();
    job.output()[before..]
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap()))
        .collect()
}

eddy_tests::in_every_language!("state_probe":
    every_state_operation_behaves_as_the_contract_says,
    map_iteration_pages_through_stored_and_changed_entries_in_order,
    a_failing_record_leaves_no_state_change_behind,
);

fn value(v: Value) -> Value {
    json!({ "value": v })
}

fn ok() -> Value {
    json!({ "ok": true })
}

fn every_state_operation_behaves_as_the_contract_says(probe: &str) {
    // A small batch size so that writes and reads of one key span batches, and some
    // commands share a batch with their own earlier writes.
    let job = TestJob::new(probe).operator_settings("batch-size = 4");
    let script: Vec<(&str, Value, Value)> = vec![
        ("a", json!({"op": "value-get"}), value(Value::Null)),
        ("a", json!({"op": "value-set", "v": "x"}), ok()),
        ("a", json!({"op": "value-get"}), value(json!("x"))),
        ("b", json!({"op": "value-get"}), value(Value::Null)),
        ("a", json!({"op": "value-clear"}), ok()),
        ("a", json!({"op": "value-get"}), value(Value::Null)),
        ("a", json!({"op": "value-set", "v": "kept"}), ok()),
        ("a", json!({"op": "map-put", "k": "k1", "v": "v1"}), ok()),
        ("a", json!({"op": "map-put", "k": "k2", "v": "v2"}), ok()),
        ("a", json!({"op": "map-put", "k": "k10", "v": "v10"}), ok()),
        ("a", json!({"op": "map-put", "k": "k1", "v": "v1b"}), ok()),
        (
            "a",
            json!({"op": "map-get", "k": "k1"}),
            value(json!("v1b")),
        ),
        ("b", json!({"op": "map-get", "k": "k1"}), value(Value::Null)),
        (
            "a",
            json!({"op": "map-contains", "k": "k2"}),
            value(json!(true)),
        ),
        ("a", json!({"op": "map-remove", "k": "k2"}), ok()),
        (
            "a",
            json!({"op": "map-contains", "k": "k2"}),
            value(json!(false)),
        ),
        (
            "a",
            json!({"op": "map-entries", "page": 1}),
            value(json!([["k1", "v1b"], ["k10", "v10"]])),
        ),
        ("a", json!({"op": "map-keys"}), value(json!(["k1", "k10"]))),
        ("a", json!({"op": "map-is-empty"}), value(json!(false))),
        ("b", json!({"op": "map-is-empty"}), value(json!(true))),
        ("c", json!({"op": "map-put", "k": "z", "v": "1"}), ok()),
        ("c", json!({"op": "map-clear"}), ok()),
        ("c", json!({"op": "map-is-empty"}), value(json!(true))),
        ("c", json!({"op": "map-entries"}), value(json!([]))),
        ("a", json!({"op": "list-get"}), value(json!([]))),
        ("a", json!({"op": "list-add", "v": "x"}), ok()),
        ("a", json!({"op": "list-add-all", "vs": ["y", "z"]}), ok()),
        (
            "a",
            json!({"op": "list-get"}),
            value(json!(["x", "y", "z"])),
        ),
        ("b", json!({"op": "list-get"}), value(json!([]))),
        ("c", json!({"op": "list-update", "vs": ["q"]}), ok()),
        ("c", json!({"op": "list-get"}), value(json!(["q"]))),
        ("c", json!({"op": "list-clear"}), ok()),
        ("c", json!({"op": "list-get"}), value(json!([]))),
        ("a", json!({"op": "reducing-get"}), value(Value::Null)),
        ("a", json!({"op": "reducing-add", "n": 5}), ok()),
        ("a", json!({"op": "reducing-add", "n": 7}), ok()),
        ("a", json!({"op": "reducing-get"}), value(json!(12))),
        ("a", json!({"op": "aggregating-add", "n": 1}), ok()),
        ("a", json!({"op": "aggregating-add", "n": 2}), ok()),
        ("a", json!({"op": "aggregating-get"}), value(json!(1.5))),
    ];
    let cmds: Vec<(&str, Value)> = script.iter().map(|(k, c, _)| (*k, c.clone())).collect();
    let answers = run(&job, &cmds);
    assert_eq!(answers.len(), script.len());
    for ((key, c, want), (got_key, got)) in script.iter().zip(&answers) {
        assert_eq!(
            (key, want),
            (&got_key.as_str(), got),
            "answer to {c} for key {key}"
        );
    }

    // After a restart everything comes from RocksDB.
    let after = run(
        &job,
        &[
            ("a", json!({"op": "value-get"})),
            ("a", json!({"op": "map-entries", "page": 1})),
            ("a", json!({"op": "list-get"})),
            ("c", json!({"op": "map-is-empty"})),
            ("a", json!({"op": "reducing-get"})),
            ("a", json!({"op": "aggregating-get"})),
        ],
    );
    let got: Vec<Value> = after.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        got,
        vec![
            value(json!("kept")),
            value(json!([["k1", "v1b"], ["k10", "v10"]])),
            value(json!(["x", "y", "z"])),
            value(json!(true)),
            value(json!(12)),
            value(json!(1.5)),
        ]
    );
}

fn map_iteration_pages_through_stored_and_changed_entries_in_order(probe: &str) {
    let job = TestJob::new(probe).operator_settings("batch-size = 50");
    // 300 entries, stored by the first run.
    let puts: Vec<(&str, Value)> = (0..300)
        .map(|i| {
            (
                "m",
                json!({"op": "map-put", "k": format!("{i:04}"), "v": format!("v{i}")}),
            )
        })
        .collect();
    run(&job, &puts);
    // The second run changes some (in the cache, over what RocksDB holds) and pages
    // through all of them, 7 at a time.
    let mut cmds: Vec<(&str, Value)> = Vec::new();
    for i in (0..300).step_by(10) {
        cmds.push(("m", json!({"op": "map-remove", "k": format!("{i:04}")})));
    }
    for i in (5..300).step_by(50) {
        cmds.push((
            "m",
            json!({"op": "map-put", "k": format!("{i:04}"), "v": "new"}),
        ));
    }
    cmds.push(("m", json!({"op": "map-put", "k": "9999", "v": "last"})));
    cmds.push(("m", json!({"op": "map-entries", "page": 7})));
    let answers = run(&job, &cmds);
    let entries = answers.last().unwrap().1["value"]
        .as_array()
        .unwrap()
        .clone();
    let mut expected: Vec<Value> = Vec::new();
    for i in 0..300 {
        if i % 10 == 0 {
            continue;
        }
        let v = if i % 50 == 5 {
            "new".to_string()
        } else {
            format!("v{i}")
        };
        expected.push(json!([format!("{i:04}"), v]));
    }
    expected.push(json!(["9999", "last"]));
    assert_eq!(entries, expected);
}

fn a_failing_record_leaves_no_state_change_behind(probe: &str) {
    let job = TestJob::new(probe).operator_settings("batch-size = 10");
    // The failing records write every kind of state (through the batch result and through
    // host calls) and emit before failing, in a batch with good records of the same key.
    let answers = run(
        &job,
        &[
            ("a", json!({"op": "value-set", "v": "before"})),
            ("a", json!({"op": "map-put", "k": "k", "v": "before"})),
            ("a", json!({"op": "write-then-fail", "v": "bad1"})),
            ("a", json!({"op": "write-then-trap", "v": "bad2"})),
            ("a", json!({"op": "value-get"})),
            ("a", json!({"op": "map-entries"})),
            ("a", json!({"op": "list-get"})),
        ],
    );
    let got: Vec<Value> = answers.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        got,
        vec![
            ok(),
            ok(),
            value(json!("before")),
            value(json!([["k", "before"]])),
            value(json!([])),
        ]
    );
    let dead = job.dead_letters();
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0]["headers"]["eddy-error"]
            .as_str()
            .unwrap()
            .contains("asked to fail")
    );
    assert!(
        dead[1]["headers"]["eddy-error"]
            .as_str()
            .unwrap()
            .contains("trapped")
    );
}
