//! The typed Rust API: [`Utils`] runs each of the twelve functions in a
//! sandboxed instance of the component that sees only what the call needs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceAny};
use wasmtime::{Store, Trap};
use wasmtime_wasi::filesystem::{Descriptor, File as DescriptorFile};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, OpenMode};

use crate::bindings::{files, system, text, DecodeErrors, Number};
use crate::facts::{HostFacts, NativeFacts};
use crate::grants::{display_error, grant, guest_label, PathGrant};
use crate::policy::{FileAccess, Policy};
use crate::runtime::{Runtime, EPOCH_TICK};
use crate::session::{MissingExport, Pool, Preopen, Session, View};
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

/// The epoch deadline of a call without one: beyond any run (the epoch
/// advances every few ms), and far from overflowing when added to it.
const NO_DEADLINE: u64 = u64::MAX / 2;

/// Bytes of guest stderr kept per instance (for panic messages in trap errors).
const STDERR_CAPACITY: usize = 4096;

static LOW_FD_WARNED: AtomicBool = AtomicBool::new(false);

/// Clears the once-per-process "low descriptor limit warned" flag.
pub fn reset_low_fd_warning() {
    LOW_FD_WARNED.store(false, Ordering::SeqCst);
}

/// The twelve SkyPilot utilities, run in sandboxed instances of the component.
///
/// Each call runs in an instance whose WASI view (read-only preopens and
/// environment) is exactly what that call needs. Idle instances are kept and
/// reused by later calls with the same view (the pure text functions, which
/// see nothing but their arguments, reuse any); an instance that traps is
/// dropped, never reused. [`Policy::reuse_instances`] `= false` gives every
/// call a fresh instance. `Utils` is `Sync`: share one across threads.
pub struct Utils {
    runtime: Arc<Runtime>,
    policy: Policy,
    /// The policy's deadline in epoch ticks ([`NO_DEADLINE`] for none).
    deadline_ticks: u64,
    facts: Arc<dyn HostFacts>,
    /// Idle instances for the text functions.
    text_pool: Pool,
    /// Idle instances for everything else, matched by view.
    pool: Pool,
}

/// Whether a call's instance sees the cgroup tree: only `get_cpu_count` and
/// `get_mem_size_gb` read it, so only they get the preopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cgroups {
    Hidden,
    Visible,
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
        let ticks = policy.deadline.map_or(u128::from(NO_DEADLINE), |d| {
            d.as_nanos() / EPOCH_TICK.as_nanos() + 1
        });
        Utils {
            runtime,
            deadline_ticks: u64::try_from(ticks).unwrap_or(NO_DEADLINE).min(NO_DEADLINE),
            policy,
            facts: Arc::new(NativeFacts),
            text_pool: Pool::default(),
            pool: Pool::default(),
        }
    }

    /// Replaces the source of host facts (tests supply fakes); idle
    /// instances wired to the old source are dropped.
    pub fn with_facts(mut self, facts: Arc<dyn HostFacts>) -> Self {
        self.facts = facts;
        self.text_pool = Pool::default();
        self.pool = Pool::default();
        self
    }

    /// The policy calls run under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The view a call with these grants gets under the policy.
    fn view(&self, grants: &[PathGrant], cgroups: Cgroups) -> Result<View, Error> {
        let mut preopens = Vec::new();
        if let (Some(root), Cgroups::Visible) = (&self.policy.cgroup_root, cgroups) {
            // No cgroup tree (e.g. not Linux) simply means "no cgroup limit".
            preopens.extend(Preopen::new(root, "/sys/fs/cgroup"));
        }
        match &self.policy.files {
            FileAccess::AllowDirs(dirs) => {
                for dir in dirs {
                    let dir = dir.canonicalize().map_err(|e| {
                        Error::Load(format!("allowed directory {}: {e}", dir.display()))
                    })?;
                    preopens.extend(Preopen::new(&dir, &guest_label(&dir)));
                }
            }
            FileAccess::PerCall => {
                for (dir, label) in grants.iter().filter_map(|g| g.preopen.as_ref()) {
                    preopens.extend(Preopen::new(dir, label));
                }
            }
        }
        Ok(View {
            env: self.policy.guest_env(),
            preopens,
        })
    }

    /// A new instance with exactly `view`.
    fn open(&self, view: View) -> Result<Box<Session>, Error> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let state = CallState {
            wasi: view.wasi(stderr.clone()),
            table: Default::default(),
            facts: self.facts.clone(),
            capabilities: self.policy.capabilities.clone(),
            memory_limit: self.policy.memory_limit,
            memory_exceeded: false,
            memory_peak: 0,
            stderr,
        };
        let mut store = Store::new(self.runtime.pre.engine(), state);
        store.limiter(|s| s);
        // wasmtime refuses results over 128 MiB by default ("hostcall
        // fuel"); here the memory limit bounds what a guest can return, and
        // `max_output` (when set) what a call may return.
        store.set_hostcall_fuel(usize::MAX);
        store.epoch_deadline_trap();
        // Start-up code runs at instantiation: limit it like a call.
        self.arm_limits(&mut store)?;
        Session::new(self.runtime.clone(), view, store).map_err(|e| Error::Load(format!("{e:#}")))
    }

    /// Arms the per-call limits: the wall-clock deadline and the fuel
    /// budget; forgets a refused memory growth the last call survived.
    fn arm_limits(&self, store: &mut Store<CallState>) -> Result<(), Error> {
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().memory_exceeded = false;
        if let Some(fuel) = self.policy.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Error::Load(format!("{e:#}")))?;
        }
        Ok(())
    }

    /// Refuses a result larger than the policy's `max_output`.
    fn bounded<T: OutputSize>(&self, value: T) -> Result<T, Error> {
        let Some(max) = self.policy.max_output else {
            return Ok(value);
        };
        let size = value.output_size();
        if size > max {
            return Err(Error::OutputTooLarge(size, max));
        }
        Ok(value)
    }

    /// Runs a text function (no files, no host facts) on any idle text
    /// instance, or a new one. Text functions take nothing from the host,
    /// so a text instance keeps the environment it was created with.
    fn call_pure<T: OutputSize>(
        &self,
        f: impl FnOnce(&text::Guest, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let session = match self.text_pool.take_any() {
            Some(session) => session,
            None => self.open(self.view(&[], Cgroups::Hidden)?)?,
        };
        self.run(&self.text_pool, session, |s| {
            let (text, store) = s.text()?;
            f(text, store)
        })
    }

    /// Runs `f` on an instance with the view these grants need: an idle one
    /// built for the same view, or a new one.
    fn call<T: OutputSize>(
        &self,
        grants: &[PathGrant],
        cgroups: Cgroups,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let view = self.view(grants, cgroups)?;
        let session = match self.pool.take(&view) {
            Some(session) => session,
            None => self.open(view)?,
        };
        self.run(&self.pool, session, f)
    }

    /// Runs `f` under the policy's limits; the instance goes back to `pool`
    /// only if the call did not trap (and the policy allows reuse).
    fn run<T: OutputSize>(
        &self,
        pool: &Pool,
        mut session: Box<Session>,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        self.arm_limits(&mut session.store)?;
        let result = f(&mut session).map_err(|e| self.trap(e, &session.store))?;
        if self.policy.reuse_instances {
            pool.put(session);
        }
        self.bounded(result)
    }

    fn trap(&self, err: wasmtime::Error, store: &Store<CallState>) -> Error {
        if let Some(missing) = err.downcast_ref::<MissingExport>() {
            return Error::MissingExport(missing.0);
        }
        let stderr = store.data().stderr.contents();
        let said = String::from_utf8_lossy(&stderr);
        let said: Vec<&str> = said
            .lines()
            .filter(|l| !l.starts_with("note: ") && !l.trim().is_empty())
            .collect();
        let said = said.join(" ");
        // The guest's allocator says so when memory ran out, and the guest
        // says so for a result it cannot hold at all (over 4 GiB), where no
        // growth was even attempted.
        if store.data().memory_exceeded || said.contains("memory allocation of ") {
            return Error::MemoryLimit {
                limit: self.policy.memory_limit.min(crate::WASM32_MAX_MEMORY),
                requested: allocation_size(&said),
                detail: without_panic_location(&said).to_string(),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Error::Deadline(self.policy.deadline.unwrap_or_default()),
            Some(Trap::OutOfFuel) => Error::OutOfFuel(self.policy.fuel.unwrap_or(0)),
            Some(trap) => Error::Trap(if said.is_empty() {
                trap.to_string()
            } else {
                format!("{trap}: {said}")
            }),
            None => Error::Trap(err.root_cause().to_string()),
        }
    }

    fn grant(&self, path: &Path) -> Result<PathGrant, Error> {
        Ok(grant(path, &self.policy.files)?)
    }

    /// Runs a file function on the file of grant `g`: `by_name` when the
    /// guest can open it by name, else `opened` with the file the host
    /// opened (read-only) and lent to the guest as a WASI descriptor, or
    /// the Linux errno of that failed open (the guest reports it as
    /// upstream's `open` would).
    fn call_file<T: OutputSize>(
        &self,
        g: &PathGrant,
        by_name: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
        opened: impl FnOnce(&mut Session, Result<Resource<Descriptor>, i32>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        self.call(std::slice::from_ref(g), Cgroups::Hidden, |s| {
            let Some(host_path) = &g.unnamed else {
                return by_name(s);
            };
            let file = match std::fs::File::open(host_path) {
                Ok(file) => {
                    let file = DescriptorFile::new(file, FsPerms::ReadOnly, OpenMode::READ, true);
                    Ok(s.store.data_mut().table.push(Descriptor::File(file))?)
                }
                Err(e) => Err(e.raw_os_error().unwrap_or(skyutils_guest::error::EIO)),
            };
            let lent = file.as_ref().map(|f| Resource::new_borrow(f.rep()));
            let result = opened(s, lent.map_err(|&errno| errno));
            if let Ok(file) = file {
                // Closes the file (the guest's borrow ended with the call).
                s.store.data_mut().table.delete(file)?;
            }
            result
        })
    }

    /// `read_last_n_lines(file_path, n)` with upstream's defaults
    /// (`chunk_size=8192`, UTF-8, `errors='replace'`).
    pub fn read_last_n_lines(
        &self,
        file_path: impl AsRef<Path>,
        n: i64,
    ) -> Result<Vec<String>, Error> {
        self.read_last_n_lines_with(file_path, n, 8192, DecodeErrors::Replace)
    }

    /// `read_last_n_lines` with every parameter.
    pub fn read_last_n_lines_with(
        &self,
        file_path: impl AsRef<Path>,
        n: i64,
        chunk_size: i64,
        errors: DecodeErrors,
    ) -> Result<Vec<String>, Error> {
        let g = self.grant(file_path.as_ref())?;
        let result = self.call_file(
            &g,
            |s| {
                let (files, s) = s.files()?;
                files.call_read_last_n_lines(s, &g.guest, n, chunk_size, errors)
            },
            |s, file| {
                let (opened, s) = s.opened_files()?;
                opened.call_read_last_n_lines_opened(s, file, &g.guest, n, chunk_size, errors)
            },
        )?;
        result.map_err(|e| Error::Call(display_error(e.into(), &g)))
    }

    /// The last `n` lines as raw byte pieces (for decoding with other codecs).
    pub fn read_last_n_raw(
        &self,
        file_path: impl AsRef<Path>,
        n: i64,
        chunk_size: i64,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let g = self.grant(file_path.as_ref())?;
        let result = self.call_file(
            &g,
            |s| {
                let (files, s) = s.files()?;
                files.call_read_last_n_raw(s, &g.guest, n, chunk_size)
            },
            |s, file| {
                let (opened, s) = s.opened_files()?;
                opened.call_read_last_n_raw_opened(s, file, &g.guest, n, chunk_size)
            },
        )?;
        result.map_err(|e| Error::Call(display_error(e.into(), &g)))
    }

    /// `hash_file(path, hash_alg)`. For `shake_*` use [`Utils::hash_file_xof`].
    pub fn hash_file(&self, path: impl AsRef<Path>, hash_alg: &str) -> Result<FileHash, Error> {
        self.hash_file_inner(path.as_ref(), hash_alg, None)
    }

    /// `hash_file(path, hash_alg).digest(length)` for the extendable-output
    /// `shake_128` / `shake_256` (`length` in bytes).
    pub fn hash_file_xof(
        &self,
        path: impl AsRef<Path>,
        hash_alg: &str,
        length: u32,
    ) -> Result<FileHash, Error> {
        self.hash_file_inner(path.as_ref(), hash_alg, Some(length))
    }

    fn hash_file_inner(
        &self,
        path: &Path,
        hash_alg: &str,
        length: Option<u32>,
    ) -> Result<FileHash, Error> {
        let g = self.grant(path)?;
        let digest = |s: &mut Session, hasher| {
            let hasher: ResourceAny = match hasher {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let (files, s) = s.files()?;
            let info = files.hasher().call_info(&mut *s, hasher)?;
            let hex = files.hasher().call_hexdigest(&mut *s, hasher, length)?;
            hasher.resource_drop(&mut *s)?;
            Ok(hex.map(|hex| (info, hex)))
        };
        let result = self.call_file(
            &g,
            |s| {
                let (files, st) = s.files()?;
                let hasher = files.call_hash_file(st, &g.guest, hash_alg)?;
                digest(s, hasher)
            },
            |s, file| {
                let (opened, st) = s.opened_files()?;
                let hasher = opened.call_hash_file_opened(st, file, &g.guest, hash_alg)?;
                digest(s, hasher)
            },
        )?;
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
        Ok(self.call(&[], Cgroups::Hidden, |s| {
            let (system, s) = s.system()?;
            system.call_find_free_port(s, start_port)
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
        Ok(self.call(&[], Cgroups::Visible, |s| {
            let (system, s) = s.system()?;
            system.call_get_cpu_count(s)
        })??)
    }

    /// `get_mem_size_gb()` in GiB.
    pub fn get_mem_size_gb(&self) -> Result<f64, Error> {
        Ok(self.call(&[], Cgroups::Visible, |s| {
            let (system, s) = s.system()?;
            system.call_get_mem_size_gb(s)
        })??)
    }

    /// `get_parallel_threads(cloud_str)`.
    pub fn get_parallel_threads(&self, cloud_str: Option<&str>) -> Result<i64, Error> {
        Ok(self.call(&[], Cgroups::Hidden, |s| {
            let (system, s) = s.system()?;
            system.call_get_parallel_threads(s, cloud_str)
        })??)
    }

    /// `is_process_alive(pid)`.
    pub fn is_process_alive(&self, pid: i64) -> Result<bool, Error> {
        Ok(self.call(&[], Cgroups::Hidden, |s| {
            let (system, s) = s.system()?;
            system.call_is_process_alive(s, pid)
        })??)
    }

    /// `get_max_workers_for_file_mounts(common_file_mounts, cloud_str)`; the
    /// mapping is destination -> source.
    pub fn get_max_workers_for_file_mounts<D: AsRef<str>, S: AsRef<Path>>(
        &self,
        common_file_mounts: &[(D, S)],
        cloud_str: Option<&str>,
    ) -> Result<Workers, Error> {
        let grants = common_file_mounts
            .iter()
            .map(|(_, source)| {
                let g = self.grant(source.as_ref())?;
                if g.unnamed.is_none() {
                    return Ok(g);
                }
                match g.unnamed_listing_error() {
                    Some(err) if err.python_class() == "PermissionError" => Err(Error::Call(err)),
                    _ => Ok(g.as_not_a_directory()),
                }
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mounts: Vec<(String, String)> = common_file_mounts
            .iter()
            .zip(&grants)
            .map(|((dst, _), g)| (dst.as_ref().to_string(), g.guest.clone()))
            .collect();
        let result = self.call(&grants, Cgroups::Hidden, |s| {
            let (system, s) = s.system()?;
            system.call_get_max_workers_for_file_mounts(s, &mounts, cloud_str)
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
    pub fn estimate_fd_for_directory(&self, path: impl AsRef<Path>) -> Result<u64, Error> {
        let g = self.grant(path.as_ref())?;
        if let Some(err) = g.unnamed_listing_error() {
            return Err(Error::Call(err));
        }
        let result = self.call(std::slice::from_ref(&g), Cgroups::Hidden, |s| {
            let (files, s) = s.files()?;
            files.call_estimate_fd_for_directory(s, &g.guest)
        })?;
        result.map_err(|e| Error::Call(display_error(e.into(), &g)))
    }
}

/// The size in "memory allocation of N bytes failed" (Rust's allocation
/// failure message, which the guest also uses for a result too big to hold).
fn allocation_size(said: &str) -> Option<u64> {
    let (_, rest) = said.split_once("memory allocation of ")?;
    rest.split_once(" bytes")?.0.parse().ok()
}

/// A guest panic message without Rust's "thread '...' panicked at
/// file:line:col:" prefix.
fn without_panic_location(said: &str) -> &str {
    match said.split_once(" panicked at ") {
        Some((_, rest)) => rest.split_once(": ").map_or(rest, |(_, msg)| msg),
        None => said,
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
