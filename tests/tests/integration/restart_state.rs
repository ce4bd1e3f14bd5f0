//! Guards durability: state lives in RocksDB on disk and a restarted job resumes from its
//! last checkpoint's position, so counts continue exactly across runs and across workers.

use eddy_tests::{TestJob, rec};

fn counts_of(out: &[(String, String)], key: &str) -> Vec<u64> {
    out.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.parse().unwrap())
        .collect()
}

#[test]
fn a_restarted_job_resumes_after_its_checkpoint_with_its_state() {
    let job = TestJob::new("word_count");
    job.append_input(&[rec("a", "a"), rec("b", "b"), rec("a", "a")]);
    let first = job.run().unwrap();
    assert_eq!(first.records_in, 3);
    assert!(first.resumed_from.is_none());

    // New input arrives; the job starts again on the same state directory.
    job.append_input(&[rec("a", "a"), rec("b", "b")]);
    let second = job.run().unwrap();
    assert_eq!(second.records_in, 2, "only the new records are read");
    let resumed = second.resumed_from.unwrap();
    assert_eq!(
        resumed.positions.values().copied().collect::<Vec<_>>(),
        vec![3]
    );

    let out = job.output();
    assert_eq!(counts_of(&out, "a"), vec![1, 2, 3]);
    assert_eq!(counts_of(&out, "b"), vec![1, 2]);

    // A third run with nothing new processes nothing and changes nothing.
    let third = job.run().unwrap();
    assert_eq!(third.records_in, 0);
    assert_eq!(job.output().len(), 5);
}

#[test]
fn state_survives_restart_with_another_parallelism() {
    let words: Vec<String> = (0..600)
        .map(|i| rec(&format!("w{}", i % 37), "x"))
        .collect();
    let job = TestJob::new("word_count").operator_settings("parallelism = 3\nbatch-size = 16");
    job.append_input(&words[..300]);
    job.run().unwrap();
    let job = TestJob {
        extra_operator: "parallelism = 2\nbatch-size = 7\n".into(),
        ..job
    };
    job.append_input(&words[300..]);
    job.run().unwrap();
    let out = job.output();
    assert_eq!(out.len(), 600);
    for w in 0..37 {
        let key = format!("w{w}");
        let expected: Vec<u64> = (1..=counts_of(&out, &key).len() as u64).collect();
        let mut got = counts_of(&out, &key);
        got.sort();
        assert_eq!(got, expected, "{key}");
        let n = (0..600).filter(|i| i % 37 == w).count();
        assert_eq!(got.len(), n);
    }
}

#[test]
fn a_small_cache_budget_evicts_and_still_counts_exactly() {
    // 1 MiB of cache for 20k keys forces checkpoints and eviction mid-run.
    let job = TestJob::new("word_count").state_settings("cache-mib = 1");
    let words: Vec<String> = (0..60_000)
        .map(|i| rec(&format!("key-{}", (i * 7919) % 20_000), "x"))
        .collect();
    job.append_input(&words);
    let report = job.run().unwrap();
    assert!(
        report.checkpoints > 2,
        "eviction forced checkpoints ({})",
        report.checkpoints
    );
    let out = job.output();
    let last = out
        .iter()
        .filter(|(k, _)| k == "key-0")
        .map(|(_, v)| v.clone())
        .next_back();
    assert_eq!(last.as_deref(), Some("3"));
    assert!(
        out.iter()
            .all(|(_, v)| ["1", "2", "3"].contains(&v.as_str()))
    );
    assert_eq!(out.iter().filter(|(_, v)| v == "3").count(), 20_000);
}

#[test]
fn the_key_group_count_cannot_change_for_existing_state() {
    let job = TestJob::new("word_count");
    job.append_input(&[rec("a", "a")]);
    job.run().unwrap();
    let job = TestJob {
        extra_state: "max-key-groups = 64\n".into(),
        ..job
    };
    let err = job.run().unwrap_err().to_string();
    assert!(
        err.contains("max-key-groups = 128") && err.contains("fixed"),
        "{err}"
    );
}
