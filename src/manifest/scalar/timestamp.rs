//! YAML 1.1 timestamps as PyYAML builds them (a `date`, or a `datetime` with microseconds
//! and a fixed offset), in the text `str()` gives.

/// A YAML 1.1 timestamp as `str()` of the `date` or `datetime` PyYAML makes of it:
/// `2001-12-14`, `2001-12-14 21:59:43.100000-05:00`. `None` when `text` is no timestamp.
pub(super) fn yaml11_timestamp(text: &str) -> Option<Result<String, String>> {
    let b = text.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let num = |s: &[u8]| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    // YYYY-M?M-D?D
    if b.len() < 8 || !digits(&b[..4]) || b[4] != b'-' {
        return None;
    }
    let mut i = 5;
    let take = |i: &mut usize, max: usize| {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        start..*i
    };
    let month = take(&mut i, 2);
    if month.is_empty() || i >= b.len() || b[i] != b'-' {
        return None;
    }
    i += 1;
    let day = take(&mut i, 2);
    if day.is_empty() {
        return None;
    }
    let (year, month_n, day_n) = (num(&b[..4]), num(&b[month.clone()]), num(&b[day.clone()]));
    let invalid = || Some(Err(format!("'{text}' is not a valid date")));
    if i == b.len() {
        // A date alone needs two-digit months and days.
        if month.len() != 2 || day.len() != 2 {
            return None;
        }
        return if valid_date(year, month_n, day_n) {
            Some(Ok(format!("{year:04}-{month_n:02}-{day_n:02}")))
        } else {
            invalid()
        };
    }
    // (?:[Tt]|[ \t]+) H?H:MM:SS (\.[0-9]*)? ([ \t]*(Z|[-+]H?H(:MM)?))?
    if matches!(b[i], b'T' | b't') {
        i += 1;
    } else if matches!(b[i], b' ' | b'\t') {
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
    } else {
        return None;
    }
    let hour = take(&mut i, 2);
    if hour.is_empty()
        || i + 6 > b.len()
        || b[i] != b':'
        || !digits(&b[i + 1..i + 3])
        || b[i + 3] != b':'
        || !digits(&b[i + 4..i + 6])
    {
        return None;
    }
    let (hour, minute, second) = (num(&b[hour]), num(&b[i + 1..i + 3]), num(&b[i + 4..i + 6]));
    i += 6;
    let mut micros = None;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut fraction: String = text[start..i].chars().take(6).collect();
        if !fraction.is_empty() {
            while fraction.len() < 6 {
                fraction.push('0');
            }
            micros = Some(fraction.parse::<u32>().expect("six digits"));
        }
    }
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    let mut offset = None;
    if i < b.len() {
        if b[i] == b'Z' && i + 1 == b.len() {
            offset = Some((false, 0, 0));
        } else if matches!(b[i], b'-' | b'+') {
            let negative = b[i] == b'-';
            i += 1;
            let tz_hour = take(&mut i, 2);
            if tz_hour.is_empty() {
                return None;
            }
            let mut tz_minute = 0;
            if i < b.len() {
                if i + 3 != b.len() || b[i] != b':' || !digits(&b[i + 1..]) {
                    return None;
                }
                tz_minute = num(&b[i + 1..]);
            }
            offset = Some((negative, num(&b[tz_hour]), tz_minute));
        } else {
            return None;
        }
    } else if text.ends_with([' ', '\t']) {
        return None;
    }
    if !valid_date(year, month_n, day_n) || hour > 23 || minute > 59 || second > 59 {
        return invalid();
    }
    let mut out = format!("{year:04}-{month_n:02}-{day_n:02} {hour:02}:{minute:02}:{second:02}");
    if let Some(us) = micros.filter(|us| *us != 0) {
        out.push_str(&format!(".{us:06}"));
    }
    if let Some((negative, h, m)) = offset {
        let total = h * 60 + m;
        if total >= 24 * 60 {
            return invalid();
        }
        let sign = if negative && total != 0 { '-' } else { '+' };
        out.push_str(&format!("{sign}{:02}:{:02}", total / 60, total % 60));
    }
    Some(Ok(out))
}

fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && (1..=days).contains(&day)
}
