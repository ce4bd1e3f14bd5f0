//! The admin HTTP API of a running job (`[admin] listen = "127.0.0.1:8642"`): `GET /jobs`
//! (status, operator and module with its history, records in/out, lag, last checkpoint,
//! as JSON), `GET /metrics` (the same figures and histograms in the Prometheus text
//! format), `POST /jobs/{job}/operators/{uid}/swap` (a hot swap, see `job::swap`) and
//! `POST /jobs/{job}/savepoints` (a savepoint of the running job, optionally stopping it).
//!
//! It has no authentication: it listens on loopback unless the job file says otherwise,
//! and eddy warns when it does. The server runs on its own one-thread runtime and stops
//! when the [`Admin`] handle is dropped (when the job ends), after finishing the answers
//! in flight.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::metrics::{BUCKETS, Histogram, Stats, UNKNOWN};

/// What the API says of the job besides its live figures.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// Job name.
    pub name: String,
    /// Operator uid.
    pub operator_uid: String,
    /// Source names.
    pub sources: Vec<String>,
    /// When the run started, ms since the epoch.
    pub started_at_ms: u64,
}

/// Where the module of a swap request comes from.
#[derive(Debug, Clone)]
pub enum SwapModule {
    /// A component file on the host's file system.
    Path(std::path::PathBuf),
    /// The component's bytes (the request body).
    Bytes(Vec<u8>),
}

/// What a swap request came to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum SwapOutcome {
    /// The new module runs (on probation for its first records).
    #[serde(rename_all = "kebab-case")]
    Swapped {
        /// The checkpoint taken at the swap: the rollback point.
        checkpoint: u64,
        /// How long processing stopped, in milliseconds.
        pause_ms: f64,
        /// sha256 of the new module.
        module_sha256: String,
        /// Its version.
        version: String,
    },
    /// Nothing changed; the reason says why and what to do.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A savepoint taken of the running job.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SavepointTaken {
    /// The savepoint folder.
    pub dir: std::path::PathBuf,
    /// The checkpoint it holds.
    pub checkpoint: u64,
    /// Its positions.
    pub positions: std::collections::BTreeMap<String, u64>,
    /// Entries written.
    pub entries: u64,
    /// Bytes of data files.
    pub bytes: u64,
    /// Whether the job stopped at it.
    pub stopped: bool,
}

/// What the API can ask of the running job; the job implements it.
pub trait Control: Send + Sync {
    /// Validates `module` off the processing path, then swaps it in at the next checkpoint
    /// barrier; blocks until done or refused.
    fn swap(&self, module: SwapModule, requested_by: Option<String>) -> SwapOutcome;
    /// Takes a checkpoint and writes a savepoint of it into `dir`; with `stop`, the job
    /// processes nothing after it and ends. Blocks until written.
    fn savepoint(&self, dir: std::path::PathBuf, stop: bool) -> Result<SavepointTaken, String>;
}

/// Largest module a swap request may carry.
const MAX_MODULE_BYTES: usize = 512 * 1024 * 1024;

struct Shared {
    info: JobInfo,
    stats: Arc<Stats>,
    control: Arc<dyn Control>,
}

/// A running admin server; dropping it stops the server.
pub struct Admin {
    addr: SocketAddr,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Longest the API finishes its answers in flight once the job ends (e.g. the answer to
/// the savepoint that stopped it).
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(DRAIN, server).await });
        }
    }
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("addr", &self.addr).finish()
    }
}

impl Admin {
    /// The address it listens on (with the port chosen when the job file said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts the API on `listen`. The error names the address and what to do.
pub fn serve(
    listen: SocketAddr,
    info: JobInfo,
    stats: Arc<Stats>,
    control: Arc<dyn Control>,
) -> Result<Admin, String> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        format!(
            "cannot listen on {listen} for the admin API: {e}; pick another [admin] listen address (port 0 picks a free one)"
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("admin API on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("admin API on {listen}: {e}"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the admin API has no authentication and listens beyond loopback");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("eddy-admin")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the admin API's runtime: {e}"))?;
    let shared = Arc::new(Shared {
        info,
        stats,
        control,
    });
    let app = Router::new()
        .route("/jobs", get(jobs))
        .route("/metrics", get(metrics))
        .route("/jobs/{job}/operators/{uid}/swap", post(swap_module))
        .route("/jobs/{job}/savepoints", post(take_savepoint))
        .layer(DefaultBodyLimit::max(MAX_MODULE_BYTES))
        .with_state(shared);
    let listener = {
        let _inside = rt.enter();
        tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("admin API on {listen}: {e}"))?
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "the admin API stopped");
        }
    });
    tracing::info!(
        "admin API on http://{addr} (GET /jobs, GET /metrics, POST /jobs/{{job}}/operators/{{uid}}/swap, POST /jobs/{{job}}/savepoints)"
    );
    Ok(Admin {
        addr,
        rt,
        stop: Some(stop),
        server: Some(server),
    })
}

fn gauge(v: u64) -> serde_json::Value {
    if v == UNKNOWN {
        serde_json::Value::Null
    } else {
        v.into()
    }
}

/// `POST /jobs/{job}/operators/{uid}/swap`: the body is the component (any content type
/// but JSON), or JSON `{"path": "...", "requested-by": "..."}` naming a file on the host;
/// the `x-requested-by` header says who asks. Answers 200 with the swap, 409 when refused,
/// 404 for another job or operator.
async fn swap_module(
    State(s): State<Arc<Shared>>,
    Path((job, uid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let refused = |code: StatusCode, reason: String| {
        (code, axum::Json(SwapOutcome::Refused { reason })).into_response()
    };
    if job != s.info.name || uid != s.info.operator_uid {
        return refused(
            StatusCode::NOT_FOUND,
            format!(
                "this host runs job `{}` with operator `{}`, not job `{job}` with operator `{uid}`",
                s.info.name, s.info.operator_uid
            ),
        );
    }
    let control = s.control.clone();
    let mut requested_by = headers
        .get("x-requested-by")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let module = if is_json {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        struct ByPath {
            path: std::path::PathBuf,
            #[serde(default)]
            requested_by: Option<String>,
        }
        match serde_json::from_slice::<ByPath>(&body) {
            Ok(b) => {
                requested_by = b.requested_by.or(requested_by);
                SwapModule::Path(b.path)
            }
            Err(e) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the JSON body must be {{\"path\": \"<module.wasm on the host>\"}}: {e}"
                    ),
                );
            }
        }
    } else {
        SwapModule::Bytes(body.to_vec())
    };
    let outcome =
        match tokio::task::spawn_blocking(move || control.swap(module, requested_by)).await {
            Ok(o) => o,
            Err(e) => SwapOutcome::Refused {
                reason: format!("the swap failed inside the host: {e}"),
            },
        };
    let code = match outcome {
        SwapOutcome::Swapped { .. } => StatusCode::OK,
        SwapOutcome::Refused { .. } => StatusCode::CONFLICT,
    };
    (code, axum::Json(outcome)).into_response()
}

/// `POST /jobs/{job}/savepoints` with JSON `{"dir": "/on/the/host", "stop": false}`: a
/// savepoint of the running job (and, with `stop`, the job ends at it). 200 with what was
/// written, 409 when it could not be taken, 404 for another job.
async fn take_savepoint(
    State(s): State<Arc<Shared>>,
    Path(job): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let failed = |code: StatusCode, reason: String| {
        (code, axum::Json(serde_json::json!({ "reason": reason }))).into_response()
    };
    if job != s.info.name {
        return failed(
            StatusCode::NOT_FOUND,
            format!("this host runs job `{}`, not `{job}`", s.info.name),
        );
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        dir: std::path::PathBuf,
        #[serde(default)]
        stop: bool,
    }
    let ask: Ask = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return failed(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be {{\"dir\": \"<folder on the host>\", \"stop\": false}}: {e}"
                ),
            );
        }
    };
    let control = s.control.clone();
    match tokio::task::spawn_blocking(move || control.savepoint(ask.dir, ask.stop)).await {
        Ok(Ok(taken)) => (StatusCode::OK, axum::Json(taken)).into_response(),
        Ok(Err(reason)) => failed(StatusCode::CONFLICT, reason),
        Err(e) => failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the savepoint failed inside the host: {e}"),
        ),
    }
}

async fn jobs(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let st = &s.stats;
    let i = &s.info;
    let module = st.module.lock().map(|m| m.clone()).unwrap_or_default();
    let positions = st.positions.lock().map(|p| p.clone()).unwrap_or_default();
    let last = st.last_checkpoint.load(Ordering::Relaxed);
    let (durations, sum) = st.checkpoint_seconds.snapshot();
    let checkpoints = durations.last().copied().unwrap_or(0);
    axum::Json(serde_json::json!([{
        "name": i.name,
        "status": "running",
        "started-at-ms": i.started_at_ms,
        "operators": [{
            "uid": i.operator_uid,
            "name": module.name,
            "version": module.version,
            "module-sha256": module.sha256,
            "records-in": st.records_in.load(Ordering::Relaxed),
            "records-out": st.records_out.load(Ordering::Relaxed),
            "dead-letters": st.dead_letters.load(Ordering::Relaxed),
            "failures": st.restarts.load(Ordering::Relaxed),
            "swaps": st.swaps.load(Ordering::Relaxed),
            "rollbacks": st.rollbacks.load(Ordering::Relaxed),
            "last-swap-problem": module.last_swap_problem,
            "module-history": module.history,
        }],
        "sources": i.sources,
        "lag": gauge(st.lag.load(Ordering::Relaxed)),
        "last-checkpoint": (last > 0).then(|| serde_json::json!({
            "id": last,
            "at-ms": st.last_checkpoint_at_ms.load(Ordering::Relaxed),
            "positions": positions,
        })),
        "checkpoints": checkpoints,
        "mean-checkpoint-ms": if checkpoints > 0 { sum * 1e3 / checkpoints as f64 } else { 0.0 },
        "state-bytes": st.state_bytes.load(Ordering::Relaxed),
        "watermark": watermark_json(st.watermark.load(Ordering::Relaxed)),
        "source-watermarks": st.source_watermarks.lock().map(|w| w.iter().map(|(s, (wm, idle))| {
            (s.clone(), serde_json::json!({"watermark": watermark_json(*wm), "idle": idle}))
        }).collect::<serde_json::Map<_, _>>()).unwrap_or_default(),
        "timers-fired": st.timers_fired.load(Ordering::Relaxed),
        "late-records": st.late_records.load(Ordering::Relaxed),
    }]))
}

/// A watermark for JSON: null before there is one.
fn watermark_json(wm: i64) -> serde_json::Value {
    if wm == i64::MIN {
        serde_json::Value::Null
    } else {
        serde_json::json!(wm)
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&s.info, &s.stats),
    )
}

/// The Prometheus text exposition of the job's figures.
pub fn render(info: &JobInfo, st: &Stats) -> String {
    let labels = format!(
        "job=\"{}\",operator=\"{}\"",
        escape(&info.name),
        escape(&info.operator_uid)
    );
    let mut out = String::new();
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let lag = c(&st.lag);
    let figures = [
        (
            "eddy_records_in_total",
            "Records processed by the operator.",
            "counter",
            c(&st.records_in),
        ),
        (
            "eddy_records_out_total",
            "Records the operator emitted.",
            "counter",
            c(&st.records_out),
        ),
        (
            "eddy_dead_letters_total",
            "Records sent to the dead-letter output.",
            "counter",
            c(&st.dead_letters),
        ),
        (
            "eddy_operator_failures_total",
            "Failed operator calls (traps, timeouts, memory limit, errors), each followed by a fresh instance.",
            "counter",
            c(&st.restarts),
        ),
        (
            "eddy_swaps_total",
            "Modules swapped in while the job ran.",
            "counter",
            c(&st.swaps),
        ),
        (
            "eddy_swap_rollbacks_total",
            "Swaps rolled back because the new module misbehaved on probation.",
            "counter",
            c(&st.rollbacks),
        ),
        (
            "eddy_timers_fired_total",
            "Timers fired (event time and processing time).",
            "counter",
            c(&st.timers_fired),
        ),
        (
            "eddy_late_records_total",
            "Records behind the watermark by more than the allowed lateness, sent to the late-data output.",
            "counter",
            c(&st.late_records),
        ),
        (
            "eddy_checkpoints_total",
            "Checkpoints completed.",
            "counter",
            c(&st.checkpoints),
        ),
        (
            "eddy_last_checkpoint_id",
            "Id of the last completed checkpoint.",
            "gauge",
            c(&st.last_checkpoint),
        ),
        (
            "eddy_state_bytes",
            "Approximate bytes of state in RocksDB as of the last checkpoint.",
            "gauge",
            c(&st.state_bytes),
        ),
        (
            "eddy_source_lag_records",
            "Records available in the sources but not yet read.",
            "gauge",
            lag,
        ),
    ];
    for (name, help, kind, v) in figures {
        if v == UNKNOWN {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
    if let Ok(w) = st.source_watermarks.lock()
        && !w.is_empty()
    {
        let _ = writeln!(
            out,
            "# HELP eddy_watermark_ms The event-time watermark of each source (ms since the epoch).\n# TYPE eddy_watermark_ms gauge"
        );
        for (source, (wm, _)) in w.iter() {
            if *wm != i64::MIN {
                let _ = writeln!(
                    out,
                    "eddy_watermark_ms{{{labels},source=\"{}\"}} {wm}",
                    escape(source)
                );
            }
        }
    }
    histogram(
        &mut out,
        "eddy_process_seconds",
        "Duration of process calls (one per batch).",
        &labels,
        &st.process_seconds,
    );
    histogram(
        &mut out,
        "eddy_swap_pause_seconds",
        "The longest a worker stopped processing for a swap (its barrier and its new instance).",
        &labels,
        &st.swap_pause_seconds,
    );
    histogram(
        &mut out,
        "eddy_checkpoint_seconds",
        "Duration of checkpoints, barrier to durable.",
        &labels,
        &st.checkpoint_seconds,
    );
    out
}

fn histogram(out: &mut String, name: &str, help: &str, labels: &str, h: &Histogram) {
    let (cumulative, sum) = h.snapshot();
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (le, n) in BUCKETS.iter().zip(&cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
    }
    let total = cumulative.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

/// Escapes a Prometheus label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let st = Stats::new();
        st.process_seconds
            .observe(std::time::Duration::from_micros(50));
        st.process_seconds
            .observe(std::time::Duration::from_millis(3));
        st.process_seconds
            .observe(std::time::Duration::from_secs(60));
        let info = JobInfo {
            name: "a\"b".into(),
            operator_uid: "op".into(),
            sources: vec![],
            started_at_ms: 0,
        };
        let text = render(&info, &st);
        let l = r#"job="a\"b",operator="op""#;
        assert!(
            text.contains(&format!(
                "eddy_process_seconds_bucket{{{l},le=\"0.0001\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "eddy_process_seconds_bucket{{{l},le=\"0.005\"}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("eddy_process_seconds_bucket{{{l},le=\"10\"}} 2")),
            "{text}"
        );
        assert!(
            text.contains(&format!("eddy_process_seconds_bucket{{{l},le=\"+Inf\"}} 3")),
            "{text}"
        );
        assert!(
            text.contains(&format!("eddy_process_seconds_count{{{l}}} 3")),
            "{text}"
        );
        assert!(
            !text.contains("eddy_source_lag_records"),
            "lag unknown: not shown"
        );
    }
}
