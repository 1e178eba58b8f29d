//! RustSec advisories: Markdown with a ```` ```toml ```` front-matter block (`[advisory]`,
//! `[versions]` with semver requirements).

use serde::Deserialize;

use crate::model::{Advisory, Affected, AffectedStatus, Requirements};
use crate::severity;

#[derive(Deserialize)]
struct FrontMatter {
    advisory: AdvisorySection,
    versions: Option<VersionsSection>,
}

#[derive(Deserialize)]
struct AdvisorySection {
    id: String,
    package: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    cvss: Option<String>,
    #[serde(default)]
    informational: Option<String>,
    #[serde(default)]
    withdrawn: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
struct VersionsSection {
    #[serde(default)]
    patched: Vec<String>,
    #[serde(default)]
    unaffected: Vec<String>,
}

/// Whether the text looks like a RustSec advisory (so other Markdown can be told apart).
pub fn looks_like_advisory(text: &str) -> bool {
    text.trim_start().starts_with("```toml")
}

/// Parses one advisory.
pub fn parse_advisory(text: &str) -> Result<Advisory, String> {
    let body = text.trim_start();
    let Some(after_fence) = body.strip_prefix("```toml") else {
        return Err("does not start with a ```toml front-matter block".to_owned());
    };
    let Some(end) = after_fence.find("\n```") else {
        return Err("the ```toml front-matter block is not closed".to_owned());
    };
    let front_matter: FrontMatter =
        toml::from_str(&after_fence[..end]).map_err(|error| format!("front matter: {error}"))?;
    let markdown = &after_fence[end + 4..];
    let title = markdown
        .lines()
        .find_map(|line| line.trim().strip_prefix("# "))
        .unwrap_or("")
        .trim();
    let versions = front_matter.versions.unwrap_or_default();
    let patched: Vec<String> = versions
        .patched
        .iter()
        .map(|requirement| requirement.trim().to_owned())
        .collect();
    let unaffected: Vec<String> = versions
        .unaffected
        .iter()
        .map(|requirement| requirement.trim().to_owned())
        .collect();
    for requirement in patched.iter().chain(unaffected.iter()) {
        semver::VersionReq::parse(requirement)
            .map_err(|error| format!("version requirement {requirement:?}: {error}"))?;
    }
    let advisory = front_matter.advisory;
    if advisory.id.trim().is_empty() || advisory.package.trim().is_empty() {
        return Err("advisory id or package is empty".to_owned());
    }
    Ok(Advisory {
        id: advisory.id.trim().to_owned(),
        aliases: advisory.aliases,
        summary: title.chars().take(300).collect(),
        severity: severity::assess(advisory.cvss.as_deref(), []),
        withdrawn: advisory.withdrawn.is_some(),
        informational: advisory.informational,
        affected: vec![Affected {
            ecosystem: "crates.io".to_owned(),
            package: advisory.package.trim().to_owned(),
            ranges: Vec::new(),
            versions: Vec::new(),
            requirements: Some(Requirements {
                patched,
                unaffected,
            }),
            status: AffectedStatus::Affected,
            severity_label: None,
        }],
    })
}
