//! CPython's number parsing rules (`float(str)`, `int(str)`, `int(str, 16)`),
//! its whitespace sets, `str.strip()` / `str.split()` and `int(float)`.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::unicode_tables::{DECIMAL_ZEROS, PY_WHITESPACE};

/// Python's `str.isspace()` (Unicode 14.0).
pub fn is_py_space(c: char) -> bool {
    PY_WHITESPACE.binary_search(&c).is_ok()
}

/// `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `str.split()` with no argument.
pub fn py_split(s: &str) -> Vec<&str> {
    s.split(is_py_space).filter(|w| !w.is_empty()).collect()
}

fn is_ascii_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// The value of a Unicode `Nd` digit, if `c` is one.
pub fn decimal_value(c: char) -> Option<u32> {
    let cp = c as u32;
    let idx = DECIMAL_ZEROS.partition_point(|&z| z <= cp);
    let zero = *DECIMAL_ZEROS.get(idx.checked_sub(1)?)?;
    (cp - zero < 10).then_some(cp - zero)
}

/// CPython's pre-transform of number strings: non-ASCII whitespace becomes a
/// space, non-ASCII decimal digits become ASCII digits, any other non-ASCII
/// character fails. The result is stripped of ASCII whitespace.
fn pretransform(s: &str) -> Option<Cow<'_, str>> {
    if s.is_ascii() {
        return Some(Cow::Borrowed(s.trim_matches(is_ascii_space)));
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else if is_py_space(c) {
            out.push(' ');
        } else {
            out.push(char::from_digit(decimal_value(c)?, 10)?);
        }
    }
    Some(Cow::Owned(out.trim_matches(is_ascii_space).to_string()))
}

/// Consumes a digit part (`D` or `D_D...`) of `radix` at the start of `s`;
/// returns the digits without underscores and the rest, or none when `s` does
/// not start with a valid digit part.
fn digit_part(s: &str, radix: u32) -> Option<(Cow<'_, str>, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut underscores = false;
    loop {
        match bytes.get(i) {
            Some(&b) if (b as char).is_digit(radix) => i += 1,
            Some(b'_') if i > 0 => match bytes.get(i + 1) {
                Some(&n) if (n as char).is_digit(radix) => {
                    underscores = true;
                    i += 1;
                }
                _ => return None,
            },
            _ => break,
        }
    }
    if i == 0 {
        return None;
    }
    let digits = &s[..i];
    let digits = if underscores {
        Cow::Owned(digits.replace('_', ""))
    } else {
        Cow::Borrowed(digits)
    };
    Some((digits, &s[i..]))
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// Python's `float(s)` for a `str`, or none when it raises `ValueError`.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = pretransform(s)?;
    let (negative, body) = split_sign(&t);
    let lower = body.to_ascii_lowercase();
    let magnitude = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        // CPython returns the same (positive) NaN whatever the sign.
        "nan" => return Some(f64::NAN),
        _ => {
            let mut clean = String::with_capacity(body.len());
            let mut rest = body;
            if let Some((int, r)) = digit_part(rest, 10) {
                clean.push_str(&int);
                rest = r;
            }
            if let Some(r) = rest.strip_prefix('.') {
                clean.push('.');
                rest = r;
                if let Some((frac, r)) = digit_part(rest, 10) {
                    clean.push_str(&frac);
                    rest = r;
                }
            }
            if !clean.bytes().any(|b| b.is_ascii_digit()) {
                return None;
            }
            if let Some(r) = rest.strip_prefix(['e', 'E']) {
                let (exp_negative, r) = split_sign(r);
                let (exp, r) = digit_part(r, 10)?;
                clean.push('e');
                if exp_negative {
                    clean.push('-');
                }
                clean.push_str(&exp);
                rest = r;
            }
            if !rest.is_empty() {
                return None;
            }
            clean.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A Python `int` from `int(s)`: its sign and decimal magnitude, saturated at
/// `u128::MAX` (larger values only ever compare as "huge").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyInt {
    /// Whether the value is below zero.
    pub negative: bool,
    /// The absolute value, saturated at `u128::MAX`.
    pub magnitude: u128,
}

impl PyInt {
    /// Whether the value is strictly positive.
    pub fn is_positive(&self) -> bool {
        !self.negative && self.magnitude > 0
    }
}

/// Python's default `sys.get_int_max_str_digits()`: `int(s)` of a decimal
/// string with more digits (underscores not counted, leading zeros counted)
/// raises `ValueError`.
pub const INT_MAX_STR_DIGITS: usize = 4300;

/// Python's `int(s)` for a `str` (base 10), or none when it raises.
pub fn parse_int(s: &str) -> Option<PyInt> {
    let t = pretransform(s)?;
    let (negative, body) = split_sign(&t);
    let (digits, rest) = digit_part(body, 10)?;
    if !rest.is_empty() || digits.len() > INT_MAX_STR_DIGITS {
        return None;
    }
    let magnitude = digits.bytes().fold(0u128, |acc, d| {
        acc.saturating_mul(10).saturating_add(u128::from(d - b'0'))
    });
    Some(PyInt {
        negative,
        magnitude,
    })
}

/// Python's `int(s, 16)` for a `str`: the sign and the hex digits (no prefix,
/// no underscores, as written), or none when it raises.
pub fn parse_hex(s: &str) -> Option<(bool, Cow<'_, str>)> {
    match pretransform(s)? {
        Cow::Borrowed(t) => parse_hex_ascii(t),
        Cow::Owned(t) => parse_hex_ascii(&t).map(|(neg, d)| (neg, Cow::Owned(d.into_owned()))),
    }
}

fn parse_hex_ascii(t: &str) -> Option<(bool, Cow<'_, str>)> {
    let (negative, body) = split_sign(t);
    let body = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(after) => after.strip_prefix('_').unwrap_or(after),
        None => body,
    };
    let (digits, rest) = digit_part(body, 16)?;
    rest.is_empty().then_some((negative, digits))
}

/// Python's `int(x)` for a float: the truncated value (still an `f64`, since
/// it can exceed 64 bits; always integral and never `-0.0`).
pub fn truncate_float(x: f64) -> Result<f64> {
    if x.is_nan() {
        return Err(Error::Value("cannot convert float NaN to integer".into()));
    }
    if x.is_infinite() {
        return Err(Error::Overflow(
            "cannot convert float infinity to integer".into(),
        ));
    }
    Ok(x.trunc() + 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_grammar_matches_cpython() {
        let ok = [
            ("16", 16.0),
            (" 8 ", 8.0),
            ("1_000", 1000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1.e5", 1e5),
            ("1e+5", 1e5),
            ("-0", -0.0),
            ("\u{a0}1.5", 1.5),
            ("\u{3000}1", 1.0),
            ("\u{85}1", 1.0),
            ("１.５", 1.5),
            ("1e1_0", 1e10),
            ("๑", 1.0),
            ("𝟙", 1.0),
            ("1e400", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("9007199254740993", 9007199254740992.0),
            ("4.9e-324", 5e-324),
        ];
        for (s, want) in ok {
            let got = parse_float(s).unwrap_or_else(|| panic!("{s:?} rejected"));
            assert_eq!(got.to_bits(), want.to_bits(), "{s:?}");
        }
        assert_eq!(
            parse_float("-nan").unwrap().to_bits(),
            0x7ff8_0000_0000_0000
        );
        let bad = [
            "",
            "abc",
            "16GB",
            "1__000",
            "_1",
            "1_",
            "1_.5",
            ".",
            "e5",
            "1e",
            "\x1c1",
            "\u{200b}1",
            "infinit",
            "1,5",
            "1.5e_5",
            "+-1",
            "1 2",
            "²",
            "½",
            "nan(1)",
            "  ",
            "1j",
            "0b1",
            "0x10",
        ];
        for s in bad {
            assert_eq!(parse_float(s), None, "{s:?} accepted");
        }
    }

    #[test]
    fn int_and_hex_grammars() {
        assert_eq!(
            parse_int("007"),
            Some(PyInt {
                negative: false,
                magnitude: 7
            })
        );
        assert_eq!(
            parse_int("８_5"),
            Some(PyInt {
                negative: false,
                magnitude: 85
            })
        );
        assert!(parse_int("1.5e9").is_none());
        assert!(parse_int("0x10").is_none());
        // Python's 4300-digit limit: leading zeros count, underscores do not.
        let seven = |zeros: usize| format!(" {}7\n", "0".repeat(zeros));
        assert_eq!(parse_int(&seven(4299)).map(|v| v.magnitude), Some(7));
        assert!(parse_int(&seven(4300)).is_none());
        assert!(parse_int(&format!("{}1", "1_".repeat(4299))).is_some());
        assert!(parse_int(&format!("{}1", "1_".repeat(4300))).is_none());
        assert!(parse_int(&"١".repeat(4301)).is_none());
        assert_eq!(parse_hex("0x_f"), Some((false, Cow::from("f"))));
        assert_eq!(parse_hex("-0X1_F"), Some((true, Cow::from("1F"))));
        assert_eq!(parse_hex("٠x1f"), Some((false, Cow::from("1f"))));
        for bad in [
            "0x", "0x__f", "0_x1", "_ff", "ff_", "0x-1", "- 1", "ｆｆ", "\x1cff",
        ] {
            assert!(parse_hex(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn whitespace_helpers() {
        assert_eq!(py_split("\x1c400000 100000\x1f"), vec!["400000", "100000"]);
        assert_eq!(py_split("400000\u{a0}100000"), vec!["400000", "100000"]);
        assert_eq!(py_strip("\u{3000} x \u{85}"), "x");
        assert_eq!(decimal_value('١'), Some(1));
        assert_eq!(decimal_value('a'), None);
        assert_eq!(decimal_value('²'), None);
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_float(-0.5).unwrap().to_bits(), 0.0f64.to_bits());
        assert_eq!(truncate_float(2.9).unwrap(), 2.0);
        assert!(matches!(
            truncate_float(f64::INFINITY),
            Err(Error::Overflow(_))
        ));
        assert!(matches!(truncate_float(f64::NAN), Err(Error::Value(_))));
    }
}
