//! A file opened and read through `wasi:filesystem` itself: one host round
//! trip to open it, one to stat it and one per read (`descriptor.read` at an
//! offset), where `std::fs` (wasi-libc) takes a `stat-at` before opening and
//! two round trips per read (a stream, then a read from it). In a host
//! whose filesystem calls each cross threads (wasmtime's C API), round
//! trips are most of the cost of a small read.
//!
//! Only plain paths take this route (below a preopen, no trailing slash);
//! anything else, and every failure, goes through `std::fs`, whose errors
//! are the ones upstream's messages need.

use std::io::{self, Read, Seek, SeekFrom};

use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, OpenFlags, PathFlags,
};

use super::dirs::{wasi_errno, with_preopen};
use super::open_with_std;
use crate::error::Result;

/// A file read at explicit offsets.
pub struct WasiFile {
    descriptor: Descriptor,
    pos: u64,
}

impl Read for WasiFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (data, _eof) = self
            .descriptor
            .read(buf.len() as u64, self.pos)
            .map_err(|code| io::Error::from_raw_os_error(wasi_errno(code)))?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for WasiFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(pos) => pos,
            SeekFrom::Current(delta) => self
                .pos
                .checked_add_signed(delta)
                .ok_or(io::ErrorKind::InvalidInput)?,
            SeekFrom::End(_) => return Err(io::ErrorKind::Unsupported.into()),
        };
        Ok(self.pos)
    }
}

/// A regular file opened for reading.
pub enum Source {
    /// Opened through `wasi:filesystem` directly.
    Wasi(WasiFile),
    /// Opened through `std::fs`.
    Std(std::fs::File),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Wasi(f) => f.read(buf),
            Source::Std(f) => f.read(buf),
        }
    }
}

impl Seek for Source {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            Source::Wasi(f) => f.seek(to),
            Source::Std(f) => f.seek(to),
        }
    }
}

/// Opens `path` for reading like Python's `open(path, 'rb')` (a directory is
/// `IsADirectoryError`), with its size.
pub fn open(path: &str) -> Result<(Source, u64)> {
    if let Some(opened) = open_direct(path) {
        return Ok(opened);
    }
    let (file, size) = open_with_std(path)?;
    Ok((Source::Std(file), size))
}

/// `path` opened and stated through `wasi:filesystem`, if that works for a
/// regular file (else `std::fs` is asked, for upstream's error).
fn open_direct(path: &str) -> Option<(Source, u64)> {
    if path.ends_with('/') {
        return None;
    }
    let descriptor = with_preopen(path, |dir, rest| {
        if rest.is_empty() {
            return None;
        }
        dir.open_at(
            PathFlags::SYMLINK_FOLLOW,
            rest,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .ok()
    })??;
    let stat = descriptor.stat().ok()?;
    if stat.type_ != DescriptorType::RegularFile {
        return None;
    }
    let file = WasiFile { descriptor, pos: 0 };
    Some((Source::Wasi(file), stat.size))
}
