//! Native host for the skyutils WebAssembly component.
//!
//! [`Utils`] runs SkyPilot's twelve utility functions inside the sandboxed
//! component: each call runs in an instance that sees exactly the files and
//! environment it needs (idle instances are reused by calls with the same
//! WASI configuration), and every instance's filesystem, environment, host capabilities,
//! memory and wall-clock time are limited by a [`Policy`].
//!
//! ```no_run
//! let utils = skyutils::Utils::new(skyutils::Policy::default())?;
//! assert_eq!(utils.base36_encode("ff")?, "73");
//! # Ok::<(), skyutils::Error>(())
//! ```

#![warn(missing_docs)]

mod api;
mod bindings;
mod cache;
pub mod facts;
mod limits;
pub mod policy;
mod pool;
mod runtime;
mod session;
mod state;
mod wasi_config;

use std::time::Duration;

pub use api::{reset_low_fd_warning, FileHash, Utils, Workers};
pub use bindings::{DecodeErrors, Number};
pub use cache::cache_dir;
pub use facts::{HostFacts, Limit, NativeFacts};
pub use policy::{Capability, FileAccess, Policy, WASM32_MAX_MEMORY};
pub use runtime::{engine, EMBEDDED_COMPONENT};
/// The error a function raises, with upstream's Python class and message.
pub use skyutils_common::Error as CallError;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function raised (upstream's exception class and exact message).
    #[error("{0}")]
    Call(#[from] CallError),
    /// The call ran past the policy's deadline and was interrupted.
    #[error("call exceeded its deadline of {0:?}")]
    Deadline(Duration),
    /// The guest needed more linear memory than the policy's
    /// `memory_limit` allows, or than a wasm32 guest can address (4 GiB).
    #[error("{}", limits::memory_message(*limit, *requested, detail))]
    MemoryLimit {
        /// The limit in bytes ([`policy::WASM32_MAX_MEMORY`] by default).
        limit: usize,
        /// The allocation that failed, in bytes, when the guest said.
        requested: Option<u64>,
        /// What the guest said when it stopped (e.g. how big the result
        /// would have been); may be empty.
        detail: String,
    },
    /// The guest trapped for another reason (a bug in the component).
    #[error("component trapped: {0}")]
    Trap(String),
    /// The component does not export the interface this call needs.
    #[error("{0} is not exported by the component")]
    MissingExport(&'static str),
    /// The call used up the policy's fuel budget.
    #[error("call exhausted its fuel budget of {0} units")]
    OutOfFuel(u64),
    /// The call returned more data than the policy allows.
    #[error("call returned {0} bytes, more than the policy's limit of {1}")]
    OutputTooLarge(usize, usize),
    /// The component could not be compiled, loaded, linked or instantiated.
    #[error("component could not be loaded: {0}")]
    Load(String),
    /// The policy cannot be applied (e.g. an allowed directory that does
    /// not exist).
    #[error("the policy cannot be applied: {0}")]
    Policy(String),
}

impl Error {
    /// A short name for the kind of failure: upstream's Python exception class
    /// for a function's own errors, else the sandbox's (`DeadlineExceeded`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Call(c) => c.python_class(),
            Error::Deadline(_) => "DeadlineExceeded",
            Error::MemoryLimit { .. } => "MemoryLimitExceeded",
            Error::MissingExport(_) => "MissingExport",
            Error::OutOfFuel(_) => "OutOfFuel",
            Error::OutputTooLarge(..) => "OutputTooLarge",
            Error::Trap(_) => "Trap",
            Error::Load(_) => "LoadError",
            Error::Policy(_) => "PolicyError",
        }
    }

    /// The message alone (for a function's errors exactly `str(exc)` upstream).
    pub fn message(&self) -> String {
        match self {
            Error::Call(c) => c.message().to_string(),
            other => other.to_string(),
        }
    }
}

impl From<bindings::WitError> for Error {
    fn from(e: bindings::WitError) -> Self {
        Error::Call(e.into())
    }
}
