//! Sinks: the JSON-lines file, standard output, and the discarding sink of the benchmarks.
//! The dead-letter output is a sink too; its records carry the error and origin as headers.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{IoError, bytes_to_json};
use crate::config::SinkConfig;

/// Where an output record came from: the input record's stream and position, and the
/// output's index among that record's emits. Together with the job and operator they name
/// the output uniquely, so that a replay can be de-duplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The source stream.
    pub stream: &'a str,
    /// The input record's position.
    pub position: u64,
    /// The output's index among the input record's emits.
    pub index: u32,
}

/// One output record and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct OutputRecord<'a> {
    /// Key.
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
    /// Headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// The input it answers.
    pub origin: Origin<'a>,
}

/// Finishes making a sink's writes durable (see [`Sink::durable`]).
pub type Durable = Box<dyn FnOnce() -> Result<(), IoError> + Send>;

/// Where output records go. One per worker; a sink's handles may share one target.
pub trait Sink: Send {
    /// Writes the outputs of one batch, in order.
    fn write(&mut self, records: &[OutputRecord<'_>]) -> Result<(), IoError>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), IoError>;
    /// Starts making everything written so far durable and returns what finishes it: the
    /// checkpoint that covers these writes runs it (on the committer thread) before it
    /// completes, while the worker goes on writing. By default, flushes at once.
    fn durable(&mut self) -> Result<Durable, IoError> {
        self.flush()?;
        Ok(Box::new(|| Ok(())))
    }
    /// Records written through this handle.
    fn written(&self) -> u64;
}

enum Target {
    File {
        path: std::path::PathBuf,
        out: std::io::BufWriter<std::fs::File>,
    },
    Stdout,
    Discard,
}

/// A handle on a shared sink target; clone one per worker.
#[derive(Clone)]
pub struct SinkHandle {
    target: Arc<Mutex<Target>>,
    discard: bool,
    buf: Vec<u8>,
    written: u64,
}

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkHandle")
            .field("written", &self.written)
            .finish()
    }
}

/// Opens a local sink of `cfg` (a file is created, or appended to).
pub fn open(cfg: &SinkConfig) -> Result<SinkHandle, IoError> {
    let target = match cfg {
        SinkConfig::File { path } => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| IoError::File {
                    what: "cannot create the folder of sink file",
                    path: path.clone(),
                    source,
                })?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| IoError::File {
                    what: "cannot open sink file",
                    path: path.clone(),
                    source,
                })?;
            Target::File {
                path: path.clone(),
                out: std::io::BufWriter::with_capacity(1 << 16, file),
            }
        }
        SinkConfig::Stdout => Target::Stdout,
        SinkConfig::Discard => Target::Discard,
        SinkConfig::Nats { subject, .. } => {
            return Err(IoError::Nats(format!(
                "the NATS sink for {subject} needs a connection: open it with SinkFactory::open"
            )));
        }
    };
    Ok(SinkHandle {
        discard: matches!(target, Target::Discard),
        target: Arc::new(Mutex::new(target)),
        buf: Vec::new(),
        written: 0,
    })
}

#[derive(Serialize)]
struct Line<'a> {
    key: serde_json::Value,
    value: serde_json::Value,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'a str, &'a str>,
}

/// The JSON line of one output record (no newline).
pub fn json_line(r: &OutputRecord<'_>) -> String {
    let line = Line {
        key: bytes_to_json(r.key),
        value: bytes_to_json(r.value),
        headers: r.headers.iter().copied().collect(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

impl SinkHandle {
    fn with_target<R>(
        &self,
        f: impl FnOnce(&mut Target) -> Result<R, IoError>,
    ) -> Result<R, IoError> {
        // A poisoned lock means another worker panicked mid-write; the bytes are still ours.
        let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut t)
    }
}

impl Sink for SinkHandle {
    fn write(&mut self, records: &[OutputRecord<'_>]) -> Result<(), IoError> {
        self.written += records.len() as u64;
        if self.discard || records.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for r in records {
            self.buf.extend_from_slice(json_line(r).as_bytes());
            self.buf.push(b'\n');
        }
        let buf = std::mem::take(&mut self.buf);
        let res = self.with_target(|t| match t {
            Target::File { path, out } => out.write_all(&buf).map_err(|source| IoError::File {
                what: "cannot write sink file",
                path: path.clone(),
                source,
            }),
            Target::Stdout => std::io::stdout()
                .lock()
                .write_all(&buf)
                .map_err(IoError::Stdout),
            Target::Discard => Ok(()),
        });
        self.buf = buf;
        res
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.with_target(|t| match t {
            Target::File { path, out } => out
                .flush()
                .and_then(|()| out.get_ref().sync_data())
                .map_err(|source| IoError::File {
                    what: "cannot flush sink file",
                    path: path.clone(),
                    source,
                }),
            Target::Stdout => std::io::stdout().lock().flush().map_err(IoError::Stdout),
            Target::Discard => Ok(()),
        })
    }

    fn written(&self) -> u64 {
        self.written
    }
}
