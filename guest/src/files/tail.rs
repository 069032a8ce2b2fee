//! `read_last_n_lines`: reads backwards from the end of the file in blocks
//! and stops once enough newlines are seen, so cost and memory follow the
//! size of the last lines, never the file size.

use std::io::{Read, Seek, SeekFrom};

use super::{open_stated, stat};
use crate::error::{Error, OsError, Result};

/// The UTF-8 error handlers the component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrors {
    Strict,
    Replace,
    Ignore,
}

/// Bounds of the internal read block. The result never depends on
/// `chunk_size`, so a block size outside these bounds is clamped: a tiny one
/// would cost one read call per byte, a huge one a huge allocation.
const MIN_BLOCK: u64 = 8 * 1024;
const MAX_BLOCK: u64 = 1024 * 1024;

/// `read_last_n_lines(file_path, n, chunk_size, 'utf-8', errors)`.
pub fn read_last_n_lines(
    file_path: &str,
    n: i64,
    chunk_size: i64,
    errors: DecodeErrors,
) -> Result<Vec<String>> {
    decode_tail(read_last_n_raw(file_path, n, chunk_size)?, errors)
}

/// The tail's pieces as `read_last_n_lines` returns them: decoded, CRs
/// before the newline dropped, every line but the last ending in `\n`.
pub fn decode_tail(pieces: Vec<Vec<u8>>, errors: DecodeErrors) -> Result<Vec<String>> {
    let count = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut line = decode_piece(piece, errors)?;
            line.truncate(line.trim_end_matches('\r').len());
            if i + 1 < count {
                line.push('\n');
            }
            Ok(line)
        })
        .collect()
}

/// The last `n` lines as raw byte pieces (split at `\n`, a final empty piece
/// dropped, CRs kept), after upstream's precondition checks.
pub fn read_last_n_raw(file_path: &str, n: i64, chunk_size: i64) -> Result<Vec<Vec<u8>>> {
    // Once `stat` has accepted the path, open it without a second round trip.
    read_last_n_raw_from(
        file_path,
        n,
        chunk_size,
        || stat(file_path).is_ok(),
        || open_stated(file_path),
    )
}

/// [`read_last_n_raw`] over any file: `exists` is upstream's
/// `os.path.exists(file_path)`, `open` its `open(file_path, 'rb')` (the
/// file and its size; errors name `file_path`), asked only when upstream
/// would ask. `file_path` is also the path shown in messages.
pub fn read_last_n_raw_from<F: Read + Seek>(
    file_path: &str,
    n: i64,
    chunk_size: i64,
    exists: impl FnOnce() -> bool,
    open: impl FnOnce() -> Result<(F, u64)>,
) -> Result<Vec<Vec<u8>>> {
    if n < 0 {
        return Err(Error::Assertion(format!("n must be non-negative. Got {n}")));
    }
    if chunk_size <= 0 {
        return Err(Error::Assertion(format!(
            "chunk_size must be positive. Got {chunk_size}"
        )));
    }
    if !exists() {
        return Err(Error::Assertion(format!("File not found: {file_path}")));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let wrap = |err: Error| {
        let cause = os_error_of(err);
        Error::Runtime {
            message: format!(
                "Failed to read last {n} lines from {file_path}: {}",
                cause.message
            ),
            cause: Some(cause),
        }
    };
    let (mut file, size) = open().map_err(wrap)?;
    let block = (chunk_size as u64).clamp(MIN_BLOCK, MAX_BLOCK);
    let data =
        read_tail(&mut file, size, n as u64, block).map_err(|e| wrap(Error::from_io(&e, None)))?;
    Ok(last_pieces(&data, n as u64))
}

/// The OS error inside an `Error` produced by a file operation.
fn os_error_of(err: Error) -> OsError {
    match err {
        Error::FileNotFound(os)
        | Error::PermissionDenied(os)
        | Error::NotADirectory(os)
        | Error::IsADirectory(os)
        | Error::Os(os) => os,
        other => OsError::plain(other.message()),
    }
}

/// Reads blocks backwards from the end (`size`, as the open file reports
/// it) until more than `n` newlines are held or the start of the file is
/// reached; returns the bytes read (a suffix of the file).
fn read_tail(
    file: &mut (impl Read + Seek),
    size: u64,
    n: u64,
    block: u64,
) -> std::io::Result<Vec<u8>> {
    if size == 0 {
        // Linux procfs files report size 0 yet have content; Linux refuses
        // to seek to their end (EINVAL) where a WASI filesystem says 0.
        let mut probe = [0u8; 1];
        if file.read(&mut probe)? > 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
    }
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut pos = size;
    let mut newlines = 0u64;
    while pos > 0 && newlines <= n {
        let len = block.min(pos);
        pos -= len;
        file.seek(SeekFrom::Start(pos))?;
        let mut buf = vec![0u8; len as usize];
        file.read_exact(&mut buf)?;
        newlines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        blocks.push(buf);
    }
    blocks.reverse();
    Ok(blocks.concat())
}

/// Upstream's result rule: split at `\n`, drop a final empty piece, keep the
/// last `n`. When `data` does not start at the file's start its first piece
/// may be partial, but then more than `n` newlines were read, so it is never
/// kept.
fn last_pieces(data: &[u8], n: u64) -> Vec<Vec<u8>> {
    if data.is_empty() {
        return Vec::new();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut pieces: Vec<Vec<u8>> = body
        .rsplit(|&b| b == b'\n')
        .take(n.min(usize::MAX as u64) as usize)
        .map(<[u8]>::to_vec)
        .collect();
    pieces.reverse();
    pieces
}

/// Decodes one piece as UTF-8 with Python's `errors` semantics.
pub fn decode_piece(piece: &[u8], errors: DecodeErrors) -> Result<String> {
    match errors {
        DecodeErrors::Replace => Ok(String::from_utf8_lossy(piece).into_owned()),
        DecodeErrors::Ignore => Ok(piece.utf8_chunks().map(|c| c.valid()).collect()),
        DecodeErrors::Strict => {
            let mut pos = 0;
            for chunk in piece.utf8_chunks() {
                pos += chunk.valid().len();
                let bad = chunk.invalid();
                if !bad.is_empty() {
                    return Err(Error::UnicodeDecode(strict_error(piece, pos, bad)));
                }
            }
            Ok(String::from_utf8(piece.to_vec()).expect("validated UTF-8"))
        }
    }
}

/// CPython's `UnicodeDecodeError` text for the invalid run `bad` at `pos`.
fn strict_error(piece: &[u8], pos: usize, bad: &[u8]) -> String {
    let lead = bad[0];
    let reason = if matches!(lead, 0x80..=0xC1 | 0xF5..=0xFF) {
        "invalid start byte"
    } else if pos + bad.len() == piece.len() {
        "unexpected end of data"
    } else {
        "invalid continuation byte"
    };
    if bad.len() == 1 {
        format!("'utf-8' codec can't decode byte 0x{lead:02x} in position {pos}: {reason}")
    } else {
        let end = pos + bad.len() - 1;
        format!("'utf-8' codec can't decode bytes in position {pos}-{end}: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_rule() {
        let p = |d: &[u8], n| last_pieces(d, n);
        assert_eq!(p(b"l1\nl2\nl3\n", 2), vec![b"l2".to_vec(), b"l3".to_vec()]);
        assert_eq!(p(b"\n", 1), vec![Vec::<u8>::new()]);
        assert_eq!(p(b"\n\n\n", 5).len(), 3);
        assert_eq!(p(b"a\nb", 1), vec![b"b".to_vec()]);
    }

    #[test]
    fn any_seekable_source_and_opened_only_when_upstream_opens() {
        use std::io::Cursor;
        let data = b"a\nb\r\nc\n".repeat(5000);
        let size = data.len() as u64;
        let source = || Ok((Cursor::new(data.clone()), size));
        let tail = read_last_n_raw_from("p", 2, 1, || true, source).unwrap();
        assert_eq!(tail, vec![b"b\r".to_vec(), b"c".to_vec()]);
        let never = || -> Result<(Cursor<Vec<u8>>, u64)> { panic!("opened") };
        assert_eq!(read_last_n_raw_from("p", 0, 1, || true, never), Ok(vec![]));
        assert_eq!(
            read_last_n_raw_from("p", 1, 1, || false, never),
            Err(Error::Assertion("File not found: p".into()))
        );
        let refused = || -> Result<(Cursor<Vec<u8>>, u64)> {
            Err(Error::from_errno(crate::error::EACCES, Some("p")))
        };
        assert_eq!(
            read_last_n_raw_from("p", 1, 1, || true, refused)
                .unwrap_err()
                .message(),
            "Failed to read last 1 lines from p: [Errno 13] Permission denied: 'p'"
        );
    }

    #[test]
    fn strict_messages() {
        let err = |b: &[u8]| match decode_piece(b, DecodeErrors::Strict) {
            Err(Error::UnicodeDecode(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(b"end\xe2\x82"),
            "'utf-8' codec can't decode bytes in position 3-4: unexpected end of data"
        );
        assert_eq!(
            err(b"\xf0\x9f\x91x"),
            "'utf-8' codec can't decode bytes in position 0-2: invalid continuation byte"
        );
        assert_eq!(
            err(b"\xed\xa0\x80"),
            "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"
        );
        assert_eq!(
            err(b"a\x80b"),
            "'utf-8' codec can't decode byte 0x80 in position 1: invalid start byte"
        );
        assert_eq!(decode_piece(b"\xff(x", DecodeErrors::Ignore).unwrap(), "(x");
    }
}
