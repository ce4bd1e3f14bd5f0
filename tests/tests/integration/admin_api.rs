//! Guards the admin HTTP API of a running job: `GET /jobs` and `GET /metrics` answer from
//! the real `eddy` binary while it processes, with live figures; a port in use is a clear
//! error.

use std::time::{Duration, Instant};

use eddy_tests::{KillOnDrop, eddy_run, free_port, http_get as get, operator};

fn job_file(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "admin"
[operator]
uid = "word-count"
module = "{}"
[source]
type = "generator"
count = 2000000000
keys = 1000
[sink]
type = "discard"
[state]
dir = "state"
checkpoint-interval = "100ms"
[admin]
listen = "127.0.0.1:{port}"
"#,
            operator("word_count").display()
        ),
    )
    .unwrap();
    job
}

#[test]
fn jobs_and_metrics_answer_with_live_figures_while_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let job = job_file(dir.path(), port);
    let _child = KillOnDrop(eddy_run(&job, dir.path()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let jobs = loop {
        if let Some((200, body)) = get(port, "/jobs") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v[0]["operators"][0]["records-in"].as_u64().unwrap_or(0) > 0
                && !v[0]["last-checkpoint"].is_null()
            {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "no live figures from /jobs");
        std::thread::sleep(Duration::from_millis(100));
    };
    let j = &jobs[0];
    assert_eq!(j["name"], "admin");
    assert_eq!(j["status"], "running");
    assert_eq!(j["sources"], serde_json::json!(["generator"]));
    let op = &j["operators"][0];
    assert_eq!(op["uid"], "word-count");
    assert_eq!(op["module-sha256"].as_str().unwrap().len(), 64);
    assert!(
        j["last-checkpoint"]["positions"]["generator"]
            .as_u64()
            .unwrap()
            > 0
    );

    let (code, text) = get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    let labels = r#"{job="admin",operator="word-count"}"#;
    let records_in: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("eddy_records_in_total{labels} ")))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!(records_in > 0);
    assert!(
        text.contains("# TYPE eddy_process_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"eddy_checkpoint_seconds_bucket{job="admin",operator="word-count",le="+Inf"}"#
        ),
        "{text}"
    );
    // The figures move on.
    std::thread::sleep(Duration::from_millis(300));
    let (_, later) = get(port, "/metrics").unwrap();
    let records_later: u64 = later
        .lines()
        .find_map(|l| l.strip_prefix(&format!("eddy_records_in_total{labels} ")))
        .unwrap()
        .parse()
        .unwrap();
    assert!(records_later > records_in);
    assert_eq!(get(port, "/nothing-here").unwrap().0, 404);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let job = job_file(dir.path(), port);
    let out = eddy_run(&job, dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && err.contains("[admin] listen"),
        "{err}"
    );
}
