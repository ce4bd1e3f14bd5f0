//! Sources: the JSON-lines / text file and the word generator of the benchmarks.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::IoError;
use super::key::KeyExtractor;
use crate::config::{FileFormat, SourceConfig};

/// One record from a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRecord {
    /// The key (from `[key]`).
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Event time, ms since the epoch (0 when the source has none).
    pub timestamp: i64,
    /// The job's watermark as the record reaches the operator (set by the coordinator when
    /// it routes the record; `i64::MIN` before any).
    pub watermark: i64,
    /// Position in the source (1-based, increasing).
    pub position: u64,
    /// Index of the source among the job's sources (set by the job's reader).
    pub source: u32,
    /// Why the record cannot be processed (unreadable line, no key): it goes straight to
    /// the dead-letter output.
    pub poison: Option<String>,
}

/// A source of records, read in order.
pub trait Source: Send {
    /// The source's name: the `stream` in positions and output ids.
    fn name(&self) -> &str;
    /// Appends up to `max` records to `out`; returns `false` once the input is exhausted.
    fn poll(&mut self, out: &mut Vec<SourceRecord>, max: usize) -> Result<bool, IoError>;
    /// Records available but not yet read (the lag), when the source can tell.
    fn lag(&mut self) -> Option<u64> {
        None
    }
}

/// Opens the source of `cfg`, resuming after position `after` (0: from the start). A NATS
/// source needs the job's connection.
pub fn open(
    cfg: &SourceConfig,
    keys: KeyExtractor,
    after: u64,
    nats: Option<&std::sync::Arc<super::nats::NatsConn>>,
) -> Result<Box<dyn Source>, IoError> {
    Ok(match cfg {
        SourceConfig::Nats {
            stream,
            subject,
            bounded,
            ..
        } => Box::new(super::nats::NatsSource::open(
            nats.ok_or_else(|| IoError::Nats("no NATS connection".into()))?
                .clone(),
            stream,
            subject.clone(),
            *bounded,
            keys,
            after,
        )?),
        SourceConfig::File { path, format, .. } => {
            Box::new(FileSource::open(path, *format, keys, after)?)
        }
        SourceConfig::Generator { count, keys: k } => Box::new(GeneratorSource {
            next: after,
            count: *count,
            keys: *k,
        }),
    })
}

/// The name a source config's positions are stored under.
pub fn source_name(cfg: &SourceConfig) -> String {
    match cfg {
        SourceConfig::File { path, .. } => format!(
            "file:{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        SourceConfig::Generator { .. } => "generator".to_string(),
        SourceConfig::Nats { stream, .. } => format!("nats:{stream}"),
    }
}

/// A file, one record per line (`lines`: the line is the value; `json`: an object with
/// `key`, `value`, `timestamp`, `headers`).
pub struct FileSource {
    name: String,
    path: PathBuf,
    reader: std::io::BufReader<std::fs::File>,
    format: FileFormat,
    keys: KeyExtractor,
    line_no: u64,
    line: String,
}

impl FileSource {
    fn open(
        path: &Path,
        format: FileFormat,
        keys: KeyExtractor,
        after: u64,
    ) -> Result<FileSource, IoError> {
        let file = std::fs::File::open(path).map_err(|source| IoError::File {
            what: "cannot open source file",
            path: path.to_path_buf(),
            source,
        })?;
        let mut src = FileSource {
            name: source_name(&SourceConfig::File {
                path: path.to_path_buf(),
                format,
                key: None,
            }),
            path: path.to_path_buf(),
            reader: std::io::BufReader::with_capacity(1 << 16, file),
            format,
            keys,
            line_no: 0,
            line: String::new(),
        };
        while src.line_no < after {
            if !src.read_line()? {
                break;
            }
        }
        Ok(src)
    }

    fn read_line(&mut self) -> Result<bool, IoError> {
        self.line.clear();
        let n = self
            .reader
            .read_line(&mut self.line)
            .map_err(|source| IoError::File {
                what: "cannot read source file",
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        Ok(true)
    }

    fn parse(&self) -> SourceRecord {
        let line = self.line.trim_end_matches(['\n', '\r']);
        let mut rec = SourceRecord {
            watermark: i64::MIN,
            key: Vec::new(),
            value: line.as_bytes().to_vec(),
            headers: Vec::new(),
            timestamp: 0,
            position: self.line_no,
            source: 0,
            poison: None,
        };
        let mut source_key = None;
        if self.format == FileFormat::Json {
            match parse_json_record(line) {
                Ok(j) => {
                    rec.value = j.value.into_bytes();
                    rec.headers = j.headers.into_iter().collect();
                    rec.timestamp = j.timestamp;
                    source_key = j.key;
                }
                Err(e) => {
                    rec.poison = Some(format!(
                        "line {} of {} is not a record object ({e}); expected {{\"key\": \"…\", \"value\": \"…\", \"timestamp\": ms, \"headers\": {{…}}}}",
                        self.line_no,
                        self.path.display()
                    ));
                    return rec;
                }
            }
        }
        match self.keys.extract(
            source_key.as_deref().map(str::as_bytes),
            &rec.value,
            &rec.headers,
            None,
        ) {
            Ok(k) => rec.key = k,
            Err(e) => rec.poison = Some(e),
        }
        rec
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRecord {
    #[serde(default)]
    key: Option<String>,
    value: String,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

fn parse_json_record(line: &str) -> Result<JsonRecord, serde_json::Error> {
    serde_json::from_str(line)
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, out: &mut Vec<SourceRecord>, max: usize) -> Result<bool, IoError> {
        for _ in 0..max {
            if !self.read_line()? {
                return Ok(false);
            }
            if self.line.trim().is_empty() {
                continue; // blank lines are not records, but keep their position
            }
            out.push(self.parse());
        }
        Ok(true)
    }
}

/// Record `i` (0-based) is the word `"w" + (i * 7919 % keys)`, key and value; position i+1.
/// The benchmark workload: every block of `keys` records holds each word once.
#[derive(Debug)]
pub struct GeneratorSource {
    next: u64,
    count: u64,
    keys: u64,
}

impl Source for GeneratorSource {
    fn name(&self) -> &str {
        "generator"
    }

    fn poll(&mut self, out: &mut Vec<SourceRecord>, max: usize) -> Result<bool, IoError> {
        use std::io::Write;
        let end = self.count.min(self.next + max as u64);
        for i in self.next..end {
            let mut word = Vec::with_capacity(8);
            let _ = write!(word, "w{}", i.wrapping_mul(7919) % self.keys);
            out.push(SourceRecord {
                watermark: i64::MIN,
                key: word.clone(),
                value: word,
                headers: Vec::new(),
                // One millisecond apart, from the epoch: event time for the benchmarks.
                timestamp: i as i64,
                position: i + 1,
                source: 0,
                poison: None,
            });
        }
        self.next = end;
        Ok(self.next < self.count)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::KeyConfig;

    #[test]
    fn json_file_resumes_after_a_position_and_flags_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"key\":\"a\",\"value\":\"1\"}\n\n{oops\n{\"key\":\"b\",\"value\":\"2\",\"timestamp\":5}\n",
        )
        .unwrap();
        let cfg = SourceConfig::File {
            path: path.clone(),
            format: FileFormat::Json,
            key: None,
        };
        let mut src = open(&cfg, KeyExtractor::new(KeyConfig::RecordKey), 0, None).unwrap();
        let mut out = Vec::new();
        while src.poll(&mut out, 10).unwrap() {}
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].key, b"a");
        assert!(out[1].poison.as_deref().unwrap().contains("line 3"));
        assert_eq!((out[2].position, out[2].timestamp), (4, 5));
        let mut src = open(&cfg, KeyExtractor::new(KeyConfig::RecordKey), 3, None).unwrap();
        let mut rest = Vec::new();
        while src.poll(&mut rest, 10).unwrap() {}
        assert_eq!(rest, vec![out[2].clone()]);
    }

    #[test]
    fn generator_covers_every_word_once_per_block() {
        let cfg = SourceConfig::Generator {
            count: 20,
            keys: 10,
        };
        let mut src = open(&cfg, KeyExtractor::new(KeyConfig::RecordKey), 0, None).unwrap();
        let mut out = Vec::new();
        while src.poll(&mut out, 7).unwrap() {}
        let mut first: Vec<_> = out[..10].iter().map(|r| r.key.clone()).collect();
        first.sort();
        first.dedup();
        assert_eq!(first.len(), 10);
        assert_eq!(out[19].position, 20);
    }
}
