//! `estimate_fd_for_directory` and the directory test used by
//! `get_max_workers_for_file_mounts`.

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
    Ok(count_entries(path)? * FD_PER_ENTRY)
}

/// The number of entries of the directory `path`, like `len(os.listdir())`.
#[cfg(not(target_family = "wasm"))]
fn count_entries(path: &str) -> Result<u64> {
    let mut entries = 0u64;
    for entry in std::fs::read_dir(path).map_err(|e| Error::from_io(&e, Some(path)))? {
        entry.map_err(|e| Error::from_io(&e, Some(path)))?;
        entries += 1;
    }
    Ok(entries)
}

/// The number of entries of the directory `path`, read from the
/// `wasi:filesystem` directory stream itself: `std::fs::read_dir` would stat
/// every entry (one host round trip each) and fails on a name that is not
/// UTF-8, which WASI strings cannot carry. Such an entry still exists, so it
/// counts; so does one the host could not stat (vanished since the listing,
/// or a directory readable without search permission).
#[cfg(target_family = "wasm")]
fn count_entries(path: &str) -> Result<u64> {
    let fail = |code| Error::from_errno(wasi_errno(code), Some(path));
    with_preopen(path, |dir, rest| count_below(dir, rest, fail))
        .unwrap_or_else(|| Err(Error::from_errno(crate::error::ENOENT, Some(path))))
}

/// [`count_entries`] of `rest` below the preopen `dir` (`fail` names the
/// caller's path in errors).
#[cfg(target_family = "wasm")]
fn count_below(
    dir: &wasip2::filesystem::types::Descriptor,
    rest: &str,
    fail: impl Fn(wasip2::filesystem::types::ErrorCode) -> Error,
) -> Result<u64> {
    use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
    let opened;
    let dir = if rest.is_empty() {
        dir
    } else {
        opened = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                rest,
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ,
            )
            .map_err(&fail)?;
        &opened
    };
    let stream = dir.read_directory().map_err(&fail)?;
    let mut entries = 0u64;
    loop {
        match stream.read_directory_entry() {
            // An error here is about one listed entry (the directory itself
            // was read): a name WASI cannot carry, or the host's stat of it
            // failing (vanished, or no search permission on the directory).
            // `os.listdir` lists it all the same.
            Ok(Some(_)) | Err(_) => entries += 1,
            Ok(None) => return Ok(entries),
        }
    }
}

/// Runs `f` on the preopen `path` lies below (the deepest one) and the rest
/// of `path` relative to it; `None` when no preopen covers `path`. The
/// preopens are asked for once: an instance's preopens never change (its
/// WASI configuration is fixed when it is created), and each
/// `get-directories` is a host call that hands out new handles.
#[cfg(target_family = "wasm")]
pub(super) fn with_preopen<T>(
    path: &str,
    f: impl FnOnce(&wasip2::filesystem::types::Descriptor, &str) -> T,
) -> Option<T> {
    use wasip2::filesystem::types::Descriptor;
    thread_local! {
        static PREOPENS: Vec<(Descriptor, String)> = wasip2::filesystem::preopens::get_directories();
    }
    PREOPENS.with(|preopens| {
        let (dir, rest) = preopens
            .iter()
            .filter_map(|(dir, root)| Some((dir, below(path, root)?)))
            .max_by_key(|(_, rest)| std::cmp::Reverse(rest.len()))?;
        Some(f(dir, rest))
    })
}

/// `path` relative to the preopen `root`, if it lies below it (`""` for the
/// root itself).
#[cfg(target_family = "wasm")]
fn below<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(root.trim_end_matches('/'))?;
    if rest.is_empty() {
        return Some("");
    }
    let rest = rest.strip_prefix('/')?.trim_end_matches('/');
    Some(rest)
}

/// The Linux errno of a `wasi:filesystem` error code (the ones a directory
/// listing or a file read can meet; anything else is `EIO`).
#[cfg(target_family = "wasm")]
pub(super) fn wasi_errno(code: wasip2::filesystem::types::ErrorCode) -> i32 {
    use crate::error::{EACCES, EINVAL, EIO, EISDIR, ELOOP, ENAMETOOLONG, ENOENT};
    use wasip2::filesystem::types::ErrorCode as C;
    match code {
        C::Access | C::NotPermitted => EACCES,
        C::NoEntry => ENOENT,
        C::NotDirectory => ENOTDIR,
        C::IsDirectory => EISDIR,
        C::Invalid => EINVAL,
        C::Loop => ELOOP,
        C::NameTooLong => ENAMETOOLONG,
        _ => EIO,
    }
}
