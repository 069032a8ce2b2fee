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
//! - [`Limit`]: a resource limit value, as the `host-facts` import reports it.

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
