//! Sandbox instances ("sessions") and their reuse.
//!
//! An instance's WASI view (its read-only preopens and its environment) is
//! fixed when it is created, and the guest's libc caches both at start-up, so
//! an idle instance is reused only by a call whose [`View`] equals the one it
//! was built with. An instance that traps is never reused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::component::Instance;
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::bindings::{files, opened_files, system, text};
use crate::runtime::Runtime;
use crate::state::CallState;

/// Idle instances kept per pool.
const POOL_SIZE: usize = 16;

/// An instance whose linear memory grew beyond this is dropped after its
/// call instead of being kept idle.
const RETAIN_MEMORY: usize = 32 << 20;

/// What a call's instance sees of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// The guest's environment.
    pub env: Vec<(String, String)>,
    /// Read-only pre-opened directories.
    pub preopens: Vec<Preopen>,
}

/// A host directory pre-opened read-only at a guest path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Preopen {
    host: PathBuf,
    guest: String,
    /// [`dir_id`]: a directory replaced at the same path is another view.
    id: (u64, u64),
}

/// The identity of the directory at `path`: (device, inode) on Unix,
/// (volume serial number, file index) on Windows; `None` if `path` is not a
/// directory this process can stat.
#[cfg(unix)]
fn dir_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
    Some((meta.dev(), meta.ino()))
}

/// The identity of the directory at `path`: (device, inode) on Unix,
/// (volume serial number, file index) on Windows; `None` if `path` is not a
/// directory this process can open.
#[cfg(windows)]
fn dir_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS;
    std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
    // A directory handle needs backup semantics.
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
        .ok()?;
    let info = winapi_util::file::information(&dir).ok()?;
    Some((info.volume_serial_number(), info.file_index()))
}

impl Preopen {
    /// `host` seen at `guest`, or `None` if `host` is not a directory this
    /// process can stat (the guest then does not see it at all).
    pub fn new(host: &Path, guest: &str) -> Option<Preopen> {
        Some(Preopen {
            host: host.to_path_buf(),
            guest: guest.to_string(),
            id: dir_id(host)?,
        })
    }
}

impl View {
    /// The WASI context of this view, writing the guest's stderr to `stderr`.
    pub fn wasi(&self, stderr: MemoryOutputPipe) -> WasiCtx {
        let mut wasi = WasiCtx::builder();
        // Set before the preopens: their file operations then run inline.
        wasi.allow_blocking_current_thread(true);
        wasi.stderr(stderr);
        wasi.envs(&self.env);
        for p in &self.preopens {
            // A directory that vanished since the view was taken is absent.
            let _ = wasi.preopened_dir(&p.host, &p.guest, FsPerms::ReadOnly);
        }
        wasi.build()
    }
}

/// A `skypilot:utils` interface the loaded component does not export.
#[derive(Debug, thiserror::Error)]
#[error("the component does not export {0}")]
pub(crate) struct MissingExport(pub &'static str);

/// A live instance in its own store, with each interface's exports looked
/// up (and type-checked) on first use.
pub(crate) struct Session {
    view: View,
    runtime: Arc<Runtime>,
    instance: Instance,
    pub store: Store<CallState>,
    text: Option<text::Guest>,
    files: Option<files::Guest>,
    opened_files: Option<opened_files::Guest>,
    system: Option<system::Guest>,
}

/// Looks up an interface's exports once per instance.
macro_rules! exports {
    ($name:ident, $module:ident, $interface:literal) => {
        pub fn $name(&mut self) -> wasmtime::Result<(&$module::Guest, &mut Store<CallState>)> {
            let guest = match &mut self.$name {
                Some(guest) => guest,
                slot => {
                    let indices = self.runtime.$name.as_ref();
                    let indices = indices.ok_or(MissingExport($interface))?;
                    slot.insert(indices.load(&mut self.store, &self.instance)?)
                }
            };
            Ok((guest, &mut self.store))
        }
    };
}

impl Session {
    /// Instantiates the component in `store`, whose data was built from
    /// `view` and whose limits are already armed.
    pub fn new(
        runtime: Arc<Runtime>,
        view: View,
        mut store: Store<CallState>,
    ) -> wasmtime::Result<Box<Session>> {
        let instance = runtime.pre.instantiate(&mut store)?;
        Ok(Box::new(Session {
            view,
            runtime,
            instance,
            store,
            text: None,
            files: None,
            opened_files: None,
            system: None,
        }))
    }

    exports!(text, text, "skypilot:utils/text@0.1.0");
    exports!(files, files, "skypilot:utils/files@0.1.0");
    exports!(
        opened_files,
        opened_files,
        "skypilot:utils/opened-files@0.1.0"
    );
    exports!(system, system, "skypilot:utils/system@0.1.0");
}

/// Idle sessions, most recently used last (boxed: a session is a few
/// hundred bytes, and calls move it in and out of the pool).
#[derive(Default)]
pub(crate) struct Pool {
    #[expect(clippy::vec_box, reason = "sessions move in and out on every call")]
    idle: Mutex<Vec<Box<Session>>>,
}

impl Pool {
    #[expect(clippy::vec_box, reason = "sessions move in and out on every call")]
    fn idle(&self) -> MutexGuard<'_, Vec<Box<Session>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle session built for exactly `view`.
    pub fn take(&self, view: &View) -> Option<Box<Session>> {
        let mut idle = self.idle();
        let i = idle.iter().rposition(|s| s.view == *view)?;
        Some(idle.remove(i))
    }

    /// The most recently used idle session, whatever its view (for calls
    /// that touch nothing but their arguments).
    pub fn take_any(&self) -> Option<Box<Session>> {
        self.idle().pop()
    }

    /// Keeps `session` for later calls (unless its memory grew large); the
    /// least recently used idle session makes room.
    pub fn put(&self, session: Box<Session>) {
        if session.store.data().memory_peak > RETAIN_MEMORY {
            return;
        }
        let mut idle = self.idle();
        let evicted = (idle.len() >= POOL_SIZE).then(|| idle.remove(0));
        idle.push(session);
        drop(idle);
        // Tearing a store down takes microseconds: not under the lock.
        drop(evicted);
    }
}
