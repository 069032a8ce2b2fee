//! The `text` interface: `base36_encode`, `format_float`, `truncate_long_string`.

use num_bigint::BigUint;

use crate::error::{Error, Result};
use crate::pynum::parse_hex;
use crate::pyrepr::{repr, repr_truncated};

const BASE36_DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `base36_encode(hex_str)`: `int(hex_str, 16)` written in base 36.
///
/// Negative values raise `ValueError` (deliberate divergence a: upstream
/// never returns).
pub fn base36_encode(hex_str: &str) -> Result<String> {
    let (negative, digits) = parse_hex(hex_str).ok_or_else(|| {
        Error::Value(format!(
            "invalid literal for int() with base 16: {}",
            repr_truncated(hex_str, 200)
        ))
    })?;
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok("0".to_string());
    }
    if negative {
        return Err(Error::Value(format!(
            "negative value not supported: {}",
            repr(hex_str)
        )));
    }
    if significant.len() <= 32 {
        // Fast path (every caller passes 32 hex digits): the value fits a
        // u128, converted with 64-bit divisions only, which wasm has natively.
        return Ok(base36_u128(hex_u128(significant)));
    }
    let value = BigUint::parse_bytes(significant.as_bytes(), 16).expect("validated hex digits");
    Ok(value.to_str_radix(36))
}

/// The value of at most 32 validated hex digits (no 128-bit multiplication,
/// which wasm would emulate).
fn hex_u128(digits: &str) -> u128 {
    let (mut hi, mut lo) = (0u64, 0u64);
    for b in digits.bytes() {
        let d = (b as char).to_digit(16).expect("validated hex digit");
        hi = (hi << 4) | (lo >> 60);
        lo = (lo << 4) | u64::from(d);
    }
    (u128::from(hi) << 64) | u128::from(lo)
}

/// `value` (non-zero) in base 36: 32-bit limbs divided by 36^6 per pass,
/// digits written right to left into a stack buffer (one allocation: the
/// result).
fn base36_u128(value: u128) -> String {
    const CHUNK: u64 = 36u64.pow(6);
    // 36^25 > 2^128: at most 25 digits, i.e. 5 chunks of 6.
    let mut buf = [b'0'; 30];
    let mut end = buf.len();
    let mut limbs = [
        (value >> 96) as u32,
        (value >> 64) as u32,
        (value >> 32) as u32,
        value as u32,
    ];
    while limbs != [0; 4] {
        let mut rem = 0u64;
        for limb in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / CHUNK) as u32;
            rem = cur % CHUNK;
        }
        let mut rest = rem as u32;
        for d in buf[end - 6..end].iter_mut().rev() {
            *d = BASE36_DIGITS[(rest % 36) as usize];
            rest /= 36;
        }
        end -= 6;
    }
    let digits = &buf[end..];
    let skip = digits.iter().take_while(|&&d| d == b'0').count();
    String::from_utf8(digits[skip..].to_vec()).expect("ASCII digits")
}

/// A Python number as `format_float` receives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A Python `int` (within `i64`).
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

/// Largest precision Python's format spec accepts.
const MAX_PRECISION: i64 = 2_147_483_647;
/// A double has at most 1074 fractional binary digits, so at most 1074
/// significant decimal places; beyond that every digit is a zero.
const EXACT_PLACES: usize = 1100;

/// `format_float(num, precision=1)`: integers and integral floats without a
/// fractional part, other floats with `precision` places; never an exponent.
pub fn format_float(num: Number, precision: i64) -> Result<String> {
    let x = match num {
        Number::Int(i) => return Ok(i.to_string()),
        Number::Float(x) => x,
    };
    if x.is_finite() && x.trunc() == x {
        return Ok(format!("{x:.0}"));
    }
    if precision < 0 {
        return Err(Error::Value("Format specifier missing precision".into()));
    }
    if precision > MAX_PRECISION {
        return Err(Error::Value("precision too big".into()));
    }
    if x.is_nan() {
        return Ok("nan".into());
    }
    if x.is_infinite() {
        return Ok(if x > 0.0 { "inf" } else { "-inf" }.into());
    }
    let places = precision as usize;
    if places <= EXACT_PLACES {
        return Ok(format!("{x:.places$}"));
    }
    let mut out = format!("{x:.EXACT_PLACES$}");
    let zeros = places - EXACT_PLACES;
    if out.try_reserve_exact(zeros).is_err() {
        panic!("out of memory: cannot format {places} decimal places");
    }
    out.extend(std::iter::repeat_n('0', zeros));
    Ok(out)
}

/// `truncate_long_string(s, max_length=35, truncate_middle=False)`; lengths
/// count code points.
pub fn truncate_long_string(s: &str, max_length: i64, truncate_middle: bool) -> String {
    let len = s.chars().count() as i64;
    if len <= max_length {
        return s.to_string();
    }
    if truncate_middle {
        if max_length <= 3 {
            return "...".into();
        }
        let keep = max_length - 3;
        let head = ((keep + 1) / 2) as usize;
        let tail = (keep / 2) as usize;
        let chars: Vec<char> = s.chars().collect();
        let mut out: String = chars[..head].iter().collect();
        out.push_str("...");
        out.extend(&chars[chars.len() - tail..]);
        return out;
    }
    let words: Vec<&str> = s.split(' ').collect();
    let first_len = words[0].chars().count() as i64;
    if first_len > max_length {
        // Python slicing: a negative length drops that many from the end.
        let take = if max_length >= 0 {
            max_length
        } else {
            (first_len + max_length).max(0)
        };
        return format!("{}...", prefix(words[0], take));
    }
    let mut total = 0i64;
    let mut stop = words.len() - 1;
    for (i, word) in words.iter().enumerate() {
        total += word.chars().count() as i64;
        if total >= max_length {
            stop = i;
            break;
        }
    }
    let joined: i64 = words[..stop]
        .iter()
        .map(|w| w.chars().count() as i64)
        .sum::<i64>()
        + (stop as i64 - 1).max(0);
    format!("{}...", prefix(s, joined.max(max_length)))
}

/// The first `n` code points of `s` (all of it when shorter).
fn prefix(s: &str, n: i64) -> &str {
    match s.char_indices().nth(n.max(0) as usize) {
        Some((byte, _)) => &s[..byte],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_upstream() {
        assert_eq!(base36_encode("ff").unwrap(), "73");
        for v in [
            1u128,
            35,
            36,
            36u128.pow(6) - 1,
            36u128.pow(6),
            u64::MAX as u128,
            u128::MAX,
        ] {
            let want = BigUint::from(v).to_str_radix(36);
            assert_eq!(base36_u128(v), want, "{v}");
        }
        assert_eq!(base36_encode(" 0x1F ").unwrap(), "v");
        assert_eq!(base36_encode("-0x0").unwrap(), "0");
        assert_eq!(
            base36_encode("ffffffffffffffffffffffffffffffff").unwrap(),
            "f5lxx1zz5pnorynqglhzmsp33"
        );
        assert_eq!(
            base36_encode(&"f".repeat(64)).unwrap(),
            "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof"
        );
        assert_eq!(
            base36_encode("-1").unwrap_err(),
            Error::Value("negative value not supported: '-1'".into())
        );
        assert_eq!(
            base36_encode("g").unwrap_err(),
            Error::Value("invalid literal for int() with base 16: 'g'".into())
        );
    }

    #[test]
    fn format_float_cases() {
        let f = |x: f64, p: i64| format_float(Number::Float(x), p).unwrap();
        assert_eq!(f(1234.5678, 2), "1234.57");
        assert_eq!(f(-0.0, 5), "-0");
        assert_eq!(f(1e23, 1), "99999999999999991611392");
        assert_eq!(f(2.675, 2), "2.67");
        assert_eq!(f(-0.04, 1), "-0.0");
        assert_eq!(f(f64::NAN, 1), "nan");
        assert_eq!(f(-f64::NAN, 0), "nan");
        assert_eq!(f(f64::NEG_INFINITY, 3), "-inf");
        assert_eq!(f(5e-324, 400).len(), 402);
        let long = f(0.1, 5000);
        assert_eq!(long.len(), 5002);
        assert!(long.starts_with("0.1000000000000000055511151231257827"));
        assert_eq!(format_float(Number::Int(-7), -1).unwrap(), "-7");
        assert_eq!(
            format_float(Number::Float(1.5), -1).unwrap_err(),
            Error::Value("Format specifier missing precision".into())
        );
        assert_eq!(
            format_float(Number::Float(1.5), 2147483648).unwrap_err(),
            Error::Value("precision too big".into())
        );
    }

    #[test]
    fn truncate_cases() {
        let s = "The quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat k";
        assert_eq!(
            truncate_long_string(s, 35, false),
            "The quick brown fox jumps over the lazy..."
        );
        assert_eq!(truncate_long_string(s, -1, false), "Th...");
        assert_eq!(truncate_long_string(s, 7, true), "Th... k");
        assert_eq!(
            truncate_long_string("a  b  c  d  e  f", 8, false),
            "a  b  c  d  e ..."
        );
        assert_eq!(truncate_long_string("   ", 1, false), "  ...");
        assert_eq!(
            truncate_long_string("👍👍👍👍👍👍👍👍👍👍", 6, true),
            "👍👍...👍"
        );
        assert_eq!(truncate_long_string("abc", -1_000_000_000, false), "...");
    }
}
