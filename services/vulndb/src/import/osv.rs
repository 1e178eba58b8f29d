//! OSV JSON records (ossf/osv-schema), as osv.dev, GHSA, PyPA, Go, Ubuntu, Debian, AlmaLinux
//! and Chainguard publish them.

use serde::Deserialize;

use crate::model::{Advisory, Affected, AffectedStatus, Event, Range, RangeKind};
use crate::severity;

#[derive(Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    upstream: Vec<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    details: String,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
    #[serde(default)]
    affected: Vec<OsvAffected>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Longest id accepted; real ids are under 64 characters.
const MAX_ID_LENGTH: usize = 256;
/// Summaries are shortened to this many characters; details stay in the feed.
const MAX_SUMMARY_CHARS: usize = 300;

pub(crate) fn summary_of(summary: &str, details: &str) -> String {
    let chosen = if summary.trim().is_empty() {
        details
            .trim()
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("")
    } else {
        summary.trim()
    };
    chosen.chars().take(MAX_SUMMARY_CHARS).collect()
}

fn parse_event(event: &serde_json::Map<String, serde_json::Value>) -> Result<Event, String> {
    if event.len() != 1 {
        return Err(format!(
            "range event must have exactly one key, has {}",
            event.len()
        ));
    }
    let Some((key, value)) = event.iter().next() else {
        return Err("empty range event".to_owned());
    };
    let Some(text) = value.as_str().filter(|text| !text.is_empty()) else {
        return Err(format!("range event {key:?} has no version string"));
    };
    let owned = text.to_owned();
    match key.as_str() {
        "introduced" => Ok(Event::Introduced(owned)),
        "fixed" => Ok(Event::Fixed(owned)),
        "last_affected" => Ok(Event::LastAffected(owned)),
        "limit" => Ok(Event::Limit(owned)),
        other => Err(format!("unknown range event {other:?}")),
    }
}

/// Parses one OSV record.
pub fn parse_record(bytes: &[u8]) -> Result<Advisory, String> {
    let record: OsvRecord =
        serde_json::from_slice(bytes).map_err(|error| format!("not an OSV record: {error}"))?;
    if record.id.trim().is_empty() || record.id.len() > MAX_ID_LENGTH {
        return Err(format!(
            "invalid id {:?}",
            record.id.chars().take(40).collect::<String>()
        ));
    }
    let mut vectors: Vec<String> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut collect = |scores: &[OsvSeverity]| {
        for score in scores {
            if score.kind.starts_with("CVSS") {
                vectors.push(score.score.clone());
            } else {
                labels.push(score.score.clone());
            }
        }
    };
    collect(&record.severity);
    let mut affected = Vec::new();
    for (index, entry) in record.affected.iter().enumerate() {
        collect(&entry.severity);
        // Entries without a package (GIT-only) cannot match an installed package.
        let Some(package) = &entry.package else {
            continue;
        };
        if package.ecosystem.trim().is_empty() || package.name.trim().is_empty() {
            return Err(format!(
                "affected[{index}] has an empty ecosystem or package name"
            ));
        }
        let mut ranges = Vec::new();
        for range in &entry.ranges {
            let kind = match range.kind.as_str() {
                "SEMVER" => RangeKind::Semver,
                "ECOSYSTEM" => RangeKind::Ecosystem,
                "GIT" => RangeKind::Git,
                other => {
                    return Err(format!(
                        "affected[{index}] has unknown range type {other:?}"
                    ));
                }
            };
            let events = range
                .events
                .iter()
                .map(parse_event)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| format!("affected[{index}]: {message}"))?;
            ranges.push(Range { kind, events });
        }
        affected.push(Affected {
            ecosystem: package.ecosystem.trim().to_owned(),
            package: package.name.trim().to_owned(),
            ranges,
            versions: entry.versions.clone(),
            requirements: None,
            status: AffectedStatus::Affected,
            severity_label: None,
        });
    }
    if let Some(label) = record
        .database_specific
        .as_ref()
        .and_then(|specific| specific.get("severity"))
        .and_then(serde_json::Value::as_str)
    {
        labels.push(label.to_owned());
    }
    let mut aliases = record.aliases;
    for upstream in record.upstream {
        if !aliases.contains(&upstream) {
            aliases.push(upstream);
        }
    }
    Ok(Advisory {
        id: record.id.trim().to_owned(),
        aliases,
        summary: summary_of(&record.summary, &record.details),
        severity: severity::assess(
            vectors.iter().map(String::as_str),
            labels.iter().map(String::as_str),
        ),
        withdrawn: record.withdrawn.is_some(),
        informational: None,
        affected,
    })
}
