//! Guards the command line and module loading: `eddy inspect-module` shows what an
//! operator declares, and a missing, malformed or incompatible module, or a bad job file,
//! gets one clear error that names the file and the fix.

use eddy_tests::{TestJob, eddy, operator, rec};

#[test]
fn inspect_module_shows_version_states_and_world() {
    let wc = operator("word_count");
    let (ok, stdout, stderr) = eddy(
        &["inspect-module", wc.to_str().unwrap()],
        &std::env::temp_dir(),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("operator word-count"), "{stdout}");
    assert!(
        stdout.contains("[0] count (value state, schema v1, codec postcard)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("export eddy:operator/operator@0.4.0"),
        "{stdout}"
    );

    let (ok, stdout, _) = eddy(
        &["inspect-module", "--json", wc.to_str().unwrap()],
        &std::env::temp_dir(),
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["states"][0]["kind"], "value");
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
}

fn load_error(bytes: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("op.wasm");
    if let Some(b) = bytes {
        std::fs::write(&path, b).unwrap();
    }
    let (ok, _, stderr) = eddy(&["inspect-module", path.to_str().unwrap()], dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("op.wasm"),
        "the error names the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn malformed_modules_get_one_clear_error_each() {
    assert!(load_error(None).contains("cannot read operator module"));
    assert!(load_error(Some(b"hello, not wasm")).contains("not a WebAssembly file"));
    // A valid core module (no component layer): the smallest one.
    let core = [0, b'a', b's', b'm', 1, 0, 0, 0];
    assert!(load_error(Some(&core)).contains("core WebAssembly module, not a component"));
    // A component header with garbage after it.
    let broken = [0, b'a', b's', b'm', 0x0d, 0, 1, 0, 0xff, 0xff, 0xff];
    assert!(load_error(Some(&broken)).contains("does not compile"));
    let other_world = std::fs::read(operator("wrong_world")).unwrap();
    let err = load_error(Some(&other_world));
    assert!(
        err.contains("exports no eddy:operator/operator@0.4.x"),
        "{err}"
    );
}

#[test]
fn run_reports_job_file_errors_with_the_file_and_field() {
    let job = TestJob::new("word_count");
    let path = job.write_job();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[sink]", "[sink]\ncolour = \"red\"");
    std::fs::write(&path, text).unwrap();
    let (ok, _, stderr) = eddy(&["run", path.to_str().unwrap()], job.dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("job.toml") && stderr.contains("colour"),
        "{stderr}"
    );

    let (ok, _, stderr) = eddy(&["run", "no-such-job.toml"], job.dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("cannot read job file no-such-job.toml"),
        "{stderr}"
    );
}

#[test]
fn run_processes_a_job_end_to_end_through_the_binary() {
    let job = TestJob::new("word_count");
    job.append_input(&[rec("x", "x"), rec("y", "y"), rec("x", "x")]);
    let path = job.write_job();
    let (ok, _, stderr) = eddy(
        &["run", path.to_str().unwrap(), "--progress-every", "0s"],
        job.dir.path(),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("3 records in, 3 out, 0 dead-lettered"),
        "{stderr}"
    );
    assert_eq!(
        job.output(),
        vec![
            ("x".into(), "1".into()),
            ("y".into(), "1".into()),
            ("x".into(), "2".into())
        ]
    );
    let (ok, help, _) = eddy(&["run", "--help"], job.dir.path());
    assert!(ok && help.contains("checkpoint"), "{help}");
}

#[test]
fn a_state_directory_in_use_is_refused_clearly() {
    let job = TestJob::new("word_count");
    job.append_input(&[rec("x", "x")]);
    job.run().unwrap();
    let _held = eddy_host::state::StateDb::open(&job.path("state"), 128).unwrap();
    let err = job.run().unwrap_err().to_string();
    assert!(err.contains("in use by another process"), "{err}");
}
