//! Idle sessions and their reuse: an idle instance serves only a later call
//! with an equal [`crate::wasi_config::WasiConfig`] (text calls, which see
//! nothing but their arguments, take any text instance). An instance that
//! traps, or whose memory grew large, is never kept. [`Sessions`] gives each
//! call of the public API its instance, idle or new.

use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::Store;

use crate::bindings::{system, text, WitResult};
use crate::facts::{HostFacts, NativeFacts};
use crate::limits::{Limits, OutputSize};
use crate::policy::Policy;
use crate::runtime::Runtime;
use crate::session::{Lent, Session};
use crate::state::InstanceState;
use crate::wasi_config::grants::{display_error, PathGrant};
use crate::wasi_config::{Cgroups, WasiConfig};
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

/// Where the calls of one [`crate::Utils`] get their instances: an idle one
/// built for the same configuration, or a new one of `runtime`'s component,
/// run under the policy's limits.
pub(crate) struct Sessions {
    runtime: Arc<Runtime>,
    /// The policy calls run under.
    pub policy: Policy,
    /// The policy's limits, as each call arms them.
    limits: Limits,
    facts: Arc<dyn HostFacts>,
    /// Idle instances for the text functions.
    text_pool: Pool,
    /// Idle instances for everything else, matched by configuration.
    pool: Pool,
}

impl Sessions {
    /// Instances of `runtime`'s component under `policy`, with this
    /// machine's facts.
    pub fn new(runtime: Arc<Runtime>, policy: Policy) -> Self {
        Sessions {
            runtime,
            limits: Limits::new(&policy),
            policy,
            facts: Arc::new(NativeFacts),
            text_pool: Pool::default(),
            pool: Pool::default(),
        }
    }

    /// Replaces the source of host facts; idle instances wired to the old
    /// source are dropped.
    pub fn with_facts(mut self, facts: Arc<dyn HostFacts>) -> Self {
        self.facts = facts;
        self.text_pool = Pool::default();
        self.pool = Pool::default();
        self
    }

    /// A new instance with exactly `config`.
    fn open(&self, config: WasiConfig) -> Result<Box<Session>, Error> {
        let capabilities = self.policy.capabilities.clone();
        Session::open(
            &self.runtime,
            config,
            self.facts.clone(),
            capabilities,
            &self.limits,
        )
    }

    /// Runs a text function (no files, no host facts) on any idle text
    /// instance, or a new one. Text functions take nothing from the host,
    /// so a text instance keeps the environment it was created with.
    pub fn text_call<T: OutputSize>(
        &self,
        f: impl FnOnce(&text::Guest, &mut Store<InstanceState>) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let session = match self.text_pool.take_any() {
            Some(session) => session,
            None => self.open(WasiConfig::for_call(
                &self.policy,
                &[],
                Cgroups::Hidden,
                self.runtime.env_reads,
            )?)?,
        };
        let reuse = self.policy.reuse_instances;
        self.text_pool.run(session, &self.limits, reuse, |s| {
            let (text, store) = s.text()?;
            f(text, store)
        })
    }

    /// Runs `f` on an instance with the configuration these grants need: an
    /// idle one built for the same configuration, or a new one.
    pub fn call<T: OutputSize>(
        &self,
        grants: &[PathGrant],
        cgroups: Cgroups,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let config = WasiConfig::for_call(&self.policy, grants, cgroups, self.runtime.env_reads)?;
        self.run(config, f)
    }

    /// Runs `f` on an instance with exactly `config`: an idle one, or a new one.
    fn run<T: OutputSize>(
        &self,
        config: WasiConfig,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let session = match self.pool.take(&config) {
            Some(session) => session,
            None => self.open(config)?,
        };
        self.pool
            .run(session, &self.limits, self.policy.reuse_instances, f)
    }

    /// Runs a `system` function (no files).
    pub fn system_call<T: OutputSize>(
        &self,
        cgroups: Cgroups,
        f: impl FnOnce(&system::Guest, &mut Store<InstanceState>) -> wasmtime::Result<WitResult<T>>,
    ) -> Result<T, Error> {
        let result = self.call(&[], cgroups, |s| {
            let (system, store) = s.system()?;
            f(system, store)
        })?;
        Ok(result?)
    }

    /// Runs a file function on the path of grant `g`: `by_name` with the
    /// guest path when the guest can open the file by name, else `opened`
    /// with the file the host opened (read-only) and lent to the guest
    /// ([`Lent`]). Errors name the path as the caller wrote it.
    ///
    /// `exists_first`: the function starts with upstream's
    /// `os.path.exists(path)` (the tails); a path that fails it is lent as
    /// `ENOENT`, which the guest reports as upstream's "File not found"
    /// before any open.
    pub fn file_call<T: OutputSize>(
        &self,
        g: &PathGrant,
        exists_first: bool,
        by_name: impl FnOnce(&mut Session, &str) -> wasmtime::Result<WitResult<T>>,
        opened: impl FnOnce(&mut Session, Lent, &str) -> wasmtime::Result<WitResult<T>>,
    ) -> Result<T, Error> {
        let result = self.run(self.files_config(g)?, |s| match &g.unnamed {
            None => by_name(s, &g.guest),
            Some(host_path) if exists_first && std::fs::metadata(host_path).is_err() => {
                opened(s, Err(skyutils_common::error::ENOENT), &g.guest)
            }
            Some(host_path) => s.with_lent_file(host_path, |s, file| opened(s, file, &g.guest)),
        })?;
        result.map_err(|e| Error::Call(display_error(e.into(), g)))
    }

    /// The configuration of a `files` call on grant `g`: only the variables
    /// those functions read (none in the embedded component), so a call
    /// looks up none in a long environment (a Kubernetes pod's).
    fn files_config(&self, g: &PathGrant) -> Result<WasiConfig, Error> {
        let grants = std::slice::from_ref(g);
        let env_reads = self.runtime.files_env_reads;
        WasiConfig::for_call(&self.policy, grants, Cgroups::Hidden, env_reads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_calls_of_the_embedded_component_see_no_environment() {
        let limit = ("SKYPILOT_POD_CPU_CORE_LIMIT".to_string(), "7".to_string());
        let policy = Policy {
            env_override: Some(vec![limit.clone()]),
            ..Policy::default()
        };
        let sessions = Sessions::new(Runtime::embedded(false).unwrap(), policy);
        let g =
            crate::wasi_config::grants::grant(std::path::Path::new("/"), &sessions.policy.files)
                .unwrap();
        assert_eq!(sessions.files_config(&g).unwrap().env, vec![]);
        let runtime = &sessions.runtime;
        let system =
            WasiConfig::for_call(&sessions.policy, &[], Cgroups::Hidden, runtime.env_reads);
        assert_eq!(system.unwrap().env, vec![limit]);
    }
}
