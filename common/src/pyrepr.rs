//! Python's `repr()` of a `str`, as it appears inside upstream's messages.

use crate::unicode_tables::NON_PRINTABLE;

/// Whether Python's `str.isprintable()` holds for `c` (Unicode 14.0).
pub fn is_printable(c: char) -> bool {
    let cp = c as u32;
    NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

/// `repr(s)`: quotes with `'` unless `s` has `'` and no `"`; escapes `\`, the
/// quote, TAB, LF, CR and non-printable characters (`\xhh`, `\uhhhh`, `\Uhhhhhhhh`).
pub fn repr(s: &str) -> String {
    repr_units(
        s.contains('\'') && !s.contains('"'),
        s.len(),
        s.chars().map(Ok),
    )
}

/// `repr(os.fsdecode(bytes))`: the `repr` of the `str` Python makes of a
/// POSIX path (UTF-8, each undecodable byte `b` as the lone surrogate
/// `U+DC00 + b`, shown as `\udcXX`).
pub fn repr_fsdecoded(bytes: &[u8]) -> String {
    let has = |b: u8| bytes.contains(&b);
    let units = bytes.utf8_chunks().flat_map(|chunk| {
        chunk
            .valid()
            .chars()
            .map(Ok)
            .chain(chunk.invalid().iter().map(|&b| Err(b)))
    });
    repr_units(has(b'\'') && !has(b'"'), bytes.len(), units)
}

/// The body of `repr`: `Ok(char)` for a code point, `Err(byte)` for an
/// undecodable byte (a lone surrogate in Python).
fn repr_units(
    double_quote: bool,
    len: usize,
    units: impl Iterator<Item = Result<char, u8>>,
) -> String {
    let quote = if double_quote { '"' } else { '\'' };
    let mut out = String::with_capacity(len + 2);
    out.push(quote);
    for unit in units {
        let c = match unit {
            Ok(c) => c,
            Err(byte) => {
                out.push_str(&format!("\\u{:04x}", 0xdc00 + u32::from(byte)));
                continue;
            }
        };
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let cp = c as u32;
                if cp < 0x100 {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp < 0x10000 {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// `repr(s)` cut to its first `max_chars` code points (no closing quote then),
/// as CPython's `int()` error messages do.
pub fn repr_truncated(s: &str, max_chars: usize) -> String {
    let full = repr(s);
    match full.char_indices().nth(max_chars) {
        Some((byte, _)) => full[..byte].to_string(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("both ' \""), "'both \\' \"'");
        assert_eq!(repr("a\tb\n\\"), "'a\\tb\\n\\\\'");
        assert_eq!(repr("\u{7f}\u{a0}\u{200b}é👍"), "'\\x7f\\xa0\\u200bé👍'");
        assert_eq!(repr("\u{e0001}"), "'\\U000e0001'");
    }

    #[test]
    fn undecodable_bytes_show_as_surrogates() {
        assert_eq!(repr_fsdecoded(b"/tmp/caf\xe9.log"), "'/tmp/caf\\udce9.log'");
        assert_eq!(repr_fsdecoded(b"it's\xff"), "\"it's\\udcff\"");
        assert_eq!(repr_fsdecoded("é".as_bytes()), repr("é"));
    }

    #[test]
    fn truncation_counts_code_points() {
        let s = "é".repeat(300);
        let r = repr_truncated(&s, 200);
        assert_eq!(r.chars().count(), 200);
        assert!(r.starts_with("'é"));
        assert_eq!(repr_truncated("ab", 200), "'ab'");
    }
}
