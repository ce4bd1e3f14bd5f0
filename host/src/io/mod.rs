//! Sources and sinks: where records come from and where they go. This release has the
//! file and generator sources and the file, stdout and discard sinks; NATS JetStream plugs
//! into the same traits.
//!
//! A source gives records in order, each with its *position* (1-based, strictly
//! increasing); a checkpoint stores the position of the last record whose effects it holds,
//! and a restarted source resumes right after it.

pub mod key;
pub mod sink;
pub mod source;

pub use sink::{Origin, OutputRecord, Sink};
pub use source::{Source, SourceRecord};

/// I/O failures of sources and sinks.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A file could not be opened, read or written.
    #[error("{what} {path}: {source}")]
    File {
        /// "cannot read source" etc.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Standard output failed.
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}

/// Encodes bytes for JSON: a string when they are UTF-8, else `{"base64": "…"}`.
pub fn bytes_to_json(b: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::Value::String(s.to_string()),
        Err(_) => {
            use base64::Engine as _;
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) })
        }
    }
}
