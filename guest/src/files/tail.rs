//! `read_last_n_lines`: reads backwards from the end of the file in blocks
//! and stops once enough newlines are seen, so cost and memory follow the
//! size of the last lines, never the file size.
//!
//! A [`Tail`] holds the bytes of the last lines once (plus one range per
//! line) and hands them out whole ([`Tail::into_lines`], [`Tail::into_raw`])
//! or in bounded pages ([`Tail::next_page`]) for hosts that cannot receive a
//! big result in one call.

use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use super::{open_for_read, stat};
use crate::error::{Error, OsError, Result};

/// The UTF-8 error handlers the component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrors {
    /// `errors='strict'`: undecodable bytes raise `UnicodeDecodeError`.
    Strict,
    /// `errors='replace'`: each undecodable sequence becomes U+FFFD.
    Replace,
    /// `errors='ignore'`: undecodable bytes are dropped.
    Ignore,
}

/// Bounds of the internal read block. The result never depends on
/// `chunk_size`, so a block size outside these bounds is clamped: a tiny one
/// would cost one read call per byte, a huge one a huge allocation.
const MIN_BLOCK: u64 = 8 * 1024;
const MAX_BLOCK: u64 = 1024 * 1024;

/// Blocks read backwards are kept up to this many bytes; a longer tail is
/// located first and then read once into one exact buffer, so its bytes are
/// held once (not once in blocks and again joined).
const KEEP_BLOCKS: u64 = 8 << 20;

/// `read_last_n_lines(file_path, n, chunk_size, 'utf-8', errors)`.
pub fn read_last_n_lines(
    file_path: &str,
    n: i64,
    chunk_size: i64,
    errors: DecodeErrors,
) -> Result<Vec<String>> {
    Tail::read(file_path, n, chunk_size)?.into_lines(errors)
}

/// The last `n` lines as raw byte pieces (split at `\n`, a final empty piece
/// dropped, CRs kept), after upstream's precondition checks.
pub fn read_last_n_raw(file_path: &str, n: i64, chunk_size: i64) -> Result<Vec<Vec<u8>>> {
    Ok(Tail::read(file_path, n, chunk_size)?.into_raw())
}

/// One page of a [`Tail`]: whole lines (or pieces), except that the last
/// item is only the start of a line when `continued` is set (a single line
/// longer than a page is split across pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The lines (or raw pieces) of this page, oldest first.
    pub items: Vec<T>,
    /// Whether the last item continues on the next page.
    pub continued: bool,
}

/// The last lines of a file, held in the guest until taken.
#[derive(Debug)]
pub struct Tail {
    /// A suffix of the file holding every kept line.
    data: Vec<u8>,
    /// Each kept line's bytes in `data` (no `\n`, CRs kept), in file order.
    lines: Vec<Range<usize>>,
    /// How lines are decoded; `None` hands out raw pieces.
    errors: Option<DecodeErrors>,
    /// The next line to hand out.
    next: usize,
    /// The rest of a line split across pages: its bytes and how many were
    /// already handed out.
    partial: Option<(Vec<u8>, usize)>,
}

impl Tail {
    /// Reads the last `n` lines of `file_path` after upstream's
    /// precondition checks (nothing decoded yet).
    pub fn read(file_path: &str, n: i64, chunk_size: i64) -> Result<Tail> {
        let exists = || stat(file_path).is_ok();
        Tail::read_from(file_path, n, chunk_size, exists, || {
            open_for_read(file_path)
        })
    }

    /// [`Tail::read`] over any file: `exists` is upstream's
    /// `os.path.exists(file_path)`, `open` its `open(file_path, 'rb')` (the
    /// file and its size; errors name `file_path`). The file is opened
    /// first (the common case needs no `exists` round trip): `exists` is
    /// asked only when `n` is 0 or the open failed, to tell upstream's
    /// "File not found" from a failed read. `file_path` is also the path
    /// shown in messages.
    pub fn read_from<F: Read + Seek>(
        file_path: &str,
        n: i64,
        chunk_size: i64,
        exists: impl FnOnce() -> bool,
        open: impl FnOnce() -> Result<(F, u64)>,
    ) -> Result<Tail> {
        if n < 0 {
            return Err(Error::Assertion(format!("n must be non-negative. Got {n}")));
        }
        if chunk_size <= 0 {
            return Err(Error::Assertion(format!(
                "chunk_size must be positive. Got {chunk_size}"
            )));
        }
        let not_found = || Error::Assertion(format!("File not found: {file_path}"));
        if n == 0 {
            return if exists() {
                Ok(Tail::from_data(Vec::new(), 0))
            } else {
                Err(not_found())
            };
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
        let (mut file, size) = match open() {
            Ok(opened) => opened,
            Err(_) if !exists() => return Err(not_found()),
            Err(e) => return Err(wrap(e)),
        };
        let block = (chunk_size as u64).clamp(MIN_BLOCK, MAX_BLOCK);
        let data = read_tail(&mut file, size, n as u64, block)
            .map_err(|e| wrap(Error::from_io(&e, None)))?;
        Ok(Tail::from_data(data, n as u64))
    }

    fn from_data(data: Vec<u8>, n: u64) -> Tail {
        let lines = last_lines(&data, n);
        Tail {
            data,
            lines,
            errors: None,
            next: 0,
            partial: None,
        }
    }

    /// Decodes lines with `errors` from now on (`read_last_n_lines`); a
    /// strict decoder checks every line now, so an invalid one fails the
    /// call before any line is handed out, as upstream.
    pub fn decode_with(mut self, errors: DecodeErrors) -> Result<Tail> {
        if errors == DecodeErrors::Strict {
            for r in &self.lines {
                decode_piece(&self.data[r.clone()], errors)?;
            }
        }
        self.errors = Some(errors);
        Ok(self)
    }

    /// Lines not yet handed out (a line split across pages counts until its
    /// last part is).
    pub fn remaining(&self) -> u64 {
        (self.lines.len() - self.next) as u64 + u64::from(self.partial.is_some())
    }

    /// Every line, decoded with `errors` (upstream's result).
    pub fn into_lines(self, errors: DecodeErrors) -> Result<Vec<String>> {
        let count = self.lines.len();
        self.lines
            .iter()
            .enumerate()
            .map(|(i, r)| decode_line(&self.data[r.clone()], errors, i + 1 == count))
            .collect()
    }

    /// Every line as raw bytes.
    pub fn into_raw(self) -> Vec<Vec<u8>> {
        self.lines
            .iter()
            .map(|r| self.data[r.clone()].to_vec())
            .collect()
    }

    /// The bytes line `i` is handed out as: decoded text (`\r`s trimmed,
    /// `\n` after every line but the last) or the raw piece.
    fn item(&self, i: usize) -> Vec<u8> {
        let piece = &self.data[self.lines[i].clone()];
        match self.errors {
            // Strict lines were checked by `decode_with`.
            Some(errors) => decode_line(piece, errors, i + 1 == self.lines.len())
                .map(String::into_bytes)
                .unwrap_or_default(),
            None => piece.to_vec(),
        }
    }

    /// The next items: at most `max_items` of them and `max_bytes` bytes in
    /// all, but at least one non-empty item (or part of one) while any
    /// remain. A line longer than `max_bytes` is handed out in parts (split
    /// at a character boundary when decoding), one per page, each page
    /// marked `continued` but the one with its last part.
    pub fn next_page(&mut self, max_bytes: usize, max_items: usize) -> Page<Vec<u8>> {
        let max_bytes = max_bytes.max(4);
        let max_items = max_items.max(1);
        let mut items = Vec::new();
        let mut used = 0usize;
        while items.len() < max_items {
            let (bytes, start) = match self.partial.take() {
                Some(partial) => partial,
                None if self.next < self.lines.len() => {
                    let len = self.lines[self.next].len();
                    // A line that does not fit in this page, when others
                    // are already in it, starts the next page.
                    if !items.is_empty() && used + len > max_bytes {
                        break;
                    }
                    let item = self.item(self.next);
                    self.next += 1;
                    (item, 0)
                }
                None => break,
            };
            let rest = bytes.len() - start;
            if used + rest <= max_bytes {
                used += rest;
                items.push(if start == 0 {
                    bytes
                } else {
                    bytes[start..].to_vec()
                });
                continue;
            }
            if !items.is_empty() {
                self.partial = Some((bytes, start));
                break;
            }
            // One line longer than a page: hand out a part of it.
            let mut end = start + max_bytes;
            if self.errors.is_some() {
                while end > start && !is_char_boundary(&bytes, end) {
                    end -= 1;
                }
            }
            items.push(bytes[start..end].to_vec());
            self.partial = Some((bytes, end));
            return Page {
                items,
                continued: true,
            };
        }
        Page {
            items,
            continued: false,
        }
    }
}

/// Whether `i` starts a UTF-8 character of the valid UTF-8 `bytes`.
fn is_char_boundary(bytes: &[u8], i: usize) -> bool {
    i >= bytes.len() || (bytes[i] as i8) >= -0x40
}

/// Line `piece` decoded as `read_last_n_lines` returns it, copied once
/// into its final size.
fn decode_line(piece: &[u8], errors: DecodeErrors, last: bool) -> Result<String> {
    let text = decode_piece(piece, errors)?;
    let text = text.trim_end_matches('\r');
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    if !last {
        line.push('\n');
    }
    Ok(line)
}

/// The OS error inside an `Error` produced by a file operation.
fn os_error_of(err: Error) -> OsError {
    match err.into_os() {
        Ok((_, os)) => os,
        Err(other) => OsError::plain(other.message()),
    }
}

/// Reads blocks backwards from the end (`size`, as the open file reports
/// it) until more than `n` newlines are held or the start of the file is
/// reached; returns the bytes read (a suffix of the file). Past
/// [`KEEP_BLOCKS`] bytes the blocks are only counted, and the suffix is then
/// read once into an exact buffer.
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
    let mut seen = 0u64;
    let mut pos = size;
    let mut newlines = 0u64;
    let mut scratch = Vec::new();
    while pos > 0 && newlines <= n {
        // Once only counting, the block size is free (the result never
        // depends on it): the largest one means the fewest reads.
        let block = if seen > KEEP_BLOCKS { MAX_BLOCK } else { block };
        let len = block.min(pos);
        pos -= len;
        file.seek(SeekFrom::Start(pos))?;
        let keep = seen + len <= KEEP_BLOCKS;
        let buf = if keep {
            blocks.push(vec![0u8; len as usize]);
            blocks.last_mut().expect("just pushed")
        } else {
            if !blocks.is_empty() {
                blocks = Vec::new();
            }
            scratch.resize(len as usize, 0);
            &mut scratch
        };
        let got = read_up_to(file, buf)?;
        buf.truncate(got);
        newlines += count_newlines(buf, n.saturating_add(1) - newlines);
        seen += len;
    }
    if seen <= KEEP_BLOCKS {
        if blocks.len() == 1 {
            return Ok(blocks.swap_remove(0));
        }
        blocks.reverse();
        return Ok(blocks.concat());
    }
    drop(scratch);
    let len = usize::try_from(size - pos).unwrap_or_else(|_| out_of_memory(size - pos));
    let mut data = Vec::new();
    if data.try_reserve_exact(len).is_err() {
        out_of_memory(size - pos);
    }
    data.resize(len, 0);
    file.seek(SeekFrom::Start(pos))?;
    let got = read_up_to(file, &mut data)?;
    data.truncate(got);
    Ok(data)
}

/// Fills `buf` until it is full or the file ends, like Python's
/// `f.read(len)`: a file shorter than its reported size (sysfs files say
/// 4096 bytes) gives what it has, not an error. Returns the bytes read.
fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Stops the call when the tail does not fit in the guest's memory. WIT has
/// no error case for this (the limit is the host's): the host sees the
/// failed `memory.grow`, reports its memory limit and quotes this message,
/// which says how big the result would be.
fn out_of_memory(bytes: u64) -> ! {
    panic!(
        "memory allocation of {bytes} bytes failed: the last lines of the file are {bytes} bytes"
    )
}

/// Upstream's result rule: split at `\n`, drop a final empty piece, keep the
/// last `n`. When `data` does not start at the file's start its first piece
/// may be partial, but then more than `n` newlines were read, so it is never
/// kept. Returns the kept pieces' ranges in file order.
fn last_lines(data: &[u8], n: u64) -> Vec<Range<usize>> {
    if data.is_empty() {
        return Vec::new();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut lines = Vec::with_capacity(n.min(1024) as usize);
    let mut end = body.len();
    let mut newlines = memchr::memrchr_iter(b'\n', body);
    while (lines.len() as u64) < n {
        match newlines.next() {
            Some(i) => {
                lines.push(i + 1..end);
                end = i;
            }
            None => {
                lines.push(0..end);
                break;
            }
        }
    }
    lines.reverse();
    lines
}

/// How many `\n` bytes `buf` holds, counted up to `limit` (the tail only
/// needs to know when it holds more than `n`): found from the end while
/// `limit` is small next to `buf` (a log's last lines end near it), else all
/// counted. Each run of up to 240 bytes is counted in a byte, which a
/// compiler vectorises a full register at a time (counting into a `u64`
/// widened every byte to a 32-bit lane: 4 bytes a step in wasm).
fn count_newlines(buf: &[u8], limit: u64) -> u64 {
    if limit < (buf.len() / 64) as u64 {
        return memchr::memrchr_iter(b'\n', buf)
            .take(limit as usize)
            .count() as u64;
    }
    let all: u64 = buf
        .chunks(240)
        .map(|run| u64::from(run.iter().fold(0u8, |k, &b| k + u8::from(b == b'\n'))))
        .sum();
    all.min(limit)
}

/// Decodes one piece as UTF-8 with Python's `errors` semantics (valid text
/// is borrowed).
fn decode_piece(piece: &[u8], errors: DecodeErrors) -> Result<Cow<'_, str>> {
    // `from_utf8` checks ASCII a word at a time; the decoders below go byte
    // by byte, so they only see pieces that are not valid UTF-8.
    if let Ok(text) = std::str::from_utf8(piece) {
        return Ok(Cow::Borrowed(text));
    }
    match errors {
        DecodeErrors::Replace => Ok(String::from_utf8_lossy(piece)),
        DecodeErrors::Ignore => Ok(Cow::Owned(piece.utf8_chunks().map(|c| c.valid()).collect())),
        DecodeErrors::Strict => {
            let mut pos = 0;
            let bad = piece
                .utf8_chunks()
                .find_map(|chunk| {
                    pos += chunk.valid().len();
                    Some(chunk.invalid()).filter(|bad| !bad.is_empty())
                })
                .expect("a piece that is not UTF-8 has an invalid run");
            Err(Error::UnicodeDecode(strict_error(piece, pos, bad)))
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

    fn last_pieces(data: &[u8], n: u64) -> Vec<Vec<u8>> {
        Tail::from_data(data.to_vec(), n).into_raw()
    }

    #[test]
    fn result_rule() {
        let p = |d: &[u8], n| last_pieces(d, n);
        assert_eq!(p(b"l1\nl2\nl3\n", 2), vec![b"l2".to_vec(), b"l3".to_vec()]);
        assert_eq!(p(b"\n", 1), vec![Vec::<u8>::new()]);
        assert_eq!(p(b"\n\n\n", 5).len(), 3);
        assert_eq!(p(b"a\nb", 1), vec![b"b".to_vec()]);
        assert_eq!(p(b"a\nb\n", 0), Vec::<Vec<u8>>::new());
        assert_eq!(p(b"a\n\nb", 9), vec![b"a".to_vec(), vec![], b"b".to_vec()]);
    }

    #[test]
    fn newlines_are_counted_across_runs() {
        let mut data = b"ab\n\n".repeat(300);
        data.extend(std::iter::repeat_n(b'\n', 700));
        for len in [0, 1, 239, 240, 241, 1000, data.len()] {
            let naive = data[..len].iter().filter(|&&b| b == b'\n').count() as u64;
            for limit in [0, 1, 5, 11, 40, 100, 1000, u64::MAX] {
                let counted = count_newlines(&data[..len], limit);
                assert_eq!(counted, naive.min(limit), "{len} {limit}");
            }
        }
    }

    /// Takes every page of `text`'s lines and checks each page's bounds.
    fn pages(text: &[u8], max_bytes: usize, max_items: usize) -> Vec<Page<Vec<u8>>> {
        let mut tail = Tail::from_data(text.to_vec(), u64::MAX)
            .decode_with(DecodeErrors::Replace)
            .unwrap();
        let mut out = Vec::new();
        while tail.remaining() > 0 {
            let page = tail.next_page(max_bytes, max_items);
            assert!(!page.items.is_empty() && page.items.len() <= max_items);
            let bytes: usize = page.items.iter().map(Vec::len).sum();
            assert!(bytes <= max_bytes.max(4), "{bytes} > {max_bytes}");
            out.push(page);
        }
        out
    }

    #[test]
    fn pages_rebuild_the_lines() {
        let text = "ab\r\n\nc\u{e9}d\u{20ac}e\nlast line here\nz".as_bytes();
        let whole = Tail::from_data(text.to_vec(), u64::MAX)
            .into_lines(DecodeErrors::Replace)
            .unwrap();
        for (max_bytes, max_items) in [(1, 1), (4, 2), (5, 9), (7, 3), (100, 2), (100, 100)] {
            let mut lines: Vec<String> = Vec::new();
            let mut open = false;
            for page in pages(text, max_bytes, max_items) {
                for (i, item) in page.items.iter().enumerate() {
                    let part = String::from_utf8(item.clone()).unwrap();
                    match (open && i == 0, lines.last_mut()) {
                        (true, Some(last)) => last.push_str(&part),
                        _ => lines.push(part),
                    }
                }
                open = page.continued;
            }
            assert_eq!(lines, whole, "max_bytes {max_bytes}, max_items {max_items}");
        }
        assert_eq!(pages(text, 100, 100).len(), 1);
        let lines = Tail::from_data(b"x\ny".to_vec(), 1).into_lines(DecodeErrors::Strict);
        assert_eq!(lines.unwrap(), vec!["y".to_string()]);
    }

    #[test]
    fn strict_decoding_fails_before_any_page() {
        let tail = Tail::from_data(b"ok\nbad\xff\n".to_vec(), 5);
        assert!(matches!(
            tail.decode_with(DecodeErrors::Strict),
            Err(Error::UnicodeDecode(_))
        ));
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

    /// A file shorter than the size it reports (sysfs files say 4096
    /// bytes) gives its lines, as upstream's `f.read` does, not an error.
    #[test]
    fn a_file_shorter_than_its_reported_size() {
        use std::io::Cursor;
        let data = b"always [madvise] never\n".to_vec();
        let source = || Ok((Cursor::new(data.clone()), 4096));
        let tail = Tail::read_from("p", 2, 8192, || true, source).unwrap();
        assert_eq!(tail.into_raw(), vec![b"always [madvise] never".to_vec()]);
        let long = b"x\n".repeat(10_000);
        let source = || Ok((Cursor::new(long.clone()), 30_000));
        let tail = Tail::read_from("p", 3, 1, || true, source).unwrap();
        assert_eq!(tail.into_raw(), vec![b"x".to_vec(); 3]);
    }

    #[test]
    fn any_seekable_source_and_errors_in_upstreams_order() {
        use std::io::Cursor;
        let data = b"a\nb\r\nc\n".repeat(5000);
        let size = data.len() as u64;
        let source = || Ok((Cursor::new(data.clone()), size));
        let tail = Tail::read_from("p", 2, 1, || true, source)
            .unwrap()
            .into_raw();
        assert_eq!(tail, vec![b"b\r".to_vec(), b"c".to_vec()]);
        let never = || -> Result<(Cursor<Vec<u8>>, u64)> { panic!("opened") };
        assert_eq!(
            Tail::read_from("p", 0, 1, || true, never).map(Tail::into_raw),
            Ok(vec![])
        );
        let missing = || -> Result<(Cursor<Vec<u8>>, u64)> {
            Err(Error::from_errno(crate::error::ENOENT, Some("p")))
        };
        for n in [0, 1] {
            assert_eq!(
                Tail::read_from("p", n, 1, || false, missing).map(Tail::into_raw),
                Err(Error::Assertion("File not found: p".into()))
            );
        }
        let refused = || -> Result<(Cursor<Vec<u8>>, u64)> {
            Err(Error::from_errno(crate::error::EACCES, Some("p")))
        };
        assert_eq!(
            Tail::read_from("p", 1, 1, || true, refused)
                .unwrap_err()
                .message(),
            "Failed to read last 1 lines from p: [Errno 13] Permission denied: 'p'"
        );
    }
}
