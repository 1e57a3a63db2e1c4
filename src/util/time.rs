//! Time as operators read and write it: durations on the command line and in the seed (`60s`, `2m`,
//! `500ms`, `1h`, or bare seconds), and UTC dates in messages and file names.

use crate::util::error::Error;
use std::time::{Duration, SystemTime};

/// The longest duration anything here waits for.
const MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration the way humantime does (`10m`, `1h 30m`, `500ms`), plus what operators also
/// write: bare seconds (`60`) and decimals (`1.5s`). At most 30 days: anything this tool waits for.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    parse_duration_up_to(s, MAX)
}

/// `parse_duration` with another upper bound (certificate lifetimes run to years).
pub fn parse_duration_up_to(s: &str, max: Duration) -> Result<Duration, Error> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let d = if unit.is_empty() || num.contains('.') {
        let value: f64 = num
            .parse()
            .map_err(|_| invalid(s, "expected a number with a unit, like 60s, 2m or 500ms"))?;
        let per = if unit.is_empty() {
            Duration::from_secs(1)
        } else {
            humantime::parse_duration(&format!("1{unit}")).map_err(|_| unknown_unit(s, unit))?
        };
        let secs = value * per.as_secs_f64();
        if !secs.is_finite() || secs > max.as_secs_f64() {
            return Err(invalid(s, "out of range"));
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(s).map_err(|e| match e {
            humantime::DurationError::UnknownUnit { unit, .. } => unknown_unit(s, &unit),
            other => invalid(s, &other.to_string()),
        })?
    };
    if d > max {
        return Err(invalid(s, "out of range"));
    }
    Ok(d)
}

fn invalid(s: &str, why: &str) -> Error {
    Error::input(format!("invalid duration {s:?}: {why}"))
}

fn unknown_unit(s: &str, unit: &str) -> Error {
    invalid(s, &format!("unknown unit {unit:?} (use ms, s, m or h)"))
}

/// The shortest of `2h`, `10m`, `45s`, `1500ms` that says `d` exactly: the form systemd timers and
/// the seed take back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// (year, month, day, hour, minute, second) in UTC.
fn civil(secs: i64) -> (i32, u8, u8, u8, u8, u8) {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let m = u8::from(t.month());
    (t.year(), m, t.day(), t.hour(), t.minute(), t.second())
}

/// `YYYY-MM-DD hh:mm:ss UTC`, for messages.
pub fn utc(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `YYYYmmddTHHMMSSZ`: sorts as time does, for file names.
pub fn utc_stamp(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The seconds `utc_stamp` made `s` from; `None` for anything else.
pub fn parse_utc_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if s.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = s.get(r)?;
        d.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| d.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(digits(0..4)?).ok()?,
        month,
        u8::try_from(digits(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(digits(9..11)?).ok()?,
        u8::try_from(digits(11..13)?).ok()?,
        u8::try_from(digits(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc().unix_timestamp())
}

/// Seconds since the epoch (0 for a clock before it).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn unix_now() -> i64 {
    unix(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_read_back() {
        for secs in [0, 1_764_806_400, 1_780_000_123, 4_102_444_799] {
            assert_eq!(parse_utc_stamp(&utc_stamp(secs)), Some(secs));
        }
        for bad in [
            "20261301T000000Z",
            "2026120xT000000Z",
            "20261204T250000Z",
            "20261204T000000",
            "",
        ] {
            assert_eq!(parse_utc_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("10x")
            .unwrap_err()
            .message
            .contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        let e = parse_duration("31days").unwrap_err();
        assert!(e.message.contains("out of range"));
        assert_eq!(e.kind, crate::util::error::Kind::Input);
    }

    #[test]
    fn formats_back() {
        for s in ["2h", "10m", "45s", "1500ms", "0s", "90s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_657_445), "20261126T014405Z");
        assert!(utc_stamp(1_795_657_445) < utc_stamp(1_795_657_446));
    }
}
