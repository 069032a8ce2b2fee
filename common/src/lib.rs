//! What the skyutils guest (`skyutils-guest`, built for `wasm32-wasip2`) and
//! its native host (`skyutils-host`) share, so the host links no guest logic:
//!
//! - [`error`]: the WIT error model, one case per Python exception class
//!   SkyPilot raises ([`Error`], [`OsError`], [`OsErrorKind`], the Linux errno
//!   numbers and their `strerror` texts);
//! - [`pyrepr`]: Python's `repr()` of a `str` and of a POSIX path, as
//!   upstream's messages show them;
//! - [`pynum`]: CPython's number parsing (`float(str)`, `int(str)`), which the
//!   guest's policies and the host's CLI both follow;
//! - [`Limit`]: a resource limit value, as the `host-facts` import reports it;
//! - [`POD_ENV_VARS`]: the environment variables the guest reads.

#![deny(missing_docs)]

pub mod error;
pub mod pynum;
pub mod pyrepr;
mod unicode_tables;

pub use error::{Error, OsError, OsErrorKind, Result};

/// A resource limit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A finite limit.
    Finite(u64),
    /// `RLIM_INFINITY`.
    Unlimited,
}

/// `SKYPILOT_POD_CPU_CORE_LIMIT`: overrides `get_cpu_count`.
pub const CPU_LIMIT_VAR: &str = "SKYPILOT_POD_CPU_CORE_LIMIT";
/// `SKYPILOT_POD_MEMORY_GB_LIMIT`: overrides `get_mem_size_gb` (GiB).
pub const MEMORY_GB_VAR: &str = "SKYPILOT_POD_MEMORY_GB_LIMIT";
/// `SKYPILOT_POD_MEMORY_BYTES_LIMIT`: overrides `get_mem_size_gb` (bytes).
pub const MEMORY_BYTES_VAR: &str = "SKYPILOT_POD_MEMORY_BYTES_LIMIT";
/// Every environment variable the guest reads, all in its `system`
/// functions (its `text` and `files` functions read none): a host that runs
/// this guest need not give it any other.
pub const POD_ENV_VARS: [&str; 3] = [CPU_LIMIT_VAR, MEMORY_GB_VAR, MEMORY_BYTES_VAR];
