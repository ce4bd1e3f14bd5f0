//! Sources and sinks: where records come from and where they go. This release has the
//! file and generator sources and the file, stdout and discard sinks; NATS JetStream plugs
//! into the same traits.
//!
//! A source gives records in order, each with its *position* (1-based, strictly
//! increasing); a checkpoint stores the position of the last record whose effects it holds,
//! and a restarted source resumes right after it.

pub mod key;
pub mod nats;
pub mod sink;
pub mod source;

pub use sink::{Durable, Origin, OutputRecord, Sink};
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
    /// NATS failed; the message names the server, stream or subject and what to do.
    #[error("{0}")]
    Nats(String),
}

/// Makes one sink per worker for a job's `[sink]` or `[dead-letter]`.
pub enum SinkFactory {
    /// A file, stdout or discarding sink: one shared target.
    Local(sink::SinkHandle),
    /// A NATS subject.
    Nats {
        /// The connection.
        conn: std::sync::Arc<nats::NatsConn>,
        /// The subject.
        subject: String,
        /// Job name (in message ids).
        job: String,
        /// Operator uid (in message ids).
        uid: String,
    },
}

impl std::fmt::Debug for SinkFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkFactory::Local(_) => f.write_str("SinkFactory::Local"),
            SinkFactory::Nats { subject, .. } => write!(f, "SinkFactory::Nats({subject})"),
        }
    }
}

impl SinkFactory {
    /// Opens the sink of `cfg`. A NATS sink's stream is created when missing, and its
    /// duplicate window checked against what recovery needs.
    pub fn open(
        cfg: &crate::config::SinkConfig,
        conn: Option<&std::sync::Arc<nats::NatsConn>>,
        job: &str,
        uid: &str,
    ) -> Result<SinkFactory, IoError> {
        use crate::config::SinkConfig;
        match cfg {
            SinkConfig::Nats {
                subject,
                stream,
                duplicate_window,
            } => {
                let conn = conn.ok_or_else(|| IoError::Nats("no NATS connection".into()))?;
                let name = stream
                    .clone()
                    .unwrap_or_else(|| crate::config::default_stream_name(subject));
                let window =
                    conn.ensure_stream(&name, std::slice::from_ref(subject), *duplicate_window)?;
                if window < nats::MIN_SAFE_DUPLICATE_WINDOW {
                    tracing::warn!(stream = %name, window = ?window,
                        "the output stream's duplicate window is short: a recovery slower than it would publish replayed outputs twice; give the stream a window of minutes");
                }
                Ok(SinkFactory::Nats {
                    conn: conn.clone(),
                    subject: subject.clone(),
                    job: job.to_string(),
                    uid: uid.to_string(),
                })
            }
            other => Ok(SinkFactory::Local(sink::open(other)?)),
        }
    }

    /// A sink for one worker.
    pub fn make(&self) -> Box<dyn Sink> {
        match self {
            SinkFactory::Local(h) => Box::new(h.clone()),
            SinkFactory::Nats {
                conn,
                subject,
                job,
                uid,
            } => Box::new(nats::NatsSink::new(conn.clone(), subject, job, uid)),
        }
    }
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

/// The inverse of [`bytes_to_json`]: a string's UTF-8 bytes, or the bytes of
/// `{"base64": "…"}`; `None` for anything else.
pub fn json_to_bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    match v {
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        serde_json::Value::Object(o) if o.len() == 1 => base64::engine::general_purpose::STANDARD
            .decode(o.get("base64")?.as_str()?)
            .ok(),
        _ => None,
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the whole new
/// one: into a temporary file beside it, synced, renamed over `path`, then the folder
/// synced so that the rename itself survives a power loss.
pub fn write_file_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = crate::config::beside(path, &format!(".tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Syncs the folder holding `path`, making a rename or creation of `path` durable.
pub fn sync_parent(path: &std::path::Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}
