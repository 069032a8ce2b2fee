//! The engine (one per process), the compiled component (cached on disk as a
//! precompiled artifact) and its `InstancePre`, so each call instantiates in
//! microseconds.

use std::hash::{Hash, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::bindings::{files, opened_files, system, text};
use crate::state::CallState;
use crate::Error;

/// The component built from `guest/`, embedded at build time.
pub static EMBEDDED_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/skyutils_guest.wasm"));

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The process-wide engine, with a background thread that advances its epoch.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| start_engine(false))
}

/// The engine for policies with a fuel budget (fuel metering costs speed, so
/// only those use it).
pub fn metered_engine() -> &'static Engine {
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
    pub(crate) pre: InstancePre<CallState>,
    pub(crate) text: Option<text::GuestIndices>,
    pub(crate) files: Option<files::GuestIndices>,
    pub(crate) opened_files: Option<opened_files::GuestIndices>,
    pub(crate) system: Option<system::GuestIndices>,
}

impl Runtime {
    /// Compiles (or loads from the on-disk cache) `wasm` and links it.
    pub fn new(wasm: &[u8], metered: bool) -> Result<Self, Error> {
        let engine = if metered { metered_engine() } else { engine() };
        let component = load_component(engine, wasm)?;
        let mut linker: Linker<CallState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(load_error)?;
        crate::bindings::add_to_linker(&mut linker).map_err(load_error)?;
        let pre = linker.instantiate_pre(&component).map_err(load_error)?;
        Ok(Runtime {
            text: text::GuestIndices::new(&pre).ok(),
            files: files::GuestIndices::new(&pre).ok(),
            opened_files: opened_files::GuestIndices::new(&pre).ok(),
            system: system::GuestIndices::new(&pre).ok(),
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
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Load)
    }
}

fn load_error(e: wasmtime::Error) -> Error {
    Error::Load(format!("{e:#}"))
}

/// Where precompiled components are kept: `$SKYUTILS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/skyutils`, else `~/.cache/skyutils`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SKYUTILS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("skyutils"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/skyutils"))
}

/// The cache key: the component's bytes, the wasmtime version and every
/// engine setting that affects compiled code.
fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut key = Sha256::new();
    key.update(b"wasmtime-48.0.8\0");
    key.update(settings.finish().to_le_bytes());
    key.update(wasm);
    hex::encode(&key.finalize()[..16])
}

fn load_component(engine: &Engine, wasm: &[u8]) -> Result<Component, Error> {
    let Some(dir) = cache_dir() else {
        return Component::new(engine, wasm).map_err(load_error);
    };
    let path = dir.join(format!("skyutils-{}.cwasm", cache_key(engine, wasm)));
    if path.is_file() {
        // SAFETY: the file was written by `store_artifact` below from
        // `Component::serialize` for an engine with the same key; wasmtime
        // also checks its version and settings header before loading it.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, wasm).map_err(load_error)?;
    if let Ok(bytes) = component.serialize() {
        // A cache that cannot be written only costs speed.
        let _ = store_artifact(&dir, &path, &bytes);
    }
    Ok(component)
}

/// Writes atomically (temp file + rename), so concurrent processes never see
/// a partial artifact.
fn store_artifact(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), rand_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn rand_suffix() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
