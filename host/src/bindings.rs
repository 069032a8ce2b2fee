//! Host-side bindings of the `skypilot:utils/utils` world, and conversions of
//! its error type to the shared crate's [`skyutils_common::Error`].

wasmtime::component::bindgen!({
    path: "../wit",
    // The world included under a name of its own, so its generated struct
    // (`UtilsComponent`, unused: each interface is looked up on its own) is
    // not a second `Utils` beside the public API.
    inline: "package skyutils:host; world utils-component { include skypilot:utils/utils@0.1.0; }",
    world: "utils-component",
    // The WASI types in the `opened-files` exports are wasmtime-wasi's own, so a
    // descriptor the host opens lives in the store's `ResourceTable` like
    // any the guest opens through WASI.
    with: {
        "wasi:filesystem/types": wasmtime_wasi::p2::bindings::sync::filesystem::types,
        "wasi:io": wasmtime_wasi::p2::bindings::sync::io,
        "wasi:clocks/wall-clock": wasmtime_wasi::p2::bindings::sync::clocks::wall_clock,
    },
});

pub use exports::skypilot::utils::files::DecodeErrors;
pub use exports::skypilot::utils::text::Number;
pub use exports::skypilot::utils::{files, opened_files, system, text};
pub use skypilot::utils::host_facts;
pub use skypilot::utils::types::{Error as WitError, OsError as WitOsError};

/// What a call into the guest returns: the function's own result, or
/// upstream's exception.
pub type WitResult<T> = Result<T, WitError>;

use skyutils_common::{Error, OsError};
use wasmtime::component::{HasSelf, Linker};

use crate::state::InstanceState;

/// Defines the world's own imports (`types`, `host-facts`) in `linker`. The
/// WASI interfaces it also imports come from
/// `wasmtime_wasi::p2::add_to_linker_sync` (the world's generated
/// `add_to_linker` would define them a second time).
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    skypilot::utils::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    host_facts::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

fn os_error(os: WitOsError) -> OsError {
    OsError {
        message: os.message,
        errno: os.errno,
        strerror: os.strerror,
        filename: os.filename,
    }
}

impl From<WitError> for Error {
    fn from(err: WitError) -> Self {
        match err {
            WitError::ValueError(m) => Error::Value(m),
            WitError::OverflowError(m) => Error::Overflow(m),
            WitError::TypeError(m) => Error::Type(m),
            WitError::AssertionError(m) => Error::Assertion(m),
            WitError::RuntimeError(r) => Error::Runtime {
                message: r.message,
                cause: r.cause.map(os_error),
            },
            WitError::UnicodeDecodeError(m) => Error::UnicodeDecode(m),
            WitError::UnsupportedHash(m) => Error::UnsupportedHash(m),
            WitError::FileNotFound(os) => Error::FileNotFound(os_error(os)),
            WitError::PermissionDenied(os) => Error::PermissionDenied(os_error(os)),
            WitError::NotADirectory(os) => Error::NotADirectory(os_error(os)),
            WitError::IsADirectory(os) => Error::IsADirectory(os_error(os)),
            WitError::OsError(os) => Error::Os(os_error(os)),
            WitError::CapabilityDenied(m) => Error::CapabilityDenied(m),
        }
    }
}
