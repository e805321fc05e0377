//! Durations in Go's `time.ParseDuration` grammar, the form every Istio duration field uses.
//!
//! The grammar is a sequence of decimal numbers, each with an optional fraction and a required
//! unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), e.g. `300ms`, `1.5h`, `2h45m`. A lone `0`
//! is allowed; a leading sign is accepted by Go but a negative value is rejected here because no
//! Istio field takes one. Spaces, missing units and unknown units (`5x`, `1d`) are errors. This is
//! deliberately stricter than `humantime`, which accepts forms Istio rejects.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: empty")]
    Empty(String),
    #[error("invalid duration {0:?}: negative durations are not allowed")]
    Negative(String),
    #[error("invalid duration {0:?}: missing unit (use ns, us, ms, s, m or h)")]
    MissingUnit(String),
    #[error("invalid duration {input:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit { input: String, unit: String },
    #[error("invalid duration {0:?}: expected a number")]
    ExpectedNumber(String),
    #[error("invalid duration {0:?}: value out of range")]
    Overflow(String),
}

/// Parses a Go-style duration (`250ms`, `1.5s`, `2h45m`).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let mut rest = input;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if let Some(r) = rest.strip_prefix('-') {
        // Go accepts "-0" and "-1s"; Istio rejects negative values. "-0" is harmless.
        if r.chars().all(|c| c == '0') && !r.is_empty() {
            return Ok(Duration::ZERO);
        }
        return Err(DurationError::Negative(input.to_string()));
    }
    if rest.is_empty() {
        return Err(DurationError::Empty(input.to_string()));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, after) = parse_component(rest, input)?;
        total = total
            .checked_add(nanos)
            .ok_or_else(|| DurationError::Overflow(input.to_string()))?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(input.to_string()))?;
    // The remainder is < 1e9, so it always fits in u32.
    let sub = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// Parses one `<number>[.<fraction>]<unit>` component, returning nanoseconds and the rest.
fn parse_component<'a>(s: &'a str, input: &str) -> Result<(u128, &'a str), DurationError> {
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int_part, after_int) = s.split_at(int_end);
    let (frac_part, after_num) = match after_int.strip_prefix('.') {
        Some(f) => {
            let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
            f.split_at(end)
        }
        None => ("", after_int),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DurationError::ExpectedNumber(input.to_string()));
    }
    let unit_end = after_num
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(after_num.len());
    let (unit, rest) = after_num.split_at(unit_end);
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        "" => return Err(DurationError::MissingUnit(input.to_string())),
        other => {
            return Err(DurationError::UnknownUnit {
                input: input.to_string(),
                unit: other.to_string(),
            });
        }
    };
    let overflow = || DurationError::Overflow(input.to_string());
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| overflow())?
    };
    let mut nanos = int.checked_mul(scale).ok_or_else(overflow)?;
    // Fractions beyond nanosecond precision are truncated, as Go does.
    let mut frac_scale = scale;
    for digit in frac_part.bytes() {
        frac_scale /= 10;
        if frac_scale == 0 {
            break;
        }
        nanos += u128::from(digit - b'0') * frac_scale;
    }
    Ok((nanos, rest))
}

/// Formats a duration the way Go prints it for the common cases (`1.5s`, `250ms`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos.is_multiple_of(1_000_000_000) {
        let secs = d.as_secs();
        if secs.is_multiple_of(3600) {
            return format!("{}h", secs / 3600);
        }
        if secs.is_multiple_of(60) {
            return format!("{}m", secs / 60);
        }
        return format!("{secs}s");
    }
    if nanos.is_multiple_of(1_000_000) {
        return format!("{}ms", nanos / 1_000_000);
    }
    if nanos.is_multiple_of(1_000) {
        return format!("{}us", nanos / 1_000);
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_forms() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(
            parse_duration("2h45m"),
            Ok(Duration::from_secs(2 * 3600 + 45 * 60))
        );
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("+3s"), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "", "5", "5x", "1d", "2h 37min", "s", ".s", "1.2.3s", "5 s", "abc", "1sec",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_duration("5x"),
            Err(DurationError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["0s", "5s", "250ms", "2h", "3m", "10us", "7ns"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
    }
}
