//! Time stamps embedded in file names: `YYYYMMDD` days and `YYYYMMDDHHMMSS` instants, always UTC.
//!
//! Names are parsed strictly (fixed width, ASCII digits, a real calendar date and time of day) so
//! that a name is either understood exactly or not at all.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Parses exactly 8 ASCII digits `YYYYMMDD` into a calendar date.
///
/// Returns `None` for anything else, including dates that do not exist (`20230230`).
pub fn parse_date(digits: &[u8]) -> Option<Date> {
    if digits.len() != 8 {
        return None;
    }
    let year = number(&digits[0..4])?;
    let month = Month::try_from(u8::try_from(number(&digits[4..6])?).ok()?).ok()?;
    let day = u8::try_from(number(&digits[6..8])?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, day).ok()
}

/// Parses exactly 14 ASCII digits `YYYYMMDDHHMMSS` into a UTC instant.
///
/// Returns `None` for anything else, including impossible times (`...246000`). A leap second
/// (`...235960`) is not accepted either: no WebJob server or harvest writes one.
pub fn parse_datetime(digits: &[u8]) -> Option<OffsetDateTime> {
    if digits.len() != 14 {
        return None;
    }
    let date = parse_date(&digits[0..8])?;
    let hour = u8::try_from(number(&digits[8..10])?).ok()?;
    let minute = u8::try_from(number(&digits[10..12])?).ok()?;
    let second = u8::try_from(number(&digits[12..14])?).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Formats a date as `YYYYMMDD` (the day-file suffix).
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Formats an instant, converted to UTC, as `YYYYMMDDHHMMSS`.
pub fn format_datetime(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}{:02}{:02}{:02}",
        format_date(at.date()),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Formats an instant, converted to UTC, as RFC 3339 with a `Z` and whole seconds.
pub fn format_rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let d = at.date();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date(b"20261127"), Some(date!(2026 - 11 - 27)));
        assert_eq!(parse_date(b"20240229"), Some(date!(2024 - 02 - 29)));
        for bad in [
            &b"20230229"[..],
            b"20261327",
            b"20261100",
            b"2026112",
            b"202611270",
            b"2026-1-1",
            b"+0261127",
            b"",
        ] {
            assert_eq!(parse_date(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn datetimes_parse_strictly() {
        assert_eq!(
            parse_datetime(b"20030715120001"),
            Some(datetime!(2003-07-15 12:00:01 UTC))
        );
        for bad in [
            &b"20030715240000"[..],
            b"20030715126000",
            b"20030715125960",
            b"2003071512000",
            b"200307151200011",
            b"2003071512000a",
        ] {
            assert_eq!(
                parse_datetime(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn formatting_round_trips() {
        let at = datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(format_datetime(at), "20260102030405");
        assert_eq!(parse_datetime(format_datetime(at).as_bytes()), Some(at));
        assert_eq!(format_date(at.date()), "20260102");
        assert_eq!(format_rfc3339(at), "2026-01-02T03:04:05Z");
        // Offsets are converted, never just dropped.
        let east = datetime!(2026-01-02 01:00:00 +02:00);
        assert_eq!(format_datetime(east), "20260101230000");
    }
}
