//! Guards C4: a damaged newest checkpoint is detected and the job falls back to a retained
//! older one, with a clear log line, and still ends with exact state; without a retained
//! copy, the damage is refused with a message that names the directory.

use eddy_tests::{TestJob, rec};

fn last_counts(job: &TestJob) -> std::collections::HashMap<String, u64> {
    let mut last = std::collections::HashMap::new();
    for (k, v) in job.output() {
        last.insert(k, v.parse::<u64>().unwrap());
    }
    last
}

fn words(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| rec(&format!("w{}", i % 7), "x")).collect()
}

fn flip_checkpoint_record(job: &TestJob) {
    let db = eddy_host::state::StateDb::open(&job.path("state"), 128).unwrap();
    let mut bad = db.get_meta("checkpoint").unwrap().unwrap();
    let last = bad.len() - 5;
    bad[last] ^= 0x20;
    db.commit(Vec::new(), &[("checkpoint", bad)]).unwrap();
}

fn garble_manifests(job: &TestJob) {
    for f in std::fs::read_dir(job.path("state")).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("MANIFEST")
        {
            std::fs::write(&p, b"this is not a manifest").unwrap();
        }
    }
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_a_retained_one_and_ends_exact() {
    for damage in [flip_checkpoint_record as fn(&TestJob), garble_manifests] {
        let job = TestJob::new("word_count")
            .operator_settings("batch-size = 16")
            .state_settings("retained-checkpoints = 2\nretain-every = 1");
        job.append_input(&words(0..70));
        job.run().unwrap();
        job.append_input(&words(70..140));
        job.run().unwrap();
        damage(&job);
        job.append_input(&words(140..210));
        let report = job.run().unwrap();
        assert!(
            report.resumed_from.is_some(),
            "resumed from a retained checkpoint"
        );
        let last = last_counts(&job);
        assert_eq!(last.len(), 7);
        assert!(
            last.values().all(|&n| n == 30),
            "exact final counts: {last:?}"
        );
        let aside: Vec<_> = std::fs::read_dir(job.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("state.damaged-")
            })
            .collect();
        assert_eq!(
            aside.len(),
            1,
            "the damaged state is kept aside for inspection"
        );
    }
}

#[test]
fn without_a_retained_copy_damage_is_refused_naming_the_directory() {
    let job = TestJob::new("word_count").state_settings("retained-checkpoints = 0");
    job.append_input(&words(0..20));
    job.run().unwrap();
    flip_checkpoint_record(&job);
    let err = job.run().unwrap_err().to_string();
    assert!(err.contains("corrupt") && err.contains("state"), "{err}");
}
