//! The engine (one per process), the compiled component (cached on disk as a
//! precompiled artifact) and its `InstancePre`, so each call instantiates in
//! microseconds.

use std::sync::{Arc, OnceLock};

use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::bindings::{files, opened_files, system, text};
use crate::limits::EPOCH_TICK;
use crate::state::InstanceState;
use crate::Error;

/// The component built from `guest/`, embedded at build time.
pub static EMBEDDED_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/skyutils_guest.wasm"));

/// The process-wide engine, with a background thread that advances its epoch.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| start_engine(false))
}

/// The engine for policies with a fuel budget (fuel metering costs speed, so
/// only those use it).
fn metered_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| start_engine(true))
}

fn start_engine(metered: bool) -> Engine {
    let engine = Engine::new(&engine_config(metered)).expect("valid wasmtime configuration");
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("skyutils-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            ticker.increment_epoch();
        })
        .expect("spawn the epoch thread");
    engine
}

fn engine_config(metered: bool) -> Config {
    let mut config = Config::new();
    config.consume_fuel(metered);
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.concurrency_support(false);
    config.cranelift_opt_level(OptLevel::Speed);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(256);
    pool.total_core_instances(256);
    pool.total_memories(256);
    pool.total_tables(256);
    pool.max_memory_size(4 << 30);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// A compiled component ready to instantiate, with the export indices of
/// each `skypilot:utils` interface it provides (a plugin may export a subset).
pub struct Runtime {
    pub(crate) pre: InstancePre<InstanceState>,
    pub(crate) text: Option<text::GuestIndices>,
    pub(crate) files: Option<files::GuestIndices>,
    pub(crate) opened_files: Option<opened_files::GuestIndices>,
    pub(crate) system: Option<system::GuestIndices>,
    /// The environment variables the component is known to read (the
    /// embedded one: [`skyutils_common::POD_ENV_VARS`]); `None` for a
    /// plugin, which may read any variable the policy allows.
    pub(crate) env_reads: Option<&'static [&'static str]>,
    /// The variables the component's `files` functions are known to read:
    /// none for the embedded one (only its `system` functions read any);
    /// `None` for a plugin.
    pub(crate) files_env_reads: Option<&'static [&'static str]>,
}

impl Runtime {
    /// Compiles (or loads from the on-disk cache) `wasm` and links it.
    pub fn new(wasm: &[u8], metered: bool) -> Result<Self, Error> {
        let engine = if metered { metered_engine() } else { engine() };
        let component = crate::cache::load_component(engine, wasm).map_err(load_error)?;
        let mut linker: Linker<InstanceState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(load_error)?;
        crate::bindings::add_to_linker(&mut linker).map_err(load_error)?;
        let pre = linker.instantiate_pre(&component).map_err(load_error)?;
        Ok(Runtime {
            text: text::GuestIndices::new(&pre).ok(),
            files: files::GuestIndices::new(&pre).ok(),
            opened_files: opened_files::GuestIndices::new(&pre).ok(),
            system: system::GuestIndices::new(&pre).ok(),
            env_reads: None,
            files_env_reads: None,
            pre,
        })
    }

    /// The runtime of the embedded component, built once per process (and
    /// once more for the fuel-metered engine if a policy asks for fuel).
    pub fn embedded(metered: bool) -> Result<Arc<Runtime>, Error> {
        static PLAIN: OnceLock<Result<Arc<Runtime>, String>> = OnceLock::new();
        static METERED: OnceLock<Result<Arc<Runtime>, String>> = OnceLock::new();
        let cell = if metered { &METERED } else { &PLAIN };
        cell.get_or_init(|| {
            Runtime::new(EMBEDDED_COMPONENT, metered)
                .map(|runtime| {
                    Arc::new(Runtime {
                        env_reads: Some(&skyutils_common::POD_ENV_VARS),
                        files_env_reads: Some(&[]),
                        ..runtime
                    })
                })
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Load)
    }
}

fn load_error(e: wasmtime::Error) -> Error {
    Error::Load(format!("{e:#}"))
}
