//! Embeds the files `eddy new` and `eddy build` write out: the WIT contract, the Python,
//! JavaScript and C guest SDKs, and the project templates. The binary then builds operators
//! against exactly the contract it runs, wherever it is installed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (name prefix in the binary, folder relative to this crate)
const ROOTS: &[(&str, &str)] = &[
    ("wit", "../wit"),
    ("sdk/python/eddy_sdk", "../guest-sdk/python/eddy_sdk"),
    ("sdk/js", "../guest-sdk/js"),
    ("sdk/c", "../guest-sdk/c"),
    ("templates", "src/project/templates"),
];

/// Folders and files that are not part of what gets written out: build output and caches,
/// and the SDKs' own tests and documentation (the templates keep theirs).
fn skipped(name: &str, sdk: bool) -> bool {
    matches!(name, "node_modules" | "__pycache__" | "target")
        || name.ends_with(".pyc")
        || (sdk && matches!(name, "test" | "tests" | "README.md"))
}

fn walk(dir: &Path, sdk: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name, sdk) {
            continue;
        }
        if path.is_dir() {
            walk(&path, sdk, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut code = String::from("/// Embedded files: (path, bytes), sorted by path.\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    let mut all = Vec::new();
    for (prefix, rel) in ROOTS {
        let root = manifest.join(rel);
        println!("cargo:rerun-if-changed={}", root.display());
        let mut files = Vec::new();
        walk(&root, prefix.starts_with("sdk/"), &mut files);
        for file in files {
            let Ok(inner) = file.strip_prefix(&root) else {
                continue;
            };
            let name = format!("{prefix}/{}", inner.to_string_lossy().replace('\\', "/"));
            all.push((name, file));
        }
    }
    all.sort();
    for (name, file) in all {
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            file.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
