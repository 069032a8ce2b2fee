//! The error model: one variant per Python exception class SkyPilot raises,
//! each carrying upstream's exact message (`str(exc)`).

use std::fmt;
use std::io;

use crate::pyrepr::repr;

/// An operating-system error as Python's `OSError` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsError {
    /// Exactly `str(exc)`.
    pub message: String,
    pub errno: Option<i32>,
    pub strerror: Option<String>,
    pub filename: Option<String>,
}

impl OsError {
    /// `[Errno N] text: 'path'` (or without the path part when `path` is none).
    pub fn new(errno: i32, path: Option<&str>) -> Self {
        let text = strerror(errno);
        let message = match path {
            Some(p) => format!("[Errno {errno}] {text}: {}", repr(p)),
            None => format!("[Errno {errno}] {text}"),
        };
        OsError {
            message,
            errno: Some(errno),
            strerror: Some(text.to_string()),
            filename: path.map(str::to_string),
        }
    }

    /// An `OSError` built from a bare message (no errno), like `OSError('...')`.
    pub fn plain(message: &str) -> Self {
        OsError {
            message: message.to_string(),
            errno: None,
            strerror: None,
            filename: None,
        }
    }
}

/// Any failure of the twelve functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Value(String),
    Overflow(String),
    Type(String),
    Assertion(String),
    Runtime {
        message: String,
        cause: Option<OsError>,
    },
    UnicodeDecode(String),
    UnsupportedHash(String),
    FileNotFound(OsError),
    PermissionDenied(OsError),
    NotADirectory(OsError),
    IsADirectory(OsError),
    Os(OsError),
    CapabilityDenied(String),
}

impl Error {
    /// The OS error for `errno` about `path`, in the Python class that errno maps to.
    pub fn from_errno(errno: i32, path: Option<&str>) -> Self {
        let os = OsError::new(errno, path);
        match errno {
            ENOENT => Error::FileNotFound(os),
            EACCES | EPERM => Error::PermissionDenied(os),
            ENOTDIR => Error::NotADirectory(os),
            EISDIR => Error::IsADirectory(os),
            _ => Error::Os(os),
        }
    }

    /// Converts an I/O error about `path` (none for errors such as a failed
    /// seek, which Python reports without a filename).
    pub fn from_io(err: &io::Error, path: Option<&str>) -> Self {
        match linux_errno(err) {
            Some(errno) => Error::from_errno(errno, path),
            None => Error::Os(OsError {
                message: err.to_string(),
                errno: None,
                strerror: Some(err.to_string()),
                filename: path.map(str::to_string),
            }),
        }
    }

    /// The Python exception class name (`ValueError`, `FileNotFoundError`, ...).
    pub fn python_class(&self) -> &'static str {
        match self {
            Error::Value(_) | Error::UnsupportedHash(_) => "ValueError",
            Error::Overflow(_) => "OverflowError",
            Error::Type(_) => "TypeError",
            Error::Assertion(_) => "AssertionError",
            Error::Runtime { .. } => "RuntimeError",
            Error::UnicodeDecode(_) => "UnicodeDecodeError",
            Error::FileNotFound(_) => "FileNotFoundError",
            Error::PermissionDenied(_) => "PermissionError",
            Error::NotADirectory(_) => "NotADirectoryError",
            Error::IsADirectory(_) => "IsADirectoryError",
            Error::Os(_) => "OSError",
            Error::CapabilityDenied(_) => "PermissionError",
        }
    }

    /// Exactly what `str(exc)` gives in Python.
    pub fn message(&self) -> &str {
        match self {
            Error::Value(m)
            | Error::Overflow(m)
            | Error::Type(m)
            | Error::Assertion(m)
            | Error::UnicodeDecode(m)
            | Error::UnsupportedHash(m)
            | Error::CapabilityDenied(m)
            | Error::Runtime { message: m, .. } => m,
            Error::FileNotFound(os)
            | Error::PermissionDenied(os)
            | Error::NotADirectory(os)
            | Error::IsADirectory(os)
            | Error::Os(os) => &os.message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.python_class(), self.message())
    }
}

impl std::error::Error for Error {}

/// Crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EIO: i32 = 5;
pub const EACCES: i32 = 13;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const EMFILE: i32 = 24;
pub const ENAMETOOLONG: i32 = 36;
pub const ELOOP: i32 = 40;

/// The Linux `strerror` text of the errnos this crate reports.
pub fn strerror(errno: i32) -> &'static str {
    match errno {
        EPERM => "Operation not permitted",
        ENOENT => "No such file or directory",
        EIO => "Input/output error",
        EACCES => "Permission denied",
        ENOTDIR => "Not a directory",
        EISDIR => "Is a directory",
        EINVAL => "Invalid argument",
        EMFILE => "Too many open files",
        ENAMETOOLONG => "File name too long",
        ELOOP => "Too many levels of symbolic links",
        _ => "Unknown error",
    }
}

/// The Linux errno of an I/O error. Under WASI the raw code uses WASI's own
/// numbering, so the portable `ErrorKind` decides.
fn linux_errno(err: &io::Error) -> Option<i32> {
    use io::ErrorKind as K;
    Some(match err.kind() {
        K::NotFound => ENOENT,
        K::PermissionDenied => EACCES,
        K::NotADirectory => ENOTDIR,
        K::IsADirectory => EISDIR,
        K::InvalidInput => EINVAL,
        K::InvalidFilename => ENAMETOOLONG,
        _ => return native_errno(err),
    })
}

#[cfg(not(target_family = "wasm"))]
fn native_errno(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
}

#[cfg(target_family = "wasm")]
fn native_errno(err: &io::Error) -> Option<i32> {
    // WASI errno numbers of the few remaining cases worth naming.
    match err.raw_os_error()? {
        32 => Some(ELOOP),
        29 => Some(EIO),
        76 => Some(EACCES), // ENOTCAPABLE: outside the granted directories
        _ => None,
    }
}
