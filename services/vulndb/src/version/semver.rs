//! Semantic Versioning 2.0 precedence, as OSV's `SEMVER` ranges require (crates.io, npm, Go,
//! Hex, Pub): build metadata is ignored, so Go's `+incompatible` does not change order, and Go
//! pseudo-versions (`0.0.0-20210101000000-abcdef`) order as the pre-releases they are.
//!
//! Parsing is lenient on purpose (a leading `v`, missing minor/patch, a `go` prefix): the
//! comparison must stay total over whatever the SBOM or the feed contains.

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

/// A version parsed for precedence, borrowing the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverPrecedence<'a> {
    /// major, minor, patch (missing ones count as `0`), digits only.
    pub core: [&'a str; 3],
    /// Dot-separated pre-release identifiers; empty for a release.
    pub prerelease: Vec<&'a str>,
    /// Whether the string fitted the grammar (after leniency); invalid strings sort by text.
    pub valid: bool,
}

/// Parses a version for precedence comparison.
pub fn parse(version: &str) -> SemverPrecedence<'_> {
    let trimmed = version.trim();
    let unprefixed = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix("go"))
        .unwrap_or(trimmed);
    let without_build = unprefixed
        .split_once('+')
        .map_or(unprefixed, |(head, _)| head);
    let (core_text, prerelease_text) = match without_build.split_once('-') {
        Some((core, prerelease)) => (core, Some(prerelease)),
        None => (without_build, None),
    };
    let mut core = ["0"; 3];
    let mut valid = !core_text.is_empty();
    for (index, part) in core_text.split('.').enumerate() {
        if index >= 3 || part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            valid = false;
            break;
        }
        core[index] = part;
    }
    let prerelease: Vec<&str> = prerelease_text
        .map(|text| text.split('.').collect())
        .unwrap_or_default();
    if prerelease.iter().any(|identifier| identifier.is_empty()) {
        valid = false;
    }
    SemverPrecedence {
        core,
        prerelease,
        valid,
    }
}

fn compare_identifiers(left: &str, right: &str) -> Ordering {
    let left_numeric = left.bytes().all(|byte| byte.is_ascii_digit());
    let right_numeric = right.bytes().all(|byte| byte.is_ascii_digit());
    match (left_numeric, right_numeric) {
        (true, true) => compare_numeric_str(left, right),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => left.cmp(right),
    }
}

/// Compares two versions by SemVer 2.0 precedence.
pub fn compare(left: &str, right: &str) -> Ordering {
    let left_version = parse(left);
    let right_version = parse(right);
    match (left_version.valid, right_version.valid) {
        (true, true) => {}
        // Unparseable versions sort after valid ones and among themselves by text, which keeps
        // the order total without guessing what they mean.
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => return left.cmp(right),
    }
    for (left_part, right_part) in left_version.core.iter().zip(right_version.core.iter()) {
        let ordering = compare_numeric_str(left_part, right_part);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    match (
        left_version.prerelease.is_empty(),
        right_version.prerelease.is_empty(),
    ) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (left_identifier, right_identifier) in left_version
        .prerelease
        .iter()
        .zip(right_version.prerelease.iter())
    {
        let ordering = compare_identifiers(left_identifier, right_identifier);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    left_version
        .prerelease
        .len()
        .cmp(&right_version.prerelease.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_spec_precedence_chain_holds() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in chain.windows(2) {
            assert_eq!(
                compare(pair[0], pair[1]),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn go_forms_order_by_precedence() {
        assert_eq!(compare("v2.0.0+incompatible", "2.0.0"), Ordering::Equal);
        assert_eq!(
            compare("v0.0.0-20210101000000-abcdef012345", "0.0.1"),
            Ordering::Less
        );
        assert_eq!(
            compare(
                "v0.0.0-20210101000000-abcdef012345",
                "v0.0.0-20220101000000-abcdef012345"
            ),
            Ordering::Less
        );
        assert_eq!(
            compare("v1.2.4-0.20210101000000-abcdef012345", "1.2.3"),
            Ordering::Greater
        );
        assert_eq!(
            compare("v1.2.4-0.20210101000000-abcdef012345", "1.2.4"),
            Ordering::Less
        );
        assert_eq!(compare("go1.21.0", "1.20.12"), Ordering::Greater);
        assert_eq!(compare("1.0.0+build.1", "1.0.0+build.2"), Ordering::Equal);
    }
}
