//! Reading the values of time and severity clauses.

use palisade_proto::PriorityExt;
use palisade_proto::v1::Priority;

/// Nanoseconds in a day.
pub const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// A point in time a query names, in nanoseconds since the Unix epoch, and whether it was a
/// bare date (which, alone, means the whole day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryTime {
    pub nanos: i64,
    pub whole_day: bool,
}

/// Reads `now`, `now-24h`, `now-7d`, `2026-11-01`, `2026-11-01T10:00:00Z` (RFC 3339), or
/// `2026-11-01T10:00:00` / `2026-11-01 10:00` (UTC). `now_nanos` is the server's clock.
pub fn parse_query_time(text: &str, now_nanos: i64) -> Result<QueryTime, String> {
    let instant = |nanos| QueryTime {
        nanos,
        whole_day: false,
    };
    if text == "now" {
        return Ok(instant(now_nanos));
    }
    if let Some(offset) = text.strip_prefix("now-") {
        let duration = parse_duration_nanos(offset)?;
        return Ok(instant(now_nanos.saturating_sub(duration)));
    }
    if let Some(offset) = text.strip_prefix("now+") {
        let duration = parse_duration_nanos(offset)?;
        return Ok(instant(now_nanos.saturating_add(duration)));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_time(chrono::NaiveTime::MIN).and_utc();
        return Ok(QueryTime {
            nanos: utc_nanos(&midnight)?,
            whole_day: true,
        });
    }
    if let Ok(parsed) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(instant(utc_nanos(&parsed.to_utc())?));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(instant(utc_nanos(&naive.and_utc())?));
        }
    }
    Err(format!(
        "expected a time (now, now-24h, 2026-11-01, 2026-11-01T10:00:00Z), found {text:?}"
    ))
}

fn utc_nanos(time: &chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    time.timestamp_nanos_opt()
        .ok_or_else(|| format!("{time} is outside the years 1677 to 2262"))
}

/// Reads `30s`, `15m`, `24h`, `7d`, `2w` into nanoseconds.
pub fn parse_duration_nanos(text: &str) -> Result<i64, String> {
    let expected =
        || format!("expected a duration such as 30s, 15m, 24h, 7d or 2w, found {text:?}");
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let count: i64 = number.parse().map_err(|_| expected())?;
    let unit_seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(expected()),
    };
    count
        .checked_mul(unit_seconds)
        .and_then(|seconds| seconds.checked_mul(1_000_000_000))
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

/// Reads a priority or severity: a Falco priority name (`warning`, `Critical`), a finding
/// severity name (`low`, `medium`, `high`), or a rank 0-8. Returns the rank on Falco's scale.
pub fn parse_severity(text: &str) -> Result<u64, String> {
    if let Ok(rank) = text.parse::<u64>()
        && rank <= Priority::Emergency as u64
    {
        return Ok(rank);
    }
    if let Ok(priority) = Priority::from_falco_name(text) {
        return Ok(priority as u64);
    }
    let lower = text.to_ascii_lowercase();
    let rank = match lower.as_str() {
        "unknown" => Priority::Debug,
        "negligible" => Priority::Informational,
        "low" => Priority::Notice,
        "medium" => Priority::Warning,
        "high" => Priority::Error,
        _ => {
            return Err(format!(
                "expected a priority (debug, informational, notice, warning, error, critical, \
                 alert, emergency), a severity (negligible, low, medium, high, critical) or a \
                 rank 0-8, found {text:?}"
            ));
        }
    };
    Ok(rank as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000 * 1_000_000_000;

    #[test]
    fn relative_and_absolute_times_are_read_in_utc() {
        assert_eq!(parse_query_time("now", NOW).map(|t| t.nanos), Ok(NOW));
        assert_eq!(
            parse_query_time("now-24h", NOW).map(|t| t.nanos),
            Ok(NOW - DAY_NANOS)
        );
        let day = parse_query_time("2026-11-01", NOW).expect("date");
        assert!(day.whole_day);
        assert_eq!(day.nanos, 1_793_491_200 * 1_000_000_000);
        let instant = parse_query_time("2026-11-01T01:00:00+01:00", NOW).expect("rfc 3339");
        assert_eq!(instant.nanos, day.nanos);
        assert_eq!(
            parse_query_time("2026-11-01 00:00", NOW).map(|t| t.nanos),
            Ok(day.nanos)
        );
        let error = parse_query_time("yesterday", NOW).expect_err("not a time");
        assert!(error.contains("expected a time"), "{error}");
        assert!(parse_query_time("now-24x", NOW).is_err());
        assert!(parse_query_time("now-99999999999999999w", NOW).is_err());
    }

    #[test]
    fn severities_accept_priority_names_severity_names_and_ranks() {
        assert_eq!(parse_severity("warning"), Ok(4));
        assert_eq!(parse_severity("WARNING"), Ok(4));
        assert_eq!(parse_severity("high"), Ok(5));
        assert_eq!(parse_severity("critical"), Ok(6));
        assert_eq!(parse_severity("7"), Ok(7));
        assert!(parse_severity("9").is_err());
        assert!(parse_severity("severe").is_err());
    }
}
