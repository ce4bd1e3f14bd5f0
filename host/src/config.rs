//! The job file: its TOML shape (raw, as written) and the validated settings the rest of
//! the host runs on. Defaults live here and nowhere else.
//!
//! Parsing is two steps, as in ripgrep: serde reads the raw file with `deny_unknown_fields`
//! and kebab-case keys, then [`JobConfig::from_raw`] checks values and resolves paths
//! relative to the job file's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// What can go wrong reading a job file. Every message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The job file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the job file's shape.
    #[error("job file {path} is not valid: {message}")]
    Parse {
        /// The job file.
        path: PathBuf,
        /// What the parser said (with line and column).
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("job file {path}: {message}")]
    Invalid {
        /// The job file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The job file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawJob {
    /// Job name; part of every output id.
    pub name: String,
    /// The operator to run.
    pub operator: RawOperator,
    /// Where records come from: one `[source]` table or several `[[source]]` tables.
    #[serde(deserialize_with = "one_or_many")]
    pub source: Vec<SourceConfig>,
    /// How each record's key is found.
    #[serde(default)]
    pub key: KeyConfig,
    /// Where emitted records go.
    pub sink: SinkConfig,
    /// Where records whose processing failed go.
    #[serde(default)]
    pub dead_letter: Option<SinkConfig>,
    /// State backend and checkpoints.
    #[serde(default)]
    pub state: RawState,
    /// The NATS server.
    #[serde(default)]
    pub nats: NatsConfig,
    /// The admin HTTP API (off unless given).
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Event time: record timestamps, watermarks and late data.
    #[serde(default)]
    pub event_time: Option<RawEventTime>,
}

/// `[event-time]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawEventTime {
    /// Where a record's event timestamp comes from.
    #[serde(default)]
    pub timestamp: TimestampConfig,
    /// How far behind the newest timestamp of a source records may still arrive in order
    /// to count as on time, e.g. "5s".
    #[serde(default, with = "humantime_serde")]
    pub max_out_of_orderness: Option<Duration>,
    /// How far behind the watermark a record may be and still reach the operator.
    #[serde(default, with = "humantime_serde")]
    pub allowed_lateness: Option<Duration>,
    /// A source that has given no record for this long stops holding the watermark back.
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// Where late records go.
    #[serde(default)]
    pub late_data: Option<SinkConfig>,
    /// What the end of a bounded input means for event-time timers.
    #[serde(default)]
    pub end_of_input: EndOfInput,
}

/// `[event-time] end-of-input`: what happens to event-time timers when every source of the
/// job is bounded and exhausted.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EndOfInput {
    /// The input is complete: the watermark goes to the end of time and every event-time
    /// timer registered by then fires (as Flink does at the end of a bounded input; timers
    /// registered while they fire, past the last of them, stay).
    #[default]
    FireTimers,
    /// More input may come (a file that grows, a stream read up to its end): the timers
    /// stay for the next run.
    KeepTimers,
}

/// `[event-time] timestamp`: where a record's event timestamp (ms since the epoch) comes
/// from.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(tag = "from", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TimestampConfig {
    /// The source's: the JetStream message time, the `timestamp` of the JSON file format
    /// (0 for other file formats and the generator).
    #[default]
    Record,
    /// A top-level number field of the value parsed as a JSON object.
    JsonField {
        /// Field name.
        field: String,
    },
    /// A header holding a decimal number.
    Header {
        /// Header name.
        name: String,
    },
}

/// The validated `[event-time]` (its defaults when the job file has none).
#[derive(Debug, Clone)]
pub struct EventTimeConfig {
    /// Whether the job file has an `[event-time]` table: only then are late records kept
    /// from the operator.
    pub configured: bool,
    /// Where timestamps come from.
    pub timestamp: TimestampConfig,
    /// Bounded out-of-orderness of the watermark, in ms.
    pub max_out_of_orderness_ms: i64,
    /// Allowed lateness, in ms.
    pub allowed_lateness_ms: i64,
    /// Idle-source timeout.
    pub idle_timeout: Option<Duration>,
    /// Where late records go, with paths resolved.
    pub late_data: SinkConfig,
    /// What the end of a bounded input does to event-time timers.
    pub end_of_input: EndOfInput,
}
/// `[admin]`: the admin HTTP API of the running job.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdminConfig {
    /// Address to listen on, e.g. "127.0.0.1:8642" (port 0: a free one, logged). It has no
    /// authentication: keep it on loopback.
    #[serde(default = "default_admin_listen")]
    pub listen: std::net::SocketAddr,
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], defaults::ADMIN_PORT))
}

/// `[nats]`: the server of NATS sources and sinks.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NatsConfig {
    /// Server URL, e.g. "nats://127.0.0.1:4222". Without one, eddy starts a local
    /// `nats-server -js` on a free loopback port, with its data beside the job's state.
    #[serde(default)]
    pub url: Option<String>,
}

/// `[operator]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawOperator {
    /// Stable id of the operator's state; keep it across module versions.
    pub uid: String,
    /// Path of the `.wasm` component, relative to the job file.
    pub module: PathBuf,
    /// Passed to the operator's `init` as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// Worker tasks, each owning a range of key groups.
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// Records per `process` call.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Longest one `process` call may run before it is stopped, e.g. "1s".
    #[serde(default, with = "humantime_serde")]
    pub max_call_time: Option<Duration>,
    /// Largest linear memory an instance may grow to, in MiB.
    #[serde(default)]
    pub max_memory_mib: Option<u32>,
    /// Records a swapped-in module processes on probation: its outputs are held back and a
    /// misbehaviour rolls the swap back.
    #[serde(default)]
    pub swap_probation_records: Option<u64>,
    /// Failed calls (traps, timeouts, errors) a swapped-in module may have on probation
    /// before it is rolled back.
    #[serde(default)]
    pub swap_max_failures: Option<u64>,
}

/// `[state]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawState {
    /// RocksDB folder, relative to the job file.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Key groups of the job's state, fixed for its life.
    #[serde(default)]
    pub max_key_groups: Option<u32>,
    /// Memory for the host-side state cache, in MiB, over all workers.
    #[serde(default)]
    pub cache_mib: Option<u32>,
    /// How often state and positions are made durable together, e.g. "1s".
    #[serde(default, with = "humantime_serde")]
    pub checkpoint_interval: Option<Duration>,
    /// Least time from one checkpoint's completion to the next barrier, e.g. "500ms".
    #[serde(default, with = "humantime_serde")]
    pub checkpoint_min_pause: Option<Duration>,
    /// Longest a checkpoint (waiting for output acks, then the synced write) may take
    /// before the job stops with an error, e.g. "10m".
    #[serde(default, with = "humantime_serde")]
    pub checkpoint_timeout: Option<Duration>,
    /// Older checkpoints kept as openable copies, to fall back on when the newest is
    /// damaged (0: none).
    #[serde(default)]
    pub retained_checkpoints: Option<u32>,
    /// Keep a copy of every n-th checkpoint.
    #[serde(default)]
    pub retain_every: Option<u32>,
    /// How often expired values of states with a TTL are removed from disk (a
    /// compaction after a checkpoint), e.g. "10m".
    #[serde(default, with = "humantime_serde")]
    pub ttl_cleanup_interval: Option<Duration>,
}

/// Reads `[source]` (one table) or `[[source]]` (an array of tables).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SourceConfig>, D::Error> {
    use serde::de::Error as _;
    match toml::Value::deserialize(d)? {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                SourceConfig::deserialize(v)
                    .map_err(|e| D::Error::custom(format!("source {}: {e}", i + 1)))
            })
            .collect(),
        one => SourceConfig::deserialize(one)
            .map(|s| vec![s])
            .map_err(D::Error::custom),
    }
}

/// `[source]` (or each of several `[[source]]`): where records come from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A file, one record per line.
    File {
        /// Path, relative to the job file.
        path: PathBuf,
        /// `lines` (the line is the value) or `json` (one record object per line).
        #[serde(default)]
        format: FileFormat,
        /// How this source's keys are found, when not as the job's `[key]` says.
        #[serde(default)]
        key: Option<KeyConfig>,
    },
    /// A NATS JetStream stream, read from the position after the last checkpoint.
    Nats {
        /// Stream name.
        stream: String,
        /// Subject the stream captures; used by `eddy publish` to create the stream, and as
        /// the consumer's filter when given.
        #[serde(default)]
        subject: Option<String>,
        /// Stop at the stream's last message as of the start (else run until stopped).
        #[serde(default)]
        bounded: bool,
        /// How this source's keys are found, when not as the job's `[key]` says.
        #[serde(default)]
        key: Option<KeyConfig>,
    },
    /// Generated words `"w" + (i * 7919 % keys)` for i in 0..count, as in the benchmarks,
    /// with timestamp `i` (ms).
    Generator {
        /// How many records.
        count: u64,
        /// How many distinct words.
        keys: u64,
    },
}

/// Line formats of the file source.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// Each line is a record value; the key comes from `[key]`.
    #[default]
    Lines,
    /// Each line is `{"key": …, "value": …, "timestamp": …, "headers": {…}}`.
    Json,
}

/// `[key]`: how the key of a record is found.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(tag = "from", rename_all = "kebab-case", deny_unknown_fields)]
pub enum KeyConfig {
    /// The key the source gives (the `key` field of the JSON file format), else the value.
    #[default]
    RecordKey,
    /// The whole value.
    Value,
    /// A top-level field of the value parsed as a JSON object.
    JsonField {
        /// Field name.
        field: String,
    },
    /// A header.
    Header {
        /// Header name.
        name: String,
    },
    /// A token of the NATS subject (0-based, split at `.`), e.g. index 1 of
    /// `orders.eu.created` is `eu`.
    SubjectToken {
        /// Token index.
        index: usize,
    },
}

/// `[sink]` and `[dead-letter]`: where records go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum SinkConfig {
    /// JSON lines `{"key": …, "value": …}` into a file (created, appended to).
    File {
        /// Path, relative to the job file.
        path: PathBuf,
    },
    /// Publishes to a NATS subject, with a message id per output, so that replays after a
    /// crash are de-duplicated by the stream.
    Nats {
        /// Subject to publish to.
        subject: String,
        /// The stream that captures it; created (over `subject`) when missing. Default: the
        /// subject with `.` and `*`/`>` replaced by `_`.
        #[serde(default)]
        stream: Option<String>,
        /// Duplicate window of a stream eddy creates; recovery must finish within it.
        #[serde(
            default = "default_duplicate_window",
            with = "humantime_serde",
            alias = "duplicate_window"
        )]
        duplicate_window: Duration,
    },
    /// JSON lines on standard output.
    Stdout,
    /// Dropped (benchmarks).
    Discard,
}

fn default_duplicate_window() -> Duration {
    defaults::DUPLICATE_WINDOW
}

/// The stream name a NATS sink uses when the job file names none.
pub fn default_stream_name(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The validated job: what the host runs on.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Job name.
    pub name: String,
    /// The operator.
    pub operator: OperatorConfig,
    /// The sources (at least one, names unique), with paths resolved.
    pub sources: Vec<SourceConfig>,
    /// Key extraction (of sources that do not name their own).
    pub key: KeyConfig,
    /// The sink, with paths resolved.
    pub sink: SinkConfig,
    /// The dead-letter sink, with paths resolved.
    pub dead_letter: SinkConfig,
    /// State settings.
    pub state: StateConfig,
    /// NATS settings.
    pub nats: NatsConfig,
    /// The admin API, when enabled.
    pub admin: Option<AdminConfig>,
    /// Event time.
    pub event_time: EventTimeConfig,
}

impl JobConfig {
    /// Whether a source or sink of the job uses NATS.
    pub fn uses_nats(&self) -> bool {
        self.sources
            .iter()
            .any(|s| matches!(s, SourceConfig::Nats { .. }))
            || matches!(self.sink, SinkConfig::Nats { .. })
            || matches!(self.dead_letter, SinkConfig::Nats { .. })
            || (self.event_time.configured
                && matches!(self.event_time.late_data, SinkConfig::Nats { .. }))
    }

    /// How the keys of `source` are found: its own `key`, else the job's `[key]`.
    pub fn key_for(&self, source: &SourceConfig) -> KeyConfig {
        match source {
            SourceConfig::File { key: Some(k), .. } | SourceConfig::Nats { key: Some(k), .. } => {
                k.clone()
            }
            _ => self.key.clone(),
        }
    }

    /// The NATS source reading `stream`, or the only NATS source when `stream` is `None`:
    /// its stream and subject. The error says which streams there are.
    pub fn nats_source(&self, stream: Option<&str>) -> Result<(&str, Option<&str>), String> {
        let nats: Vec<(&str, Option<&str>)> = self
            .sources
            .iter()
            .filter_map(|s| match s {
                SourceConfig::Nats {
                    stream, subject, ..
                } => Some((stream.as_str(), subject.as_deref())),
                _ => None,
            })
            .collect();
        let names = || nats.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ");
        match (stream, nats.as_slice()) {
            (_, []) => Err("the job has no [source] of type \"nats\"".into()),
            (None, [one]) => Ok(*one),
            (None, _) => Err(format!(
                "the job reads several NATS streams ({}); name one",
                names()
            )),
            (Some(want), _) => nats
                .iter()
                .find(|(s, _)| *s == want)
                .copied()
                .ok_or_else(|| format!("the job reads no stream `{want}` (it reads {})", names())),
        }
    }
}

/// The validated `[operator]`.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Stable id of the operator's state.
    pub uid: String,
    /// The component file.
    pub module: PathBuf,
    /// `init` configuration as JSON text.
    pub config_json: String,
    /// Number of workers.
    pub parallelism: u32,
    /// Records per `process` call.
    pub batch_size: u32,
    /// Limits of each instance.
    pub limits: Limits,
    /// Records a swapped-in module processes on probation.
    pub swap_probation_records: u64,
    /// Failed calls a swapped-in module may have on probation before it is rolled back.
    pub swap_max_failures: u64,
}

/// Limits put on every operator instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest one call may run.
    pub max_call_time: Duration,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_call_time: defaults::MAX_CALL_TIME,
            max_memory_bytes: defaults::MAX_MEMORY_MIB as usize * MIB,
        }
    }
}

/// The validated `[state]`.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// RocksDB folder.
    pub dir: PathBuf,
    /// Key groups, fixed for the life of the state.
    pub max_key_groups: u32,
    /// State cache budget in bytes, over all workers.
    pub cache_bytes: usize,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Least time from one checkpoint's completion to the next barrier.
    pub checkpoint_min_pause: Duration,
    /// Longest a checkpoint may take before the job stops.
    pub checkpoint_timeout: Duration,
    /// Retained copies kept.
    pub retained_checkpoints: u32,
    /// Keep a copy of every n-th checkpoint.
    pub retain_every: u32,
    /// Least time between two cleanups of expired state.
    pub ttl_cleanup_interval: Duration,
}

impl StateConfig {
    /// The folder of retained checkpoint copies: `<state dir>-retained`.
    pub fn retained_dir(&self) -> PathBuf {
        beside(&self.dir, "-retained")
    }

    /// The order journal of a job with several sources: `<dir>-journal.jsonl`.
    pub fn journal_path(&self) -> PathBuf {
        beside(&self.dir, "-journal.jsonl")
    }
}

/// The path beside `path` whose name is `path`'s with `suffix` appended
/// (`jobs/wc.a` + `.restoring` = `jobs/wc.a.restoring`; unlike `with_extension`, two
/// paths that differ only in their extension never meet).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

const MIB: usize = 1024 * 1024;

/// The defaults of every optional setting, in one place.
pub mod defaults {
    use std::time::Duration;
    /// Workers.
    pub const PARALLELISM: u32 = 1;
    /// Port of the admin API when `[admin]` names no address (on 127.0.0.1).
    pub const ADMIN_PORT: u16 = 8642;
    /// Records per `process` call: large enough that the per-call cost (~µs) vanishes,
    /// small enough that a failed batch is cheap to re-run record by record.
    pub const BATCH_SIZE: u32 = 512;
    /// Longest one call may run.
    pub const MAX_CALL_TIME: Duration = Duration::from_secs(1);
    /// Largest linear memory of an instance.
    pub const MAX_MEMORY_MIB: u32 = 256;
    /// Records a swapped-in module processes on probation.
    pub const SWAP_PROBATION_RECORDS: u64 = 1000;
    /// Failed calls allowed on probation (any failure rolls back).
    pub const SWAP_MAX_FAILURES: u64 = 0;
    /// Key groups (as Flink's default max parallelism).
    pub const MAX_KEY_GROUPS: u32 = 128;
    /// State cache over all workers.
    pub const CACHE_MIB: u32 = 256;
    /// Checkpoint interval.
    pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
    /// Upper bound of key groups (they are stored as u16).
    pub const KEY_GROUPS_LIMIT: u32 = 32_768;
    /// Least time between checkpoints.
    pub const CHECKPOINT_MIN_PAUSE: Duration = Duration::ZERO;
    /// Longest a checkpoint may take.
    pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(600);
    /// Retained checkpoint copies.
    pub const RETAINED_CHECKPOINTS: u32 = 2;
    /// Keep a copy of every n-th checkpoint.
    pub const RETAIN_EVERY: u32 = 10;
    /// `[state] ttl-cleanup-interval`.
    pub const TTL_CLEANUP_INTERVAL: Duration = Duration::from_secs(600);
    /// Duplicate window of output streams eddy creates.
    pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
}

impl JobConfig {
    /// Reads and validates a job file.
    pub fn load(path: &Path) -> Result<JobConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses job file text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<JobConfig, ConfigError> {
        let raw: RawJob = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_raw(raw, path)
    }

    /// Validates a raw job file and resolves its paths.
    pub fn from_raw(raw: RawJob, path: &Path) -> Result<JobConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        if raw.name.is_empty() || raw.name.contains('/') {
            return Err(invalid(
                "`name` must be non-empty and contain no '/' (it is part of output ids)".into(),
            ));
        }
        let op = raw.operator;
        if op.uid.is_empty() || op.uid.contains('/') {
            return Err(invalid(
                "[operator] `uid` must be non-empty and contain no '/'".into(),
            ));
        }
        let parallelism = op.parallelism.unwrap_or(defaults::PARALLELISM);
        let max_key_groups = raw.state.max_key_groups.unwrap_or(defaults::MAX_KEY_GROUPS);
        if !(1..=defaults::KEY_GROUPS_LIMIT).contains(&max_key_groups) {
            return Err(invalid(format!(
                "[state] max-key-groups = {max_key_groups}: must be between 1 and {}",
                defaults::KEY_GROUPS_LIMIT
            )));
        }
        if parallelism == 0 || parallelism > max_key_groups {
            return Err(invalid(format!(
                "[operator] parallelism = {parallelism}: must be between 1 and max-key-groups ({max_key_groups})"
            )));
        }
        let batch_size = op.batch_size.unwrap_or(defaults::BATCH_SIZE);
        if !(1..=65_536).contains(&batch_size) {
            return Err(invalid(format!(
                "[operator] batch-size = {batch_size}: must be between 1 and 65536"
            )));
        }
        let max_memory_mib = op.max_memory_mib.unwrap_or(defaults::MAX_MEMORY_MIB);
        if !(1..=4096).contains(&max_memory_mib) {
            return Err(invalid(format!(
                "[operator] max-memory-mib = {max_memory_mib}: must be between 1 and 4096 (a 32-bit Wasm memory)"
            )));
        }
        let max_call_time = op.max_call_time.unwrap_or(defaults::MAX_CALL_TIME);
        if max_call_time < std::time::Duration::from_millis(10) {
            return Err(invalid(
                "[operator] max-call-time must be at least 10ms (the host's clock tick)".into(),
            ));
        }
        let config_json = match &op.config {
            Some(table) => serde_json::to_string(table)
                .map_err(|e| invalid(format!("[operator] config cannot become JSON: {e}")))?,
            None => "{}".to_string(),
        };
        let cache_mib = raw.state.cache_mib.unwrap_or(defaults::CACHE_MIB);
        if cache_mib == 0 {
            return Err(invalid("[state] cache-mib must be at least 1".into()));
        }
        let checkpoint_interval = raw
            .state
            .checkpoint_interval
            .unwrap_or(defaults::CHECKPOINT_INTERVAL);
        if checkpoint_interval.is_zero() {
            return Err(invalid(
                "[state] checkpoint-interval must be above 0".into(),
            ));
        }
        let state_dir = match &raw.state.dir {
            Some(d) => resolve(d),
            None => base.join(".eddy").join(&raw.name).join("state"),
        };
        if raw.source.is_empty() {
            return Err(invalid(
                "no source: give a [source] table (or [[source]] tables)".into(),
            ));
        }
        let mut sources = Vec::with_capacity(raw.source.len());
        for s in raw.source {
            let s = match s {
                SourceConfig::File {
                    path: p,
                    format,
                    key,
                } => SourceConfig::File {
                    path: resolve(&p),
                    format,
                    key,
                },
                other @ SourceConfig::Generator { count: _, keys } => {
                    if keys == 0 {
                        return Err(invalid(
                            "[source] generator `keys` must be at least 1".into(),
                        ));
                    }
                    other
                }
                nats @ SourceConfig::Nats { .. } => nats,
            };
            let name = crate::io::source::source_name(&s);
            let key = match &s {
                SourceConfig::File { key: Some(k), .. }
                | SourceConfig::Nats { key: Some(k), .. } => k,
                _ => &raw.key,
            };
            if matches!(key, KeyConfig::SubjectToken { .. })
                && !matches!(s, SourceConfig::Nats { .. })
            {
                return Err(invalid(format!(
                    "source `{name}`: keys from = \"subject-token\" need a source of type \"nats\" (other sources have no subjects)"
                )));
            }
            if sources
                .iter()
                .any(|o| crate::io::source::source_name(o) == name)
            {
                return Err(invalid(format!(
                    "two sources are named `{name}`: positions are kept per stream (or file name), so each may be read once; to read several subjects of one stream, give one source a subject filter that covers them (e.g. `orders.>`)"
                )));
            }
            sources.push(s);
        }
        let resolve_sink = |s: SinkConfig| match s {
            SinkConfig::File { path: p } => SinkConfig::File { path: resolve(&p) },
            other => other,
        };
        // By default dead letters go beside the state, so a job's files stay together.
        let dead_letter = match raw.dead_letter {
            Some(s) => resolve_sink(s),
            None => SinkConfig::File {
                path: state_dir.parent().unwrap_or(base).join("dead-letter.jsonl"),
            },
        };
        let configured = raw.event_time.is_some();
        let et = raw.event_time.unwrap_or_default();
        let ms = |d: Option<Duration>, what: &str| -> Result<i64, ConfigError> {
            let d = d.unwrap_or_default();
            i64::try_from(d.as_millis())
                .ok()
                .filter(|m| *m < i64::MAX / 4)
                .ok_or_else(|| invalid(format!("[event-time] {what} is too large")))
        };
        let event_time = EventTimeConfig {
            configured,
            timestamp: et.timestamp,
            max_out_of_orderness_ms: ms(et.max_out_of_orderness, "max-out-of-orderness")?,
            allowed_lateness_ms: ms(et.allowed_lateness, "allowed-lateness")?,
            idle_timeout: et.idle_timeout.filter(|d| !d.is_zero()),
            end_of_input: et.end_of_input,
            late_data: match et.late_data {
                Some(s) => resolve_sink(s),
                None => SinkConfig::File {
                    path: state_dir.parent().unwrap_or(base).join("late-data.jsonl"),
                },
            },
        };
        Ok(JobConfig {
            name: raw.name,
            operator: OperatorConfig {
                uid: op.uid,
                module: resolve(&op.module),
                config_json,
                parallelism,
                batch_size,
                limits: Limits {
                    max_call_time,
                    max_memory_bytes: max_memory_mib as usize * MIB,
                },
                swap_probation_records: op
                    .swap_probation_records
                    .unwrap_or(defaults::SWAP_PROBATION_RECORDS),
                swap_max_failures: op.swap_max_failures.unwrap_or(defaults::SWAP_MAX_FAILURES),
            },
            sources,
            key: raw.key,
            sink: resolve_sink(raw.sink),
            dead_letter,
            nats: raw.nats,
            admin: raw.admin,
            event_time,
            state: StateConfig {
                dir: state_dir,
                max_key_groups,
                cache_bytes: cache_mib as usize * MIB,
                checkpoint_interval,
                checkpoint_min_pause: raw
                    .state
                    .checkpoint_min_pause
                    .unwrap_or(defaults::CHECKPOINT_MIN_PAUSE),
                checkpoint_timeout: raw
                    .state
                    .checkpoint_timeout
                    .unwrap_or(defaults::CHECKPOINT_TIMEOUT),
                retained_checkpoints: raw
                    .state
                    .retained_checkpoints
                    .unwrap_or(defaults::RETAINED_CHECKPOINTS),
                retain_every: raw
                    .state
                    .retain_every
                    .unwrap_or(defaults::RETAIN_EVERY)
                    .max(1),
                ttl_cleanup_interval: raw
                    .state
                    .ttl_cleanup_interval
                    .unwrap_or(defaults::TTL_CLEANUP_INTERVAL),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "wc"
[operator]
uid = "word-count"
module = "op.wasm"
[source]
type = "file"
path = "in.txt"
[sink]
type = "stdout"
"#;

    #[test]
    fn minimal_job_gets_defaults_and_relative_paths() {
        let job = JobConfig::parse(MINIMAL, Path::new("jobs/wc.toml")).unwrap();
        assert_eq!(job.operator.module, Path::new("jobs/op.wasm"));
        assert_eq!(job.operator.parallelism, defaults::PARALLELISM);
        assert_eq!(job.state.max_key_groups, 128);
        assert_eq!(job.state.dir, Path::new("jobs/.eddy/wc/state"));
        assert_eq!(job.key, KeyConfig::RecordKey);
        assert_eq!(job.operator.config_json, "{}");
    }

    #[test]
    fn unknown_field_is_refused_with_its_name() {
        let text = MINIMAL.replace("uid =", "colour = \"red\"\nuid =");
        let err = JobConfig::parse(&text, Path::new("wc.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("wc.toml") && err.contains("colour"), "{err}");
    }

    #[test]
    fn durations_and_config_table_are_read() {
        let text = MINIMAL.replace(
            "module = \"op.wasm\"",
            "module = \"op.wasm\"\nmax-call-time = \"250ms\"\nconfig = { window-ms = 5 }",
        );
        let job = JobConfig::parse(&text, Path::new("wc.toml")).unwrap();
        assert_eq!(
            job.operator.limits.max_call_time,
            Duration::from_millis(250)
        );
        assert_eq!(job.operator.config_json, r#"{"window-ms":5}"#);
    }

    #[test]
    fn checkpoint_settings_are_read_with_defaults() {
        let job = JobConfig::parse(MINIMAL, Path::new("wc.toml")).unwrap();
        assert_eq!(job.state.checkpoint_min_pause, Duration::ZERO);
        assert_eq!(job.state.checkpoint_timeout, Duration::from_secs(600));
        assert_eq!(
            (job.state.retained_checkpoints, job.state.retain_every),
            (2, 10)
        );
        assert_eq!(
            job.state.retained_dir(),
            Path::new(".eddy/wc/state-retained")
        );
        let text = format!(
            "{MINIMAL}[state]\ncheckpoint-min-pause = \"250ms\"\ncheckpoint-timeout = \"30s\"\nretain-every = 0\n"
        );
        let job = JobConfig::parse(&text, Path::new("wc.toml")).unwrap();
        assert_eq!(job.state.checkpoint_min_pause, Duration::from_millis(250));
        assert_eq!(job.state.checkpoint_timeout, Duration::from_secs(30));
        assert_eq!(job.state.retain_every, 1, "0 means every checkpoint");
    }

    #[test]
    fn several_sources_with_their_own_keys() {
        let text = MINIMAL.replace(
            "[source]\ntype = \"file\"\npath = \"in.txt\"\n",
            "[[source]]\ntype = \"file\"\npath = \"in.txt\"\n\
             [[source]]\ntype = \"nats\"\nstream = \"orders\"\n\
             key = { from = \"json-field\", field = \"user\" }\n",
        );
        let job = JobConfig::parse(&text, Path::new("wc.toml")).unwrap();
        assert_eq!(job.sources.len(), 2);
        assert_eq!(job.key_for(&job.sources[0]), KeyConfig::RecordKey);
        assert_eq!(
            job.key_for(&job.sources[1]),
            KeyConfig::JsonField {
                field: "user".into()
            }
        );
        assert_eq!(job.nats_source(None).unwrap(), ("orders", None));
        assert!(
            job.nats_source(Some("clicks"))
                .unwrap_err()
                .contains("orders")
        );

        // A stream read twice would mix two positions under one name.
        let twice = text.replace(
            "path = \"in.txt\"",
            "path = \"in.txt\"\n[[source]]\ntype = \"nats\"\nstream = \"orders\"",
        );
        let err = JobConfig::parse(&twice, Path::new("wc.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("two sources are named `nats:orders`"), "{err}");

        // An error inside the second source says which one.
        let bad = text.replace("stream = \"orders\"", "stream = \"orders\"\ncolour = 1");
        let err = JobConfig::parse(&bad, Path::new("wc.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("source 2") && err.contains("colour"), "{err}");
    }

    #[test]
    fn event_time_is_read_with_defaults() {
        let job = JobConfig::parse(MINIMAL, Path::new("jobs/wc.toml")).unwrap();
        assert!(!job.event_time.configured);
        assert_eq!(job.event_time.max_out_of_orderness_ms, 0);
        let text = format!(
            "{MINIMAL}[event-time]\nmax-out-of-orderness = \"5s\"\nallowed-lateness = \"1s\"\nidle-timeout = \"30s\"\ntimestamp = {{ from = \"json-field\", field = \"ts\" }}\n"
        );
        let job = JobConfig::parse(&text, Path::new("jobs/wc.toml")).unwrap();
        assert!(job.event_time.configured);
        assert_eq!(job.event_time.max_out_of_orderness_ms, 5000);
        assert_eq!(job.event_time.allowed_lateness_ms, 1000);
        assert_eq!(job.event_time.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            job.event_time.timestamp,
            TimestampConfig::JsonField { field: "ts".into() }
        );
        assert_eq!(
            job.event_time.late_data,
            SinkConfig::File {
                path: PathBuf::from("jobs/.eddy/wc/late-data.jsonl")
            }
        );
    }

    #[test]
    fn parallelism_above_key_groups_is_refused() {
        let text = MINIMAL.replace(
            "module = \"op.wasm\"",
            "module = \"op.wasm\"\nparallelism = 9",
        ) + "[state]\nmax-key-groups = 8\n";
        let err = JobConfig::parse(&text, Path::new("wc.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("parallelism = 9"), "{err}");
    }
}
