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

use crate::{Error, Result};

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "transform",
});

pub use sluice::plugin::types;

/// The contract version this host speaks.
pub const CONTRACT_VERSION: u32 = 1;

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
            types::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn counter(&mut self, name: String, delta: u64) {
        tracing::debug!(plugin = &*self.plugin, counter = %name, delta, "plugin counter");
    }
}

/// Limits one plugin instance runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per `process` call.
    pub deadline: Duration,
    pub memory_bytes: usize,
}

/// A compiled plugin, instantiated and initialised.
pub struct Instance {
    name: Arc<str>,
    store: Store<HostState>,
    bindings: Transform,
    deadline_ticks: u64,
}

impl Instance {
    /// Loads the component at `path`, checks its contract version and calls `init(config)`.
    pub fn load(name: &str, path: &Path, config_json: &str, limits: Limits) -> Result<Instance> {
        let engine = engine()?;
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::precondition(
                format!("plugin `{name}` ({}): {what}: {e}", path.display()),
                "build it with `sluice plugin build DIR` against this version's sluice-sdk",
            )
        };
        let component = Component::from_file(engine, path)
            .map_err(|e| fail("not a WebAssembly component", &e))?;
        let mut linker: Linker<HostState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| fail("linking WASI", &e))?;
        Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| fail("linking the host", &e))?;
        let wasi = WasiCtxBuilder::new()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .build();
        let plugin: Arc<str> = name.into();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            plugin: plugin.clone(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        let deadline_ticks = (limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(deadline_ticks);
        let bindings = Transform::instantiate(&mut store, &component, &linker).map_err(|e| {
            fail(
                "cannot be instantiated (does it import something sluice does not grant?)",
                &e,
            )
        })?;
        let version = bindings
            .call_contract_version(&mut store)
            .map_err(|e| fail("contract-version failed", &e))?;
        if version != CONTRACT_VERSION {
            return Err(Error::precondition(
                format!(
                    "plugin `{name}` ({}) was built for contract v{version}; this sluice speaks v{CONTRACT_VERSION}",
                    path.display()
                ),
                "rebuild the plugin against this version's sluice-sdk",
            ));
        }
        store.set_epoch_deadline(deadline_ticks);
        match bindings.call_init(&mut store, config_json) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                return Err(Error::precondition(
                    format!("plugin `{name}` rejected its config: {msg}"),
                    "fix the transform's `config:` in the pipeline file",
                ))
            }
            Err(e) => return Err(fail("init trapped", &describe(&e))),
        }
        Ok(Instance {
            name: plugin,
            store,
            bindings,
            deadline_ticks,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `process`; the error says whether the plugin trapped, ran out of
    /// time or out of memory.
    pub fn process(&mut self, input: &types::Batch) -> std::result::Result<types::Output, String> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.bindings
            .call_process(&mut self.store, input)
            .map_err(|e| describe(&e))
    }
}

/// A trap in words a user can act on.
fn describe(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            "exceeded its deadline (an endless loop, or raise `deadline_ms`)".into()
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            format!("trapped (panic or unreachable code): {e:#}")
        }
        Some(t) => format!("trapped: {t}"),
        None if format!("{e:#}").contains("memory") => {
            format!("ran out of memory (raise `memory_mb`): {e:#}")
        }
        None => format!("failed: {e:#}"),
    }
}
