//! RPM versions: `[epoch:]version[-release]` compared with rpmvercmp (rpm's
//! rpmio/rpmvercmp.cc), including `~` (sorts before anything) and `^` (sorts after the base
//! but before any further component).

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

/// Compares two full EVR strings: epoch numerically (absent = 0), then version, then release.
pub fn compare_evr(left: &str, right: &str) -> Ordering {
    let (left_epoch, left_version, left_release) = split_evr(left);
    let (right_epoch, right_version, right_release) = split_evr(right);
    compare_numeric_str(left_epoch, right_epoch)
        .then_with(|| vercmp(left_version, right_version))
        .then_with(|| match (left_release, right_release) {
            // A release-less version matches any release of the same version, as rpm's
            // rpmdsCompare does for a requirement without a release.
            (Some(left_release), Some(right_release)) => vercmp(left_release, right_release),
            _ => Ordering::Equal,
        })
}

fn split_evr(evr: &str) -> (&str, &str, Option<&str>) {
    let trimmed = evr.trim();
    let (epoch, rest) = match trimmed.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|byte| byte.is_ascii_digit()) => (epoch, rest),
        _ => ("", trimmed),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    }
}

fn is_separator(byte: u8) -> bool {
    !(byte.is_ascii_alphanumeric() || byte == b'~' || byte == b'^')
}

/// rpmvercmp: compares one version (or one release) string.
pub fn vercmp(left: &str, right: &str) -> Ordering {
    if left == right {
        return Ordering::Equal;
    }
    let mut left_rest = left.as_bytes();
    let mut right_rest = right.as_bytes();
    loop {
        while left_rest.first().is_some_and(|&byte| is_separator(byte)) {
            left_rest = &left_rest[1..];
        }
        while right_rest.first().is_some_and(|&byte| is_separator(byte)) {
            right_rest = &right_rest[1..];
        }
        let left_first = left_rest.first().copied();
        let right_first = right_rest.first().copied();
        if left_first == Some(b'~') || right_first == Some(b'~') {
            if left_first != Some(b'~') {
                return Ordering::Greater;
            }
            if right_first != Some(b'~') {
                return Ordering::Less;
            }
            left_rest = &left_rest[1..];
            right_rest = &right_rest[1..];
            continue;
        }
        if left_first == Some(b'^') || right_first == Some(b'^') {
            if left_first.is_none() {
                return Ordering::Less;
            }
            if right_first.is_none() {
                return Ordering::Greater;
            }
            if left_first != Some(b'^') {
                return Ordering::Greater;
            }
            if right_first != Some(b'^') {
                return Ordering::Less;
            }
            left_rest = &left_rest[1..];
            right_rest = &right_rest[1..];
            continue;
        }
        if left_first.is_none() || right_first.is_none() {
            break;
        }
        let numeric = left_rest[0].is_ascii_digit();
        let segment_end = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|byte| {
                    if numeric {
                        !byte.is_ascii_digit()
                    } else {
                        !byte.is_ascii_alphabetic()
                    }
                })
                .unwrap_or(bytes.len())
        };
        let left_end = segment_end(left_rest);
        let right_end = segment_end(right_rest);
        let (left_segment, left_tail) = left_rest.split_at(left_end);
        let (right_segment, right_tail) = right_rest.split_at(right_end);
        if right_segment.is_empty() {
            // The segments are of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ordering = if numeric {
            compare_numeric_str(ascii(left_segment), ascii(right_segment))
        } else {
            left_segment.cmp(right_segment)
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
        left_rest = left_tail;
        right_rest = right_tail;
    }
    match (left_rest.is_empty(), right_rest.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn ascii(bytes: &[u8]) -> &str {
    // Segments are ASCII digits only, so this never falls back.
    std::str::from_utf8(bytes).unwrap_or_default()
}
