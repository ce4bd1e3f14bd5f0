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
                .read(true)
                .append(true)
                .open(path)
                .map_err(|source| IoError::File {
                    what: "cannot open sink file",
                    path: path.clone(),
                    source,
                })?;
            let cut = cut_torn_line(&file).map_err(|source| IoError::File {
                what: "cannot repair the torn last line of sink file",
                path: path.clone(),
                source,
            })?;
            if cut > 0 {
                tracing::warn!(file = %path.display(), bytes = cut,
                    "cut off a torn last line that a crash left in the sink file; the records it began are written again by the replay");
            }
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

/// Cuts off a last line without its newline, and returns how many bytes went.
///
/// Writes reach the file through a buffer, so a crash can end it in the middle of a line.
/// Such a line is always past the last checkpoint (a checkpoint flushes the sink before it
/// completes), so the replay after the restart writes its record again, whole; without the
/// cut, that record would be glued to the torn bytes and neither line would parse. Only the
/// tail is read, backwards, so a large file costs no more than a small one.
fn cut_torn_line(file: &std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const CHUNK: u64 = 8192;
    let len = file.metadata()?.len();
    let mut reader = file;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut end = len;
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if keep < len {
        file.set_len(keep)?;
    }
    Ok(len - keep)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn record<'a>(key: &'a str, value: &'a str) -> OutputRecord<'a> {
        OutputRecord {
            key: key.as_bytes(),
            value: value.as_bytes(),
            headers: &[],
            origin: Origin {
                stream: "in",
                position: 1,
                index: 0,
            },
        }
    }

    fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    #[test]
    fn a_torn_last_line_is_cut_off_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        // A whole line longer than one read of the tail, then a line cut short by a crash.
        let long = "x".repeat(20_000);
        let whole = format!("{{\"key\":\"a\",\"value\":\"{long}\"}}\n");
        std::fs::write(&path, format!("{whole}{{\"key\":\"w1\",\"val")).unwrap();
        let cfg = SinkConfig::File { path: path.clone() };
        let mut sink = open(&cfg).unwrap();
        sink.write(&[record("w1", "3")]).unwrap();
        sink.flush().unwrap();
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["value"], long.as_str());
        assert_eq!(got[1], serde_json::json!({"key": "w1", "value": "3"}));
    }

    #[test]
    fn a_file_of_one_torn_line_is_emptied_and_whole_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "x".repeat(30_000)).unwrap();
        let cfg = SinkConfig::File { path: path.clone() };
        drop(open(&cfg).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);

        std::fs::write(&path, "{\"key\":\"a\",\"value\":\"1\"}\n").unwrap();
        let mut sink = open(&cfg).unwrap();
        sink.write(&[record("b", "2")]).unwrap();
        sink.flush().unwrap();
        assert_eq!(lines(&path).len(), 2);
    }
}
