//! One sandbox instance ("session") through its life: created with exactly
//! one [`WasiConfig`], its limits armed before each call, each interface's
//! exports looked up on first use, and a call's failure classified.
//! Idle sessions wait in a [`crate::pool::Pool`].

use std::sync::Arc;

use wasmtime::component::{Instance, Resource};
use wasmtime::Store;
use wasmtime_wasi::filesystem::{Descriptor, File as DescriptorFile};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, OpenMode};

use crate::bindings::{files, opened_files, system, text};
use crate::facts::HostFacts;
use crate::limits::Limits;
use crate::policy::Capability;
use crate::runtime::Runtime;
use crate::state::InstanceState;
use crate::wasi_config::WasiConfig;
use crate::Error;

/// Bytes of guest stderr kept per instance (for panic messages in trap errors).
const STDERR_CAPACITY: usize = 4096;

/// A `skypilot:utils` interface the loaded component does not export.
#[derive(Debug, thiserror::Error)]
#[error("the component does not export {0}")]
pub(crate) struct MissingExport(pub &'static str);

/// A file the host opened for the guest and lends it for one call, or the
/// Linux errno of the failed open (the guest reports it as upstream's
/// `open` would).
pub(crate) type Lent = Result<Resource<Descriptor>, i32>;

/// A live instance in its own store, with each interface's exports looked
/// up (and type-checked) on first use.
pub(crate) struct Session {
    /// What the instance sees; fixed at creation.
    pub config: WasiConfig,
    runtime: Arc<Runtime>,
    instance: Instance,
    /// The instance's store.
    pub store: Store<InstanceState>,
    text: Option<text::Guest>,
    files: Option<files::Guest>,
    opened_files: Option<opened_files::Guest>,
    system: Option<system::Guest>,
}

/// Looks up an interface's exports once per instance.
macro_rules! exports {
    ($name:ident, $module:ident, $interface:literal) => {
        #[doc = concat!("The `", $interface, "` exports and the store, or [`MissingExport`].")]
        pub fn $name(&mut self) -> wasmtime::Result<(&$module::Guest, &mut Store<InstanceState>)> {
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
    /// A new instance of `runtime`'s component with exactly `config`, its
    /// host facts from `facts` gated by `capabilities`; its start-up code
    /// runs under `limits` like a call.
    pub fn open(
        runtime: &Arc<Runtime>,
        config: WasiConfig,
        facts: Arc<dyn HostFacts>,
        capabilities: Vec<Capability>,
        limits: &Limits,
    ) -> Result<Box<Session>, Error> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let state = InstanceState {
            wasi: config.ctx(stderr.clone()),
            table: Default::default(),
            facts,
            capabilities,
            cgroup_root: config.cgroup_root.clone(),
            memory: limits.meter(),
            stderr,
        };
        let mut store = Store::new(runtime.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        // wasmtime refuses results over 128 MiB by default ("hostcall
        // fuel"); here the memory limit bounds what a guest can return, and
        // `max_output` (when set) what a call may return.
        store.set_hostcall_fuel(usize::MAX);
        store.epoch_deadline_trap();
        // Start-up code runs at instantiation: limit it like a call.
        limits.arm(&mut store)?;
        // A trap in start-up code is the call's limit (a deadline, memory),
        // reported as it would be during the call; anything else is loading.
        let instance = runtime.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::Trap>().is_some() {
                limits.classify(e, store.data())
            } else {
                Error::Load(format!("{e:#}"))
            }
        })?;
        Ok(Box::new(Session {
            config,
            runtime: runtime.clone(),
            instance,
            store,
            text: None,
            files: None,
            opened_files: None,
            system: None,
        }))
    }

    /// Runs `f` on this instance under `limits`; a failure is classified
    /// (deadline, memory, fuel, missing export or trap).
    pub fn call<T>(
        &mut self,
        limits: &Limits,
        f: impl FnOnce(&mut Session) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        limits.arm(&mut self.store)?;
        f(self).map_err(|e| limits.classify(e, self.store.data()))
    }

    /// Runs `f` with the file at `host_path` opened read-only by the host
    /// and lent to the guest as a WASI descriptor (or the errno of the
    /// failed open); the descriptor is closed when `f` returns.
    pub fn with_lent_file<T>(
        &mut self,
        host_path: &std::path::Path,
        f: impl FnOnce(&mut Session, Lent) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<T> {
        let file = match std::fs::File::open(host_path) {
            Ok(file) => {
                let file = DescriptorFile::new(file, FsPerms::ReadOnly, OpenMode::READ, true);
                Ok(self.store.data_mut().table.push(Descriptor::File(file))?)
            }
            Err(e) => Err(e.raw_os_error().unwrap_or(skyutils_common::error::EIO)),
        };
        let lent = file.as_ref().map(|f| Resource::new_borrow(f.rep()));
        let result = f(self, lent.map_err(|&errno| errno));
        if let Ok(file) = file {
            // Closes the file (the guest's borrow ended with the call).
            self.store.data_mut().table.delete(file)?;
        }
        result
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
