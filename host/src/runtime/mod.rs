//! The Wasm runtime: one wasmtime [`Engine`] per process, components compiled once and
//! cached on disk, the linker with the host imports, per-instance limits, and the typed
//! calls into an operator.
//!
//! Architecture invariant: operators get no ambient authority. WASI is linked only because
//! toolchains import it even when unused; its context has no environment, arguments,
//! preopened directories or network, a wall clock stuck at the epoch, and seeded random
//! numbers, so that a replay is deterministic.

pub mod batch;
mod bindings;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use bindings::eddy::operator::log::{Host as LogHost, Level};
pub use bindings::eddy::operator::state::{EntryPage, Host as StateHost, KeyPage};
pub use bindings::eddy::operator::types::{
    Host as TypesHost, OperatorError, Redistribution as GuestRedistribution, StateDescriptor,
    StateError as GuestStateError, StateKind as GuestStateKind, TtlConfig as GuestTtlConfig,
    TtlUpdate as GuestTtlUpdate,
};
use bindings::{OperatorWorld, OperatorWorldPre};

use crate::config::Limits;
use crate::state::{
    Descriptor, OperatorStateDescriptor, Redistribution, StateKind, Ttl, TtlUpdate,
};

/// The WIT package version this host implements; components must export
/// `eddy:operator/operator@0.4.x`.
pub const WIT_VERSION: &str = "0.4.0";

/// The export an operator component must have.
pub const OPERATOR_EXPORT: &str = "eddy:operator/operator@0.4.0";

/// The prefix of the names of the states the host keeps for an operator (its timers);
/// operators may not declare a state with it.
pub const HOST_STATE_PREFIX: &str = "eddy.";

/// How often the epoch ticks; the unit of `max-call-time`.
pub const TICK: Duration = Duration::from_millis(10);

/// What the host side of the imports must implement; the runtime is generic over it so that
/// it knows nothing of state storage.
pub trait OperatorHost: StateHost + LogHost + TypesHost + Send + 'static {}
impl<T: StateHost + LogHost + TypesHost + Send + 'static> OperatorHost for T {}

/// Errors loading a module. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The file could not be read.
    #[error("cannot read operator module {path}: {source}")]
    Read {
        /// The module file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a component, or one this host cannot run.
    #[error("operator module {path} {message}")]
    Invalid {
        /// The module file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// How a call into an operator failed. Any of these leaves the instance unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`…).
    #[error("operator trapped: {0}")]
    Trap(String),
    /// The call ran past `max-call-time`.
    #[error("operator exceeded max-call-time ({0:?}) and was stopped")]
    Timeout(Duration),
    /// The guest tried to grow its memory past `max-memory-mib`.
    #[error("operator exceeded max-memory-mib ({0} MiB) and was stopped")]
    MemoryLimit(usize),
    /// The guest returned an error.
    #[error("operator returned an error: {0}")]
    Operator(String),
    /// A host import failed in a way the guest cannot handle (e.g. the state backend).
    #[error("host failure during the call: {0}")]
    Host(String),
}

/// What `describe` said, in host types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInfo {
    /// Operator name.
    pub name: String,
    /// Operator version.
    pub version: String,
    /// States in handle order: the operator's own (as `describe` declared them), then the
    /// host's for it (its timers, see `state::timers`), which the operator cannot reach.
    pub states: Vec<Descriptor>,
    /// How many of `states` the operator declared.
    pub guest_states: usize,
    /// Non-keyed operator states, in handle order.
    pub operator_states: Vec<OperatorStateDescriptor>,
}

/// The data of one store: WASI (deny-all), limits, and the host side of the imports.
pub struct StoreData<C> {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// The host side of the `state` and `log` imports.
    pub host: C,
}

impl<C: Send> WasiView for StoreData<C> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The process-wide engine, its epoch ticker and the compiled-component cache.
pub struct Runtime {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    stop_ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A component that exports the operator world, with what it declared.
#[derive(Clone)]
pub struct LoadedModule {
    /// Where it came from.
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: usize,
    /// The compiled component.
    pub component: Component,
    /// What `describe` returned.
    pub info: OperatorInfo,
    /// The component's imports and exports, for `inspect-module`.
    pub world: Vec<String>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("info", &self.info)
            .finish()
    }
}

/// A module linked for one kind of host context, ready to instantiate cheaply.
pub struct Prepared<C: 'static> {
    pre: OperatorWorldPre<StoreData<C>>,
    engine: Engine,
    limits: Limits,
}

/// A live operator instance.
pub struct Instance<C: 'static> {
    store: Store<StoreData<C>>,
    world: OperatorWorld,
    limits: Limits,
}

impl Runtime {
    /// Creates the engine. Compiled components are cached under `cache_dir` when given.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Runtime, ModuleError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Without async component features the per-call cost halves.
        config.concurrency_support(false);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| ModuleError::Engine(format!("{e:#}")))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.weak();
            let stop = stop_ticker.clone();
            std::thread::Builder::new()
                .name("eddy-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        match engine.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| ModuleError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        }
        Ok(Runtime {
            engine,
            cache_dir,
            stop_ticker,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads a component file: checks it is a component exporting the operator world,
    /// compiles it (or takes it from the cache) and calls `describe`.
    pub fn load(&self, path: &Path) -> Result<LoadedModule, ModuleError> {
        let bytes = std::fs::read(path).map_err(|source| ModuleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| ModuleError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
            return Err(invalid(
                "is not a WebAssembly file (no \\0asm header); give the .wasm component built for wasm32-wasip2".into(),
            ));
        }
        if bytes[6..8] != [1, 0] {
            return Err(invalid(
                "is a core WebAssembly module, not a component; build it for wasm32-wasip2, or wrap it with `wasm-tools component new`".into(),
            ));
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component = self
            .compile_cached(&bytes, &sha256)
            .map_err(|e| invalid(format!("does not compile: {e:#}")))?;
        let world = describe_world(&self.engine, &component);
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(&self.engine).map(|(n, _)| n).collect();
        if !exports
            .iter()
            .any(|name| name.starts_with("eddy:operator/operator@0.4."))
        {
            return Err(invalid(format!(
                "exports no {OPERATOR_EXPORT_PATTERN} (it exports: {}); build it against wit/ of this eddy (package eddy:operator@{WIT_VERSION})",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )));
        }
        let mut module = LoadedModule {
            path: path.to_path_buf(),
            sha256,
            size: bytes.len(),
            component,
            info: OperatorInfo {
                name: String::new(),
                version: String::new(),
                states: Vec::new(),
                guest_states: 0,
                operator_states: Vec::new(),
            },
            world,
        };
        let prepared = self
            .prepare::<NoState>(&module, Limits::default())
            .map_err(|e| invalid(e.to_string()))?;
        let mut instance = prepared
            .instantiate(NoState)
            .map_err(|e| invalid(format!("cannot be instantiated: {e}")))?;
        module.info = instance
            .describe()
            .map_err(|e| invalid(format!("failed in `describe`: {e}")))?;
        validate_info(&module.info).map_err(invalid)?;
        module.info.guest_states = module.info.states.len();
        module.info.states.push(crate::state::timers::descriptor());
        Ok(module)
    }

    fn compile_cached(&self, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes);
        };
        // Precompiled code only loads into an engine of the same version and settings.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let file = dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()));
        // One compile per cache file at a time in this process: jobs (or tests) loading the
        // same module together wait for the first compile and then read its result.
        let lock = compile_lock(&file);
        let _compiling = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if file.exists() {
            // SAFETY: the file was written by `Engine::precompile_component` of an engine
            // with the same compatibility hash (it is in the name), into eddy's own cache
            // folder, and renamed into place only once complete. `deserialize_file` still
            // checks the header, version and settings and refuses a mismatch.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &file) };
            match loaded {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring unusable compiled-module cache entry");
                }
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let serialized = component
                .serialize()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            // Unique per process and thread, so that concurrent writers (other processes
            // sharing the cache) never write into one temporary file.
            let tmp = file.with_extension(format!(
                "tmp{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&tmp, serialized)?;
            std::fs::rename(&tmp, &file)
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot cache the compiled module; it will be compiled again next time");
        }
        Ok(component)
    }

    /// Links a loaded module for host context `C`.
    pub fn prepare<C: OperatorHost>(
        &self,
        module: &LoadedModule,
        limits: Limits,
    ) -> Result<Prepared<C>, ModuleError> {
        let invalid = |message: String| ModuleError::Invalid {
            path: module.path.clone(),
            message,
        };
        let mut linker: Linker<StoreData<C>> = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| ModuleError::Engine(format!("linking WASI: {e:#}")))?;
        OperatorWorld::add_to_linker::<StoreData<C>, wasmtime::component::HasSelf<C>>(
            &mut linker,
            |d| &mut d.host,
        )
        .map_err(|e| ModuleError::Engine(format!("linking the host imports: {e:#}")))?;
        let pre = linker.instantiate_pre(&module.component).map_err(|e| {
            invalid(format!(
                "imports something this host does not provide ({e:#}); operators may import only eddy:operator@{WIT_VERSION} and WASI 0.2"
            ))
        })?;
        let pre = OperatorWorldPre::new(pre).map_err(|e| {
            invalid(format!(
                "exports no {OPERATOR_EXPORT_PATTERN} of the expected shape ({e:#})"
            ))
        })?;
        Ok(Prepared {
            pre,
            engine: self.engine.clone(),
            limits,
        })
    }
}

const OPERATOR_EXPORT_PATTERN: &str = "eddy:operator/operator@0.4.x";

fn describe_world(engine: &Engine, component: &Component) -> Vec<String> {
    let ty = component.component_type();
    let mut out: Vec<String> = ty
        .imports(engine)
        .map(|(n, _)| format!("import {n}"))
        .collect();
    out.extend(ty.exports(engine).map(|(n, _)| format!("export {n}")));
    out
}

fn validate_info(info: &OperatorInfo) -> Result<(), String> {
    if info.states.len() + info.operator_states.len() > 4096 {
        return Err(format!(
            "declares {} states in `describe`; the limit is 4096",
            info.states.len() + info.operator_states.len()
        ));
    }
    let mut names = std::collections::HashSet::new();
    let all = info
        .states
        .iter()
        .map(|s| (&s.name, s.ttl))
        .chain(info.operator_states.iter().map(|s| (&s.name, None)));
    for (name, ttl) in all {
        if ttl.is_some_and(|t| t.ttl_ms == 0) {
            return Err(format!(
                "declares state `{}` with a TTL of 0 ms in `describe`; give it a positive TTL or none",
                name
            ));
        }
        if name.is_empty() || name.len() > 256 {
            return Err(format!(
                "declares a state named {:?} in `describe`; names must be 1 to 256 bytes",
                name
            ));
        }
        if name.starts_with(HOST_STATE_PREFIX) {
            return Err(format!(
                "declares state `{}` in `describe`; names starting with `{HOST_STATE_PREFIX}` are kept for the host's own state (timers): rename it",
                name
            ));
        }
        if !names.insert(name.as_str()) {
            return Err(format!(
                "declares state `{}` twice in `describe`; state names must be unique among keyed and operator states",
                name
            ));
        }
    }
    Ok(())
}

/// Deny-all WASI: no env, args, preopens or network; stdio discarded; a clock stuck at the
/// epoch and seeded randomness, so that replays are deterministic.
fn deny_all_wasi() -> WasiCtx {
    use rand::SeedableRng;
    let mut b = WasiCtx::builder();
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .secure_random(rand::rngs::StdRng::seed_from_u64(0x0edd_0edd))
        .insecure_random(rand::rngs::StdRng::seed_from_u64(0x0edd_0ede))
        .insecure_random_seed(0x0edd);
    b.build()
}

struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl<C: OperatorHost> Prepared<C> {
    /// A fresh instance with `host` as its import context (tens of µs for Rust guests).
    pub fn instantiate(&self, host: C) -> Result<Instance<C>, CallError> {
        self.instantiate_or_return(host).map_err(|(e, _)| e)
    }

    /// As [`Prepared::instantiate`], but a failure gives `host` back (boxed), so that the
    /// caller can build another instance around it (e.g. of the previous module).
    #[allow(clippy::type_complexity)]
    pub fn instantiate_or_return(&self, host: C) -> Result<Instance<C>, (CallError, Box<C>)> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .trap_on_grow_failure(true)
            .instances(16)
            .build();
        let mut store = Store::new(
            &self.engine,
            StoreData {
                wasi: deny_all_wasi(),
                table: ResourceTable::new(),
                limits,
                host,
            },
        );
        store.limiter(|d| &mut d.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(self.limits.max_call_time));
        let world = match self.pre.instantiate(&mut store) {
            Ok(w) => w,
            Err(e) => {
                return Err((classify(e, self.limits), Box::new(store.into_data().host)));
            }
        };
        Ok(Instance {
            store,
            world,
            limits: self.limits,
        })
    }

    /// The limits every instance gets.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

fn deadline_ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64 + 1
}

fn classify(e: wasmtime::Error, limits: Limits) -> CallError {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>()
        && *trap == wasmtime::Trap::Interrupt
    {
        return CallError::Timeout(limits.max_call_time);
    }
    let text = format!("{e:#}");
    if text.contains("growing memory") || text.contains("memory growth failure") {
        return CallError::MemoryLimit(limits.max_memory_bytes / (1024 * 1024));
    }
    if let Some(h) = e.downcast_ref::<HostFailure>() {
        return CallError::Host(h.0.clone());
    }
    CallError::Trap(text)
}

/// A failure of the host inside an import (not the guest's fault); it traps the call.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostFailure(pub String);

impl<C: OperatorHost> Instance<C> {
    fn arm(&mut self) {
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.max_call_time));
    }

    /// Calls `describe`.
    pub fn describe(&mut self) -> Result<OperatorInfo, CallError> {
        self.arm();
        let info = self
            .world
            .eddy_operator_operator()
            .call_describe(&mut self.store)
            .map_err(|e| classify(e, self.limits))?;
        let guest_states = info.states.len();
        Ok(OperatorInfo {
            name: info.name,
            version: info.version,
            guest_states,
            states: info
                .states
                .into_iter()
                .map(|s| Descriptor {
                    name: s.name,
                    kind: match s.kind {
                        GuestStateKind::Value => StateKind::Value,
                        GuestStateKind::Map => StateKind::Map,
                        GuestStateKind::List => StateKind::List,
                    },
                    schema_version: s.schema_version,
                    ttl: s.ttl.map(|t| Ttl {
                        ttl_ms: t.ttl_ms,
                        update: match t.update {
                            GuestTtlUpdate::OnCreateAndWrite => TtlUpdate::OnCreateAndWrite,
                            GuestTtlUpdate::OnReadAndWrite => TtlUpdate::OnReadAndWrite,
                        },
                    }),
                    codec: s.codec,
                })
                .collect(),
            operator_states: info
                .operator_states
                .into_iter()
                .map(|s| OperatorStateDescriptor {
                    name: s.name,
                    schema_version: s.schema_version,
                    redistribution: match s.redistribution {
                        GuestRedistribution::EvenSplit => Redistribution::EvenSplit,
                        GuestRedistribution::Union => Redistribution::Union,
                    },
                    codec: s.codec,
                })
                .collect(),
        })
    }

    /// Calls `init` with the operator's configuration (JSON).
    pub fn init(&mut self, config: &str) -> Result<(), CallError> {
        self.arm();
        self.world
            .eddy_operator_operator()
            .call_init(&mut self.store, config)
            .map_err(|e| classify(e, self.limits))?
            .map_err(|e| CallError::Operator(operator_error_text(&e)))
    }

    /// Calls `process` with an encoded batch; returns the encoded result.
    pub fn process(&mut self, batch: &[u8]) -> Result<Vec<u8>, CallError> {
        self.arm();
        self.world
            .eddy_operator_operator()
            .call_process(&mut self.store, batch)
            .map_err(|e| classify(e, self.limits))?
            .map_err(|e| CallError::Operator(operator_error_text(&e)))
    }

    /// Calls `on-timer` with an encoded batch of fired timers; returns the encoded result.
    pub fn on_timer(&mut self, batch: &[u8]) -> Result<Vec<u8>, CallError> {
        self.arm();
        self.world
            .eddy_operator_operator()
            .call_on_timer(&mut self.store, batch)
            .map_err(|e| classify(e, self.limits))?
            .map_err(|e| CallError::Operator(operator_error_text(&e)))
    }

    /// Calls `migrate`: rewrites one stored value of `state` from schema `from_version` to
    /// the version this module declares.
    pub fn migrate(
        &mut self,
        state: &Descriptor,
        from_version: u32,
        value: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        self.arm();
        let d = StateDescriptor {
            name: state.name.clone(),
            kind: match state.kind {
                StateKind::Value => GuestStateKind::Value,
                StateKind::Map => GuestStateKind::Map,
                StateKind::List => GuestStateKind::List,
            },
            schema_version: state.schema_version,
            ttl: state.ttl.map(|t| GuestTtlConfig {
                ttl_ms: t.ttl_ms,
                update: match t.update {
                    TtlUpdate::OnCreateAndWrite => GuestTtlUpdate::OnCreateAndWrite,
                    TtlUpdate::OnReadAndWrite => GuestTtlUpdate::OnReadAndWrite,
                },
            }),
            codec: state.codec.clone(),
        };
        self.world
            .eddy_operator_operator()
            .call_migrate(&mut self.store, &d, from_version, value)
            .map_err(|e| classify(e, self.limits))?
            .map_err(|e| CallError::Operator(operator_error_text(&e)))
    }

    /// The host side of the imports.
    pub fn host(&mut self) -> &mut C {
        &mut self.store.data_mut().host
    }

    /// Ends the instance and gives back its host context (to build a fresh one after a
    /// trap: a trapped store cannot be used again).
    pub fn into_host(self) -> C {
        self.store.into_data().host
    }
}

fn operator_error_text(e: &OperatorError) -> String {
    match e {
        OperatorError::InvalidConfig(m) => format!("invalid config: {m}"),
        OperatorError::Failed(m) => m.clone(),
        OperatorError::Unsupported(m) => format!("unsupported: {m}"),
    }
}

/// The host context used for `describe`: no batch, so every state call fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoState;

impl TypesHost for NoState {}

/// Implements every state import of [`NoState`] as "no key": outside a batch there is none.
macro_rules! no_key_outside_a_batch {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        impl StateHost for NoState {
            $(
                fn $name(&mut self, _state: u32, key: u32 $(, _: $arg)*)
                    -> wasmtime::Result<Result<$ret, GuestStateError>> {
                    Ok(Err(GuestStateError::BadKey(key)))
                }
            )*
            // Operator state is not keyed: an instance without state (a swap's `init`
            // probe) sees empty lists, and its changes go nowhere.
            fn operator_list_get(&mut self, _state: u32)
                -> wasmtime::Result<Result<Vec<Vec<u8>>, GuestStateError>> {
                Ok(Ok(Vec::new()))
            }
            fn operator_list_add(&mut self, _state: u32, _value: Vec<u8>)
                -> wasmtime::Result<Result<(), GuestStateError>> {
                Ok(Ok(()))
            }
            fn operator_list_update(&mut self, _state: u32, _values: Vec<Vec<u8>>)
                -> wasmtime::Result<Result<(), GuestStateError>> {
                Ok(Ok(()))
            }
        }
    };
}

no_key_outside_a_batch! {
    value_get() -> Option<Vec<u8>>;
    value_set(Vec<u8>) -> ();
    value_clear() -> ();
    map_get(Vec<u8>) -> Option<Vec<u8>>;
    map_put(Vec<u8>, Vec<u8>) -> ();
    map_remove(Vec<u8>) -> ();
    map_contains(Vec<u8>) -> bool;
    map_is_empty() -> bool;
    map_clear() -> ();
    map_entries(Option<Vec<u8>>, u32) -> EntryPage;
    map_keys(Option<Vec<u8>>, u32) -> KeyPage;
    list_get() -> Vec<Vec<u8>>;
    list_add(Vec<u8>) -> ();
    list_add_all(Vec<Vec<u8>>) -> ();
    list_update(Vec<Vec<u8>>) -> ();
    list_clear() -> ();
}

impl LogHost for NoState {
    fn log(&mut self, level: Level, _key: Option<u32>, message: String) -> wasmtime::Result<()> {
        log_line("describe", level, None, &message);
        Ok(())
    }
}

/// Writes an operator's log line into the host's tracing, tagged with the operator and key.
pub fn log_line(operator: &str, level: Level, key: Option<&[u8]>, message: &str) {
    let key = key.map(String::from_utf8_lossy);
    let key = key.as_deref().unwrap_or("");
    match level {
        Level::Trace => tracing::trace!(target: "operator", operator, key, "{message}"),
        Level::Debug => tracing::debug!(target: "operator", operator, key, "{message}"),
        Level::Info => tracing::info!(target: "operator", operator, key, "{message}"),
        Level::Warn => tracing::warn!(target: "operator", operator, key, "{message}"),
        Level::Error => tracing::error!(target: "operator", operator, key, "{message}"),
    }
}

/// The in-process lock of one compiled-module cache file.
fn compile_lock(file: &Path) -> Arc<std::sync::Mutex<()>> {
    static LOCKS: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<PathBuf, Arc<std::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut locks = LOCKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    locks.entry(file.to_path_buf()).or_default().clone()
}
