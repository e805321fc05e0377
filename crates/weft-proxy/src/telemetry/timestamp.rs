//! Formats wall-clock times as RFC 3339 UTC with milliseconds (`2026-11-23T15:00:00.123Z`), the
//! shape of Envoy's `%START_TIME%`, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// Formats `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, truncating to the millisecond.
/// Times before 1970 are handled; years outside 0..=9999 print with more (or signed) digits.
pub fn format_rfc3339_millis(time: SystemTime) -> String {
    let millis = unix_millis(time);
    let seconds = millis.div_euclid(1000);
    let milli = millis.rem_euclid(1000);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
    )
}

/// Milliseconds since the Unix epoch, negative before it (saturating far outside ±292M years).
fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => {
            // Round towards negative infinity so that 1 ns before the epoch is 1969-...59.999.
            let d = before.duration();
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            let partial = i64::from(d.as_nanos() % 1_000_000 != 0);
            ms.saturating_add(partial).saturating_neg()
        }
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), using Howard
/// Hinnant's `civil_from_days` algorithm (eras of 400 years, March-based years).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (day 1..=31, month 1..=12).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn epoch() {
        assert_eq!(
            format_rfc3339_millis(UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn known_instants() {
        // 2026-11-23T15:00:00Z = 1795446000.
        assert_eq!(
            format_rfc3339_millis(at(1_795_446_000_123)),
            "2026-11-23T15:00:00.123Z"
        );
        // 2000-02-29T23:59:59.999Z (a leap day in a century leap year).
        assert_eq!(
            format_rfc3339_millis(at(951_868_799_999)),
            "2000-02-29T23:59:59.999Z"
        );
        // 2001-09-09T01:46:40Z = 1e9.
        assert_eq!(
            format_rfc3339_millis(at(1_000_000_000_000)),
            "2001-09-09T01:46:40.000Z"
        );
        // 2038-01-19T03:14:07Z = i32::MAX.
        assert_eq!(
            format_rfc3339_millis(at(2_147_483_647_000)),
            "2038-01-19T03:14:07.000Z"
        );
        // 2100-03-01 follows 2100-02-28 (2100 is not a leap year): 4107542400.
        assert_eq!(
            format_rfc3339_millis(at(4_107_542_400_000)),
            "2100-03-01T00:00:00.000Z"
        );
        // 2024-12-31T23:59:59.5Z: last day of a leap year.
        assert_eq!(
            format_rfc3339_millis(at(1_735_689_599_500)),
            "2024-12-31T23:59:59.500Z"
        );
    }

    #[test]
    fn truncates_sub_millisecond() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(format_rfc3339_millis(t), "1970-01-01T00:00:00.001Z");
    }

    #[test]
    fn before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(format_rfc3339_millis(t), "1969-12-31T23:59:59.999Z");
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(format_rfc3339_millis(t), "1969-12-31T23:59:59.999Z");
        let t = UNIX_EPOCH - Duration::from_secs(86_400 * 365);
        assert_eq!(format_rfc3339_millis(t), "1969-01-01T00:00:00.000Z");
    }
}
