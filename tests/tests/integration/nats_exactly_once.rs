//! Guards exactly-once through NATS JetStream (real nats-server, RocksDB, component): a
//! job reading a stream and writing a stream ends with exact state and exactly one output
//! message per input — straight, and after `kill -9` at several instants and restarts
//! (replays carry the same message ids and the stream drops them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eddy_host::config::JobConfig;
use eddy_host::io::nats::{LocalServer, NatsConn};
use eddy_host::job::{Job, RunOptions};
use eddy_host::runtime::Runtime;
use eddy_tests::{eddy_run, kill_runs_after, operator, run_to_end};

struct Setup {
    dir: tempfile::TempDir,
    server: LocalServer,
    conn: Arc<NatsConn>,
    records: u64,
    keys: u64,
}

fn setup(records: u64, keys: u64, checkpoint_interval: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&dir.path().join("nats")).unwrap();
    let conn = NatsConn::connect(server.url()).unwrap();
    conn.ensure_stream("words", &["words".to_string()], Duration::from_secs(120))
        .unwrap();
    let n = conn
        .publish_all(
            "words",
            (0..records).map(|i| {
                (
                    format!("in-{i}"),
                    format!("w{}", i * 7919 % keys).into_bytes(),
                )
            }),
        )
        .unwrap();
    assert_eq!(n, records);
    std::fs::write(
        dir.path().join("job.toml"),
        format!(
            r#"name = "nats-test"
[operator]
uid = "word-count"
module = "{module}"
[source]
type = "nats"
stream = "words"
bounded = true
[key]
from = "value"
[sink]
type = "nats"
subject = "counts"
[nats]
url = "{url}"
[state]
dir = "state"
checkpoint-interval = "{checkpoint_interval}"
"#,
            module = operator("word_count").display(),
            url = server.url(),
        ),
    )
    .unwrap();
    Setup {
        dir,
        server,
        conn,
        records,
        keys,
    }
}

impl Setup {
    fn job_file(&self) -> PathBuf {
        self.dir.path().join("job.toml")
    }

    /// One output per input, by message id, each with the payload a straight run gives it.
    fn assert_exactly_once(&self) {
        let out = self.conn.read_stream("counts").unwrap();
        assert_eq!(
            out.len() as u64,
            self.records,
            "one output message per input"
        );
        // Each input's output id exactly once (reported briefly: these sets are large).
        let mut seen = std::collections::HashSet::new();
        let duplicates: Vec<&str> = out
            .iter()
            .map(|m| m.id.as_deref().unwrap_or("(no id)"))
            .filter(|id| !seen.insert(id.to_string()))
            .collect();
        let missing: Vec<String> = (1..=self.records)
            .map(|s| format!("nats-test/word-count/nats:words/{s}/0"))
            .filter(|id| !seen.contains(id))
            .collect();
        assert!(
            duplicates.is_empty() && missing.is_empty(),
            "{} duplicate ids (e.g. {:?}), {} missing (e.g. {:?})",
            duplicates.len(),
            &duplicates[..duplicates.len().min(3)],
            missing.len(),
            &missing[..missing.len().min(3)]
        );
        // Golden: the output of input sequence s is fully determined — word
        // (s-1)*7919 % K, seen for the ((s-1)/K + 1)-th time — so a run with crashes must
        // give every id exactly the payload a straight run gives it. (Stream order is not
        // input order once a server restart made the sink publish again.)
        for m in &out {
            let id = m.id.as_deref().unwrap();
            let seq: u64 = id.rsplit('/').nth(1).unwrap().parse().unwrap();
            let i = seq - 1;
            assert_eq!(
                m.key.as_deref(),
                Some(format!("w{}", i * 7919 % self.keys).as_str()),
                "{id}"
            );
            assert_eq!(
                m.payload,
                (i / self.keys + 1).to_string().into_bytes(),
                "{id}"
            );
        }
    }
}

#[test]
fn word_count_over_200k_records_from_jetstream_is_exact() {
    let s = setup(200_000, 1000, "1s");
    let cfg = JobConfig::load(&s.job_file()).unwrap();
    let report = Job::open(cfg, Arc::new(Runtime::new(None).unwrap()))
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    assert_eq!(report.records_in, 200_000);
    assert_eq!(
        report.last_checkpoint.unwrap().positions.get("nats:words"),
        Some(&200_000)
    );
    s.assert_exactly_once();
}

#[test]
fn kill_9_during_processing_and_checkpoints_then_restart_is_exactly_once() {
    let s = setup(150_000, 500, "100ms");
    let killed = kill_runs_after(&s.job_file(), s.dir.path(), &[700, 900, 500, 1100, 800]);
    assert!(
        killed > 0,
        "the job always finished before the kill; give it more records"
    );
    run_to_end(&s.job_file(), s.dir.path());
    s.assert_exactly_once();
}

#[test]
fn an_abort_at_every_named_point_then_restart_is_exactly_once() {
    // Deterministic crashes: mid-batch, after emitting, and on both sides of the
    // checkpoint's state write (EDDY_FAULT aborts like kill -9).
    let s = setup(200_000, 400, "50ms");
    // Each run stops well before the end of the input (a batch is 512 records).
    let faults = [
        "after-process:30",
        "after-emit:25",
        "before-commit:3",
        "after-commit:2",
        "after-emit:10",
        "before-commit:2",
    ];
    for fault in faults {
        let out = eddy_run(&s.job_file(), s.dir.path())
            .env("EDDY_FAULT", fault)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("EDDY_FAULT: aborting"),
            "{fault} did not abort the job: {stderr}"
        );
    }
    run_to_end(&s.job_file(), s.dir.path());
    s.assert_exactly_once();
}

#[test]
fn a_nats_server_restart_mid_run_is_ridden_through_exactly_once() {
    let mut s = setup(150_000, 500, "200ms");
    let mut child = eddy_run(&s.job_file(), s.dir.path()).spawn().unwrap();
    // The outage must hit a job that is connected and processing (on a loaded machine
    // the start alone can take longer than a fixed sleep).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.conn.last_sequence("counts").unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job produced nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job finished before the server restart"
    );
    let (port, store) = (s.server.port(), s.dir.path().join("nats"));
    s.server.kill();
    std::thread::sleep(Duration::from_secs(1));
    s.server = LocalServer::start_on(&store, port).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The outage hit the job: its sink or source had to recover.
    assert!(
        stderr.contains("not acknowledged") || stderr.contains("reading again"),
        "{stderr}"
    );
    s.assert_exactly_once();
}

#[test]
fn a_missing_input_stream_and_an_unreachable_server_are_clear_errors() {
    let s = setup(10, 5, "1s");
    let text = std::fs::read_to_string(s.job_file()).unwrap();
    std::fs::write(
        s.job_file(),
        text.replace("stream = \"words\"", "stream = \"nope\""),
    )
    .unwrap();
    let cfg = JobConfig::load(&s.job_file()).unwrap();
    let err = Job::open(cfg, Arc::new(Runtime::new(None).unwrap()))
        .unwrap()
        .run(&RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("input stream `nope` not found"), "{err}");

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(s.job_file()).unwrap();
    let url = s.conn.url().to_string();
    std::fs::write(
        s.job_file(),
        text.replace(&url, &format!("nats://127.0.0.1:{dead}")),
    )
    .unwrap();
    let cfg = JobConfig::load(&s.job_file()).unwrap();
    let err = Job::open(cfg, Arc::new(Runtime::new(None).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "cannot connect to NATS at nats://127.0.0.1:{dead}"
        )),
        "{err}"
    );
}

#[test]
fn keys_can_come_from_a_subject_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&dir.path().join("nats")).unwrap();
    let conn = NatsConn::connect(server.url()).unwrap();
    conn.ensure_stream(
        "orders",
        &["orders.>".to_string()],
        Duration::from_secs(120),
    )
    .unwrap();
    for (region, n) in [("eu", 30), ("us", 20)] {
        let msgs = (0..n).map(|i| (format!("{region}-{i}"), b"order".to_vec()));
        conn.publish_all(&format!("orders.{region}.created"), msgs)
            .unwrap();
    }
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"regions\"\n[operator]\nuid = \"count\"\nmodule = \"{}\"\n\
             [source]\ntype = \"nats\"\nstream = \"orders\"\nbounded = true\n\
             [key]\nfrom = \"subject-token\"\nindex = 1\n\
             [sink]\ntype = \"nats\"\nsubject = \"per-region\"\n[nats]\nurl = \"{}\"\n",
            operator("word_count").display(),
            server.url()
        ),
    )
    .unwrap();
    let cfg = JobConfig::load(&job).unwrap();
    Job::open(cfg, Arc::new(Runtime::new(None).unwrap()))
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    let out = conn.read_stream("per-region").unwrap();
    let last = |region: &str| {
        out.iter()
            .filter(|m| m.key.as_deref() == Some(region))
            .map(|m| String::from_utf8(m.payload.clone()).unwrap())
            .next_back()
    };
    assert_eq!(
        (last("eu"), last("us")),
        (Some("30".into()), Some("20".into()))
    );

    // A subject token key on a file source is refused when the job file is read.
    let text = std::fs::read_to_string(&job).unwrap().replace(
        "type = \"nats\"\nstream = \"orders\"\nbounded = true",
        "type = \"file\"\npath = \"in.txt\"",
    );
    std::fs::write(&job, text).unwrap();
    let err = JobConfig::load(&job).unwrap_err().to_string();
    assert!(
        err.contains("subject-token") && err.contains("nats"),
        "{err}"
    );
}

#[test]
fn two_input_streams_with_their_own_keys_are_exactly_once_across_aborts() {
    // One job reads two streams: `clicks` (the value is the key, as the job's [key] says)
    // and `orders` (JSON; its source names its own key field). Positions are kept per
    // stream, so aborts and restarts lose and repeat nothing on either.
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&dir.path().join("nats")).unwrap();
    let conn = NatsConn::connect(server.url()).unwrap();
    let (clicks, orders, keys) = (30_000u64, 20_000u64, 300u64);
    for name in ["clicks", "orders"] {
        conn.ensure_stream(name, &[name.to_string()], Duration::from_secs(120))
            .unwrap();
    }
    conn.publish_all(
        "clicks",
        (0..clicks).map(|i| (format!("c{i}"), format!("w{}", i % keys).into_bytes())),
    )
    .unwrap();
    conn.publish_all(
        "orders",
        (0..orders).map(|i| {
            let body = format!(r#"{{"user": "w{}", "n": {i}}}"#, i * 7 % keys);
            (format!("o{i}"), body.into_bytes())
        }),
    )
    .unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "multi"
[operator]
uid = "word-count"
module = "{module}"
[[source]]
type = "nats"
stream = "clicks"
bounded = true
[[source]]
type = "nats"
stream = "orders"
bounded = true
key = {{ from = "json-field", field = "user" }}
[key]
from = "value"
[sink]
type = "nats"
subject = "counts"
[nats]
url = "{url}"
[state]
dir = "state"
checkpoint-interval = "50ms"
"#,
            module = operator("word_count").display(),
            url = server.url(),
        ),
    )
    .unwrap();
    for fault in ["after-emit:12", "before-commit:2", "after-commit:3"] {
        let out = eddy_run(&job, dir.path())
            .env("EDDY_FAULT", fault)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("EDDY_FAULT: aborting"),
            "{fault} did not abort the job: {stderr}"
        );
    }
    let stderr = run_to_end(&job, dir.path());
    assert!(
        stderr.contains("nats:clicks") && stderr.contains("nats:orders"),
        "the last checkpoint holds a position per stream: {stderr}"
    );

    let out = conn.read_stream("counts").unwrap();
    let mut ids = std::collections::HashSet::new();
    let mut counts: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for m in &out {
        assert!(ids.insert(m.id.clone().unwrap()), "duplicate {:?}", m.id);
        let n = String::from_utf8(m.payload.clone())
            .unwrap()
            .parse()
            .unwrap();
        counts.entry(m.key.clone().unwrap()).or_default().push(n);
    }
    for (stream, n) in [("clicks", clicks), ("orders", orders)] {
        for s in 1..=n {
            let id = format!("multi/word-count/nats:{stream}/{s}/0");
            assert!(ids.contains(&id), "missing {id}");
        }
    }
    assert_eq!(out.len() as u64, clicks + orders, "one output per input");
    // Each key's outputs are its counts 1..=total, each once: nothing counted twice.
    for k in 0..keys {
        let expected = (0..clicks).filter(|i| i % keys == k).count()
            + (0..orders).filter(|i| i * 7 % keys == k).count();
        let mut got = counts.remove(&format!("w{k}")).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (1..=expected as u64).collect::<Vec<_>>(), "key w{k}");
    }
}

#[test]
fn publish_and_read_name_one_of_several_source_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&dir.path().join("nats")).unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"two\"\n[operator]\nuid = \"count\"\nmodule = \"{}\"\n\
             [[source]]\ntype = \"nats\"\nstream = \"clicks\"\nsubject = \"clicks\"\n\
             [[source]]\ntype = \"nats\"\nstream = \"orders\"\nsubject = \"orders\"\n\
             [sink]\ntype = \"nats\"\nsubject = \"out\"\n[nats]\nurl = \"{}\"\n",
            operator("word_count").display(),
            server.url()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("in.txt"), "a\nb\n").unwrap();
    let (ok, _, err) = eddy_tests::eddy(&["publish", "job.toml", "in.txt"], dir.path());
    assert!(
        !ok && err.contains("clicks") && err.contains("orders") && err.contains("--stream"),
        "{err}"
    );
    let (ok, _, err) = eddy_tests::eddy(
        &["publish", "job.toml", "in.txt", "--stream", "orders"],
        dir.path(),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = eddy_tests::eddy(&["read", "job.toml", "--source", "orders"], dir.path());
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("\"value\":\"b\""), "{out}");
    let (ok, _, err) = eddy_tests::eddy(&["read", "job.toml", "--source"], dir.path());
    assert!(!ok && err.contains("name one"), "{err}");
}
