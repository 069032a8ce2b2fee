//! Idle sessions and their reuse: an idle instance serves only a later call
//! with an equal [`crate::wasi_config::WasiConfig`] (text calls, which see
//! nothing but their arguments, take any text instance). An instance that
//! traps, or whose memory grew large, is never kept.

use std::sync::{Mutex, MutexGuard};

use crate::limits::{Limits, OutputSize};
use crate::session::Session;
use crate::wasi_config::WasiConfig;
use crate::Error;

/// Idle instances kept per pool.
const POOL_SIZE: usize = 16;

/// An instance whose linear memory grew beyond this is dropped after its
/// call instead of being kept idle.
const RETAIN_MEMORY: usize = 32 << 20;

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

    /// The most recently used idle session built for exactly `config`.
    pub fn take(&self, config: &WasiConfig) -> Option<Box<Session>> {
        let mut idle = self.idle();
        let i = idle.iter().rposition(|s| s.config == *config)?;
        Some(idle.remove(i))
    }

    /// The most recently used idle session, whatever its configuration (for
    /// calls that touch nothing but their arguments).
    pub fn take_any(&self) -> Option<Box<Session>> {
        self.idle().pop()
    }

    /// Keeps `session` for later calls (unless its memory grew large); the
    /// least recently used idle session makes room.
    pub fn put(&self, session: Box<Session>) {
        if session.store.data().memory.peak > RETAIN_MEMORY {
            return;
        }
        let mut idle = self.idle();
        let evicted = (idle.len() >= POOL_SIZE).then(|| idle.remove(0));
        idle.push(session);
        drop(idle);
        // Tearing a store down takes microseconds: not under the lock.
        drop(evicted);
    }

    /// Runs `f` on `session` under `limits`; the session comes back to this
    /// pool only if the call did not fail in the sandbox and `reuse` is set;
    /// the result is then held to `max_output`.
    pub fn run<T: OutputSize>(
        &self,
        mut session: Box<Session>,
        limits: &Limits,
        reuse: bool,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let result = session.call(limits, f)?;
        if reuse {
            self.put(session);
        }
        limits.bounded(result)
    }
}
