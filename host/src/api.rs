//! The typed Rust API: [`Utils`] runs each of the twelve functions in a
//! sandboxed instance of the component that sees only what the call needs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wasmtime::component::ResourceAny;

use crate::bindings::{DecodeErrors, Number, WitResult};
use crate::facts::HostFacts;
use crate::policy::Policy;
use crate::pool::Sessions;
use crate::runtime::Runtime;
use crate::session::Session;
use crate::wasi_config::grants::{display_error_among, grant, PathGrant};
use crate::wasi_config::Cgroups;
use crate::Error;

/// A file's digest with hashlib's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// Canonical hashlib name, e.g. `sha256`.
    pub name: String,
    /// Digest size in bytes (0 for `shake_*`), hashlib's `digest_size`.
    pub digest_size: u32,
    /// Internal block size in bytes, hashlib's `block_size`.
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
    /// The number of workers upstream returns.
    pub count: i64,
    /// The low file-descriptor warning; present at most once per process, as
    /// upstream logs it once.
    pub warning: Option<String>,
}

static LOW_FD_WARNED: AtomicBool = AtomicBool::new(false);

/// Clears the once-per-process "low descriptor limit warned" flag.
pub fn reset_low_fd_warning() {
    LOW_FD_WARNED.store(false, Ordering::SeqCst);
}

/// The twelve SkyPilot utilities, run in sandboxed instances of the component.
///
/// Each call runs in an instance whose WASI configuration (read-only
/// preopens and environment) is exactly what that call needs. Idle
/// instances are kept and reused by later calls with the same
/// configuration (the pure text functions, which see nothing but their
/// arguments, reuse any); an instance that traps is dropped, never reused.
/// [`Policy::reuse_instances`] `= false` gives every call a fresh instance.
/// `Utils` is `Sync`: share one across threads.
pub struct Utils {
    sessions: Sessions,
}

impl Utils {
    /// The embedded component under `policy`, with this machine's facts.
    pub fn new(policy: Policy) -> Result<Self, Error> {
        let runtime = Runtime::embedded(policy.fuel.is_some())?;
        Ok(Utils {
            sessions: Sessions::new(runtime, policy),
        })
    }

    /// Another component implementing the `skypilot:utils/utils` world.
    pub fn with_component(wasm: &[u8], policy: Policy) -> Result<Self, Error> {
        let runtime = Arc::new(Runtime::new(wasm, policy.fuel.is_some())?);
        Ok(Utils {
            sessions: Sessions::new(runtime, policy),
        })
    }

    /// Replaces the source of host facts (tests supply fakes); idle
    /// instances wired to the old source are dropped.
    pub fn with_facts(self, facts: Arc<dyn HostFacts>) -> Self {
        Utils {
            sessions: self.sessions.with_facts(facts),
        }
    }

    /// The policy calls run under.
    pub fn policy(&self) -> &Policy {
        &self.sessions.policy
    }

    fn grant(&self, path: &Path) -> Result<PathGrant, Error> {
        Ok(grant(path, &self.sessions.policy.files)?)
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
        self.sessions.file_call(
            &self.grant(file_path.as_ref())?,
            true,
            |s, path| {
                let (files, s) = s.files()?;
                files.call_read_last_n_lines(s, path, n, chunk_size, errors)
            },
            |s, file, path| {
                let (opened, s) = s.opened_files()?;
                opened.call_read_last_n_lines_opened(s, file, path, n, chunk_size, errors)
            },
        )
    }

    /// The last `n` lines as raw byte pieces (for decoding with other codecs).
    pub fn read_last_n_raw(
        &self,
        file_path: impl AsRef<Path>,
        n: i64,
        chunk_size: i64,
    ) -> Result<Vec<Vec<u8>>, Error> {
        self.sessions.file_call(
            &self.grant(file_path.as_ref())?,
            true,
            |s, path| {
                let (files, s) = s.files()?;
                files.call_read_last_n_raw(s, path, n, chunk_size)
            },
            |s, file, path| {
                let (opened, s) = s.opened_files()?;
                opened.call_read_last_n_raw_opened(s, file, path, n, chunk_size)
            },
        )
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
        let digest = |s: &mut Session, hasher: WitResult<ResourceAny>| {
            let hasher = match hasher {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let (files, s) = s.files()?;
            let info = files.hasher().call_info(&mut *s, hasher)?;
            let hex = files.hasher().call_hexdigest(&mut *s, hasher, length)?;
            hasher.resource_drop(&mut *s)?;
            Ok(hex.map(|hex| (info, hex)))
        };
        let (info, hex) = self.sessions.file_call(
            &self.grant(path)?,
            false,
            |s, path| {
                let (files, st) = s.files()?;
                let hasher = files.call_hash_file(st, path, hash_alg)?;
                digest(s, hasher)
            },
            |s, file, path| {
                let (opened, st) = s.opened_files()?;
                let hasher = opened.call_hash_file_opened(st, file, path, hash_alg)?;
                digest(s, hasher)
            },
        )?;
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
        self.sessions.system_call(Cgroups::Hidden, |sys, s| {
            sys.call_find_free_port(s, start_port)
        })
    }

    /// `base36_encode(hex_str)`.
    pub fn base36_encode(&self, hex_str: &str) -> Result<String, Error> {
        Ok(self
            .sessions
            .text_call(|t, s| t.call_base36_encode(s, hex_str))??)
    }

    /// `format_float(num, precision)`.
    pub fn format_float(&self, num: Number, precision: i64) -> Result<String, Error> {
        Ok(self
            .sessions
            .text_call(|t, s| t.call_format_float(s, num, precision))??)
    }

    /// `truncate_long_string(s, max_length, truncate_middle)`.
    pub fn truncate_long_string(
        &self,
        s: &str,
        max_length: i64,
        truncate_middle: bool,
    ) -> Result<String, Error> {
        self.sessions
            .text_call(|t, st| t.call_truncate_long_string(st, s, max_length, truncate_middle))
    }

    /// `get_cpu_count()`: integral, possibly beyond 64 bits; `None` when the
    /// host cannot tell.
    pub fn get_cpu_count(&self) -> Result<Option<f64>, Error> {
        self.sessions
            .system_call(Cgroups::Visible, |sys, s| sys.call_get_cpu_count(s))
    }

    /// `get_mem_size_gb()` in GiB.
    pub fn get_mem_size_gb(&self) -> Result<f64, Error> {
        self.sessions
            .system_call(Cgroups::Visible, |sys, s| sys.call_get_mem_size_gb(s))
    }

    /// `get_parallel_threads(cloud_str)`.
    pub fn get_parallel_threads(&self, cloud_str: Option<&str>) -> Result<i64, Error> {
        self.sessions.system_call(Cgroups::Hidden, |sys, s| {
            sys.call_get_parallel_threads(s, cloud_str)
        })
    }

    /// `is_process_alive(pid)`.
    pub fn is_process_alive(&self, pid: i64) -> Result<bool, Error> {
        self.sessions
            .system_call(Cgroups::Hidden, |sys, s| sys.call_is_process_alive(s, pid))
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
            .map(|(_, source)| Ok(self.grant(source.as_ref())?.for_mount()?))
            .collect::<Result<Vec<_>, Error>>()?;
        let mounts: Vec<(String, String)> = common_file_mounts
            .iter()
            .zip(&grants)
            .map(|((dst, _), g)| (dst.as_ref().to_string(), g.guest.clone()))
            .collect();
        let result = self.sessions.call(&grants, Cgroups::Hidden, |s| {
            let (system, s) = s.system()?;
            system.call_get_max_workers_for_file_mounts(s, &mounts, cloud_str)
        })?;
        let workers = result.map_err(|e| Error::Call(display_error_among(e.into(), &grants)))?;
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
        let estimate = |s: &mut Session, path: &str| {
            let (files, s) = s.files()?;
            files.call_estimate_fd_for_directory(s, path)
        };
        // An unnamed path was answered above, so nothing is ever lent here.
        self.sessions
            .file_call(&g, false, estimate, |s, _, path| estimate(s, path))
    }
}
