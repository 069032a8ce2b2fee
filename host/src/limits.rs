//! Every per-call limit in one place: the policy's deadline, fuel budget,
//! memory cap and output cap as the store arms and enforces them, and how a
//! call that ran into one is reported.

use std::time::Duration;

use wasmtime::{ResourceLimiter, Store, Trap};

use crate::bindings::{files, system, WitError};
use crate::policy::Policy;
use crate::session::MissingExport;
use crate::state::InstanceState;
use crate::Error;

/// The most linear memory a wasm32 guest can have: 4 GiB (65,536 pages).
pub const WASM32_MAX_MEMORY: usize = 1 << 32;

/// How often the engine's epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The epoch deadline of a call without one: beyond any run (the epoch
/// advances every few ms), and far from overflowing when added to it.
const NO_DEADLINE: u64 = u64::MAX / 2;

/// Most table elements an instance may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// A policy's limits, as each call arms them.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The wall-clock limit (for messages).
    deadline: Option<Duration>,
    /// The deadline in epoch ticks ([`NO_DEADLINE`] for none).
    deadline_ticks: u64,
    /// The linear-memory cap per instance, in bytes.
    memory_limit: usize,
    /// The fuel budget per call.
    fuel: Option<u64>,
    /// The largest result a call may return, in bytes.
    max_output: Option<usize>,
}

impl Limits {
    /// The limits of `policy`.
    pub fn new(policy: &Policy) -> Self {
        let ticks = policy.deadline.map_or(u128::from(NO_DEADLINE), |d| {
            d.as_nanos() / EPOCH_TICK.as_nanos() + 1
        });
        Limits {
            deadline: policy.deadline,
            deadline_ticks: u64::try_from(ticks).unwrap_or(NO_DEADLINE).min(NO_DEADLINE),
            memory_limit: policy.memory_limit,
            fuel: policy.fuel,
            max_output: policy.max_output,
        }
    }

    /// The memory meter of a new instance under these limits.
    pub fn meter(&self) -> MemoryMeter {
        MemoryMeter {
            limit: self.memory_limit,
            exceeded: false,
            peak: 0,
        }
    }

    /// Arms the per-call limits: the wall-clock deadline and the fuel
    /// budget; forgets a refused memory growth the last call survived.
    pub fn arm(&self, store: &mut Store<InstanceState>) -> Result<(), Error> {
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().memory.exceeded = false;
        if let Some(fuel) = self.fuel {
            // Fails only on an engine without fuel metering, i.e. a runtime
            // loaded for another policy.
            store
                .set_fuel(fuel)
                .map_err(|e| Error::Load(format!("{e:#}")))?;
        }
        Ok(())
    }

    /// Refuses a result larger than the policy's `max_output`.
    pub fn bounded<T: OutputSize>(&self, value: T) -> Result<T, Error> {
        let Some(max) = self.max_output else {
            return Ok(value);
        };
        let size = value.output_size();
        if size > max {
            return Err(Error::OutputTooLarge(size, max));
        }
        Ok(value)
    }

    /// What a call that failed with `err` in an instance with this `state`
    /// ran into: a missing export, the memory limit (the guest's allocator
    /// or the limiter says so), the deadline, the fuel budget, or a trap
    /// (with what the guest wrote to stderr, e.g. its panic message).
    pub fn classify(&self, err: wasmtime::Error, state: &InstanceState) -> Error {
        if let Some(missing) = err.downcast_ref::<MissingExport>() {
            return Error::MissingExport(missing.0);
        }
        let stderr = state.stderr.contents();
        let said = String::from_utf8_lossy(&stderr);
        let said: Vec<&str> = said
            .lines()
            .filter(|l| !l.starts_with("note: ") && !l.trim().is_empty())
            .collect();
        let said = said.join(" ");
        // The guest's allocator says so when memory ran out, and the guest
        // says so for a result it cannot hold at all (over 4 GiB), where no
        // growth was even attempted.
        if state.memory.exceeded || said.contains("memory allocation of ") {
            return Error::MemoryLimit {
                limit: self.memory_limit.min(WASM32_MAX_MEMORY),
                requested: allocation_size(&said),
                detail: without_panic_location(&said).to_string(),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Error::Deadline(self.deadline.unwrap_or_default()),
            Some(Trap::OutOfFuel) => Error::OutOfFuel(self.fuel.unwrap_or(0)),
            Some(trap) => Error::Trap(if said.is_empty() {
                trap.to_string()
            } else {
                format!("{trap}: {said}")
            }),
            None => Error::Trap(err.root_cause().to_string()),
        }
    }
}

/// The linear-memory limiter of one instance (its store's
/// [`ResourceLimiter`]), and what it saw.
#[derive(Debug)]
pub(crate) struct MemoryMeter {
    /// The cap in bytes.
    limit: usize,
    /// Set when the guest asked for more memory than the cap (or than
    /// wasm32 allows) during the current call.
    pub exceeded: bool,
    /// The largest linear memory granted so far, in bytes.
    pub peak: usize,
}

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    /// Growth past what the memory's type allows (4 GiB for wasm32) lands
    /// here rather than in `memory_growing`.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.exceeded = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The text of [`Error::MemoryLimit`]: which limit, and what failed.
pub(crate) fn memory_message(limit: usize, requested: Option<u64>, detail: &str) -> String {
    let which = if limit >= WASM32_MAX_MEMORY {
        "the wasm32 maximum"
    } else {
        "the policy's memory_limit"
    };
    let mut text = format!("call exceeded its memory limit of {limit} bytes ({which})");
    if let Some(bytes) = requested {
        text += &format!(": an allocation of {bytes} bytes in the guest failed");
    }
    if !detail.is_empty() {
        text += &format!(" ({detail})");
    }
    text
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
pub(crate) trait OutputSize {
    /// The size counted against `max_output`: string and byte-list bytes,
    /// plus one per list element.
    fn output_size(&self) -> usize;
}

macro_rules! no_payload {
    ($($t:ty),*) => {$(impl OutputSize for $t { fn output_size(&self) -> usize { 0 } })*};
}
no_payload!(bool, u8, u32, u64, i64, f64);

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

impl<T: OutputSize> OutputSize for Result<T, WitError> {
    fn output_size(&self) -> usize {
        match self {
            Ok(v) => v.output_size(),
            Err(e) => skyutils_common::Error::from(e.clone()).message().len(),
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
