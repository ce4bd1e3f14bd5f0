//! Guards savepoints (real RocksDB, components built from source, the `eddy` binary): an
//! upgrade to a module with a new state schema through `migrate` continues every count
//! exactly; rescaling 1 → 4 → 2 workers through savepoints ends with the state and
//! outputs of a straight run; unclaimed state is refused unless allowed; a flipped byte is
//! refused with the file named; `inspect` and `dump` show what is inside; a savepoint of a
//! running job with `--stop` ends it at the savepoint, and a restore with more workers
//! continues exactly (real nats-server).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eddy_tests::{eddy, operator, read_pairs, rec};

/// One job file among several sharing an input: its own state and output.
fn job(dir: &Path, name: &str, uid: &str, module: &Path, settings: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"name = "sp"
[operator]
uid = "{uid}"
module = "{module}"
{settings}
[source]
type = "file"
path = "input.jsonl"
format = "json"
[sink]
type = "file"
path = "{name}-out.jsonl"
[state]
dir = "{name}-state"
"#,
            module = module.display(),
        ),
    )
    .unwrap();
    path
}

fn append(dir: &Path, from: u64, to: u64, keys: u64) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("input.jsonl"))
        .unwrap();
    for i in from..to {
        let w = format!("w{}", i * 7919 % keys);
        writeln!(f, "{}", rec(&w, "")).unwrap();
    }
}

fn ok(args: &[&str], dir: &Path) -> String {
    let (ok, out, err) = eddy(args, dir);
    assert!(ok, "eddy {args:?} failed: {err}");
    format!("{out}{err}")
}

/// Each input's expected output: (word, count so far), in input order.
fn expected(n: u64, keys: u64) -> Vec<(String, String)> {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    (0..n)
        .map(|i| {
            let w = format!("w{}", i * 7919 % keys);
            let c = seen.entry(w.clone()).or_default();
            *c += 1;
            (w, c.to_string())
        })
        .collect()
}

#[test]
fn upgrade_through_a_savepoint_migrates_the_state_schema_and_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = job(d, "v1", "count", &operator("count_u32"), "");
    let v2 = job(d, "v2", "count", &operator("count_struct"), "");
    append(d, 0, 5000, 300);
    ok(&["run", v1.to_str().unwrap(), "--progress-every", "0s"], d);
    append(d, 5000, 10_000, 300);
    let out = ok(&["savepoint", v1.to_str().unwrap(), "sp"], d);
    assert!(out.contains("300 entries"), "{out}");
    let inspect = ok(&["savepoint", "inspect", "sp"], d);
    assert!(
        inspect.contains("position   file:input.jsonl 5000")
            && inspect
                .contains("state count (value state, schema v1, codec postcard): 300 entries"),
        "{inspect}"
    );
    let out = ok(
        &[
            "run",
            v2.to_str().unwrap(),
            "--progress-every",
            "0s",
            "--from-savepoint",
            "sp",
        ],
        d,
    );
    assert!(out.contains("300 entries (300 migrated)"), "{out}");
    let mut all = read_pairs(&d.join("v1-out.jsonl"));
    assert_eq!(all.len(), 5000);
    all.extend(read_pairs(&d.join("v2-out.jsonl")));
    // In input order, one output per input: nothing skipped or processed twice, and every
    // count continues from the migrated one.
    assert_eq!(all, expected(10_000, 300));
    // The restored job's own savepoint holds schema 2.
    ok(&["savepoint", v2.to_str().unwrap(), "sp2"], d);
    let inspect = ok(&["savepoint", "inspect", "sp2"], d);
    assert!(
        inspect.contains("state count (value state, schema v2, codec postcard): 300 entries")
            && inspect.contains("position   file:input.jsonl 10000"),
        "{inspect}"
    );
}

/// The `count` state of a savepoint as sorted dump lines.
fn dump(dir: &Path, sp: &str) -> Vec<String> {
    dump_state(dir, sp, "word-count", "count")
}

/// A state of a savepoint as sorted dump lines.
fn dump_state(dir: &Path, sp: &str, operator: &str, state: &str) -> Vec<String> {
    let out = eddy(
        &[
            "savepoint",
            "dump",
            sp,
            "--operator",
            operator,
            "--state",
            state,
        ],
        dir,
    );
    assert!(out.0, "{}", out.2);
    let mut lines: Vec<String> = out.1.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// `eddy savepoint bootstrap JOB SP --state STATE=FILE --position file:input.jsonl=AT`.
fn bootstrap(dir: &Path, job: &Path, sp: &str, state_file: &str, at: u64) -> String {
    ok(
        &[
            "savepoint",
            "bootstrap",
            job.to_str().unwrap(),
            sp,
            "--state",
            state_file,
            "--position",
            &format!("file:input.jsonl={at}"),
        ],
        dir,
    )
}

#[test]
fn rescaling_1_to_4_to_2_workers_through_savepoints_matches_a_straight_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wc = operator("word_count");
    let straight = job(d, "straight", "word-count", &wc, "");
    let p1 = job(d, "p1", "word-count", &wc, "parallelism = 1");
    let p4 = job(d, "p4", "word-count", &wc, "parallelism = 4");
    let p2 = job(d, "p2", "word-count", &wc, "parallelism = 2");
    let run = |j: &Path, from: Option<&str>| {
        let mut args = vec!["run", j.to_str().unwrap(), "--progress-every", "0s"];
        if let Some(sp) = from {
            args.extend(["--from-savepoint", sp]);
        }
        ok(&args, d)
    };
    append(d, 0, 4000, 500);
    run(&p1, None);
    ok(&["savepoint", p1.to_str().unwrap(), "sp1"], d);
    append(d, 4000, 8000, 500);
    run(&p4, Some("sp1"));
    ok(&["savepoint", p4.to_str().unwrap(), "sp4"], d);
    append(d, 8000, 12_000, 500);
    run(&p2, Some("sp4"));
    ok(&["savepoint", p2.to_str().unwrap(), "sp2"], d);
    run(&straight, None);
    ok(&["savepoint", straight.to_str().unwrap(), "sp-straight"], d);

    assert_eq!(dump(d, "sp2"), dump(d, "sp-straight"));
    assert_eq!(dump(d, "sp2").len(), 500);
    // Outputs: workers interleave differently, so compare as multisets.
    let mut phased: Vec<(String, String)> = ["p1", "p4", "p2"]
        .iter()
        .flat_map(|n| read_pairs(&d.join(format!("{n}-out.jsonl"))))
        .collect();
    let mut whole = read_pairs(&d.join("straight-out.jsonl"));
    phased.sort();
    whole.sort();
    assert_eq!(whole.len(), 12_000);
    assert_eq!(phased, whole);
    let dumped = ok(
        &[
            "savepoint",
            "dump",
            "sp2",
            "--operator",
            "word-count",
            "--state",
            "count",
            "--key",
            "w7",
        ],
        d,
    );
    assert_eq!(dumped.lines().count(), 1, "{dumped}");
    assert!(dumped.contains(r#""key":"w7""#), "{dumped}");
}

#[test]
fn unclaimed_state_and_corrupt_savepoints_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wc = operator("word_count");
    let first = job(d, "first", "word-count", &wc, "");
    append(d, 0, 1000, 50);
    ok(
        &["run", first.to_str().unwrap(), "--progress-every", "0s"],
        d,
    );
    ok(&["savepoint", first.to_str().unwrap(), "sp"], d);

    // Retained checkpoints an earlier run left beside an emptied state directory would
    // be taken for the restored state's (a fallback would resume at their positions).
    let stale = job(d, "stale", "word-count", &wc, "");
    std::fs::create_dir_all(d.join("stale-state-retained/00000000000000000010")).unwrap();
    let (ok_, _, err) = eddy(
        &["run", stale.to_str().unwrap(), "--from-savepoint", "sp"],
        d,
    );
    assert!(
        !ok_ && err.contains("stale-state-retained") && err.contains("earlier run"),
        "{err}"
    );

    // Another operator uid claims nothing of it.
    let other = job(d, "other", "renamed", &wc, "");
    let (ok_, _, err) = eddy(
        &["run", other.to_str().unwrap(), "--from-savepoint", "sp"],
        d,
    );
    assert!(
        !ok_ && err
            .contains("no operator of the job claims state `count` of operator `word-count`")
            && err.contains("--allow-non-restored-state"),
        "{err}"
    );
    assert!(
        !d.join("other-state").exists(),
        "a refused restore leaves no state"
    );
    let out = ok(
        &[
            "run",
            other.to_str().unwrap(),
            "--progress-every",
            "0s",
            "--from-savepoint",
            "sp",
            "--allow-non-restored-state",
        ],
        d,
    );
    assert!(out.contains("sp: 0 entries"), "{out}");
    // Its state started empty, but the positions were restored: nothing was processed.
    assert!(read_pairs(&d.join("other-out.jsonl")).is_empty());

    // A state kind the savepoint holds otherwise.
    let map = job(d, "map", "word-count", &operator("count_as_map"), "");
    let (ok_, _, err) = eddy(&["run", map.to_str().unwrap(), "--from-savepoint", "sp"], d);
    assert!(
        !ok_ && err.contains("declares state `count` as map state"),
        "{err}"
    );

    // A flipped byte in a data file, then in the manifest.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("sp/manifest.json")).unwrap()).unwrap();
    let file = manifest["operators"][0]["states"][0]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let flip = |path: &Path, at: usize| {
        let mut b = std::fs::read(path).unwrap();
        let at = at.min(b.len() - 1);
        b[at] ^= 0x20;
        std::fs::write(path, b).unwrap();
    };
    let fresh = job(d, "fresh", "word-count", &wc, "");
    flip(&d.join("sp").join(&file), 40);
    let (ok_, _, err) = eddy(
        &["run", fresh.to_str().unwrap(), "--from-savepoint", "sp"],
        d,
    );
    assert!(
        !ok_ && err.contains(&file) && err.contains("corrupt"),
        "{err}"
    );
    assert!(!d.join("fresh-state").exists());
    flip(&d.join("sp").join(&file), 40);
    flip(&d.join("sp/manifest.json"), 30);
    let (ok_, _, err) = eddy(
        &["run", fresh.to_str().unwrap(), "--from-savepoint", "sp"],
        d,
    );
    assert!(
        !ok_ && err.contains("manifest.json") && err.contains("corrupt"),
        "{err}"
    );
    // A job file that changes the key-group count.
    flip(&d.join("sp/manifest.json"), 30);
    let kg = job(d, "kg", "word-count", &wc, "");
    let text = std::fs::read_to_string(&kg).unwrap() + "max-key-groups = 64\n";
    std::fs::write(&kg, text).unwrap();
    let (ok_, _, err) = eddy(&["run", kg.to_str().unwrap(), "--from-savepoint", "sp"], d);
    assert!(
        !ok_ && err.contains("key-group count is fixed") && err.contains("128"),
        "{err}"
    );
    // The original restores fine once the bytes are back.
    ok(
        &[
            "run",
            fresh.to_str().unwrap(),
            "--progress-every",
            "0s",
            "--from-savepoint",
            "sp",
        ],
        d,
    );
}

#[test]
fn a_savepoint_with_stop_ends_a_running_job_at_it_and_a_rescaled_restore_continues_exactly() {
    use super::hot_swap::{RECORDS, Swapping};
    let s = Swapping::new(1);
    let d = s.dir.path();
    let mut running = s.start(None);
    let url = format!("http://127.0.0.1:{}", s.port);
    s.under_load(10_000, || {
        s.wait_for("the first outputs", || s.out_count() > 2000);
        let out = ok(&["savepoint", "--job", &url, "sp", "--stop"], d);
        assert!(out.contains("the job stopped at it"), "{out}");
    });
    let status = running.0.wait().unwrap();
    assert!(status.success(), "the job ends cleanly at the savepoint");
    let inspect = ok(&["savepoint", "inspect", "sp"], d);
    let position: u64 = inspect
        .lines()
        .find_map(|l| l.strip_prefix("position   nats:words "))
        .unwrap_or_else(|| panic!("{inspect}"))
        .parse()
        .unwrap();
    // The producer held back the last 2,000 inputs until the savepoint was taken.
    assert!(position > 2000 && position <= 8000, "{position}");
    // Nothing after the savepoint's position was processed: one output per input up to it.
    assert_eq!(s.out_count(), position);
    // Restore into fresh state with 3 workers and go on.
    let job = std::fs::read_to_string(s.job_file())
        .unwrap()
        .replace("parallelism = 1", "parallelism = 3")
        .replace("dir = \"state\"", "dir = \"state-3\"");
    assert!(
        job.contains("parallelism = 3") && job.contains("state-3"),
        "{job}"
    );
    std::fs::write(d.join("job3.toml"), job).unwrap();
    let _restored = s.start_job(&d.join("job3.toml"), None, &["--from-savepoint", "sp"]);
    s.produce(10_000, RECORDS);
    s.wait_for("every output", || s.out_count() >= RECORDS);
    assert!(s.assert_exact().is_empty());
    // A running savepoint without stop, and the job goes on.
    let out = ok(&["savepoint", "--job", &url, "sp-live"], d);
    assert!(out.contains(": 100 entries"), "{out}");
    let inspect = ok(&["savepoint", "inspect", "sp-live"], d);
    assert!(
        inspect.contains(&format!("position   nats:words {RECORDS}")),
        "{inspect}"
    );
    assert!(s.jobs()[0]["status"] == "running");
}

#[test]
fn dump_then_bootstrap_then_run_gives_the_results_of_the_original_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wc = operator("word_count");
    let first = job(d, "first", "word-count", &wc, "");
    append(d, 0, 3000, 200);
    ok(
        &["run", first.to_str().unwrap(), "--progress-every", "0s"],
        d,
    );
    ok(&["savepoint", first.to_str().unwrap(), "sp"], d);
    let dumped = dump(d, "sp");
    assert_eq!(dumped.len(), 200);
    std::fs::write(d.join("count.jsonl"), dumped.join("\n")).unwrap();
    let out = bootstrap(d, &first, "sp-boot", "count=count.jsonl", 3000);
    assert!(out.contains("200 entries"), "{out}");
    assert_eq!(dump(d, "sp-boot"), dumped);
    append(d, 3000, 6000, 200);
    let from_original = job(d, "a", "word-count", &wc, "");
    let from_boot = job(d, "b", "word-count", &wc, "parallelism = 2");
    for (j, sp) in [(&from_original, "sp"), (&from_boot, "sp-boot")] {
        ok(
            &[
                "run",
                j.to_str().unwrap(),
                "--progress-every",
                "0s",
                "--from-savepoint",
                sp,
            ],
            d,
        );
    }
    let a = read_pairs(&d.join("a-out.jsonl"));
    let mut b = read_pairs(&d.join("b-out.jsonl"));
    assert_eq!(a, expected(6000, 200)[3000..].to_vec());
    let mut a_sorted = a.clone();
    a_sorted.sort();
    b.sort();
    assert_eq!(a_sorted, b);
    // A state the module does not declare is named.
    let (ok_, _, err) = eddy(
        &[
            "savepoint",
            "bootstrap",
            first.to_str().unwrap(),
            "sp-bad",
            "--state",
            "nope=count.jsonl",
        ],
        d,
    );
    assert!(
        !ok_ && err.contains("declares no such state") && err.contains("it declares: count"),
        "{err}"
    );
}

#[test]
fn a_json_state_dumps_as_json_and_bootstraps_from_edited_lines() {
    // The order-state-machine example keeps each order's status with the JSON codec.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let osm = operator("order_state_machine");
    let event = |order: &str, event: &str| {
        serde_json::json!({
            "key": order,
            "value": serde_json::json!({"order": order, "event": event}).to_string(),
        })
        .to_string()
    };
    let lines = [
        event("o1", "create"),
        event("o2", "create"),
        event("o1", "pay"),
    ];
    std::fs::write(d.join("input.jsonl"), lines.join("\n") + "\n").unwrap();
    let first = job(d, "first", "orders", &osm, "");
    ok(
        &["run", first.to_str().unwrap(), "--progress-every", "0s"],
        d,
    );
    ok(&["savepoint", first.to_str().unwrap(), "sp"], d);
    let inspect = ok(&["savepoint", "inspect", "sp"], d);
    assert!(inspect.contains("codec json"), "{inspect}");
    let dump = |sp: &str| dump_state(d, sp, "orders", "status");
    let dumped = dump("sp");
    assert_eq!(
        dumped,
        [
            r#"{"key":"o1","value":"paid"}"#,
            r#"{"key":"o2","value":"created"}"#
        ]
    );
    // Mark o2 paid by hand: then shipping it is a valid transition.
    let edited = dumped.join("\n").replace(r#""created""#, r#""paid""#);
    std::fs::write(d.join("status.jsonl"), edited).unwrap();
    let out = bootstrap(d, &first, "sp-boot", "status=status.jsonl", 3);
    assert!(out.contains("2 entries"), "{out}");
    assert_eq!(
        dump("sp-boot"),
        [
            r#"{"key":"o1","value":"paid"}"#,
            r#"{"key":"o2","value":"paid"}"#
        ]
    );
    let mut more = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("input.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut more, (event("o2", "ship") + "\n").as_bytes()).unwrap();
    let next = job(d, "next", "orders", &osm, "");
    ok(
        &[
            "run",
            next.to_str().unwrap(),
            "--progress-every",
            "0s",
            "--from-savepoint",
            "sp-boot",
        ],
        d,
    );
    let out = std::fs::read_to_string(d.join("next-out.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(r#"\"order\":\"o2\""#) && out.contains(r#"\"status\":\"shipped\""#),
        "{out}"
    );
}
