//! NuGet versions: up to four numeric parts (missing ones are 0), an optional SemVer 2
//! pre-release compared case-insensitively, build metadata ignored.

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

/// Compares two NuGet versions.
pub fn compare(left: &str, right: &str) -> Ordering {
    let left_lower = left.trim().to_ascii_lowercase();
    let right_lower = right.trim().to_ascii_lowercase();
    let (left_core, left_pre) = split(&left_lower);
    let (right_core, right_pre) = split(&right_lower);
    let left_parts: Vec<&str> = left_core.split('.').collect();
    let right_parts: Vec<&str> = right_core.split('.').collect();
    let length = left_parts.len().max(right_parts.len()).max(4);
    for index in 0..length {
        let ordering = compare_numeric_str(
            left_parts.get(index).copied().unwrap_or("0"),
            right_parts.get(index).copied().unwrap_or("0"),
        );
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    match (left_pre, right_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(left_label), Some(right_label)) => super::semver::compare(
            &format!("0.0.0-{left_label}"),
            &format!("0.0.0-{right_label}"),
        ),
    }
}

fn split(version: &str) -> (&str, Option<&str>) {
    let unprefixed = version.strip_prefix('v').unwrap_or(version);
    let without_metadata = unprefixed
        .split_once('+')
        .map_or(unprefixed, |(head, _)| head);
    match without_metadata.split_once('-') {
        Some((core, label)) => (core, Some(label)),
        None => (without_metadata, None),
    }
}
