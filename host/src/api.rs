//! The typed Rust API: [`Utils`] runs each of the twelve functions in a fresh
//! sandboxed instance of the component.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::{Instance, ResourceAny};
use wasmtime::{Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::bindings::{files, system, text, DecodeErrors, Number};
use crate::facts::{HostFacts, NativeFacts};
use crate::grants::{display_error, grant, PathGrant};
use crate::policy::{FileAccess, Policy};
use crate::runtime::{Runtime, EPOCH_TICK};
use crate::state::CallState;
use crate::Error;

/// A file's digest with hashlib's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// Canonical hashlib name, e.g. `sha256`.
    pub name: String,
    /// Digest size in bytes (0 for `shake_*`).
    pub digest_size: u32,
    pub block_size: u32,
    /// The raw digest.
    pub digest: Vec<u8>,
}

impl FileHash {
    /// Lowercase hex of the digest.
    pub fn hexdigest(&self) -> String {
        hex::encode(&self.digest)
    }
}

/// The result of `get_max_workers_for_file_mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    pub count: i64,
    /// The low file-descriptor warning; present at most once per process, as
    /// upstream logs it once.
    pub warning: Option<String>,
}

/// Bytes of guest stderr kept per call (for panic messages in trap errors).
const STDERR_CAPACITY: usize = 4096;

/// Warm instances kept for the pure text functions.
const WARM_POOL_SIZE: usize = 16;

static LOW_FD_WARNED: AtomicBool = AtomicBool::new(false);

/// Clears the once-per-process "low descriptor limit warned" flag.
pub fn reset_low_fd_warning() {
    LOW_FD_WARNED.store(false, Ordering::SeqCst);
}

/// The twelve SkyPilot utilities, run in sandboxed instances of the component.
///
/// Calls that touch files or host facts get a fresh instance each (their
/// WASI view depends on the call). The pure text functions reuse warm
/// instances from a small pool, since they see nothing but their arguments;
/// an instance that traps is dropped, never reused. `Utils` is `Sync`: share
/// one across threads.
pub struct Utils {
    runtime: Arc<Runtime>,
    policy: Policy,
    facts: Arc<dyn HostFacts>,
    warm: Mutex<Vec<Warm>>,
}

/// Whether a call's instance sees the cgroup tree: only `get_cpu_count` and
/// `get_mem_size_gb` read it, so only they get the preopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cgroups {
    Hidden,
    Visible,
}

/// A live instance kept for pure calls, with its `text` exports looked up
/// (and type-checked) once.
struct Warm {
    store: Store<CallState>,
    text: text::Guest,
}

/// The instance of one call, with typed access to each exported interface.
struct Exports {
    runtime: Arc<Runtime>,
    instance: Instance,
}

/// A `skypilot:utils` interface the loaded component does not export.
#[derive(Debug, thiserror::Error)]
#[error("the component does not export {0}")]
struct MissingExport(&'static str);

impl Exports {
    fn text(&self, store: &mut Store<CallState>) -> wasmtime::Result<text::Guest> {
        let indices = self.runtime.text.as_ref();
        indices
            .ok_or_else(|| MissingExport("skypilot:utils/text@0.1.0").into())
            .and_then(|i| i.load(store, &self.instance))
    }

    fn files(&self, store: &mut Store<CallState>) -> wasmtime::Result<files::Guest> {
        let indices = self.runtime.files.as_ref();
        indices
            .ok_or_else(|| MissingExport("skypilot:utils/files@0.1.0").into())
            .and_then(|i| i.load(store, &self.instance))
    }

    fn system(&self, store: &mut Store<CallState>) -> wasmtime::Result<system::Guest> {
        let indices = self.runtime.system.as_ref();
        indices
            .ok_or_else(|| MissingExport("skypilot:utils/system@0.1.0").into())
            .and_then(|i| i.load(store, &self.instance))
    }
}

impl Utils {
    /// The embedded component under `policy`, with this machine's facts.
    pub fn new(policy: Policy) -> Result<Self, Error> {
        Ok(Utils::from_runtime(
            Runtime::embedded(policy.fuel.is_some())?,
            policy,
        ))
    }

    /// Another component implementing the `skypilot:utils/utils` world.
    pub fn with_component(wasm: &[u8], policy: Policy) -> Result<Self, Error> {
        Ok(Utils::from_runtime(
            Arc::new(Runtime::new(wasm, policy.fuel.is_some())?),
            policy,
        ))
    }

    fn from_runtime(runtime: Arc<Runtime>, policy: Policy) -> Self {
        Utils {
            runtime,
            policy,
            facts: Arc::new(NativeFacts),
            warm: Mutex::new(Vec::new()),
        }
    }

    /// Replaces the source of host facts (tests supply fakes).
    pub fn with_facts(mut self, facts: Arc<dyn HostFacts>) -> Self {
        self.facts = facts;
        self
    }

    /// The policy calls run under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn store(&self, grants: &[PathGrant], cgroups: Cgroups) -> Result<Store<CallState>, Error> {
        let mut wasi = WasiCtx::builder();
        wasi.allow_blocking_current_thread(true);
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        wasi.stderr(stderr.clone());
        wasi.envs(&self.policy.guest_env());
        if let (Some(root), Cgroups::Visible) = (&self.policy.cgroup_root, cgroups) {
            // No cgroup tree (e.g. not Linux) simply means "no cgroup limit".
            let _ = wasi.preopened_dir(root, "/sys/fs/cgroup", FsPerms::ReadOnly);
        }
        let preopen = |wasi: &mut wasmtime_wasi::WasiCtxBuilder, dir: &std::path::Path| {
            let guest = dir.to_string_lossy();
            wasi.preopened_dir(dir, guest.as_ref(), FsPerms::ReadOnly)
                .is_ok()
        };
        match &self.policy.files {
            FileAccess::AllowDirs(dirs) => {
                for dir in dirs {
                    let dir = dir.canonicalize().map_err(|e| {
                        Error::Load(format!("allowed directory {}: {e}", dir.display()))
                    })?;
                    preopen(&mut wasi, &dir);
                }
            }
            FileAccess::PerCall => {
                for dir in grants.iter().filter_map(|g| g.preopen.as_deref()) {
                    // A directory this process cannot read is reached through
                    // its parent instead, so the guest sees the real error
                    // (a preopen would succeed and hide it).
                    let readable = std::fs::File::open(dir).is_ok();
                    match dir.parent() {
                        Some(parent) if !readable => preopen(&mut wasi, parent),
                        _ => preopen(&mut wasi, dir),
                    };
                }
            }
        }
        let state = CallState {
            wasi: wasi.build(),
            table: Default::default(),
            facts: self.facts.clone(),
            capabilities: self.policy.capabilities.clone(),
            memory_limit: self.policy.memory_limit,
            memory_exceeded: false,
            stderr,
        };
        let mut store = Store::new(self.runtime.pre.engine(), state);
        store.limiter(|s| s);
        store.epoch_deadline_trap();
        self.arm_limits(&mut store)?;
        Ok(store)
    }

    /// Arms the per-call limits: the wall-clock deadline and the fuel budget.
    fn arm_limits(&self, store: &mut Store<CallState>) -> Result<(), Error> {
        let ticks = self.policy.deadline.as_nanos() / EPOCH_TICK.as_nanos() + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        if let Some(fuel) = self.policy.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Error::Load(format!("{e:#}")))?;
        }
        Ok(())
    }

    /// Refuses a result larger than the policy's `max_output`.
    fn bounded<T: OutputSize>(&self, value: T) -> Result<T, Error> {
        let size = value.output_size();
        if size > self.policy.max_output {
            return Err(Error::OutputTooLarge(size, self.policy.max_output));
        }
        Ok(value)
    }

    /// Runs a pure call (no files, no host facts) on a pooled warm instance.
    fn call_pure<T: OutputSize>(
        &self,
        f: impl FnOnce(&text::Guest, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let pooled = self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut warm = match pooled {
            Some(warm) => warm,
            None => {
                let mut store = self.store(&[], Cgroups::Hidden)?;
                let exports = self.instantiate(&mut store)?;
                let text = exports.text(&mut store).map_err(|e| self.trap(e, &store))?;
                Warm { store, text }
            }
        };
        self.arm_limits(&mut warm.store)?;
        let result = f(&warm.text, &mut warm.store).map_err(|e| self.trap(e, &warm.store))?;
        let result = self.bounded(result)?;
        let mut pool = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < WARM_POOL_SIZE {
            pool.push(warm);
        }
        Ok(result)
    }

    /// Instantiates the component in a fresh store and runs `f`; the instance
    /// is discarded afterwards, so a trap never leaks into the next call.
    fn call<T: OutputSize>(
        &self,
        grants: &[PathGrant],
        cgroups: Cgroups,
        f: impl FnOnce(&Exports, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let mut store = self.store(grants, cgroups)?;
        let exports = self.instantiate(&mut store)?;
        let result = f(&exports, &mut store).map_err(|e| self.trap(e, &store))?;
        self.bounded(result)
    }

    fn instantiate(&self, store: &mut Store<CallState>) -> Result<Exports, Error> {
        let instance = self
            .runtime
            .pre
            .instantiate(store)
            .map_err(|e| Error::Load(format!("{e:#}")))?;
        Ok(Exports {
            runtime: self.runtime.clone(),
            instance,
        })
    }

    fn trap(&self, err: wasmtime::Error, store: &Store<CallState>) -> Error {
        if let Some(missing) = err.downcast_ref::<MissingExport>() {
            return Error::MissingExport(missing.0);
        }
        if store.data().memory_exceeded {
            return Error::MemoryLimit(self.policy.memory_limit);
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Error::Deadline(self.policy.deadline),
            Some(Trap::OutOfFuel) => Error::OutOfFuel(self.policy.fuel.unwrap_or(0)),
            Some(trap) => {
                let stderr = store.data().stderr.contents();
                let said = String::from_utf8_lossy(&stderr);
                let said: Vec<&str> = said
                    .lines()
                    .filter(|l| !l.starts_with("note: ") && !l.trim().is_empty())
                    .collect();
                let said = said.join(" ");
                Error::Trap(if said.is_empty() {
                    trap.to_string()
                } else {
                    format!("{trap}: {said}")
                })
            }
            None => Error::Trap(err.root_cause().to_string()),
        }
    }

    fn grant(&self, path: &str) -> Result<PathGrant, Error> {
        Ok(grant(path, &self.policy.files)?)
    }

    /// `read_last_n_lines(file_path, n)` with upstream's defaults
    /// (`chunk_size=8192`, UTF-8, `errors='replace'`).
    pub fn read_last_n_lines(&self, file_path: &str, n: i64) -> Result<Vec<String>, Error> {
        self.read_last_n_lines_with(file_path, n, 8192, DecodeErrors::Replace)
    }

    /// `read_last_n_lines` with every parameter.
    pub fn read_last_n_lines_with(
        &self,
        file_path: &str,
        n: i64,
        chunk_size: i64,
        errors: DecodeErrors,
    ) -> Result<Vec<String>, Error> {
        let g = self.grant(file_path)?;
        let result = self.call(std::slice::from_ref(&g), Cgroups::Hidden, |b, s| {
            b.files(s)?
                .call_read_last_n_lines(s, &g.guest, n, chunk_size, errors)
        })?;
        result.map_err(|e| Error::Call(display_error(e.into(), &g)))
    }

    /// The last `n` lines as raw byte pieces (for decoding with other codecs).
    pub fn read_last_n_raw(
        &self,
        file_path: &str,
        n: i64,
        chunk_size: i64,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let g = self.grant(file_path)?;
        let result = self.call(std::slice::from_ref(&g), Cgroups::Hidden, |b, s| {
            b.files(s)?.call_read_last_n_raw(s, &g.guest, n, chunk_size)
        })?;
        result.map_err(|e| Error::Call(display_error(e.into(), &g)))
    }

    /// `hash_file(path, hash_alg)`. For `shake_*` use [`Utils::hash_file_xof`].
    pub fn hash_file(&self, path: &str, hash_alg: &str) -> Result<FileHash, Error> {
        self.hash_file_inner(path, hash_alg, None)
    }

    /// `hash_file(path, hash_alg).digest(length)` for the extendable-output
    /// `shake_128` / `shake_256` (`length` in bytes).
    pub fn hash_file_xof(
        &self,
        path: &str,
        hash_alg: &str,
        length: u32,
    ) -> Result<FileHash, Error> {
        self.hash_file_inner(path, hash_alg, Some(length))
    }

    fn hash_file_inner(
        &self,
        path: &str,
        hash_alg: &str,
        length: Option<u32>,
    ) -> Result<FileHash, Error> {
        let g = self.grant(path)?;
        let result = self.call(std::slice::from_ref(&g), Cgroups::Hidden, |b, s| {
            let files = b.files(&mut *s)?;
            let hasher: ResourceAny = match files.call_hash_file(&mut *s, &g.guest, hash_alg)? {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let info = files.hasher().call_info(&mut *s, hasher)?;
            let hex = files.hasher().call_hexdigest(&mut *s, hasher, length)?;
            hasher.resource_drop(&mut *s)?;
            Ok(hex.map(|hex| (info, hex)))
        })?;
        let (info, hex) = result.map_err(|e| Error::Call(display_error(e.into(), &g)))?;
        Ok(FileHash {
            name: info.name,
            digest_size: info.digest_size,
            block_size: info.block_size,
            digest: hex::decode(hex)
                .map_err(|e| Error::Trap(format!("component returned bad hex: {e}")))?,
        })
    }

    /// `find_free_port(start_port)`.
    pub fn find_free_port(&self, start_port: i64) -> Result<u32, Error> {
        Ok(self.call(&[], Cgroups::Hidden, |b, s| {
            b.system(s)?.call_find_free_port(s, start_port)
        })??)
    }

    /// `base36_encode(hex_str)`.
    pub fn base36_encode(&self, hex_str: &str) -> Result<String, Error> {
        Ok(self.call_pure(|t, s| t.call_base36_encode(s, hex_str))??)
    }

    /// `format_float(num, precision)`.
    pub fn format_float(&self, num: Number, precision: i64) -> Result<String, Error> {
        Ok(self.call_pure(|t, s| t.call_format_float(s, num, precision))??)
    }

    /// `truncate_long_string(s, max_length, truncate_middle)`.
    pub fn truncate_long_string(
        &self,
        s: &str,
        max_length: i64,
        truncate_middle: bool,
    ) -> Result<String, Error> {
        self.call_pure(|t, st| t.call_truncate_long_string(st, s, max_length, truncate_middle))
    }

    /// `get_cpu_count()`: integral, possibly beyond 64 bits; `None` when the
    /// host cannot tell.
    pub fn get_cpu_count(&self) -> Result<Option<f64>, Error> {
        Ok(self.call(&[], Cgroups::Visible, |b, s| {
            b.system(s)?.call_get_cpu_count(s)
        })??)
    }

    /// `get_mem_size_gb()` in GiB.
    pub fn get_mem_size_gb(&self) -> Result<f64, Error> {
        Ok(self.call(&[], Cgroups::Visible, |b, s| {
            b.system(s)?.call_get_mem_size_gb(s)
        })??)
    }

    /// `get_parallel_threads(cloud_str)`.
    pub fn get_parallel_threads(&self, cloud_str: Option<&str>) -> Result<i64, Error> {
        Ok(self.call(&[], Cgroups::Hidden, |b, s| {
            b.system(s)?.call_get_parallel_threads(s, cloud_str)
        })??)
    }

    /// `is_process_alive(pid)`.
    pub fn is_process_alive(&self, pid: i64) -> Result<bool, Error> {
        Ok(self.call(&[], Cgroups::Hidden, |b, s| {
            b.system(s)?.call_is_process_alive(s, pid)
        })??)
    }

    /// `get_max_workers_for_file_mounts(common_file_mounts, cloud_str)`; the
    /// mapping is destination -> source.
    pub fn get_max_workers_for_file_mounts(
        &self,
        common_file_mounts: &[(String, String)],
        cloud_str: Option<&str>,
    ) -> Result<Workers, Error> {
        let grants = common_file_mounts
            .iter()
            .map(|(_, source)| self.grant(source))
            .collect::<Result<Vec<_>, _>>()?;
        let mounts: Vec<(String, String)> = common_file_mounts
            .iter()
            .zip(&grants)
            .map(|((dst, _), g)| (dst.clone(), g.guest.clone()))
            .collect();
        let result = self.call(&grants, Cgroups::Hidden, |b, s| {
            b.system(s)?
                .call_get_max_workers_for_file_mounts(s, &mounts, cloud_str)
        })?;
        let workers = result.map_err(|e| {
            let err = grants.iter().fold(e.into(), display_error);
            Error::Call(err)
        })?;
        let warning = workers
            .low_fd_warning
            .filter(|_| !LOW_FD_WARNED.swap(true, Ordering::SeqCst));
        Ok(Workers {
            count: workers.count,
            warning,
        })
    }

    /// `estimate_fd_for_directory(path)`.
    pub fn estimate_fd_for_directory(&self, path: &str) -> Result<u64, Error> {
        let g = self.grant(path)?;
        let result = self.call(std::slice::from_ref(&g), Cgroups::Hidden, |b, s| {
            b.files(s)?.call_estimate_fd_for_directory(s, &g.guest)
        })?;
        result.map_err(|e| Error::Call(display_error(e.into(), &g)))
    }
}

/// Bytes of strings and byte lists in a call's result, for `max_output`.
trait OutputSize {
    fn output_size(&self) -> usize;
}

macro_rules! no_payload {
    ($($t:ty),*) => {$(impl OutputSize for $t { fn output_size(&self) -> usize { 0 } })*};
}
no_payload!(bool, u32, u64, i64, f64, ResourceAny);

impl OutputSize for String {
    fn output_size(&self) -> usize {
        self.len()
    }
}

impl<T: OutputSize> OutputSize for Vec<T> {
    fn output_size(&self) -> usize {
        self.iter().map(|x| x.output_size() + 1).sum()
    }
}

impl OutputSize for u8 {
    fn output_size(&self) -> usize {
        0
    }
}

impl<T: OutputSize> OutputSize for Option<T> {
    fn output_size(&self) -> usize {
        self.as_ref().map_or(0, OutputSize::output_size)
    }
}

impl<T: OutputSize, U: OutputSize> OutputSize for (T, U) {
    fn output_size(&self) -> usize {
        self.0.output_size() + self.1.output_size()
    }
}

impl<T: OutputSize> OutputSize for Result<T, crate::bindings::WitError> {
    fn output_size(&self) -> usize {
        match self {
            Ok(v) => v.output_size(),
            Err(e) => skyutils_guest::Error::from(e.clone()).message().len(),
        }
    }
}

impl OutputSize for files::HashInfo {
    fn output_size(&self) -> usize {
        self.name.len()
    }
}

impl OutputSize for system::Workers {
    fn output_size(&self) -> usize {
        self.low_fd_warning.output_size()
    }
}
