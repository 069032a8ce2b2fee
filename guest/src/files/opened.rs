//! The file functions on a file the host opened and handed over as a
//! `wasi:filesystem` descriptor (its name is not valid UTF-8, so it cannot
//! be named in a WIT string). Everything after the open is the same code as
//! for a named file; the descriptor is read with positioned `read` calls.

use std::io::{self, Read, Seek, SeekFrom};

use wasip2::filesystem::types::{Descriptor, DescriptorType, ErrorCode};

use super::dirs::wasi_errno;
use super::hash::{hash_from, Hasher};
use super::tail::{DecodeErrors, Tail};
use crate::error::{Error, Result, EISDIR, ENOENT};

/// What the host passes: the open file, or the Linux errno of its failed
/// open.
pub type Opened<'a> = std::result::Result<&'a Descriptor, i32>;

/// A read-only descriptor as a seekable reader.
pub struct DescriptorReader<'a> {
    file: &'a Descriptor,
    pos: u64,
    size: u64,
}

impl Read for DescriptorReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (data, _end) = self
            .file
            .read(buf.len() as u64, self.pos)
            .map_err(io_error)?;
        let read = data.len().min(buf.len());
        buf[..read].copy_from_slice(&data[..read]);
        self.pos += read as u64;
        Ok(read)
    }
}

impl Seek for DescriptorReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// An I/O error of the kind `std` gives for `code` (so that
/// [`Error::from_io`] finds the same errno as for a named file).
fn io_error(code: ErrorCode) -> io::Error {
    use crate::error::{EACCES, EINVAL, ENOTDIR};
    let kind = match wasi_errno(code) {
        ENOENT => io::ErrorKind::NotFound,
        EACCES => io::ErrorKind::PermissionDenied,
        ENOTDIR => io::ErrorKind::NotADirectory,
        EISDIR => io::ErrorKind::IsADirectory,
        EINVAL => io::ErrorKind::InvalidInput,
        // WASI's own number for EIO, which `Error::from_io` maps back.
        _ => return io::Error::from_raw_os_error(29),
    };
    io::Error::from(kind)
}

/// Python's `open(path, 'rb')` of the host-opened file: the host's errno,
/// or `IsADirectoryError` for a directory; else the reader and the size.
fn open<'a>(file: Opened<'a>, path: &str) -> Result<(DescriptorReader<'a>, u64)> {
    let file = file.map_err(|errno| Error::from_errno(errno, Some(path)))?;
    let stat = file
        .stat()
        .map_err(|code| Error::from_errno(wasi_errno(code), Some(path)))?;
    if stat.type_ == DescriptorType::Directory {
        return Err(Error::from_errno(EISDIR, Some(path)));
    }
    let reader = DescriptorReader {
        file,
        pos: 0,
        size: stat.size,
    };
    Ok((reader, stat.size))
}

/// [`super::read_last_n_raw`] of a host-opened file shown as `file_path`.
/// The host resolved the path, so it exists unless it vanished since
/// (the host's open then failed with `ENOENT`).
pub fn read_last_n_raw_opened(
    file: Opened<'_>,
    file_path: &str,
    n: i64,
    chunk_size: i64,
) -> Result<Vec<Vec<u8>>> {
    Ok(tail(file, file_path, n, chunk_size)?.into_raw())
}

/// The tail of a host-opened file: upstream's `os.path.exists` is whether
/// the host found the file, its `open` the host's open.
fn tail(file: Opened<'_>, file_path: &str, n: i64, chunk_size: i64) -> Result<Tail> {
    Tail::read_from(
        file_path,
        n,
        chunk_size,
        || !matches!(file, Err(ENOENT)),
        || open(file, file_path),
    )
}

/// [`super::read_last_n_lines`] of a host-opened file shown as `file_path`.
pub fn read_last_n_lines_opened(
    file: Opened<'_>,
    file_path: &str,
    n: i64,
    chunk_size: i64,
    errors: DecodeErrors,
) -> Result<Vec<String>> {
    tail(file, file_path, n, chunk_size)?.into_lines(errors)
}

/// [`super::hash_file`] of a host-opened file shown as `path`.
pub fn hash_file_opened(file: Opened<'_>, path: &str, hash_alg: &str) -> Result<Hasher> {
    let (reader, _size) = open(file, path)?;
    hash_from(reader, hash_alg)
}
