//! `estimate_fd_for_directory` and the directory test used by
//! `get_max_workers_for_file_mounts`.

use std::fs;

use super::stat;
use crate::error::{Error, Result, ENOTDIR};

/// File descriptors one rsync of a directory is assumed to need per entry.
const FD_PER_ENTRY: u64 = 5;

/// `os.path.isdir(path)`: follows symlinks; any failure is `false`.
pub fn is_dir(path: &str) -> bool {
    stat(path).map(|m| m.is_dir()).unwrap_or(false)
}

/// 5 x the number of entries of `path` (`.`/`..` excluded, hidden entries,
/// subdirectories and symlinks counted once, not recursive).
pub fn estimate_fd_for_directory(path: &str) -> Result<u64> {
    let meta = stat(path)?;
    if !meta.is_dir() {
        return Err(Error::from_errno(ENOTDIR, Some(path)));
    }
    let mut entries = 0u64;
    for entry in fs::read_dir(path).map_err(|e| Error::from_io(&e, Some(path)))? {
        entry.map_err(|e| Error::from_io(&e, Some(path)))?;
        entries += 1;
    }
    Ok(entries * FD_PER_ENTRY)
}
