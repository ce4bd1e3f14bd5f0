//! Operator projects in every language the SDKs cover: `eddy new` scaffolds one, `eddy build`
//! turns one into a component, `eddy test` runs its native tests (no Wasm, no host).
//!
//! A project is a folder; its language is told by what it holds (see [`Language::detect`]).
//! The WIT contract and the Python, JavaScript and C SDKs are embedded in this binary and
//! written out at build time, so an operator is always built against exactly the contract
//! of the `eddy` that builds it. The language toolchains are not embedded; they are looked
//! up on `PATH` (see [`Toolchain`]), and a missing one is named with how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::runtime::WIT_VERSION;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The languages an operator project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust, with the `eddy-sdk` crate (`Cargo.toml`).
    Rust,
    /// Python, with the embedded `eddy_sdk` package, built by componentize-py (`main.py`).
    Python,
    /// JavaScript, with the embedded `eddy-sdk` module, built by jco (`operator.js`).
    Js,
    /// C, with the embedded `eddy.h`, built by a wasm32-wasi C compiler (`*.c`).
    C,
}

impl Language {
    /// Every language, in the order `eddy new` lists them.
    pub const ALL: [Language; 4] = [Language::Rust, Language::Python, Language::Js, Language::C];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
        }
    }

    /// Parses a command-line name (`rust`, `python`, `js`/`javascript`, `c`).
    pub fn parse(name: &str) -> Result<Language, ProjectError> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Language::Rust),
            "python" | "py" => Ok(Language::Python),
            "js" | "javascript" => Ok(Language::Js),
            "c" => Ok(Language::C),
            other => Err(ProjectError::UnknownLanguage(other.to_string())),
        }
    }

    /// Tells a project's language by its files: `Cargo.toml` (Rust), `main.py` (Python),
    /// `operator.js` (JavaScript), any `*.c` (C), checked in that order.
    pub fn detect(dir: &Path) -> Result<Language, ProjectError> {
        if dir.join("Cargo.toml").is_file() {
            return Ok(Language::Rust);
        }
        if dir.join("main.py").is_file() {
            return Ok(Language::Python);
        }
        if dir.join("operator.js").is_file() {
            return Ok(Language::Js);
        }
        if !c_sources(dir)?.is_empty() {
            return Ok(Language::C);
        }
        Err(ProjectError::NotAProject(dir.to_path_buf()))
    }
}

/// What went wrong with a project.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// `eddy new` was given a language it does not know.
    #[error("unknown language {0:?}: give one of rust, python, js, c")]
    UnknownLanguage(String),
    /// The folder holds nothing that tells its language.
    #[error(
        "{0} is not an operator project: it has no Cargo.toml (Rust), main.py (Python), operator.js (JavaScript) or .c file (C); create one with `eddy new <language> NAME`"
    )]
    NotAProject(PathBuf),
    /// `eddy new` would overwrite something.
    #[error("{0} already exists; give a new folder")]
    Exists(PathBuf),
    /// A project name that cannot name a crate, module or file.
    #[error(
        "invalid project name {0:?}: use lowercase letters, digits and '-', starting with a letter"
    )]
    InvalidName(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A toolchain program is not installed.
    #[error("{tool} not found on PATH (needed to {purpose}); {hint}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// What it is needed for.
        purpose: String,
        /// How to install it.
        hint: String,
    },
    /// A toolchain program ran and failed; its own output went to stderr above.
    #[error("{command} failed ({status}); its output is above")]
    ToolFailed {
        /// The command line, for copying.
        command: String,
        /// How it ended.
        status: String,
    },
    /// The build produced no component, or a core module that cannot become one.
    #[error("{0}")]
    Component(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProjectError + '_ {
    move |source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The embedded files under `prefix/` as (path below the prefix, bytes).
fn embedded_under(prefix: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    embedded::FILES.iter().filter_map(move |(name, bytes)| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(|rest| (rest, *bytes))
    })
}

/// Writes the embedded files under `prefix/` into `dir`; returns the files written.
fn write_embedded(prefix: &str, dir: &Path) -> Result<Vec<PathBuf>, ProjectError> {
    let mut written = Vec::new();
    for (rest, bytes) in embedded_under(prefix) {
        let path = dir.join(rest);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// The `.c` files directly in `dir`.
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, ProjectError> {
    let entries = std::fs::read_dir(dir).map_err(io(dir))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Where the language toolchains are found: each program on `PATH`, unless an environment
/// variable names it (`EDDY_COMPONENTIZE_PY`, `EDDY_JCO`, `EDDY_WASI_CC`, `CARGO`).
pub struct Toolchain;

impl Toolchain {
    /// The program `name` (or the one `env` names), or a [`ProjectError::ToolMissing`]
    /// saying what it is for and how to install it.
    fn find(env: &str, name: &str, purpose: &str, hint: &str) -> Result<PathBuf, ProjectError> {
        if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        on_path(name).ok_or_else(|| ProjectError::ToolMissing {
            tool: name.to_string(),
            purpose: purpose.to_string(),
            hint: hint.to_string(),
        })
    }
}

/// The first `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The tool versions the repository's setup installs (and the SDKs are tested with).
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The jco version (npm) the JavaScript SDK is tested with.
pub const JCO: &str = "@bytecodealliance/jco@1.35.0";
/// The zig version (PyPI `ziglang`) the C SDK is tested with.
pub const ZIG: &str = "ziglang==0.17.0";

/// Runs `command`, echoing it to stderr first; its output goes to stderr.
fn run(mut command: Command) -> Result<(), ProjectError> {
    let line = format!("{command:?}").replace('"', "");
    eprintln!("  running {line}");
    let status = command
        .stdout(std::process::Stdio::inherit())
        .status()
        .map_err(|source| ProjectError::Io {
            path: PathBuf::from(command.get_program()),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ProjectError::ToolFailed {
            command: line,
            status: status.to_string(),
        })
    }
}

/// Options of [`build`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Where to write the component (default: `target/<project name>.wasm` in the project;
    /// for Rust, also copied there from cargo's own output).
    pub out: Option<PathBuf>,
    /// The JavaScript engine a JavaScript operator is built on.
    pub js_engine: JsEngine,
}

/// The JavaScript engine of a JavaScript component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JsEngine {
    /// QuickJS (jco's `qjs` backend): a 2 MB component that compiles in seconds and runs
    /// word count twice as fast as SpiderMonkey (docs/benchmarks.md). The default.
    #[default]
    QuickJs,
    /// SpiderMonkey (componentize-js): a 12 MB component, the engine of most JavaScript
    /// component tooling.
    SpiderMonkey,
}

impl JsEngine {
    /// Parses `quickjs` or `spidermonkey`.
    pub fn parse(name: &str) -> Result<JsEngine, ProjectError> {
        match name.to_ascii_lowercase().as_str() {
            "quickjs" | "qjs" => Ok(JsEngine::QuickJs),
            "spidermonkey" | "sm" => Ok(JsEngine::SpiderMonkey),
            other => Err(ProjectError::Component(format!(
                "unknown JavaScript engine {other:?}: give quickjs or spidermonkey"
            ))),
        }
    }
}

/// The file name a project's component gets by default: its folder name with `-` as `_`.
pub fn default_component_name(dir: &Path) -> String {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "operator".into());
    format!("{}.wasm", name.replace('-', "_"))
}

/// Builds the project in `dir` into a component; returns its path.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<PathBuf, ProjectError> {
    let language = Language::detect(dir)?;
    let out = match &options.out {
        Some(out) => out.clone(),
        None => dir.join("target").join(default_component_name(dir)),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // The embedded contract and SDK go into the project's own target folder: the build
    // tools read them from there, and the project's tests import the same files.
    let work = dir.join("target").join("eddy");
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    match language {
        Language::Rust => build_rust(dir, &out)?,
        Language::Python => build_python(dir, &work, &out)?,
        Language::Js => build_js(dir, &work, &out, options.js_engine)?,
        Language::C => build_c(dir, &work, &out)?,
    }
    Ok(out)
}

fn build_rust(dir: &Path, out: &Path) -> Result<(), ProjectError> {
    let cargo = Toolchain::find(
        "CARGO",
        "cargo",
        "build a Rust operator",
        "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`",
    )?;
    let mut command = Command::new(&cargo);
    command
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["--message-format", "json-render-diagnostics"]);
    eprintln!(
        "  running cargo build --release --target wasm32-wasip2 (in {})",
        dir.display()
    );
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(io(&cargo))?;
    if !output.status.success() {
        return Err(ProjectError::ToolFailed {
            command: "cargo build --release --target wasm32-wasip2".into(),
            status: output.status.to_string(),
        });
    }
    // The last .wasm artifact cargo reports is the project's component.
    let wasm = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|f| f.extension().is_some_and(|x| x == "wasm"))
        .ok_or_else(|| {
            ProjectError::Component(format!(
                "cargo built no .wasm in {}: give the package `crate-type = [\"cdylib\"]` under [lib]",
                dir.display()
            ))
        })?;
    std::fs::copy(&wasm, out).map_err(io(out))?;
    Ok(())
}

fn build_python(dir: &Path, work: &Path, out: &Path) -> Result<(), ProjectError> {
    let componentize = Toolchain::find(
        "EDDY_COMPONENTIZE_PY",
        "componentize-py",
        "build a Python operator",
        &format!(
            "install it with `pip install {COMPONENTIZE_PY}` (into a venv whose bin/ is on PATH), or run scripts/setup.sh in the eddy repository"
        ),
    )?;
    write_embedded("wit", &work.join("wit"))?;
    let sdk = work.join("python");
    write_embedded("sdk/python", &sdk)?;
    let mut command = Command::new(componentize);
    command
        .arg("-d")
        .arg(work.join("wit"))
        .args(["-w", "operator-world", "componentize", "main"])
        .arg("-p")
        .arg(dir)
        .arg("-p")
        .arg(&sdk)
        .arg("-o")
        .arg(out);
    run(command)
}

fn build_js(dir: &Path, work: &Path, out: &Path, engine: JsEngine) -> Result<(), ProjectError> {
    let hint = format!(
        "install it with `npm install {JCO} rolldown@1.3.3` (whose node_modules/.bin is then on PATH), or run scripts/setup.sh in the eddy repository"
    );
    let rolldown = Toolchain::find(
        "EDDY_ROLLDOWN",
        "rolldown",
        "bundle a JavaScript operator",
        &hint,
    )?;
    let sdk = js_sdk_in_node_modules(dir)?;
    let wit = absolute(&work.join("wit"))?;
    write_embedded("wit", &wit)?;
    // One file for the componentizer: the operator with the SDK's component entry (which
    // imports the contract's interfaces, left to the component's imports).
    let bundle = absolute(&work.join("operator.bundle.js"))?;
    let mut command = Command::new(rolldown);
    command
        .arg(dir.join("operator.js"))
        .arg("--file")
        .arg(&bundle)
        .args(["--format", "esm", "--platform", "browser", "--tsconfig"])
        .arg(sdk.join("tsconfig.build.json"))
        .args(["--logLevel", "warn"]);
    for interface in ["types", "state", "log"] {
        command
            .arg("-e")
            .arg(format!("eddy:operator/{interface}@{WIT_VERSION}"));
    }
    run(command)?;
    let out = absolute(out)?;
    match engine {
        JsEngine::QuickJs => {
            let jco = Toolchain::find("EDDY_JCO", "jco", "build a JavaScript operator", &hint)?;
            let mut command = Command::new(jco);
            command
                .arg("componentize")
                .arg(&bundle)
                .arg("--wit")
                .arg(&wit)
                .args(["-n", "operator-world", "--backend", "qjs"])
                .args(["--backend-qjs-disable-async", "--backend-qjs-stub-wasi"])
                .arg("-o")
                .arg(&out);
            run(command)
        }
        JsEngine::SpiderMonkey => {
            let componentize = Toolchain::find(
                "EDDY_COMPONENTIZE_JS",
                "componentize-js",
                "build a JavaScript operator on SpiderMonkey",
                "install it with `npm install @bytecodealliance/componentize-js@0.23.0`, or run scripts/setup.sh in the eddy repository",
            )?;
            // componentize-js wants its source below the working folder, and no WASI
            // interface the host does not provide (wasi:http) nor any it would not use.
            let mut command = Command::new(componentize);
            command
                .current_dir(work)
                .arg("operator.bundle.js")
                .arg("--wit")
                .arg(&wit)
                .args(["-n", "operator-world", "-d"])
                .args(["stdio", "random", "clocks", "http", "fetch-event"])
                .arg("-o")
                .arg(&out);
            run(command)
        }
    }
}

/// `path` made absolute against the current folder (some toolchains resolve relative
/// paths against their own).
fn absolute(path: &Path) -> Result<PathBuf, ProjectError> {
    std::path::absolute(path).map_err(io(path))
}

fn build_c(dir: &Path, work: &Path, out: &Path) -> Result<(), ProjectError> {
    let sources = c_sources(dir)?;
    let sdk = work.join("c");
    write_embedded("sdk/c", &sdk)?;
    let (program, mut args) = wasi_cc()?;
    args.extend(
        [
            "-target",
            "wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-s",
            "-std=c11",
            "-Wall",
            "-Wextra",
        ]
        .map(String::from),
    );
    let core = work.join("core.wasm");
    let mut command = Command::new(program);
    command
        .args(&args)
        .arg("-I")
        .arg(&sdk)
        .arg("-I")
        .arg(sdk.join("bindings"))
        .args(&sources)
        .arg(sdk.join("eddy.c"))
        .arg(sdk.join("bindings/operator_world.c"))
        .arg(sdk.join("bindings/operator_world_component_type.o"))
        .arg("-o")
        .arg(&core);
    run(command)?;
    let module = std::fs::read(&core).map_err(io(&core))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            ProjectError::Component(format!(
                "{} cannot become a component: {e:#}",
                core.display()
            ))
        })?;
    std::fs::write(out, component).map_err(io(out))
}

/// The wasm32-wasi C compiler: `EDDY_WASI_CC` (a command line), else `zig cc`, else the
/// `python-zig cc` of PyPI's `ziglang`.
fn wasi_cc() -> Result<(String, Vec<String>), ProjectError> {
    if let Some(cc) = std::env::var_os("EDDY_WASI_CC").filter(|c| !c.is_empty()) {
        let cc = cc.to_string_lossy().into_owned();
        let mut words = cc.split_whitespace().map(String::from);
        if let Some(program) = words.next() {
            return Ok((program, words.collect()));
        }
    }
    for zig in ["zig", "python-zig"] {
        if let Some(path) = on_path(zig) {
            return Ok((path.to_string_lossy().into_owned(), vec!["cc".into()]));
        }
    }
    Err(ProjectError::ToolMissing {
        tool: "zig".into(),
        purpose: "compile a C operator for wasm32-wasi".into(),
        hint: format!(
            "install it with `pip install {ZIG}` (into a venv whose bin/ is on PATH), or set EDDY_WASI_CC to a clang with wasi-libc (e.g. wasi-sdk's `clang --sysroot=…`)"
        ),
    })
}

/// Runs the project's native tests: `cargo test` (Rust), `python3 -m unittest` over its
/// `test_*.py` with the embedded SDK importable (Python), `node --test` (JavaScript). C has
/// no native harness: its test is a job run (`eddy build`, then `eddy run job.toml`).
pub fn test(dir: &Path) -> Result<(), ProjectError> {
    let language = Language::detect(dir)?;
    let work = dir.join("target").join("eddy");
    match language {
        Language::Rust => {
            let cargo = Toolchain::find(
                "CARGO",
                "cargo",
                "test a Rust operator",
                "install Rust with rustup (https://rustup.rs)",
            )?;
            let mut command = Command::new(cargo);
            command.current_dir(dir).arg("test");
            run(command)
        }
        Language::Python => {
            let sdk = work.join("python");
            write_embedded("sdk/python", &sdk)?;
            let python = std::env::var_os("EDDY_PYTHON")
                .map(PathBuf::from)
                .or_else(|| on_path("python3"))
                .ok_or_else(|| ProjectError::ToolMissing {
                    tool: "python3".into(),
                    purpose: "run a Python operator's tests".into(),
                    hint: "install Python 3.11 or later".into(),
                })?;
            let mut command = Command::new(python);
            command
                .current_dir(dir)
                .env("PYTHONPATH", &sdk)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .args(["-m", "unittest", "discover", "-s", ".", "-p", "test_*.py"]);
            run(command)
        }
        Language::Js => {
            js_sdk_in_node_modules(dir)?;
            let node = on_path("node").ok_or_else(|| ProjectError::ToolMissing {
                tool: "node".into(),
                purpose: "run a JavaScript operator's tests".into(),
                hint: "install Node.js 20 or later".into(),
            })?;
            let mut command = Command::new(node);
            command.current_dir(dir).arg("--test");
            run(command)
        }
        Language::C => Err(ProjectError::Component(
            "C operators have no native test harness: test one through the host (`eddy build`, then `eddy run job.toml`)".into(),
        )),
    }
}

/// Writes the embedded JavaScript SDK as the project's `node_modules/eddy-sdk`, where
/// `import … from "eddy-sdk"` finds it, in Node and in the bundler alike.
fn js_sdk_in_node_modules(dir: &Path) -> Result<PathBuf, ProjectError> {
    let sdk = dir.join("node_modules").join("eddy-sdk");
    write_embedded("sdk/js", &sdk)?;
    Ok(sdk)
}

/// Checks a project name: lowercase letters, digits and `-`, starting with a letter.
fn check_name(name: &str) -> Result<(), ProjectError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ProjectError::InvalidName(name.to_string()))
    }
}

/// Scaffolds a new project of `language` in folder `dir` (which must not exist), named
/// after the folder: a word-count operator, its job file, an input with its expected
/// output, a native test (but in C) and a README with the build and test commands.
/// Returns the files written.
pub fn scaffold(language: Language, dir: &Path) -> Result<Vec<PathBuf>, ProjectError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    check_name(&name)?;
    if dir.exists() {
        return Err(ProjectError::Exists(dir.to_path_buf()));
    }
    let snake = name.replace('-', "_");
    let sdk_dependency = rust_sdk_dependency();
    let mut written = Vec::new();
    for prefix in [
        "templates/common",
        &format!("templates/{}", language.name()),
    ] {
        for (rest, bytes) in embedded_under(prefix) {
            let text = String::from_utf8_lossy(bytes)
                .replace("{{name}}", &name)
                .replace("{{snake_name}}", &snake)
                .replace("{{language}}", language.name())
                .replace("{{eddy_sdk}}", &sdk_dependency);
            // Template files that would be taken for real ones in this repository carry
            // a `.tmpl` suffix; hidden files a `dot-` prefix.
            let rest = rest.strip_suffix(".tmpl").unwrap_or(rest);
            let path = match rest.strip_prefix("dot-") {
                Some(hidden) => dir.join(format!(".{hidden}")),
                None => dir.join(rest),
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, text).map_err(io(&path))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The `eddy-sdk` dependency line of a new Rust project: the SDK of the source tree this
/// binary was built from when it is still there, else the repository.
fn rust_sdk_dependency() -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/rust");
    match local.canonicalize() {
        Ok(path) => format!("{{ path = {:?} }}", path.display().to_string()),
        Err(_) => format!(
            "{{ git = {:?} }}",
            option_env!("CARGO_PKG_REPOSITORY").unwrap_or("https://github.com/eddy-streams/eddy")
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_and_every_sdk_are_embedded() {
        let names: Vec<&str> = embedded::FILES.iter().map(|(n, _)| *n).collect();
        for needed in [
            "wit/operator.wit",
            "templates/common/job.toml",
            "templates/rust/Cargo.toml.tmpl",
            "templates/python/main.py",
            "templates/js/operator.js",
            "templates/c/operator.c",
        ] {
            assert!(
                names.contains(&needed),
                "{needed} is not embedded: {names:?}"
            );
        }
        assert!(names.iter().any(|n| n.starts_with("sdk/python/eddy_sdk/")));
        assert!(names.iter().any(|n| n.starts_with("sdk/js/")));
        assert!(names.iter().any(|n| n.starts_with("sdk/c/")));
        assert!(
            !names
                .iter()
                .any(|n| n.contains("/tests/") || n.contains("__pycache__")),
            "SDK tests and caches are not embedded"
        );
    }

    #[test]
    fn languages_are_told_by_their_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Language::detect(dir.path()),
            Err(ProjectError::NotAProject(_))
        ));
        std::fs::write(dir.path().join("op.c"), "").unwrap();
        assert_eq!(Language::detect(dir.path()).unwrap(), Language::C);
        std::fs::write(dir.path().join("operator.js"), "").unwrap();
        assert_eq!(Language::detect(dir.path()).unwrap(), Language::Js);
        std::fs::write(dir.path().join("main.py"), "").unwrap();
        assert_eq!(Language::detect(dir.path()).unwrap(), Language::Python);
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(Language::detect(dir.path()).unwrap(), Language::Rust);
    }

    #[test]
    fn names_are_checked_and_folders_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["Word", "1st", "a_b", "trailing-", ""] {
            assert!(
                matches!(
                    scaffold(Language::Python, &dir.path().join(bad)),
                    Err(ProjectError::InvalidName(_))
                ),
                "{bad:?}"
            );
        }
        let project = dir.path().join("counter");
        scaffold(Language::Python, &project).unwrap();
        assert!(matches!(
            scaffold(Language::Python, &project),
            Err(ProjectError::Exists(_))
        ));
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let error = Toolchain::find(
            "EDDY_TEST_NO_SUCH_VARIABLE",
            "eddy-no-such-tool",
            "build",
            "install it",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "eddy-no-such-tool not found on PATH (needed to build); install it"
        );
    }
}
