//! YAML 1.1 integers and floats as PyYAML matches and builds them: signs, underscores,
//! octal, hex, binary and sexagesimal integers of any size; floats that need a dot, `.inf`,
//! `.nan` and sexagesimal floats.

use super::python_float_repr;

/// `text` without a leading `+` or `-`, and whether it was `-`.
fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn all(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    text.bytes().all(allowed)
}

fn digit_or_underscore(b: u8) -> bool {
    b.is_ascii_digit() || b == b'_'
}

/// `[0-9][0-9_]*`.
fn is_digits(text: &str) -> bool {
    text.as_bytes().first().is_some_and(u8::is_ascii_digit) && all(text, digit_or_underscore)
}

/// `(:[0-5]?[0-9])+`, after the first part of a sexagesimal number.
fn is_sexagesimal_tail(parts: &[&str]) -> bool {
    !parts.is_empty()
        && parts.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        })
}

/// An exponent `[eE][-+][0-9]+` (YAML 1.1 wants the sign), or nothing.
fn is_exponent(text: &str) -> bool {
    text.is_empty()
        || text.len() > 2
            && matches!(text.as_bytes()[0], b'e' | b'E')
            && matches!(text.as_bytes()[1], b'-' | b'+')
            && all(&text[2..], |b| b.is_ascii_digit())
}

/// PyYAML's float pattern.
pub(super) fn is_yaml11_float(text: &str) -> bool {
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (_, unsigned) = split_sign(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    let Some((whole, rest)) = unsigned.split_once('.') else { return false };
    let fraction_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '_')).unwrap_or(rest.len());
    let (fraction, exponent) = rest.split_at(fraction_end);
    if whole.is_empty() {
        // `\.[0-9][0-9_]*` (unsigned only), with an optional exponent.
        return unsigned.len() == text.len() && is_digits(fraction) && is_exponent(exponent);
    }
    let parts: Vec<&str> = whole.split(':').collect();
    if parts.len() > 1 {
        return is_digits(parts[0]) && is_sexagesimal_tail(&parts[1..]) && exponent.is_empty();
    }
    is_digits(whole) && is_exponent(exponent)
}

/// PyYAML's int pattern.
pub(super) fn is_yaml11_int(text: &str) -> bool {
    let (_, u) = split_sign(text);
    if let Some(bits) = u.strip_prefix("0b") {
        return !bits.is_empty() && all(bits, |b| matches!(b, b'0' | b'1' | b'_'));
    }
    if let Some(hex) = u.strip_prefix("0x") {
        return !hex.is_empty() && all(hex, |b| b.is_ascii_hexdigit() || b == b'_');
    }
    if u == "0" || u.len() > 1 && u.starts_with('0') && all(u, |b| matches!(b, b'0'..=b'7' | b'_')) {
        return true;
    }
    let parts: Vec<&str> = u.split(':').collect();
    let first_ok = parts[0].as_bytes().first().is_some_and(|b| (b'1'..=b'9').contains(b)) && is_digits(parts[0]);
    first_ok && (parts.len() == 1 || is_sexagesimal_tail(&parts[1..]))
}

/// `str(float(...))` of a matched float, as PyYAML's constructor computes it.
pub(super) fn yaml11_float(text: &str) -> Result<String, String> {
    let clean = text.replace('_', "").to_lowercase();
    let (negative, value) = split_sign(&clean);
    let sign = if negative { -1.0 } else { 1.0 };
    let f = match value {
        ".inf" => sign * f64::INFINITY,
        ".nan" => f64::NAN,
        v if v.contains(':') => {
            let mut total = 0.0;
            let mut base = 1.0;
            for part in v.rsplit(':') {
                total += python_float(part)? * base;
                base *= 60.0;
            }
            sign * total
        }
        v => sign * python_float(v)?,
    };
    Ok(python_float_repr(f))
}

/// Python's `float()` of digits with a dot (`1.`, `.5`, `1.e+5` included).
fn python_float(text: &str) -> Result<f64, String> {
    let (mantissa, exponent) = match text.find('e') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let mantissa = if mantissa.ends_with('.') { format!("{mantissa}0") } else { mantissa.to_string() };
    let mantissa = if mantissa.starts_with('.') { format!("0{mantissa}") } else { mantissa };
    format!("{mantissa}{exponent}").parse::<f64>().map_err(|_| format!("'{text}' is not a number Python reads"))
}

/// `str(int(...))` of a matched int, as PyYAML's constructor computes it (any size).
pub(super) fn yaml11_int(text: &str) -> Result<String, String> {
    let clean = text.replace('_', "");
    let (negative, value) = split_sign(&clean);
    let bad = || format!("'{text}' is not an integer Python reads");
    let digits: Vec<u32> = if value == "0" {
        vec![0]
    } else if let Some(bits) = value.strip_prefix("0b") {
        in_base(bits, 2).ok_or_else(bad)?
    } else if let Some(hex) = value.strip_prefix("0x") {
        in_base(hex, 16).ok_or_else(bad)?
    } else if value.starts_with('0') {
        in_base(value, 8).ok_or_else(bad)?
    } else if value.contains(':') {
        let parts: Option<Vec<u32>> = value.split(':').map(|p| p.parse().ok()).collect();
        from_digits(&parts.ok_or_else(bad)?, 60)
    } else {
        in_base(value, 10).ok_or_else(bad)?
    };
    let decimal: String = digits.iter().map(|d| char::from_digit(*d, 10).expect("decimal digits")).collect();
    let zero = decimal == "0";
    Ok(if negative && !zero { format!("-{decimal}") } else { decimal })
}

/// The decimal digits (most significant first) of `text` read in `base`.
fn in_base(text: &str, base: u32) -> Option<Vec<u32>> {
    let digits: Option<Vec<u32>> = text.chars().map(|c| c.to_digit(base)).collect();
    Some(from_digits(&digits.filter(|d| !d.is_empty())?, base))
}

/// The decimal digits of the number whose digits in `base` are `digits`.
fn from_digits(digits: &[u32], base: u32) -> Vec<u32> {
    // Little-endian decimal digits, multiplied by `base` and added to digit by digit.
    let mut out: Vec<u32> = vec![0];
    for &d in digits {
        let mut carry = d;
        for slot in out.iter_mut() {
            let v = *slot * base + carry;
            *slot = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            out.push(carry % 10);
            carry /= 10;
        }
    }
    while out.len() > 1 && out.last() == Some(&0) {
        out.pop();
    }
    out.reverse();
    out
}
