//! The `files` interface: `read_last_n_lines`, `hash_file` and
//! `estimate_fd_for_directory`. Paths are opened with `std::fs`, i.e. through
//! the WASI filesystem the host grants inside the component; a file whose
//! name is not UTF-8 arrives already opened by the host (`opened`).

mod dirs;
mod hash;
#[cfg(target_family = "wasm")]
mod opened;
mod tail;
#[cfg(target_family = "wasm")]
mod wasi_file;

pub use dirs::{estimate_fd_for_directory, is_dir};
pub use hash::{hash_file, hash_from, HashInfo, Hasher};
#[cfg(target_family = "wasm")]
pub use opened::{hash_file_opened, read_last_n_lines_opened, read_last_n_raw_opened, Opened};
pub use tail::{read_last_n_lines, read_last_n_raw, DecodeErrors, Page, Tail};

use std::fs::{self, File, Metadata};
use std::io::ErrorKind;

use crate::error::{Error, Result, ENOENT, ENOTDIR};

/// `stat(path)` following symlinks, with Python's errors. Handles the cases a
/// WASI filesystem may not report like Linux: the empty path, and a trailing
/// slash after a non-directory.
fn stat(path: &str) -> Result<Metadata> {
    if path.is_empty() {
        return Err(Error::from_errno(ENOENT, Some(path)));
    }
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        // A WASI filesystem may need to open a directory to follow it, which
        // fails without read permission where Linux `stat` succeeds; the
        // entry's own metadata tells the same when it is not a symlink.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => match fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_symlink() => meta,
            _ => return Err(Error::from_io(&e, Some(path))),
        },
        Err(e) => return Err(Error::from_io(&e, Some(path))),
    };
    if path.ends_with('/') && !meta.is_dir() {
        return Err(Error::from_errno(ENOTDIR, Some(path)));
    }
    Ok(meta)
}

/// A file opened for reading: in the component, usually through
/// `wasi:filesystem` directly ([`wasi_file`]); natively a `std::fs::File`.
#[cfg(target_family = "wasm")]
type ReadFile = wasi_file::Source;
#[cfg(not(target_family = "wasm"))]
type ReadFile = File;

/// Opens `path` for reading like Python's `open(path, 'rb')` (a directory is
/// `IsADirectoryError` even where the OS would open it), with its size.
fn open_for_read(path: &str) -> Result<(ReadFile, u64)> {
    #[cfg(target_family = "wasm")]
    return wasi_file::open(path);
    #[cfg(not(target_family = "wasm"))]
    return open_with_std(path);
}

/// [`open_for_read`] through `std::fs`: `stat` (for Python's errors on odd
/// paths), open, and the open file's size.
fn open_with_std(path: &str) -> Result<(File, u64)> {
    stat(path)?;
    let file = File::open(path).map_err(|e| Error::from_io(&e, Some(path)))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::from_io(&e, Some(path)))?;
    if meta.is_dir() {
        return Err(Error::from_errno(crate::error::EISDIR, Some(path)));
    }
    Ok((file, meta.len()))
}
