//! The query parameters that steer an echo response: `status=`, `delay=` and `size=`.

use std::time::Duration;

use http::StatusCode;
use weft_api::duration::{DurationError, parse_duration};

/// What a request's query asks of the response. Unknown parameters are ignored; when a
/// parameter repeats, the last occurrence wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Controls {
    pub(crate) status: Option<StatusCode>,
    pub(crate) delay: Option<Duration>,
    pub(crate) size: Option<u64>,
}

/// Why a control parameter was rejected; answered with `400 Bad Request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("invalid status {0:?}: expected a number from 200 to 999")]
    Status(String),
    #[error("invalid status {0}: a 1xx status is informational and cannot end a response")]
    Informational(u16),
    #[error("invalid delay: {0}")]
    Delay(#[from] DurationError),
    #[error("invalid size {0:?}: expected a number of bytes")]
    Size(String),
    #[error("invalid {0} parameter: bad percent-encoding or not UTF-8")]
    Encoding(&'static str),
}

impl Controls {
    /// Parses the controls out of a raw (still percent-encoded) query string.
    pub(crate) fn from_query(query: Option<&str>) -> Result<Self, ControlError> {
        let mut controls = Self::default();
        for pair in query.unwrap_or_default().split('&') {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let key = match key {
                "status" => "status",
                "delay" => "delay",
                "size" => "size",
                _ => continue,
            };
            let value = percent_decode(raw).ok_or(ControlError::Encoding(key))?;
            match key {
                "status" => controls.status = Some(parse_status(&value)?),
                "delay" => controls.delay = Some(parse_duration(&value)?),
                _ => controls.size = Some(parse_size(&value)?),
            }
        }
        Ok(controls)
    }
}

fn parse_status(value: &str) -> Result<StatusCode, ControlError> {
    let status = value
        .parse::<u16>()
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| ControlError::Status(value.to_string()))?;
    if status.is_informational() {
        return Err(ControlError::Informational(status.as_u16()));
    }
    Ok(status)
}

fn parse_size(value: &str) -> Result<u64, ControlError> {
    value
        .parse::<u64>()
        .map_err(|_| ControlError::Size(value.to_string()))
}

/// Decodes `application/x-www-form-urlencoded` escapes (`%XX`, `+` for space); `None` when an
/// escape is malformed or the result is not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = hex_value(bytes.next()?)?;
                let lo = hex_value(bytes.next()?)?;
                out.push(hi << 4 | lo);
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<Controls, ControlError> {
        Controls::from_query(Some(query))
    }

    #[test]
    fn no_query_means_no_controls() {
        assert_eq!(Controls::from_query(None), Ok(Controls::default()));
        assert_eq!(parse(""), Ok(Controls::default()));
        assert_eq!(parse("a=1&b&&=x"), Ok(Controls::default()));
    }

    #[test]
    fn parses_all_three_controls() {
        let controls = parse("status=503&delay=250ms&size=42&other=1").unwrap();
        assert_eq!(controls.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(controls.delay, Some(Duration::from_millis(250)));
        assert_eq!(controls.size, Some(42));
    }

    #[test]
    fn status_must_be_a_number_up_to_999() {
        assert_eq!(parse("status=200").unwrap().status, Some(StatusCode::OK));
        assert_eq!(
            parse("status=999").unwrap().status.map(|s| s.as_u16()),
            Some(999)
        );
        for bad in ["99", "1000", "abc", "", "-200", "20 0", "70000"] {
            let err = parse(&format!("status={bad}")).unwrap_err();
            assert_eq!(err, ControlError::Status(bad.to_string()), "{bad}");
        }
    }

    #[test]
    fn informational_statuses_cannot_be_final() {
        for code in [100u16, 101, 103, 199] {
            assert_eq!(
                parse(&format!("status={code}")),
                Err(ControlError::Informational(code))
            );
        }
    }

    #[test]
    fn delay_uses_go_duration_grammar() {
        assert_eq!(
            parse("delay=1.5s").unwrap().delay,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse("delay=0").unwrap().delay, Some(Duration::ZERO));
        for bad in ["5", "1d", "2h 3m", "", "-1s"] {
            assert!(
                matches!(parse(&format!("delay={bad}")), Err(ControlError::Delay(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn delay_value_is_percent_decoded() {
        assert_eq!(
            parse("delay=10%C2%B5s").unwrap().delay,
            Some(Duration::from_micros(10))
        );
        assert_eq!(parse("delay=%zz"), Err(ControlError::Encoding("delay")));
        assert_eq!(parse("delay=%FF"), Err(ControlError::Encoding("delay")));
        assert_eq!(parse("delay=1%"), Err(ControlError::Encoding("delay")));
    }

    #[test]
    fn size_must_be_a_non_negative_integer() {
        assert_eq!(parse("size=0").unwrap().size, Some(0));
        for bad in ["-1", "1k", "", "1.5"] {
            assert_eq!(
                parse(&format!("size={bad}")),
                Err(ControlError::Size(bad.to_string()))
            );
        }
    }

    #[test]
    fn last_repeated_parameter_wins() {
        assert_eq!(parse("size=1&size=2").unwrap().size, Some(2));
    }

    #[test]
    fn malformed_encoding_in_unknown_parameters_is_ignored() {
        assert_eq!(parse("x=%zz&size=3").unwrap().size, Some(3));
    }

    #[test]
    fn percent_decode_handles_plus_and_escapes() {
        assert_eq!(percent_decode("a+b%20c%2Fd").as_deref(), Some("a b c/d"));
    }
}
