//! The per-call store data: the WASI context the policy allows, the memory
//! limiter, and the `host-facts` import gated by the granted capabilities.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{host_facts, skypilot::utils::types};
use crate::facts::{HostFacts, Limit};
use crate::policy::Capability;

/// Everything one call's `Store` owns.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) facts: Arc<dyn HostFacts>,
    pub(crate) capabilities: Vec<Capability>,
    pub(crate) memory_limit: usize,
    /// Set when the guest asked for more memory than the policy allows.
    pub(crate) memory_exceeded: bool,
    /// The largest linear memory granted so far, in bytes.
    pub(crate) memory_peak: usize,
    /// The guest's stderr (a panic message lands here), capped.
    pub(crate) stderr: MemoryOutputPipe,
}

impl CallState {
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

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_peak = self.memory_peak.max(desired);
        Ok(true)
    }

    /// Growth past what the memory's type allows (4 GiB for wasm32) lands
    /// here rather than in `memory_growing`.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_exceeded = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl types::Host for CallState {}

fn limit(l: Limit) -> host_facts::Limit {
    match l {
        Limit::Finite(v) => host_facts::Limit::Finite(v),
        Limit::Unlimited => host_facts::Limit::Unlimited,
    }
}

impl host_facts::Host for CallState {
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
}
