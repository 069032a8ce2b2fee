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
    /// `exc.errno` (Linux numbering), `None` for an `OSError('...')`.
    pub errno: Option<i32>,
    /// `exc.strerror`, the Linux text of `errno`.
    pub strerror: Option<String>,
    /// `exc.filename`, the path the error is about.
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

/// Which of Python's `OSError` classes an OS error is raised as: the five
/// OS-error cases of [`Error`] (and of the WIT `error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsErrorKind {
    /// `FileNotFoundError` (`ENOENT`).
    FileNotFound,
    /// `PermissionError` (`EACCES`, `EPERM`).
    PermissionDenied,
    /// `NotADirectoryError` (`ENOTDIR`).
    NotADirectory,
    /// `IsADirectoryError` (`EISDIR`).
    IsADirectory,
    /// Plain `OSError` (any other errno, or none).
    Other,
}

impl OsErrorKind {
    /// The class Python raises for `errno`.
    pub fn of_errno(errno: i32) -> Self {
        match errno {
            ENOENT => OsErrorKind::FileNotFound,
            EACCES | EPERM => OsErrorKind::PermissionDenied,
            ENOTDIR => OsErrorKind::NotADirectory,
            EISDIR => OsErrorKind::IsADirectory,
            _ => OsErrorKind::Other,
        }
    }

    /// The Python class name (`FileNotFoundError`, ..., `OSError`).
    pub fn python_class(self) -> &'static str {
        match self {
            OsErrorKind::FileNotFound => "FileNotFoundError",
            OsErrorKind::PermissionDenied => "PermissionError",
            OsErrorKind::NotADirectory => "NotADirectoryError",
            OsErrorKind::IsADirectory => "IsADirectoryError",
            OsErrorKind::Other => "OSError",
        }
    }
}

/// Any failure of the twelve functions: one case per Python exception class
/// upstream raises, each with its exact message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `ValueError`.
    Value(String),
    /// `OverflowError`.
    Overflow(String),
    /// `TypeError`.
    Type(String),
    /// `AssertionError`.
    Assertion(String),
    /// `RuntimeError`, with the OS error it was raised from, if any.
    Runtime {
        /// `str(exc)`.
        message: String,
        /// `exc.__cause__` when it is an `OSError`.
        cause: Option<OsError>,
    },
    /// `UnicodeDecodeError`.
    UnicodeDecode(String),
    /// hashlib's `ValueError('unsupported hash type ...')`.
    UnsupportedHash(String),
    /// `FileNotFoundError`.
    FileNotFound(OsError),
    /// `PermissionError`.
    PermissionDenied(OsError),
    /// `NotADirectoryError`.
    NotADirectory(OsError),
    /// `IsADirectoryError`.
    IsADirectory(OsError),
    /// `OSError`.
    Os(OsError),
    /// The host policy refused a capability (a `PermissionError`).
    CapabilityDenied(String),
}

impl Error {
    /// The OS error `os` raised as class `kind`.
    pub fn os(kind: OsErrorKind, os: OsError) -> Self {
        match kind {
            OsErrorKind::FileNotFound => Error::FileNotFound(os),
            OsErrorKind::PermissionDenied => Error::PermissionDenied(os),
            OsErrorKind::NotADirectory => Error::NotADirectory(os),
            OsErrorKind::IsADirectory => Error::IsADirectory(os),
            OsErrorKind::Other => Error::Os(os),
        }
    }

    /// The class and OS error of an OS error; any other error unchanged.
    pub fn into_os(self) -> Result<(OsErrorKind, OsError), Self> {
        match self {
            Error::FileNotFound(os) => Ok((OsErrorKind::FileNotFound, os)),
            Error::PermissionDenied(os) => Ok((OsErrorKind::PermissionDenied, os)),
            Error::NotADirectory(os) => Ok((OsErrorKind::NotADirectory, os)),
            Error::IsADirectory(os) => Ok((OsErrorKind::IsADirectory, os)),
            Error::Os(os) => Ok((OsErrorKind::Other, os)),
            other => Err(other),
        }
    }

    /// The OS error for `errno` about `path`, in the Python class that errno maps to.
    pub fn from_errno(errno: i32, path: Option<&str>) -> Self {
        Error::os(OsErrorKind::of_errno(errno), OsError::new(errno, path))
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
            Error::CapabilityDenied(_) => "PermissionError",
            os => os
                .as_os()
                .map_or("OSError", |(kind, _)| kind.python_class()),
        }
    }

    /// The class and OS error of an OS error.
    pub fn as_os(&self) -> Option<(OsErrorKind, &OsError)> {
        Some(match self {
            Error::FileNotFound(os) => (OsErrorKind::FileNotFound, os),
            Error::PermissionDenied(os) => (OsErrorKind::PermissionDenied, os),
            Error::NotADirectory(os) => (OsErrorKind::NotADirectory, os),
            Error::IsADirectory(os) => (OsErrorKind::IsADirectory, os),
            Error::Os(os) => (OsErrorKind::Other, os),
            _ => return None,
        })
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
            os => os.as_os().map_or("", |(_, os)| &os.message),
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

/// Linux `EPERM`: operation not permitted.
pub const EPERM: i32 = 1;
/// Linux `ENOENT`: no such file or directory.
pub const ENOENT: i32 = 2;
/// Linux `EIO`: input/output error.
pub const EIO: i32 = 5;
/// Linux `EACCES`: permission denied.
pub const EACCES: i32 = 13;
/// Linux `ENOTDIR`: not a directory.
pub const ENOTDIR: i32 = 20;
/// Linux `EISDIR`: is a directory.
pub const EISDIR: i32 = 21;
/// Linux `EINVAL`: invalid argument.
pub const EINVAL: i32 = 22;
/// Linux `EMFILE`: too many open files.
pub const EMFILE: i32 = 24;
/// Linux `ENAMETOOLONG`: file name too long.
pub const ENAMETOOLONG: i32 = 36;
/// Linux `ELOOP`: too many levels of symbolic links.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_errno_is_raised_as_its_python_class() {
        let cases = [
            (ENOENT, "FileNotFoundError"),
            (EACCES, "PermissionError"),
            (EPERM, "PermissionError"),
            (ENOTDIR, "NotADirectoryError"),
            (EISDIR, "IsADirectoryError"),
            (ELOOP, "OSError"),
        ];
        for (errno, class) in cases {
            let err = Error::from_errno(errno, Some("it's"));
            assert_eq!(err.python_class(), class, "errno {errno}");
            let (kind, os) = err.clone().into_os().unwrap();
            assert_eq!(os.errno, Some(errno));
            assert_eq!(Error::os(kind, os), err, "errno {errno}");
        }
        let err = Error::from_errno(ENOENT, Some("it's"));
        assert_eq!(
            err.to_string(),
            "FileNotFoundError: [Errno 2] No such file or directory: \"it's\""
        );
    }

    #[test]
    fn only_os_errors_have_an_os_error() {
        let plain = Error::Os(OsError::plain("No free ports available."));
        assert_eq!(plain.message(), "No free ports available.");
        assert_eq!(plain.as_os().map(|(k, _)| k), Some(OsErrorKind::Other));
        let denied = Error::CapabilityDenied("capability 'network' is not granted".into());
        assert_eq!(denied.python_class(), "PermissionError");
        assert!(denied.as_os().is_none());
        assert!(denied.into_os().is_err());
    }
}
