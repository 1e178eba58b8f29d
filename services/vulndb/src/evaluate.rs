//! Deciding whether one stored affected entry covers an installed version: OSV's range
//! evaluation (ossf/osv-schema "Evaluation") with the ecosystem's order, explicit version lists,
//! and RustSec's semver requirements; plus the fixed version to report.

use std::cmp::Ordering;

use crate::model::{Affected, AffectedStatus, Event, RangeKind, Requirements};
use crate::version::{VersionScheme, compare_installed_to_feed};

/// Outcome of evaluating one affected entry against one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation {
    /// Not affected.
    NotAffected,
    /// Affected; the fixed version when the entry names one, and why.
    Affected {
        /// Lowest fixed version above the installed one.
        fixed: Option<String>,
        /// Explanation.
        reason: String,
    },
}

fn event_version(event: &Event) -> &str {
    match event {
        Event::Introduced(version)
        | Event::Fixed(version)
        | Event::LastAffected(version)
        | Event::Limit(version) => version,
    }
}

fn event_rank(event: &Event) -> u8 {
    match event {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) => 2,
        Event::Limit(_) => 3,
    }
}

/// Sorts events by version: `introduced: 0` first, `limit: *` last, ties by kind.
fn sort_events(scheme: VersionScheme, events: &mut [&Event]) {
    events.sort_by(|left, right| {
        let left_version = event_version(left);
        let right_version = event_version(right);
        let ordering = match (left_version, right_version) {
            ("0", "0") => Ordering::Equal,
            ("0", _) if matches!(left, Event::Introduced(_)) => Ordering::Less,
            (_, "0") if matches!(right, Event::Introduced(_)) => Ordering::Greater,
            ("*", "*") => Ordering::Equal,
            ("*", _) => Ordering::Greater,
            (_, "*") => Ordering::Less,
            _ => scheme.compare(left_version, right_version),
        };
        ordering.then_with(|| event_rank(left).cmp(&event_rank(right)))
    });
}

/// OSV's evaluation of one range (ossf/osv-schema, "Evaluation").
fn evaluate_range(
    scheme: VersionScheme,
    version: &str,
    events: &[Event],
) -> Option<Option<String>> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sort_events(scheme, &mut sorted);
    let limits: Vec<&str> = sorted
        .iter()
        .filter_map(|event| match event {
            Event::Limit(limit) => Some(limit.as_str()),
            _ => None,
        })
        .collect();
    if !limits.is_empty()
        && !limits.iter().any(|limit| {
            *limit == "*" || compare_installed_to_feed(scheme, version, limit) == Ordering::Less
        })
    {
        return None;
    }
    let mut vulnerable = false;
    for event in &sorted {
        match event {
            Event::Introduced(introduced) => {
                if introduced == "0"
                    || compare_installed_to_feed(scheme, version, introduced) != Ordering::Less
                {
                    vulnerable = true;
                }
            }
            Event::Fixed(fixed) => {
                if compare_installed_to_feed(scheme, version, fixed) != Ordering::Less {
                    vulnerable = false;
                }
            }
            Event::LastAffected(last) => {
                if compare_installed_to_feed(scheme, version, last) == Ordering::Greater {
                    vulnerable = false;
                }
            }
            Event::Limit(_) => {}
        }
    }
    if !vulnerable {
        return None;
    }
    let fixed = sorted.iter().find_map(|event| match event {
        Event::Fixed(fixed)
            if compare_installed_to_feed(scheme, version, fixed) == Ordering::Less =>
        {
            Some(fixed.clone())
        }
        _ => None,
    });
    Some(fixed)
}

fn describe_events(events: &[Event]) -> String {
    events
        .iter()
        .map(|event| match event {
            Event::Introduced(version) => format!("introduced {version}"),
            Event::Fixed(version) => format!("fixed {version}"),
            Event::LastAffected(version) => format!("last_affected {version}"),
            Event::Limit(version) => format!("limit {version}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn evaluate_requirements(version: &str, requirements: &Requirements) -> Evaluation {
    let trimmed = version.trim().trim_start_matches('v');
    let Ok(parsed) = semver::Version::parse(trimmed) else {
        return Evaluation::NotAffected;
    };
    let matches_any = |list: &[String]| {
        list.iter()
            .filter_map(|text| semver::VersionReq::parse(text).ok())
            .any(|requirement| requirement.matches(&parsed))
    };
    if matches_any(&requirements.patched) || matches_any(&requirements.unaffected) {
        return Evaluation::NotAffected;
    }
    // The fix to report: the lowest lower bound of a patched requirement above the installed.
    let mut lowest: Option<semver::Version> = None;
    for requirement in requirements
        .patched
        .iter()
        .filter_map(|text| semver::VersionReq::parse(text).ok())
    {
        for comparator in &requirement.comparators {
            if !matches!(
                comparator.op,
                semver::Op::GreaterEq
                    | semver::Op::Greater
                    | semver::Op::Caret
                    | semver::Op::Tilde
                    | semver::Op::Exact
            ) {
                continue;
            }
            let mut candidate = semver::Version::new(
                comparator.major,
                comparator.minor.unwrap_or(0),
                comparator.patch.unwrap_or(0),
            );
            candidate.pre = comparator.pre.clone();
            if candidate > parsed && lowest.as_ref().is_none_or(|current| candidate < *current) {
                lowest = Some(candidate);
            }
        }
    }
    Evaluation::Affected {
        fixed: lowest.map(|version| version.to_string()),
        reason: format!(
            "semver: patched {:?}, unaffected {:?}",
            requirements.patched, requirements.unaffected
        ),
    }
}

/// Evaluates one affected entry against an installed version.
pub fn evaluate(affected: &Affected, version: &str) -> Evaluation {
    if affected.status == AffectedStatus::NotAffected {
        return Evaluation::NotAffected;
    }
    if let Some(requirements) = &affected.requirements {
        return evaluate_requirements(version, requirements);
    }
    let ecosystem_scheme = VersionScheme::for_ecosystem(&affected.ecosystem);
    let mut listed = false;
    if affected
        .versions
        .iter()
        .any(|listed_version| listed_version == version)
        || affected.versions.iter().any(|listed_version| {
            ecosystem_scheme.compare(listed_version, version) == Ordering::Equal
        })
    {
        listed = true;
    }
    let mut best: Option<(Option<String>, String)> = None;
    for range in &affected.ranges {
        let scheme = match range.kind {
            RangeKind::Semver => VersionScheme::Semver,
            RangeKind::Ecosystem => ecosystem_scheme,
            RangeKind::Git => continue,
        };
        if let Some(fixed) = evaluate_range(scheme, version, &range.events) {
            let reason = format!("{}: {}", scheme.name(), describe_events(&range.events));
            let replace = match (&best, &fixed) {
                (None, _) => true,
                (Some((None, _)), Some(_)) => true,
                (Some((Some(current), _)), Some(candidate)) => {
                    scheme.compare(candidate, current) == Ordering::Less
                }
                _ => false,
            };
            if replace {
                best = Some((fixed, reason));
            }
        }
    }
    match best {
        Some((fixed, reason)) => Evaluation::Affected { fixed, reason },
        None if listed => Evaluation::Affected {
            fixed: None,
            reason: format!("{}: version listed as affected", ecosystem_scheme.name()),
        },
        None => Evaluation::NotAffected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Range;

    fn entry(ecosystem: &str, events: Vec<Event>) -> Affected {
        Affected {
            ecosystem: ecosystem.into(),
            package: "pkg".into(),
            ranges: vec![Range {
                kind: RangeKind::Ecosystem,
                events,
            }],
            versions: Vec::new(),
            requirements: None,
            status: AffectedStatus::Affected,
            severity_label: None,
        }
    }

    fn affected(entry: &Affected, version: &str) -> bool {
        matches!(evaluate(entry, version), Evaluation::Affected { .. })
    }

    #[test]
    fn last_affected_includes_its_version_and_stops_after_it() {
        let range = entry(
            "crates.io",
            vec![
                Event::Introduced("1.0.0".into()),
                Event::LastAffected("1.2.0".into()),
            ],
        );
        assert!(!affected(&range, "0.9.9"));
        assert!(affected(&range, "1.0.0"));
        assert!(affected(&range, "1.2.0"));
        assert!(!affected(&range, "1.2.1"));
        assert!(!affected(&range, "2.0.0"));
    }

    #[test]
    fn limit_bounds_the_range_from_above_and_star_bounds_nothing() {
        // OSV: a range with limits applies only below one of them
        let limited = entry(
            "PyPI",
            vec![
                Event::Introduced("0".into()),
                Event::Fixed("1.5".into()),
                Event::Introduced("2.0".into()),
                Event::Limit("2.5".into()),
            ],
        );
        assert!(affected(&limited, "1.0"));
        assert!(!affected(&limited, "1.5"), "fixed");
        assert!(affected(&limited, "2.1"), "reintroduced below the limit");
        assert!(
            !affected(&limited, "2.5"),
            "at the limit the range no longer applies"
        );
        assert!(!affected(&limited, "3.0"));
        let unlimited = entry(
            "PyPI",
            vec![Event::Introduced("2.0".into()), Event::Limit("*".into())],
        );
        assert!(affected(&unlimited, "9.0"));
        assert!(!affected(&unlimited, "1.0"));
    }

    #[test]
    fn the_fix_reported_is_the_lowest_fixed_version_above_the_installed_one() {
        let range = entry(
            "PyPI",
            vec![
                Event::Introduced("0".into()),
                Event::Fixed("1.5".into()),
                Event::Introduced("2.0".into()),
                Event::Fixed("2.3".into()),
            ],
        );
        match evaluate(&range, "2.1") {
            Evaluation::Affected { fixed, .. } => assert_eq!(fixed.as_deref(), Some("2.3")),
            Evaluation::NotAffected => panic!("2.1 is between introduced 2.0 and fixed 2.3"),
        }
        assert!(!affected(&range, "1.7"));
    }
}
