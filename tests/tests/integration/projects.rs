//! Guards `eddy new`, `eddy build` and `eddy test` in every language: a new project's native
//! tests pass, it builds into a component, and that component runs the project's job to
//! exactly the project's expected output, through the real host. And the ways a build can
//! go wrong are named.

use std::path::Path;

use eddy_tests::{eddy, repo_root};

/// `eddy` with a cargo target folder shared by every run of these tests, so that a new Rust
/// project does not build the SDK's dependencies from nothing each time.
fn eddy_sharing_cargo_target(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = std::process::Command::new(eddy_tests::eddy_bin())
        .args(args)
        .current_dir(cwd)
        .env("EDDY_LOG", "warn")
        .env("CARGO_TARGET_DIR", repo_root().join("target/new-projects"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `eddy new LANG`, then `eddy test` (but for C), `eddy build` and `eddy run job.toml`.
fn new_project_builds_and_runs(language: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join(format!("counter-{language}"));
    let project_arg = project.to_str().unwrap();
    let (ok, out, err) = eddy(&["new", language, project_arg], tmp.path());
    assert!(ok, "eddy new {language}: {err}");
    assert!(out.contains("eddy build"), "{out}");

    if language != "c" {
        let (ok, err) = eddy_sharing_cargo_target(&["test", project_arg], tmp.path());
        assert!(ok, "eddy test ({language}): {err}");
    }
    let (ok, err) = eddy_sharing_cargo_target(&["build", project_arg], tmp.path());
    assert!(ok, "eddy build ({language}): {err}");
    let component = project
        .join("target")
        .join(format!("counter_{language}.wasm"));
    assert!(component.is_file(), "{} missing", component.display());

    let (ok, _, err) = eddy(
        &["run", project.join("job.toml").to_str().unwrap()],
        &project,
    );
    assert!(ok, "eddy run ({language}): {err}");
    let output = std::fs::read_to_string(project.join("target/output.jsonl")).unwrap();
    let expected = std::fs::read_to_string(project.join("expected-output.jsonl")).unwrap();
    assert_eq!(output, expected, "{language}: the job's output");
}

#[test]
fn a_new_rust_project_builds_and_runs() {
    new_project_builds_and_runs("rust");
}

#[test]
fn a_new_python_project_builds_and_runs() {
    new_project_builds_and_runs("python");
}

#[test]
fn a_new_js_project_builds_and_runs() {
    new_project_builds_and_runs("js");
}

#[test]
fn a_new_c_project_builds_and_runs() {
    new_project_builds_and_runs("c");
}

#[test]
fn build_mistakes_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (ok, _, err) = eddy(&["new", "cobol", "x"], cwd);
    assert!(!ok);
    assert!(err.contains("unknown language \"cobol\""), "{err}");

    let (ok, _, err) = eddy(&["build", cwd.to_str().unwrap()], cwd);
    assert!(!ok);
    assert!(err.contains("is not an operator project"), "{err}");

    let (ok, _, err) = eddy(&["new", "python", "Bad_Name"], cwd);
    assert!(!ok);
    assert!(err.contains("invalid project name"), "{err}");

    // A C operator that does not compile: the compiler's own message, then which command.
    let broken = cwd.join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("op.c"), "this is not C;\n").unwrap();
    let (ok, _, err) = eddy(&["build", broken.to_str().unwrap()], cwd);
    assert!(!ok);
    assert!(err.contains("op.c"), "{err}");
    assert!(err.contains("failed"), "{err}");
}

#[test]
fn a_missing_toolchain_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("lonely");
    let (ok, _, err) = eddy(&["new", "python", project.to_str().unwrap()], tmp.path());
    assert!(ok, "{err}");
    // Only the folder of the eddy binary on PATH: no componentize-py.
    let out = std::process::Command::new(eddy_tests::eddy_bin())
        .args(["build", project.to_str().unwrap()])
        .env("PATH", Path::new("/nonexistent"))
        .env_remove("EDDY_COMPONENTIZE_PY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("componentize-py not found on PATH")
            && err.contains("pip install componentize-py==0.25.1"),
        "{err}"
    );
}
