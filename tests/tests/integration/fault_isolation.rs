//! Guards fault isolation: an operator that traps, loops, exhausts memory or returns an
//! error on some records never takes the host down, and loses none of the other records —
//! each bad record goes to the dead-letter output, and the state keeps no half-applied
//! effects of it.

use eddy_tests::{TestJob, rec};

#[test]
fn trap_loop_oom_and_error_are_dead_lettered_and_the_rest_is_exact() {
    let job = TestJob::new("faulty")
        .operator_settings("max-call-time = \"200ms\"\nmax-memory-mib = 64\nbatch-size = 8");
    let mut input = Vec::new();
    for i in 0..40 {
        input.push(rec(&format!("k{}", i % 3), "ok"));
        match i {
            5 => input.push(rec("k0", "trap")),
            13 => input.push(rec("k1", "loop")),
            21 => input.push(rec("k2", "oom")),
            30 => input.push(rec("k0", "error")),
            _ => {}
        }
    }
    job.append_input(&input);
    let report = job.run().unwrap();
    assert_eq!(report.records_in, 40, "every good record is processed");
    assert_eq!(report.dead_letters, 4);

    // Counts are exact: the failing records' batches were re-run without them.
    let out = job.output();
    assert_eq!(out.len(), 40);
    for k in ["k0", "k1", "k2"] {
        let counts: Vec<u64> = out
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.parse().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=counts.len() as u64).collect();
        assert_eq!(
            counts, expected,
            "counts of {k} are consecutive, none lost or doubled"
        );
    }

    let dead = job.dead_letters();
    let errors: Vec<(&str, &str)> = dead
        .iter()
        .map(|d| {
            (
                d["value"].as_str().unwrap(),
                d["headers"]["eddy-error"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 4);
    let find = |v: &str| {
        errors
            .iter()
            .find(|(val, _)| *val == v)
            .unwrap()
            .1
            .to_string()
    };
    assert!(find("trap").contains("trapped"), "{}", find("trap"));
    assert!(find("loop").contains("max-call-time"), "{}", find("loop"));
    assert!(find("oom").contains("max-memory-mib"), "{}", find("oom"));
    assert!(
        find("error").contains("returned an error"),
        "{}",
        find("error")
    );
    for d in &dead {
        assert!(
            d["headers"]["eddy-position"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        assert_eq!(d["headers"]["eddy-operator"], "op");
    }
}

#[test]
fn unreadable_lines_and_missing_keys_are_dead_lettered_without_calling_the_operator() {
    let job = TestJob::new("faulty");
    job.append_input(&[rec("a", "ok"), "{not json".to_string(), rec("a", "ok")]);
    let report = job.run().unwrap();
    assert_eq!(report.records_in, 2);
    assert_eq!(
        job.output(),
        vec![("a".into(), "1".into()), ("a".into(), "2".into())]
    );
    let dead = job.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["value"], "{not json");
    assert!(
        dead[0]["headers"]["eddy-error"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
}
