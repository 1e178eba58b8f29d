//! Debian package versions, ordered exactly as `dpkg --compare-versions` orders them
//! (deb-version(7), dpkg's lib/dpkg/version.c).

use std::cmp::Ordering;

/// A version split into `[epoch:]upstream[-revision]`, borrowing the original string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgVersion<'a> {
    /// Numeric epoch; digits only, leading zeros allowed, compared without overflow.
    pub epoch: &'a str,
    /// Upstream version.
    pub upstream: &'a str,
    /// Debian revision; empty when absent (which dpkg treats like `0`).
    pub revision: &'a str,
}

impl<'a> DpkgVersion<'a> {
    /// Splits a version. Never fails: dpkg itself compares malformed versions after a warning,
    /// and a scanner must order whatever an image or a feed contains.
    pub fn split(version: &'a str) -> Self {
        let trimmed = version.trim();
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) if epoch.bytes().all(|byte| byte.is_ascii_digit()) => (epoch, rest),
            _ => ("", trimmed),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        DpkgVersion {
            epoch,
            upstream,
            revision,
        }
    }
}

/// Compares two Debian versions the way dpkg does.
pub fn compare(left: &str, right: &str) -> Ordering {
    let left_version = DpkgVersion::split(left);
    let right_version = DpkgVersion::split(right);
    compare_numeric_str(left_version.epoch, right_version.epoch)
        .then_with(|| verrevcmp(left_version.upstream, right_version.upstream))
        .then_with(|| verrevcmp(left_version.revision, right_version.revision))
}

/// Compares two digit strings by value without parsing them into integers, so arbitrarily long
/// numbers (dates, snapshot stamps) never overflow.
pub(crate) fn compare_numeric_str(left: &str, right: &str) -> Ordering {
    let left_digits = left.trim_start_matches('0');
    let right_digits = right.trim_start_matches('0');
    left_digits
        .len()
        .cmp(&right_digits.len())
        .then_with(|| left_digits.cmp(right_digits))
}

/// dpkg's weight of a character in the non-digit part: `~` sorts before everything, even the
/// end of the string; letters sort before all other characters.
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b'~') => -1,
        Some(digit) if digit.is_ascii_digit() => 0,
        Some(letter) if letter.is_ascii_alphabetic() => i32::from(letter),
        Some(other) => i32::from(other) + 256,
    }
}

fn verrevcmp(left: &str, right: &str) -> Ordering {
    let left_bytes = left.as_bytes();
    let right_bytes = right.as_bytes();
    let mut left_index = 0;
    let mut right_index = 0;
    while left_index < left_bytes.len() || right_index < right_bytes.len() {
        while left_bytes
            .get(left_index)
            .is_some_and(|byte| !byte.is_ascii_digit())
            || right_bytes
                .get(right_index)
                .is_some_and(|byte| !byte.is_ascii_digit())
        {
            let left_order = order(left_bytes.get(left_index).copied());
            let right_order = order(right_bytes.get(right_index).copied());
            if left_order != right_order {
                return left_order.cmp(&right_order);
            }
            left_index += 1;
            right_index += 1;
        }
        let left_start = left_index;
        while left_bytes.get(left_index).is_some_and(u8::is_ascii_digit) {
            left_index += 1;
        }
        let right_start = right_index;
        while right_bytes.get(right_index).is_some_and(u8::is_ascii_digit) {
            right_index += 1;
        }
        let numeric = compare_numeric_str(
            &left[left_start.min(left.len())..left_index.min(left.len())],
            &right[right_start.min(right.len())..right_index.min(right.len())],
        );
        if numeric != Ordering::Equal {
            return numeric;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_sorts_before_end_and_epoch_dominates() {
        assert_eq!(compare("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(compare("1.0~~", "1.0~~a"), Ordering::Less);
        assert_eq!(compare("1:1.0", "2.0"), Ordering::Greater);
        assert_eq!(compare("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(compare("1.0-1.1", "1.0-1a"), Ordering::Greater);
        assert_eq!(compare("1.0+ ", "1.0."), Ordering::Less);
        assert_eq!(compare("2.36-9+deb12u3", "2.36-9+deb12u10"), Ordering::Less);
    }

    #[test]
    fn very_long_numbers_do_not_overflow() {
        assert_eq!(
            compare(
                "1.99999999999999999999999999",
                "1.100000000000000000000000000"
            ),
            Ordering::Less
        );
    }
}
