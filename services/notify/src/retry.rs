//! When a failed delivery is tried again, and how long it waits first.
//!
//! Transient: connection errors, timeouts, 408, 429 and 5xx (429 and 503 honour Retry-After).
//! Permanent: every other 4xx, and 3xx (a webhook that moved must be reconfigured, not
//! followed with a signed body). A permanent failure becomes a dead letter at once; a
//! transient one after the target's `max_attempts`.

use std::time::Duration;

use rand::Rng;

/// The longest Retry-After honoured; a longer one waits this long and tries again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// Longest Retry-After header value looked at.
const MAX_RETRY_AFTER_TEXT: usize = 64;

/// Why a delivery attempt failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for logs, status and dead letters.
    pub message: String,
    /// True when retrying cannot help.
    pub permanent: bool,
    /// The wait the receiver asked for (Retry-After), if any.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: false,
            retry_after: None,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: true,
            retry_after: None,
        }
    }

    /// The failure an HTTP status stands for; `None` for success (2xx).
    pub fn from_status(status: u16, retry_after: Option<&str>, body: &str) -> Option<Failure> {
        if (200..300).contains(&status) {
            return None;
        }
        let detail = body.trim();
        let message = if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        };
        let transient = status == 408 || status == 429 || (500..600).contains(&status);
        let mut failure = if transient {
            Failure::transient(message)
        } else {
            Failure::permanent(message)
        };
        if status == 429 || status == 503 {
            failure.retry_after = retry_after.and_then(|text| parse_retry_after(text, now_unix()));
        }
        Some(failure)
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Reads a Retry-After value: delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at
/// [`MAX_RETRY_AFTER`]. `None` for a value that is neither.
pub fn parse_retry_after(header_value: &str, now_unix: i64) -> Option<Duration> {
    let text = header_value.trim();
    if text.is_empty() || text.len() > MAX_RETRY_AFTER_TEXT {
        return None;
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds: u64 = text.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let seconds = date.timestamp().saturating_sub(now_unix).max(0);
    Some(Duration::from_secs(seconds.unsigned_abs()).min(MAX_RETRY_AFTER))
}

/// Exponential backoff with jitter: the wait before retry `n` (1-based) is drawn from
/// `[base/2, base]` where `base = min(max, initial * 2^(n-1))`, so many targets failing at
/// once do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first wait.
    pub initial: Duration,
    /// Ceiling of every wait.
    pub max: Duration,
}

impl Backoff {
    /// The upper bound of the wait before retry `retry` (1-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(32);
        let factor = 1u64 << doublings;
        let millis = u64::try_from(self.initial.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Duration::from_millis(millis).min(self.max)
    }

    /// The wait before retry `retry` (1-based), jittered.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
        let jitter = rand::rng().random_range(0..=spread);
        half + Duration::from_millis(jitter)
    }
}

/// Fuzz entry point: any header text parses to a bounded wait or to nothing, never a panic.
pub fn fuzz_retry_after(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(wait) = parse_retry_after(text, 1_700_000_000) {
        assert!(wait <= MAX_RETRY_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_contract_says() {
        assert_eq!(Failure::from_status(200, None, ""), None);
        assert_eq!(Failure::from_status(204, None, ""), None);
        for transient in [408, 429, 500, 502, 503, 504] {
            let failure = Failure::from_status(transient, None, "").expect("failure");
            assert!(!failure.permanent, "{transient}");
        }
        for permanent in [301, 400, 401, 403, 404, 410, 413, 422] {
            let failure = Failure::from_status(permanent, None, "bad").expect("failure");
            assert!(failure.permanent, "{permanent}");
            assert_eq!(failure.message, format!("HTTP {permanent}: bad"));
        }
        let limited = Failure::from_status(429, Some("7"), "").expect("failure");
        assert_eq!(limited.retry_after, Some(Duration::from_secs(7)));
        let ignored = Failure::from_status(500, Some("7"), "").expect("failure");
        assert_eq!(
            ignored.retry_after, None,
            "Retry-After only counts on 429 and 503"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_is_capped() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .expect("time")
            .timestamp();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_with_jitter_in_the_upper_half() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        };
        assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(4), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(5), Duration::from_millis(1_000));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_millis(1_000));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let delay = backoff.delay(3);
            assert!(delay >= Duration::from_millis(200) && delay <= Duration::from_millis(400));
            seen.insert(delay);
        }
        assert!(seen.len() > 10, "jitter spreads the waits: {}", seen.len());
    }

    #[test]
    fn fuzz_logic_survives_odd_headers() {
        for input in [
            b"".as_slice(),
            b"\xff",
            b"Mon, 99 Foo 2015",
            b"0",
            b"18446744073709551616",
        ] {
            fuzz_retry_after(input);
        }
    }
}
