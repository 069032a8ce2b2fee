//! The store data of one instance, which lives as long as the instance
//! (across every call it serves): its WASI context, its memory meter, its
//! captured stderr, and the `host-facts` import gated by the granted
//! capabilities.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{host_facts, skypilot::utils::types};
use crate::facts::{cgroup, HostFacts, Limit};
use crate::limits::MemoryMeter;
use crate::policy::Capability;

/// Everything one instance's `Store` owns.
pub(crate) struct InstanceState {
    /// The instance's WASI context (see `WasiConfig::ctx`).
    pub wasi: WasiCtx,
    /// WASI resources, and the descriptors the host lends for one call.
    pub table: ResourceTable,
    /// Where the `host-facts` import gets its answers.
    pub facts: Arc<dyn HostFacts>,
    /// The capabilities the `host-facts` import may use.
    pub capabilities: Vec<Capability>,
    /// The cgroup tree `read-cgroup-limit` reads (the policy's `cgroup_root`
    /// for the calls that read cgroups; `None`: no cgroup files).
    pub cgroup_root: Option<PathBuf>,
    /// The store's memory limiter.
    pub memory: MemoryMeter,
    /// The guest's stderr (a panic message lands here), capped.
    pub stderr: MemoryOutputPipe,
}

impl InstanceState {
    /// `Ok` if `capability` is granted, else the guest's capability error.
    fn gate(&self, capability: Capability) -> Result<(), String> {
        if self.capabilities.contains(&capability) {
            Ok(())
        } else {
            Err(format!(
                "capability '{}' is not granted by the host policy",
                capability.name()
            ))
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for InstanceState {}

fn limit(l: Limit) -> host_facts::Limit {
    match l {
        Limit::Finite(v) => host_facts::Limit::Finite(v),
        Limit::Unlimited => host_facts::Limit::Unlimited,
    }
}

impl host_facts::Host for InstanceState {
    fn logical_cpu_count(&mut self) -> Result<Option<u32>, String> {
        self.gate(Capability::Cpu)?;
        self.facts.logical_cpu_count()
    }

    fn affinity_cpu_count(&mut self) -> Result<Option<u32>, String> {
        self.gate(Capability::Cpu)?;
        self.facts.affinity_cpu_count()
    }

    fn os_cpu_count(&mut self) -> Result<Option<u32>, String> {
        self.gate(Capability::Cpu)?;
        self.facts.os_cpu_count()
    }

    fn memory_total_bytes(&mut self) -> Result<u64, String> {
        self.gate(Capability::Memory)?;
        self.facts.memory_total_bytes()
    }

    fn nofile_limit(&mut self) -> Result<host_facts::Nofile, String> {
        self.gate(Capability::FileLimits)?;
        let (soft, hard) = self.facts.nofile_limit()?;
        Ok(host_facts::Nofile {
            soft: limit(soft),
            hard: limit(hard),
        })
    }

    fn pid_exists(&mut self, pid: u32) -> Result<bool, String> {
        self.gate(Capability::Processes)?;
        self.facts.pid_exists(pid)
    }

    fn tcp4_port_bindable(&mut self, port: u16) -> Result<bool, String> {
        self.gate(Capability::Network)?;
        self.facts.tcp4_port_bindable(port)
    }

    fn read_cgroup_limit(
        &mut self,
        controller: host_facts::CgroupController,
    ) -> Result<host_facts::CgroupLimit, String> {
        self.gate(match controller {
            host_facts::CgroupController::Cpu => Capability::Cpu,
            host_facts::CgroupController::Memory => Capability::Memory,
        })?;
        Ok(cgroup::read(self.cgroup_root.as_deref(), controller))
    }
}
