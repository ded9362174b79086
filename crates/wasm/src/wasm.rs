//! Running a plugin component in a sandbox: wasmtime's component model, a
//! deadline per batch (epoch interruption), a memory limit per instance,
//! and no capabilities: no files, sockets or environment; clocks frozen at
//! the epoch.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::{events, Error, Result};

wasmtime::component::bindgen!({
    path: "../../sdk/wit",
    world: "transform",
    additional_derives: [PartialEq],
});

pub use sluice::plugin::types;

/// The `batch` of the contract, borrowing the host's data: the tables,
/// the positions and the row images are lowered into the plugin's memory
/// as they are (one copy of `data` per batch, not an allocation per value).
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
pub struct BatchRef<'a> {
    #[component(name = "tables")]
    pub tables: &'a [types::Table],
    #[component(name = "positions")]
    pub positions: &'a [&'a str],
    #[component(name = "data")]
    pub data: &'a [u8],
    #[component(name = "events")]
    pub events: &'a [types::Event],
}

/// The contract version this host speaks.
pub const CONTRACT_VERSION: u32 = 2;

/// How often the deadline clock ticks.
const TICK: Duration = Duration::from_millis(10);

/// One engine for the process, with a thread advancing its epoch.
fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true).epoch_interruption(true);
            let engine = Engine::new(&config).map_err(|e| e.to_string())?;
            let ticker = engine.clone();
            std::thread::Builder::new()
                .name("sluice-wasm-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(TICK);
                    ticker.increment_epoch();
                })
                .map_err(|e| e.to_string())?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("starting the WebAssembly engine: {e}")))
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

struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    plugin: Arc<str>,
    /// What the plugin's last panic said (the SDK's panic hook logs it
    /// just before the trap), for the error.
    panic: Option<String>,
    /// Whether the plugin was told its counter names are full.
    counters_full: bool,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl sluice::plugin::host::Host for HostState {
    fn log(&mut self, level: types::Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            types::Level::Trace => tracing::trace!(plugin, "{message}"),
            types::Level::Debug => tracing::debug!(plugin, "{message}"),
            types::Level::Info => tracing::info!(plugin, "{message}"),
            types::Level::Warn => tracing::warn!(plugin, "{message}"),
            types::Level::Error if message.starts_with("panicked at") => {
                self.panic = Some(message);
            }
            types::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    /// Feeds `sluice_plugin_counter_total{plugin, name}`. Names are cut to
    /// 64 characters and a plugin keeps at most
    /// [`PLUGIN_COUNTER_NAMES`](crate::progress::PLUGIN_COUNTER_NAMES) of
    /// them: a plugin is untrusted, and each name is a metrics series.
    fn counter(&mut self, name: String, delta: u64) {
        let name: String = name.chars().take(64).collect();
        if !crate::progress::plugin_counter(&self.plugin, &name, delta) && !self.counters_full {
            self.counters_full = true;
            tracing::warn!(plugin = &*self.plugin, counter = %name, "the plugin uses more counter names than sluice keeps; new names are dropped");
        }
    }
}

/// Limits one plugin instance runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per `process` call.
    pub deadline: Duration,
    pub memory_bytes: usize,
}

/// A plugin compiled once, from which instances are made (one per worker).
#[derive(Clone)]
pub struct Plugin {
    name: Arc<str>,
    path: std::path::PathBuf,
    component: Component,
    linker: Arc<Linker<HostState>>,
    limits: Limits,
}

impl Plugin {
    /// Compiles the component at `path` (or loads its compiled form from the
    /// cache, see [`cache`]).
    pub fn compile(name: &str, path: &Path, limits: Limits) -> Result<Plugin> {
        let engine = engine()?;
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::precondition(
                format!("plugin `{name}` ({}): {what}: {e}", path.display()),
                "build it with `sluice plugin build DIR` against this version's sluice-sdk",
            )
        };
        let bytes = std::fs::read(path).map_err(|e| fail("cannot be read", &e))?;
        let component = cache::load_or_compile(engine, &bytes)
            .map_err(|e| fail("not a WebAssembly component", &e))?;
        let mut linker: Linker<HostState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| fail("linking WASI", &e))?;
        Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| fail("linking the host", &e))?;
        Ok(Plugin {
            name: name.into(),
            path: path.to_path_buf(),
            component,
            linker: Arc::new(linker),
            limits,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The contract version ("v1") named by the component's imports of
    /// sluice's interfaces, when it is not this sluice's.
    fn older_contract(&self, engine: &Engine) -> Option<String> {
        let ours = format!("@{CONTRACT_VERSION}.");
        self.component
            .component_type()
            .imports(engine)
            .find_map(|(name, _)| {
                let version = name.strip_prefix("sluice:plugin/")?.split_once('@')?.1;
                (!format!("@{version}").starts_with(&ours))
                    .then(|| format!("v{}", version.split('.').next().unwrap_or(version)))
            })
    }

    /// A fresh instance: checks its contract version and calls `init(config)`.
    pub fn instantiate(&self, config_json: &str) -> Result<Instance> {
        let engine = engine()?;
        let (name, path) = (&*self.name, &self.path);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::precondition(
                format!("plugin `{name}` ({}): {what}: {e}", path.display()),
                "build it with `sluice plugin build DIR` against this version's sluice-sdk",
            )
        };
        let wasi = WasiCtxBuilder::new()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            plugin: self.name.clone(),
            panic: None,
            counters_full: false,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        // Data a call may pass out of the plugin: its memory bounds it anyway.
        store.set_hostcall_fuel(HOSTCALL_FUEL_PER_MEMORY * self.limits.memory_bytes.max(1 << 20));
        let deadline_ticks = (self.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(deadline_ticks);
        let instance = self
            .linker
            .instantiate(&mut store, &self.component)
            .map_err(|e| match self.older_contract(engine) {
                // Its imports name the contract version it was built for.
                Some(old) => Error::precondition(
                    format!(
                        "plugin `{name}` ({}) was built for contract {old}; this sluice speaks v{CONTRACT_VERSION}",
                        path.display()
                    ),
                    "rebuild it with `sluice plugin build DIR` (its source needs no change)",
                ),
                None => fail(
                    "cannot be instantiated (does it import something sluice does not grant?)",
                    &e,
                ),
            })?;
        // The version first, by the one export every contract version has
        // in the same shape: a plugin of another version fails the other
        // exports' type checks, which would not say what to do.
        let version = instance
            .get_typed_func::<(), (u32,)>(&mut store, "contract-version")
            .and_then(|f| f.call(&mut store, ()))
            .map_err(|e| fail("contract-version failed", &e))?
            .0;
        if version != CONTRACT_VERSION {
            let hint = if version < CONTRACT_VERSION {
                "rebuild it with `sluice plugin build DIR` (its source needs no change)"
            } else {
                "rebuild the plugin against this version's sluice-sdk"
            };
            return Err(Error::precondition(
                format!(
                    "plugin `{name}` ({}) was built for contract v{version}; this sluice speaks v{CONTRACT_VERSION}",
                    path.display()
                ),
                hint,
            ));
        }
        let bindings = Transform::new(&mut store, &instance)
            .map_err(|e| fail("does not export the transform contract", &e))?;
        let process = instance
            .get_func(&mut store, "process")
            .ok_or_else(|| fail("does not export the transform contract", &"no `process`"))?;
        // Checked once here; `process` checks again per call (cheap).
        process
            .typed::<(&BatchRef<'_>,), (types::Output,)>(&store)
            .map_err(|e| fail("exports a `process` of another shape", &e))?;
        store.set_epoch_deadline(deadline_ticks);
        match bindings.call_init(&mut store, config_json) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                return Err(Error::precondition(
                    format!("plugin `{name}` rejected its config: {msg}"),
                    "fix the transform's `config:` in the pipeline file",
                ))
            }
            Err(e) => {
                let panic = store.data_mut().panic.take();
                return Err(fail("init trapped", &describe(&e, panic)));
            }
        }
        Ok(Instance {
            name: self.name.clone(),
            store,
            bindings,
            process,
            deadline_ticks,
        })
    }
}

/// A plugin instance, initialised. Used by one thread at a time.
pub struct Instance {
    name: Arc<str>,
    store: Store<HostState>,
    bindings: Transform,
    /// The export `process`, called with borrowed batches.
    process: wasmtime::component::Func,
    deadline_ticks: u64,
}

impl Instance {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the plugin which tables events of `table` leave as.
    pub fn schema(
        &mut self,
        table: &types::Table,
    ) -> std::result::Result<Vec<types::Table>, String> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        match self.bindings.call_schema(&mut self.store, table) {
            Ok(r) => r,
            Err(e) => Err(describe(&e, self.store.data_mut().panic.take())),
        }
    }

    /// Runs `process` on an owned batch (`sluice plugin test`).
    pub fn process_owned(
        &mut self,
        input: &events::Batch,
    ) -> std::result::Result<events::Output, String> {
        let mut data = Vec::new();
        let mut image = |v: &Option<Vec<types::Value>>| {
            v.as_ref()
                .map(|v| events::put_image(&mut data, v.iter().map(events::cell)))
        };
        let wit_events: Vec<types::Event> = input
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| types::Event {
                op: e.op,
                table: e.table,
                before: image(&e.before),
                after: image(&e.after),
                position: i as u32,
                commit_ts_us: e.commit_ts_us,
            })
            .collect();
        let positions: Vec<&str> = input.events.iter().map(|e| e.position.as_str()).collect();
        self.process(&BatchRef {
            tables: &input.tables,
            positions: &positions,
            data: &data,
            events: &wit_events,
        })
    }

    /// Runs `process`; the error says whether the plugin trapped, ran out of
    /// time or out of memory, or what is wrong with its answer.
    pub fn process(&mut self, input: &BatchRef<'_>) -> std::result::Result<events::Output, String> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let call = self
            .process
            .typed::<(&BatchRef<'_>,), (types::Output,)>(&self.store)
            .and_then(|f| f.call(&mut self.store, (input,)));
        let (output,) = call.map_err(|e| describe(&e, self.store.data_mut().panic.take()))?;
        events::output(output)
    }
}

/// Compiled plugins kept on disk, so a pipeline with plugins starts in
/// milliseconds instead of compiling them again (cranelift takes seconds for
/// a large plugin in a debug build).
pub mod cache {
    use std::hash::{Hash, Hasher};
    use std::path::PathBuf;

    use sha2::{Digest, Sha256};
    use wasmtime::component::Component;
    use wasmtime::Engine;

    /// `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`.
    pub fn dir() -> Option<PathBuf> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("SLUICE_CACHE_DIR")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("sluice")))
            .or_else(|| env("HOME").map(|d| d.join(".cache").join("sluice")))
            .map(|d| d.join("plugins"))
    }

    /// The cache file for these bytes under this engine: keyed by the
    /// component's SHA-256 and the engine's compatibility hash (wasmtime
    /// version and compilation settings).
    pub fn file_for(engine: &Engine, bytes: &[u8]) -> Option<PathBuf> {
        let digest: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Some(dir()?.join(format!("{digest}-{:016x}.cwasm", h.finish())))
    }

    pub fn load_or_compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(file) = file_for(engine, bytes) else {
            return Component::new(engine, bytes);
        };
        if file.is_file() {
            // SAFETY: the file is one this function wrote (atomically, by
            // rename) for exactly these bytes and this engine's settings;
            // wasmtime also checks the engine compatibility header.
            match unsafe { Component::deserialize_file(engine, &file) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(file = %file.display(), "ignoring an unusable compiled-plugin cache entry: {e:#}")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        // The cache is an optimisation: failing to write it is not an error.
        let write = || -> std::io::Result<()> {
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            let parent = file
                .parent()
                .ok_or_else(|| std::io::Error::other("no parent"))?;
            std::fs::create_dir_all(parent)?;
            let tmp = file.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &file)
        };
        if let Err(e) = write() {
            tracing::debug!(file = %file.display(), "not caching the compiled plugin: {e}");
        }
        Ok(component)
    }
}

/// Hostcall fuel per byte of plugin memory: what lowering a plugin's
/// answer may copy out is counted in host-side bytes, a few times the
/// guest's.
const HOSTCALL_FUEL_PER_MEMORY: usize = 4;

/// A trap in words a user can act on; `panic` is the plugin's own panic
/// message, when its SDK reported one.
fn describe(e: &wasmtime::Error, panic: Option<String>) -> String {
    if let Some(p) = panic {
        return format!(
            "panicked: {}",
            p.trim_start_matches("panicked at ")
                .replacen(":\n", ": ", 1)
        );
    }
    let text = format!("{e:#}");
    if text.contains("fuel allocated for hostcalls") {
        return format!(
            "returned more data in one call than its memory limit allows ({text}); lower `settings.batch_size` or raise the transform's `memory_mb`"
        );
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            "exceeded its deadline (an endless loop, or raise `deadline_ms`)".into()
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            format!("trapped (unreachable code): {e:#}")
        }
        Some(t) => format!("trapped: {t}"),
        None if format!("{e:#}").contains("memory") => {
            format!("ran out of memory (raise `memory_mb`): {e:#}")
        }
        None => format!("failed: {e:#}"),
    }
}
